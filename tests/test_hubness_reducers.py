"""Hubness reducers against slow loop references, the sklearn contract, and an outcome test."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from zsar.hubness import (
    CSLS,
    NICDM,
    REDUCERS,
    DisSimLocal,
    InvertedSoftmax,
    LocalScaling,
    MutualProximity,
    QueryBankNorm,
    hubness_from_scores,
    make_reducer,
)

N_Q, N_T, N_BANK, DIM, K = 12, 9, 15, 5, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    q, t, b = (unit(rng.normal(size=(n, DIM)) + 0.5) for n in (N_Q, N_T, N_BANK))
    return {"q": q, "t": t, "qt": q @ t.T, "tt": t @ t.T, "bt": b @ t.T}


# ---------------------------------------------------------------- loop references
def column(ref, y, exclude_self):
    return [ref[b][y] for b in range(len(ref)) if not (exclude_self and b == y)]


def mean_largest(values, k):
    return sum(sorted(values, reverse=True)[:k]) / k


def ref_csls(ref, s, k, exclude_self):
    r_t = [mean_largest(column(ref, y, exclude_self), k) for y in range(len(s[0]))]
    r_q = [mean_largest(list(row), k) for row in s]
    return [[2 * s[x][y] - r_q[x] - r_t[y] for y in range(len(s[0]))] for x in range(len(s))]


def upper_tail(d, values):
    """P(X > d) for a normal fitted to ``values`` (population std)."""
    mu = sum(values) / len(values)
    sd = math.sqrt(sum((v - mu) ** 2 for v in values) / len(values))
    return 0.5 * math.erfc((d - mu) / (sd * math.sqrt(2)))


def ref_mp_gaussian(ref_d, d, exclude_self):
    cols = [column(ref_d, y, exclude_self) for y in range(len(d[0]))]
    return [[upper_tail(d[x][y], list(d[x])) * upper_tail(d[x][y], cols[y])
             for y in range(len(d[0]))] for x in range(len(d))]


def ref_mp_empiric(tt_d, d, sample):
    out = []
    for x in range(len(d)):
        row = []
        for y in range(len(d[0])):
            others = [j for j in sample if j != y]
            hits = sum(1 for j in others if d[x][j] > d[x][y] and tt_d[y][j] > d[x][y])
            row.append(hits / len(others))
        out.append(row)
    return out


def ref_local(ref_d, d, k, exclude_self, nicdm):
    def radius(values):
        near = sorted(values)[:k]
        return sum(near) / k if nicdm else near[-1]
    r_t = [radius(column(ref_d, y, exclude_self)) for y in range(len(d[0]))]
    r_q = [radius(list(row)) for row in d]
    if nicdm:
        return [[-d[x][y] / math.sqrt(r_q[x] * r_t[y]) for y in range(len(d[0]))]
                for x in range(len(d))]
    return [[math.exp(-d[x][y] ** 2 / (r_q[x] * r_t[y])) for y in range(len(d[0]))]
            for x in range(len(d))]


def ref_dsl(q, t, k):
    """DisSimLocal from the vectors themselves: explicit local centroids."""
    def centroid(v, exclude):
        order = sorted((float(np.sum((v - t[j]) ** 2)), j) for j in range(len(t)) if j != exclude)
        return sum(t[j] for _, j in order[:k]) / k
    spread_t = [float(np.sum((t[y] - centroid(t[y], y)) ** 2)) for y in range(len(t))]
    out = []
    for x in range(len(q)):
        spread_q = float(np.sum((q[x] - centroid(q[x], None)) ** 2))
        out.append([-(float(np.sum((q[x] - t[y]) ** 2)) - spread_q - spread_t[y])
                    for y in range(len(t))])
    return out


def ref_inverted_softmax(bank, s, temperature):
    norm = [sum(math.exp(bank[b][y] / temperature) for b in range(len(bank)))
            for y in range(len(s[0]))]
    return [[math.exp(s[x][y] / temperature) / norm[y] for y in range(len(s[0]))]
            for x in range(len(s))]


def ref_qb_norm(bank, s, temperature, k):
    active = set()
    for row in bank:
        ranked = sorted(range(len(row)), key=lambda j: (-row[j], j))
        active.update(ranked[:k])
    normalised = ref_inverted_softmax(bank, s, temperature)
    out = []
    for x, row in enumerate(s):
        top1 = max(range(len(row)), key=lambda j: (row[j], -j))
        out.append(normalised[x] if top1 in active else list(row))
    return out


# ---------------------------------------------------------------- against references
@pytest.mark.parametrize("exclude_self", [True, False])
def test_csls(data, exclude_self):
    ref = data["tt"] if exclude_self else data["bt"]
    got = CSLS(k=K).fit(ref, exclude_self=exclude_self).transform(data["qt"])
    np.testing.assert_allclose(got, ref_csls(ref, data["qt"], K, exclude_self), rtol=1e-12)


@pytest.mark.parametrize("kind", ["similarity", "distance"])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_mutual_proximity_gaussian(data, kind, exclude_self):
    ref = data["tt"] if exclude_self else data["bt"]
    conv = (lambda s: s) if kind == "similarity" else (lambda s: 1 - s)
    mp = MutualProximity(method="gaussian", kind=kind).fit(conv(ref), exclude_self=exclude_self)
    expected = ref_mp_gaussian(1 - ref, 1 - data["qt"], exclude_self)
    np.testing.assert_allclose(mp.transform(conv(data["qt"])), expected, rtol=1e-10)


@pytest.mark.parametrize("sample_size", [None, 5])
def test_mutual_proximity_empiric(data, sample_size):
    mp = MutualProximity(method="empiric", sample_size=sample_size, random_state=3)
    got = mp.fit(data["tt"]).transform(data["qt"])
    sample = list(range(N_T)) if sample_size is None else list(mp.sample_indices_)
    assert len(sample) == (sample_size or N_T)
    expected = ref_mp_empiric(1 - data["tt"], 1 - data["qt"], sample)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    again = clone(mp).fit(data["tt"])
    np.testing.assert_array_equal(again.sample_indices_, mp.sample_indices_)


@pytest.mark.parametrize("cls, nicdm", [(LocalScaling, False), (NICDM, True)])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_local_scaling_and_nicdm(data, cls, nicdm, exclude_self):
    ref = data["tt"] if exclude_self else data["bt"]
    got = cls(k=K, kind="distance").fit(1 - ref, exclude_self=exclude_self)
    expected = ref_local(1 - ref, 1 - data["qt"], K, exclude_self, nicdm)
    np.testing.assert_allclose(got.transform(1 - data["qt"]), expected, rtol=1e-10)


def test_dissimlocal_matches_explicit_centroids(data):
    q, t = data["q"] * 2.0, data["t"] * np.arange(1, N_T + 1)[:, None]  # non-unit norms
    dsl = DisSimLocal(k=K, kind="distance").fit(cdist(t, t))
    np.testing.assert_allclose(dsl.transform(cdist(q, t)), ref_dsl(q, t, K), rtol=1e-9)
    cosine = DisSimLocal(k=K, kind="similarity").fit(data["tt"]).transform(data["qt"])
    np.testing.assert_allclose(cosine, ref_dsl(data["q"], data["t"], K), rtol=1e-9, atol=1e-12)


def test_inverted_softmax(data):
    got = InvertedSoftmax(temperature=0.1).fit(data["bt"]).transform(data["qt"])
    np.testing.assert_allclose(got, ref_inverted_softmax(data["bt"], data["qt"], 0.1),
                               rtol=1e-10)
    transductive = InvertedSoftmax(temperature=0.1).fit_transform(data["qt"])
    np.testing.assert_allclose(transductive,
                               ref_inverted_softmax(data["qt"], data["qt"], 0.1), rtol=1e-10)


@pytest.mark.parametrize("k", [1, 2])
def test_query_bank_norm(data, k):
    qb = QueryBankNorm(temperature=0.1, k=k).fit(data["bt"])
    expected = ref_qb_norm(data["bt"], data["qt"], 0.1, k)
    np.testing.assert_allclose(qb.transform(data["qt"]), expected, rtol=1e-10)
    assert 0 < qb.activation_set_.sum() < N_T  # both branches exercised by this data


# ---------------------------------------------------------------- sklearn contract
@pytest.mark.parametrize("name", REDUCERS)
def test_sklearn_contract(data, name):
    reducer = make_reducer(name)
    if "k" in reducer.get_params():
        reducer.set_params(k=K)  # only 9 targets here
    with pytest.raises(NotFittedError):
        reducer.transform(data["qt"])
    params = reducer.get_params()
    assert clone(reducer).get_params() == params
    assert not [a for a in vars(reducer) if a.endswith("_")]  # __init__ stores only
    assert reducer.fit(data["tt"], exclude_self=True) is reducer
    out = reducer.transform(data["qt"])
    assert out.shape == (N_Q, N_T) and np.isfinite(out).all()
    assert [a for a in vars(reducer) if a.endswith("_")]
    with pytest.raises(ValueError, match="targets"):
        reducer.transform(data["qt"][:, :4])


def test_init_only_stores_arguments():
    odd = CSLS(k=-5, kind="nonsense")  # validated in fit, not in __init__
    assert odd.get_params() == {"k": -5, "kind": "nonsense"}
    with pytest.raises(ValueError, match="kind='nonsense'"):
        odd.fit(np.eye(3))


def test_make_reducer_registry():
    assert make_reducer("mp_empiric", sample_size=7).get_params()["method"] == "empiric"
    assert isinstance(make_reducer("qb_norm", k=2), QueryBankNorm)
    with pytest.raises(ValueError, match="unknown reducer 'foo'"):
        make_reducer("foo")


# ---------------------------------------------------------------- outcome
@pytest.fixture(scope="module")
def gaussian_distances():
    x = np.random.default_rng(1).normal(size=(1000, 200))
    return cdist(x, x)


@pytest.mark.parametrize("name, max_ratio", [
    ("mp_gaussian", 0.5), ("mp_empiric", 0.5), ("csls", 0.9), ("nicdm", 0.9)])
def test_reducers_reduce_skewness(gaussian_distances, name, max_ratio):
    raw = hubness_from_scores(gaussian_distances, k=10, kind="distance", exclude_self=True)
    assert raw.skewness > 2  # high-dimensional data: strong hubs to begin with
    kwargs = {"sample_size": 300, "random_state": 0} if name == "mp_empiric" else {}
    reducer = make_reducer(name, kind="distance", **kwargs)
    corrected = reducer.fit_transform(gaussian_distances, exclude_self=True)
    after = hubness_from_scores(corrected, k=10, exclude_self=True)
    assert after.skewness <= max_ratio * raw.skewness
