"""Hubness measures: chunked k-nearest neighbours, k-occurrence N_k and its statistics.

N_k(y) counts how often target ``y`` is among the ``k`` nearest targets of the queries.
Neighbour lists are exact and deterministic: the most similar targets win and ties go to
the lower target index, so chunked and full-matrix computations agree exactly.

From embeddings, the ranking score is computed in float64 from the vectors as given:
``(q . t) / (|q| |t|)`` (cosine) or ``-|q - t|^2`` (euclidean). A fast coarse pass (bfloat16
or float32 block matmul + top-m per row) proposes candidates, which are re-scored exactly;
a row is accepted only if a worst-case rounding bound proves that no other target can
reach its k-th exact score, otherwise it is redone with more candidates (up to all).
Memory: the coarse copies (``2 (n_q + n_t) d`` bytes in bfloat16) and one
``chunk_size x n_t`` block; the full score matrix is never built.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

METRICS = ("cosine", "euclidean", "precomputed")
KINDS = ("similarity", "distance")
PRECISIONS = ("bfloat16", "float32")
_UNIT_ROUNDOFF = {"bfloat16": 2.0**-9, "float32": 2.0**-24}
_ROWS = 8192  # rows per block when preparing vectors
_EXACT_BLOCK = 2**21  # float64 elements per exact-rescoring block (16 MiB)
_SAFETY = 1.5  # on the rounding bound, for the float64 steps it leaves out
_TORCH_DTYPE = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {allowed}")


def _resolve_k(k, n_targets, exclude_self):
    n_valid = n_targets - int(bool(exclude_self))
    if not 1 <= int(k) <= n_valid:
        raise ValueError(f"k={k} must be in [1, {n_valid}] for {n_targets} targets "
                         f"(exclude_self={exclude_self})")
    return int(k)


@contextlib.contextmanager
def _torch_threads(num_threads):
    before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _order_rows(scores, indices, k):
    """Sort each row by (score desc, index asc) and keep ``k``; both arrays ``(n, m)``."""
    order = np.lexsort((indices, -scores), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, -1), np.take_along_axis(indices, order, -1)


# ---------------------------------------------------------------- precomputed scores
def _topk_block(block, k):
    """Deterministic top-k of a ``(c, n)`` torch block: ``(c, k)`` int64, ties -> lower index."""
    kth = torch.topk(block, k, dim=1).values[:, -1:]
    greater = block > kth
    equal = block == kth
    # how many of the k-th-valued entries each row still needs, taken in column order
    need = k - greater.sum(1, keepdim=True)
    chosen = greater | (equal & (torch.cumsum(equal, 1) <= need))
    idx = torch.nonzero(chosen)[:, 1].reshape(-1, k).numpy()
    vals = np.take_along_axis(block.numpy(), idx, 1)
    return _order_rows(vals, idx, k)[1]


def knn_from_scores(scores, k=10, kind="similarity", exclude_self=False, chunk_size=None):
    """Exact k nearest targets of each query from a precomputed score matrix.

    Parameters
    ----------
    scores : array_like, shape (n_queries, n_targets)
        Similarities (higher = closer) or distances (lower = closer), see ``kind``.
    k : int
    kind : {"similarity", "distance"}
    exclude_self : bool
        Queries are the targets (square matrix): never count the diagonal.
    chunk_size : int, optional
        Rows per block (default: about 4M scores per block), bounds temporary memory.

    Returns
    -------
    ndarray of int64, shape (n_queries, k)
        Target indices, closest first; ties go to the lower index.
    """
    _choice("kind", kind, KINDS)
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_queries, n_targets), got shape {scores.shape}")
    if exclude_self and scores.shape[0] != scores.shape[1]:
        raise ValueError(f"exclude_self needs a square matrix, got shape {scores.shape}")
    k = _resolve_k(k, scores.shape[1], exclude_self)
    # keep float64 as float64: rounding to float32 could create or break ties
    dtype = np.float64 if scores.dtype == np.float64 or scores.dtype.kind in "iub" else np.float32
    out = np.empty((scores.shape[0], k), dtype=np.int64)
    chunk_size = chunk_size or max(1, 2**22 // scores.shape[1])
    for start in range(0, scores.shape[0], chunk_size):
        block = np.array(scores[start:start + chunk_size], dtype=dtype)
        if np.isnan(block).any():
            raise ValueError(f"scores contain NaN in rows {start}..{start + len(block) - 1}")
        if kind == "distance":
            np.negative(block, out=block)
        if exclude_self:
            rows = np.arange(len(block))
            block[rows, start + rows] = -np.inf
        out[start:start + len(block)] = _topk_block(torch.from_numpy(block), k)
    return out


# ---------------------------------------------------------------- embeddings
def _source_vectors(x, name):
    """The caller's ``(n, d)`` array (float32/float64 kept without a copy), checked finite."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    for s in range(0, len(x), _ROWS):
        if not np.isfinite(x[s:s + _ROWS]).all():
            raise ValueError(f"{name} contains NaN or inf in rows {s}..{s + _ROWS - 1}")
    return x


@dataclass
class _CoarseSide:
    """Low-precision copy of one side and the norms the rounding bound needs (all ``(n,)``)."""

    vectors: torch.Tensor  # (n, d), or (d, n) for targets: measured faster in torch.mm
    inv_norm: np.ndarray  # 1/|x| (cosine; zero vectors get 1 and so score 0)
    exact_norm: np.ndarray  # |x'|, x' = x normalised (cosine) or centred (euclidean)
    err_norm: np.ndarray  # |coarse - x'|
    coarse_norm: np.ndarray  # |coarse|


def _coarse_side(x, metric, center, dtype, transpose):
    n, d = x.shape
    side = _CoarseSide(torch.empty((d, n) if transpose else (n, d), dtype=dtype),
                       *(np.ones(n) for _ in range(4)))
    for s in range(0, n, _ROWS):
        block = x[s:s + _ROWS].astype(np.float64)
        if metric == "cosine":
            norms = np.linalg.norm(block, axis=1)
            side.inv_norm[s:s + len(block)] = 1.0 / np.where(norms > 0, norms, 1.0)
            block *= side.inv_norm[s:s + len(block), None]
        else:
            block -= center  # distances are shift-invariant; small norms keep bf16 precise
        low = torch.from_numpy(block).to(dtype)
        side.exact_norm[s:s + len(block)] = np.linalg.norm(block, axis=1)
        side.err_norm[s:s + len(block)] = np.linalg.norm(low.double().numpy() - block, axis=1)
        side.coarse_norm[s:s + len(block)] = np.linalg.norm(low.double().numpy(), axis=1)
        if transpose:
            side.vectors[:, s:s + len(block)] = low.T
        else:
            side.vectors[s:s + len(block)] = low
    return side


class _Engine:
    """Coarse scores, exact re-scoring and the rounding bound of ``knn_from_embeddings``."""

    def __init__(self, q, t, metric, precision, exclude_self):
        self.q, self.t, self.metric, self.exclude_self = q, t, metric, exclude_self
        self.u_out = _UNIT_ROUNDOFF[precision]
        dtype = _TORCH_DTYPE[precision]
        center = t.mean(axis=0, dtype=np.float64) if metric == "euclidean" else None
        self.qs = _coarse_side(q, metric, center, dtype, transpose=False)
        self.ts = _coarse_side(t, metric, center, dtype, transpose=True)
        self.half_sq = None
        if metric == "euclidean":
            self.half_sq = torch.from_numpy((0.5 * self.ts.exact_norm**2).astype(np.float32))

    def coarse(self, rows, out):
        """Coarse scores of query ``rows`` into ``out (len(rows), n_t)``."""
        torch.mm(self.qs.vectors[rows], self.ts.vectors, out=out)
        if self.half_sq is not None:
            out.sub_(self.half_sq)  # q.t - |t|^2/2 ranks like -|q - t|^2
        if self.exclude_self:
            out[torch.arange(len(rows)), torch.as_tensor(rows)] = -torch.inf
        return out

    def exact(self, rows, cand):
        """Exact float64 scores ``(c, m)`` of query ``rows`` and targets ``cand (c, m)``.

        Each pair is reduced on its own along ``d``, so its value does not depend on the
        chunking or on the candidate position (needed for exact, chunk-independent ties).
        """
        out = np.empty(cand.shape, dtype=np.float64)
        (n, m), d = cand.shape, self.q.shape[1]
        rows_per = max(1, _EXACT_BLOCK // (m * d))
        cols_per = m if rows_per > 1 else max(1, _EXACT_BLOCK // d)
        for r in range(0, n, rows_per):
            qs = self.q[rows[r:r + rows_per], None, :].astype(np.float64)
            for c in range(0, m, cols_per):
                ts = self.t[cand[r:r + rows_per, c:c + cols_per]].astype(np.float64)
                if self.metric == "cosine":
                    out[r:r + rows_per, c:c + cols_per] = (qs * ts).sum(-1)
                else:
                    ts -= qs
                    out[r:r + rows_per, c:c + cols_per] = -(ts * ts).sum(-1)
        if self.metric == "cosine":
            out *= self.qs.inv_norm[rows, None]
            out *= self.ts.inv_norm[cand]
        if self.exclude_self:
            out[cand == rows[:, None]] = -np.inf
        return out

    def bound(self, rows, coarse):
        """Upper bound on ``|exact - coarse|`` in coarse units; ``coarse``: ``(c,)`` or ``(c, n)``.

        Rigorous for float32 accumulation (gamma_d) and round-to-nearest: input rounding
        by Cauchy-Schwarz with the measured rounding errors, output rounding relative to
        the stored ``coarse`` value. The caller adds a safety factor for the float64 steps.
        """
        per_row = (slice(None), None) if np.ndim(coarse) == 2 else slice(None)
        qn, q_err, ts = self.qs.coarse_norm[rows][per_row], self.qs.err_norm[rows][per_row], \
            self.ts
        gamma = self.q.shape[1] * 2.0**-24 * 1.01
        bound = (q_err * ts.exact_norm.max() + qn * ts.err_norm.max()
                 + gamma * qn * ts.coarse_norm.max()
                 + self.u_out * np.abs(coarse) / (1 - self.u_out))
        if self.metric == "euclidean":  # the dot is rounded before subtracting |t|^2/2
            bound = bound + self.u_out * qn * ts.coarse_norm.max() * (1 + gamma)
            bound = bound + 2.0**-23 * (np.abs(coarse) + 0.5 * ts.exact_norm.max() ** 2)
        return bound

    def to_coarse_units(self, exact, rows):
        """Exact scores ``(c,)`` / ``(c, n)`` on the coarse scale (euclidean: q'.t' - |t'|^2/2)."""
        if self.metric == "cosine":
            return exact
        per_row = (slice(None), None) if np.ndim(exact) == 2 else slice(None)
        return 0.5 * (exact + self.qs.exact_norm[rows][per_row] ** 2)


def _search_rows(eng, rows, k, m, buf):
    """Top-k of query ``rows`` from ``m`` coarse candidates; ``(idx (c, k), certified (c,))``."""
    vals, cand = torch.topk(eng.coarse(rows, buf[:len(rows)]), m, dim=1)
    cand = cand.numpy()
    best, idx = _order_rows(eng.exact(rows, cand), cand, k)
    if m >= eng.t.shape[0]:
        return idx, np.ones(len(rows), dtype=bool)
    # every non-candidate has coarse <= the m-th coarse value (the floor), hence an exact
    # score <= floor + bound; strictly below the k-th exact score it cannot be in the top k
    floor = vals[:, -1].double().numpy()
    kth = eng.to_coarse_units(best[:, -1], rows)
    return idx, floor + _SAFETY * eng.bound(rows, floor) < kth


def knn_from_embeddings(queries, targets=None, k=10, metric="cosine", exclude_self=None,
                        chunk_size=1024, precision="bfloat16", n_candidates=None,
                        num_threads=None, stats=None):
    """Exact k nearest targets of each query, in query chunks with bounded memory.

    Parameters
    ----------
    queries : array_like, shape (n_queries, d)
    targets : array_like, shape (n_targets, d), optional
        Defaults to ``queries`` (then ``exclude_self`` defaults to True).
    k : int
    metric : {"cosine", "euclidean"}
    exclude_self : bool, optional
        Queries are the targets: a query is never its own neighbour.
    chunk_size : int
        Queries per block; the coarse block holds ``chunk_size * n_targets`` scores.
    precision : {"bfloat16", "float32"}
        Dtype of the coarse matmul only; the result is exact either way.
    n_candidates : int, optional
        Coarse candidates per query (default ``max(2k, k + 22)``); uncertified rows retry
        with 4x more, up to all targets.
    num_threads : int, optional
        torch threads during the call (restored afterwards).
    stats : dict, optional
        Filled with ``{"retried_rows": int}`` (row retries with more candidates).

    Returns
    -------
    ndarray of int64, shape (n_queries, k)
        Target indices, most similar first; ties go to the lower index.
    """
    _choice("metric", metric, METRICS[:2])
    _choice("precision", precision, PRECISIONS)
    same = targets is None
    exclude_self = same if exclude_self is None else bool(exclude_self)
    q = _source_vectors(queries, "queries")
    t = q if same else _source_vectors(targets, "targets")
    if q.shape[1] != t.shape[1]:
        raise ValueError(f"queries have d={q.shape[1]} but targets d={t.shape[1]}")
    if exclude_self and len(q) != len(t):
        raise ValueError(f"exclude_self needs queries == targets, got {len(q)} vs {len(t)}")
    k = _resolve_k(k, len(t), exclude_self)
    m0 = min(len(t), int(n_candidates or max(2 * k, k + 22)))
    if m0 < k:
        raise ValueError(f"n_candidates={n_candidates} must be >= k={k}")
    out = np.empty((len(q), k), dtype=np.int64)
    retried = 0
    with _torch_threads(num_threads):
        eng = _Engine(q, t, metric, precision, exclude_self)
        buf = torch.empty((min(chunk_size, len(q)), len(t)), dtype=_TORCH_DTYPE[precision])
        for start in tqdm(range(0, len(q), chunk_size), desc="k-NN chunks", disable=None,
                          leave=False):
            rows, m = np.arange(start, min(start + chunk_size, len(q))), m0
            while len(rows):
                idx, ok = _search_rows(eng, rows, k, m, buf)
                out[rows[ok]] = idx[ok]
                rows, m = rows[~ok], min(len(t), 4 * m)
                retried += len(rows)
    if stats is not None:
        stats["retried_rows"] = retried
    return out


def k_occurrence(queries, targets=None, k=10, metric="cosine", kind="similarity",
                 exclude_self=None, **knn_kwargs):
    """k-occurrence N_k of every target.

    Parameters
    ----------
    queries : array_like, shape (n_queries, d), or (n_queries, n_targets) scores
        Embeddings, or a score matrix when ``metric="precomputed"``.
    targets : array_like, shape (n_targets, d), optional
        Embeddings (ignored for ``metric="precomputed"``); default: the queries.
    k : int
    metric : {"cosine", "euclidean", "precomputed"}
    kind : {"similarity", "distance"}
        Meaning of a precomputed matrix.
    exclude_self : bool, optional
        Default: True when targets are omitted (embeddings), else False.
    **knn_kwargs
        Passed to :func:`knn_from_embeddings` / :func:`knn_from_scores`.

    Returns
    -------
    ndarray of int64, shape (n_targets,)
    """
    _choice("metric", metric, METRICS)
    if metric == "precomputed":
        if targets is not None:
            raise ValueError("metric='precomputed' takes the score matrix as `queries`; "
                             "pass targets=None")
        scores = np.asarray(queries)
        idx = knn_from_scores(scores, k, kind, bool(exclude_self), **knn_kwargs)
        n_targets = scores.shape[1]
    else:
        idx = knn_from_embeddings(queries, targets, k, metric, exclude_self, **knn_kwargs)
        n_targets = len(queries) if targets is None else len(targets)
    return np.bincount(idx.ravel(), minlength=n_targets)


# ---------------------------------------------------------------- statistics of N_k
def skewness(k_occ):
    """Skewness S_Nk (biased, as ``scipy.stats.skew``); 0.0 when all N_k are equal."""
    x = np.asarray(k_occ, dtype=np.float64)
    centered = x - x.mean()
    var = np.mean(centered**2)
    if var == 0:  # all N_k equal (integer counts: exactly 0): no hubs, no antihubs
        return 0.0
    return float(np.mean(centered**3) / var**1.5)


def hub_occurrence(k_occ, k, hub_size=2.0):
    """Share of all neighbour slots taken by hubs (targets with N_k >= hub_size * k)."""
    x = np.asarray(k_occ, dtype=np.float64)
    return float(x[x >= hub_size * k].sum() / x.sum())


def antihub_occurrence(k_occ):
    """Share of targets that are nobody's neighbour (N_k = 0)."""
    return float(np.mean(np.asarray(k_occ) == 0))


def robinhood_index(k_occ):
    """Robin Hood index 0.5 * sum|N_k - mean| / sum N_k: share of slots to move for equality."""
    x = np.asarray(k_occ, dtype=np.float64)
    return float(0.5 * np.abs(x - x.mean()).sum() / x.sum())


def gini_coefficient(k_occ):
    """Gini coefficient sum_ij |x_i - x_j| / (2 n^2 mean), via the sorted form."""
    x = np.sort(np.asarray(k_occ, dtype=np.float64))
    n = len(x)
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * x.sum()))


@dataclass(frozen=True)
class HubnessReport:
    """Hubness measures of one k-occurrence vector (``k_occurrence``: ``(n_targets,)``)."""

    k: int
    hub_size: float
    skewness: float
    hub_occurrence: float
    antihub_occurrence: float
    robinhood: float
    gini: float
    k_occurrence: np.ndarray

    def as_dict(self, with_k_occurrence=False):
        """Plain dict for JSON metrics; the N_k array only on request (as a list)."""
        d = {name: getattr(self, name) for name in self.__dataclass_fields__
             if name != "k_occurrence"}
        if with_k_occurrence:
            d["k_occurrence"] = self.k_occurrence.tolist()
        return d


def report_from_k_occurrence(k_occ, k, hub_size=2.0):
    """All measures of a k-occurrence vector ``(n_targets,)`` as a :class:`HubnessReport`."""
    k_occ = np.asarray(k_occ)
    return HubnessReport(k=int(k), hub_size=float(hub_size), skewness=skewness(k_occ),
                         hub_occurrence=hub_occurrence(k_occ, k, hub_size),
                         antihub_occurrence=antihub_occurrence(k_occ),
                         robinhood=robinhood_index(k_occ), gini=gini_coefficient(k_occ),
                         k_occurrence=k_occ)


def hubness_report(queries, targets=None, k=10, metric="cosine", kind="similarity",
                   exclude_self=None, hub_size=2.0, **knn_kwargs):
    """Hubness of ``queries -> targets`` (embeddings, or a matrix with ``"precomputed"``).

    Arguments as in :func:`k_occurrence`; returns a :class:`HubnessReport`.
    """
    k_occ = k_occurrence(queries, targets, k, metric, kind, exclude_self, **knn_kwargs)
    return report_from_k_occurrence(k_occ, k, hub_size)


def hubness_from_scores(scores, k=10, kind="similarity", exclude_self=False, hub_size=2.0,
                        chunk_size=None):
    """Hubness of a score matrix ``(n_queries, n_targets)``, e.g. a reducer's output."""
    k_occ = k_occurrence(scores, None, k, "precomputed", kind, exclude_self,
                         chunk_size=chunk_size)
    return report_from_k_occurrence(k_occ, k, hub_size)
