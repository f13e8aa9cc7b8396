"""Hubness reducers as scikit-learn style estimators over score matrices.

Every reducer works on a score matrix ``(n_queries, n_targets)`` (e.g. videos x class
prototypes) and returns corrected scores where **higher = more similar**, so top-1 is
always ``argmax`` along axis 1, whatever the method's native output (distance-native
outputs are negated or turned into similarities, as documented per class).

``fit(reference_scores)`` learns per-target statistics from a reference matrix
``(n_reference, n_targets)``: the targets against themselves (square; pass
``exclude_self=True`` so a target is not its own neighbour) or a *query bank* against the
targets (e.g. training videos x classes). Empiric mutual proximity and DisSimLocal need the
square target x target matrix. ``transform(scores)`` uses the query-side statistics of the
rows it is given. ``fit_transform(scores, exclude_self=True)`` corrects a within-set matrix.

``kind`` says what the input holds: ``"similarity"`` (cosine similarity in [-1, 1]; the
default everywhere) or ``"distance"`` (a non-negative distance). Similarity-native methods (CSLS, inverted softmax,
QB-Norm) read a distance as ``-d``; distance-native ones (mutual proximity, local scaling,
NICDM) read a similarity as the cosine distance ``1 - s``; DisSimLocal needs squared
Euclidean distances and reads a unit-vector cosine similarity as ``2 - 2 s``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, ndtr
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

KINDS = ("similarity", "distance")


# ---------------------------------------------------------------- helpers
def _as_matrix(scores, kind, name="scores"):
    """float64 copy of a finite 2-D score matrix ``(n, m)``; checks ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    x = np.array(scores, dtype=np.float64)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _similarity(scores, kind):  # similarity-native methods read a distance as -d
    return scores if kind == "similarity" else -scores


def _distance(scores, kind):  # distance-native methods read a similarity as 1 - s
    return 1.0 - scores if kind == "similarity" else scores


def _self_masked(x, exclude_self, fill):
    """Copy of square ``x`` with the diagonal set to ``fill`` (no-op when not excluding)."""
    if not exclude_self:
        return x
    if x.shape[0] != x.shape[1]:
        raise ValueError(f"exclude_self needs a square matrix, got shape {x.shape}")
    x = x.copy()
    np.fill_diagonal(x, fill)
    return x


def _nearest(x, k, axis, largest):
    """The ``k`` nearest values along ``axis`` (largest or smallest), unordered."""
    n = x.shape[axis]
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be in [1, {n}] (neighbours available along axis {axis})")
    if largest:
        return -np.take(np.partition(-x, k - 1, axis=axis), np.arange(k), axis=axis)
    return np.take(np.partition(x, k - 1, axis=axis), np.arange(k), axis=axis)


def _k_nearest_stat(x, k, axis, largest, exclude_self, stat):
    """Per-row/column neighbourhood statistic: ``"mean"`` of the k nearest, or ``"kth"``."""
    # the masked diagonal sorts last, so it is never among the k nearest unless k is too big
    near = _nearest(_self_masked(x, exclude_self, -np.inf if largest else np.inf), k, axis,
                    largest)
    if not np.isfinite(near).all():
        raise ValueError(f"k={k} needs more neighbours than the matrix has besides self")
    if stat == "mean":
        return near.mean(axis=axis)
    return near.max(axis=axis) if not largest else near.min(axis=axis)


def _stable_topk(x, k):
    """Indices ``(n, k)`` of the k largest per row, ties to the lower index."""
    return np.argsort(-x, axis=1, kind="stable")[:, :k]


class _Reducer(TransformerMixin, BaseEstimator):
    """Shared checks; subclasses implement ``_fit(ref, exclude_self)`` and ``_transform``."""

    def fit(self, reference_scores, y=None, exclude_self=False):
        """Learn per-target statistics.

        Parameters
        ----------
        reference_scores : array_like, shape (n_reference, n_targets)
            Reference items (the targets themselves, or a query bank) against the targets.
        y : ignored
        exclude_self : bool
            The reference items are the targets (square): ignore the diagonal.

        Returns
        -------
        self
        """
        ref = _as_matrix(reference_scores, self.kind, "reference_scores")
        self.n_targets_ = ref.shape[1]
        self._fit(ref, bool(exclude_self))
        return self

    def transform(self, scores, exclude_self=False):
        """Corrected scores, higher = more similar.

        Parameters
        ----------
        scores : array_like, shape (n_queries, n_targets)
        exclude_self : bool
            The queries are the targets (square): leave the diagonal out of query statistics.

        Returns
        -------
        ndarray, shape (n_queries, n_targets)
        """
        check_is_fitted(self)
        x = _as_matrix(scores, self.kind)
        if x.shape[1] != self.n_targets_:
            raise ValueError(f"scores have {x.shape[1]} targets, fit saw {self.n_targets_}")
        return self._transform(x, bool(exclude_self))

    def fit_transform(self, scores, y=None, exclude_self=False):
        """Fit on ``scores`` and correct them (transductive or within-set use)."""
        return self.fit(scores, exclude_self=exclude_self).transform(
            scores, exclude_self=exclude_self)


# ---------------------------------------------------------------- reducers
class _RadiusReducer(_Reducer):
    """Reducers that rescale each score by a neighbourhood radius of the query and of the target.

    Subclasses set ``_native`` (``"similarity"`` or ``"distance"``: the scores they work on),
    ``_statistic`` (``"mean"`` of the ``k`` nearest or the ``"kth"``) and ``_combine``.
    """

    _native = "similarity"
    _statistic = "mean"

    def __init__(self, k=10, kind="similarity"):
        self.k = k
        self.kind = kind

    def _native_scores(self, x):
        return _similarity(x, self.kind) if self._native == "similarity" else _distance(x, self.kind)

    def _radius(self, scores, axis, exclude_self):
        return _k_nearest_stat(scores, self.k, axis, self._native == "similarity", exclude_self, self._statistic)

    def _fit(self, ref, exclude_self):
        self.target_radius_ = self._radius(self._native_scores(ref), 0, exclude_self)

    def _transform(self, x, exclude_self):
        scores = self._native_scores(x)
        r_query = self._radius(scores, 1, exclude_self)
        return self._combine(scores, r_query[:, None], self.target_radius_[None, :])

    def _combine(self, scores, r_query, r_target):
        raise NotImplementedError


class CSLS(_RadiusReducer):
    """Cross-domain similarity local scaling (Lample et al., 2018).

    ``CSLS(x, y) = 2 s(x, y) - r_T(x) - r_S(y)``: ``r_T(x)`` is the mean similarity of query
    ``x`` to its ``k`` most similar targets (from the row), ``r_S(y)`` the mean similarity of
    target ``y`` to its ``k`` most similar reference items (from ``fit``). Similarity-native.

    Parameters
    ----------
    k : int
    kind : {"similarity", "distance"}
    """

    _native, _statistic = "similarity", "mean"

    def _combine(self, scores, r_query, r_target):
        return 2 * scores - r_query - r_target


class MutualProximity(_Reducer):
    """Mutual proximity (Schnitzer et al., 2012), returned as the MP similarity in [0, 1].

    ``MP(x, y) = P(X > d_xy) P(Y > d_xy)`` (``"gaussian"``: independent normals fitted to the
    query row and to the target's reference column; ``1 - MP`` is the MP distance), or the
    empiric joint ``|{j != x, y: d_xj > d_xy and d_yj > d_xy}| / |{j != x, y}|`` over the
    targets ``j`` (``"empiric"``; fit on the square target x target matrix; ``sample_size``
    targets drawn in ``fit`` bound the cost). Distance-native.

    Parameters
    ----------
    method : {"gaussian", "empiric"}
    kind : {"similarity", "distance"}
    sample_size : int, optional
        Empiric only: number of targets ``j`` to estimate the probabilities from.
    random_state : int, RandomState or None
        Seeds the empiric subsample.
    """

    def __init__(self, method="gaussian", kind="similarity", sample_size=None, random_state=None):
        self.method = method
        self.kind = kind
        self.sample_size = sample_size
        self.random_state = random_state

    def _fit(self, ref, exclude_self):
        if self.method not in ("gaussian", "empiric"):
            raise ValueError(f"method={self.method!r} is not one of ('gaussian', 'empiric')")
        dist = _distance(ref, self.kind)
        if self.method == "gaussian":
            col = _self_masked(dist, exclude_self, np.nan)
            self.target_mean_ = np.nanmean(col, axis=0)
            self.target_std_ = np.nanstd(col, axis=0)
            return
        if dist.shape[0] != dist.shape[1]:
            raise ValueError(f"empiric MP needs the square target x target matrix, got "
                             f"shape {dist.shape}")
        n = dist.shape[0]
        rng = check_random_state(self.random_state)
        size = n if self.sample_size is None else min(int(self.sample_size), n)
        self.sample_indices_ = np.sort(rng.choice(n, size, replace=False)) if size < n \
            else np.arange(n)
        self.target_dist_ = dist[:, self.sample_indices_]  # (n_targets, n_sample)

    def _transform(self, x, exclude_self):
        dist = _distance(x, self.kind)
        if self.method == "gaussian":
            row = _self_masked(dist, exclude_self, np.nan)
            mean, std = np.nanmean(row, axis=1), np.nanstd(row, axis=1)
            tiny = np.finfo(np.float64).tiny  # a constant row: P(X > mean) = 1/2
            p_query = ndtr(-(dist - mean[:, None]) / np.maximum(std, tiny)[:, None])
            p_target = ndtr(-(dist - self.target_mean_) / np.maximum(self.target_std_, tiny))
            return p_query * p_target
        return self._empiric(dist, exclude_self)

    def _empiric(self, dist, exclude_self):
        j = self.sample_indices_
        out = np.empty_like(dist)
        # j = y is never "further" from y (and j = x never from x when x is a target)
        valid_target = j[None, :] != np.arange(self.n_targets_)[:, None]  # (n_t, n_s)
        chunk = max(1, 2**24 // (self.n_targets_ * len(j)))
        for s in range(0, len(dist), chunk):
            d_xy = dist[s:s + chunk, :, None]  # (c, n_t, 1)
            valid = valid_target[None]
            if exclude_self:
                valid = valid & (j[None, None, :] != np.arange(s, s + len(d_xy))[:, None, None])
            hits = (dist[s:s + chunk, None, j] > d_xy) & (self.target_dist_[None] > d_xy) & valid
            out[s:s + chunk] = hits.sum(-1) / np.maximum(valid.sum(-1), 1)
        return out


class LocalScaling(_RadiusReducer):
    """Local scaling (Zelnik-Manor & Perona, 2005), as the similarity ``1 - LS``.

    ``exp(-d_xy^2 / (sigma_x sigma_y))`` with ``sigma`` the distance to the ``k``-th nearest
    neighbour (query: among the targets; target: among the reference items). Distance-native.

    Parameters
    ----------
    k : int
    kind : {"similarity", "distance"}
    """

    _native, _statistic = "distance", "kth"

    def _combine(self, scores, r_query, r_target):
        return np.exp(-(scores**2) / np.maximum(r_query * r_target, np.finfo(float).tiny))


class NICDM(_RadiusReducer):
    """Non-iterative contextual dissimilarity measure (Jegou et al., 2010), negated.

    ``-d_xy / sqrt(mu_x mu_y)`` with ``mu`` the mean distance to the ``k`` nearest neighbours
    (query: among the targets; target: among the reference items). Distance-native.

    Parameters
    ----------
    k : int
    kind : {"similarity", "distance"}
    """

    _native, _statistic = "distance", "mean"

    def _combine(self, scores, r_query, r_target):
        return -scores / np.sqrt(np.maximum(r_query * r_target, np.finfo(float).tiny))


class DisSimLocal(_Reducer):
    """DisSimLocal (Hara et al., 2016), negated: ``-(|x-y|^2 - |x-c_x|^2 - |y-c_y|^2)``.

    ``c_x`` is the centroid of the ``k`` nearest targets of ``x`` (for a target: the ``k``
    nearest *other* targets). Works on squared Euclidean distances only, via
    ``|x - c|^2 = mean_j d2(x, y_j) - sum_ij d2(y_i, y_j) / (2 k^2)`` over the neighbours
    ``y_j``, so ``fit`` needs the square target x target matrix. ``kind="distance"``: Euclidean
    distances (squared here); ``"similarity"``: cosine of unit vectors, ``d2 = 2 - 2 s``.
    Ties among neighbours go to the lower target index.

    Parameters
    ----------
    k : int
    kind : {"similarity", "distance"}
    """

    def __init__(self, k=10, kind="similarity"):
        self.k = k
        self.kind = kind

    def _squared(self, x):
        return 2.0 - 2.0 * x if self.kind == "similarity" else x**2

    def _spread(self, d2, neighbours):
        """``|x - c_x|^2`` per row of ``d2 (n, n_t)`` with ``neighbours (n, k)``."""
        to_near = np.take_along_axis(d2, neighbours, 1).mean(1)
        among = self.target_d2_[neighbours[:, :, None], neighbours[:, None, :]].sum((1, 2))
        return to_near - among / (2.0 * neighbours.shape[1] ** 2)

    def _fit(self, ref, exclude_self):
        if ref.shape[0] != ref.shape[1]:
            raise ValueError(f"DisSimLocal needs the square target x target matrix, got "
                             f"shape {ref.shape}")
        self.target_d2_ = self._squared(ref)
        near = self._neighbours(self.target_d2_, exclude_self=True)
        self.target_spread_ = self._spread(self.target_d2_, near)

    def _neighbours(self, d2, exclude_self):
        k_max = d2.shape[1] - int(exclude_self)
        if not 1 <= self.k <= k_max:
            raise ValueError(f"k={self.k} must be in [1, {k_max}]")
        return _stable_topk(-_self_masked(d2, exclude_self, np.inf), self.k)

    def _transform(self, x, exclude_self):
        d2 = self._squared(x)
        spread = self._spread(d2, self._neighbours(d2, exclude_self))
        return -(d2 - spread[:, None] - self.target_spread_[None, :])


class InvertedSoftmax(_Reducer):
    """Inverted softmax (Smith et al., 2017): ``exp(s_xy / T) / sum_b exp(s_by / T)``.

    Each target's scores are normalised over the reference queries ``b`` seen in ``fit``
    (``fit_transform(scores)``: over the test queries themselves, as in the paper).
    Similarity-native; output in (0, inf).

    Parameters
    ----------
    temperature : float
        ``T = 1 / beta``.
    kind : {"similarity", "distance"}
    """

    def __init__(self, temperature=0.05, kind="similarity"):
        self.temperature = temperature
        self.kind = kind

    def _fit(self, ref, exclude_self):
        sim = _self_masked(_similarity(ref, self.kind), exclude_self, -np.inf)
        self.log_normaliser_ = logsumexp(sim / self.temperature, axis=0)  # (n_targets,)

    def _transform(self, x, exclude_self):
        return np.exp(_similarity(x, self.kind) / self.temperature - self.log_normaliser_)


class QueryBankNorm(InvertedSoftmax):
    """Querybank normalisation with dynamic inverted softmax, DIS (Bogolin et al., 2022).

    ``fit(bank_scores)`` on a query bank ``(n_bank, n_targets)`` stores the inverted-softmax
    normaliser and the activation set: targets among the top-``k`` of any bank query. A
    query whose top-1 target is in the activation set gets inverted-softmax scores; other
    queries keep their raw similarities (so compare within a row). Similarity-native.

    Parameters
    ----------
    temperature : float
        ``T = 1 / beta`` (the paper's beta = 20 is ``T = 0.05``).
    k : int
        Top-k of each bank query that enters the activation set.
    kind : {"similarity", "distance"}
    """

    def __init__(self, temperature=0.05, k=1, kind="similarity"):  # noqa: D107 (sklearn)
        self.temperature = temperature
        self.k = k
        self.kind = kind

    def _fit(self, ref, exclude_self):
        super()._fit(ref, exclude_self)
        sim = _self_masked(_similarity(ref, self.kind), exclude_self, -np.inf)
        self.activation_set_ = np.zeros(ref.shape[1], dtype=bool)
        self.activation_set_[_stable_topk(sim, self.k).ravel()] = True

    def _transform(self, x, exclude_self):
        sim = _self_masked(_similarity(x, self.kind), exclude_self, -np.inf)
        normalise = self.activation_set_[np.argmax(sim, axis=1)]  # argmax: first maximum
        out = _similarity(x, self.kind).copy()
        out[normalise] = super()._transform(x[normalise], exclude_self)
        return out


# ---------------------------------------------------------------- registry
_REGISTRY = {
    "csls": (CSLS, {}),
    "mp_gaussian": (MutualProximity, {"method": "gaussian"}),
    "mp_empiric": (MutualProximity, {"method": "empiric"}),
    "local_scaling": (LocalScaling, {}),
    "nicdm": (NICDM, {}),
    "dsl": (DisSimLocal, {}),
    "inverted_softmax": (InvertedSoftmax, {}),
    "qb_norm": (QueryBankNorm, {}),
}
REDUCERS = tuple(_REGISTRY)
SQUARE_ONLY = ("mp_empiric", "dsl")
"""Reducers whose ``fit`` needs the square target x target matrix, not a query x target one."""


def make_reducer(name, **kwargs):
    """Build a reducer by registry name (see ``REDUCERS``); ``kwargs`` override defaults."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown reducer {name!r}; choose one of {REDUCERS}")
    cls, defaults = _REGISTRY[name]
    return cls(**{**defaults, **kwargs})
