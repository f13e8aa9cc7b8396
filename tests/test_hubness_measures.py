"""Hubness measures against naive references: full-matrix k-NN, scipy skew, hand-made N_k."""

import json

import numpy as np
import pytest
import scipy.stats
import torch

from zsar.hubness import (
    antihub_occurrence,
    gini_coefficient,
    hub_occurrence,
    hubness_from_scores,
    hubness_report,
    k_occurrence,
    knn_from_embeddings,
    knn_from_scores,
    robinhood_index,
    skewness,
)


# ---------------------------------------------------------------- naive references
def naive_scores(queries, targets, metric):
    """Full float64 score matrix, higher = closer (the documented ranking scores)."""
    q, t = np.asarray(queries, np.float64), np.asarray(targets, np.float64)
    if metric == "cosine":
        nq, nt = np.linalg.norm(q, axis=1), np.linalg.norm(t, axis=1)
        inv_q, inv_t = 1 / np.where(nq > 0, nq, 1), 1 / np.where(nt > 0, nt, 1)
        return (q @ t.T) * inv_q[:, None] * inv_t[None, :]
    return -((q[:, None, :] - t[None, :, :]) ** 2).sum(-1)


def naive_knn(scores, k, exclude_self=False):
    """Sort every row: highest score first, ties to the lower index (stable sort)."""
    s = np.array(scores, dtype=np.float64)
    if exclude_self:
        np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def naive_k_occurrence(neighbours, n_targets):
    counts = np.zeros(n_targets, dtype=np.int64)
    for row in neighbours:
        for j in row:
            counts[j] += 1
    return counts


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------- k-NN and N_k
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_knn_matches_full_matrix(rng, metric, precision):
    q = rng.normal(size=(230, 24)).astype(np.float32) + 2.0  # offset: strong hubs, big norms
    t = rng.normal(size=(170, 24)).astype(np.float32) + 2.0
    expected = naive_knn(naive_scores(q, t, metric), 7)
    for chunk in (1, 33, 1000):
        got = knn_from_embeddings(q, t, k=7, metric=metric, precision=precision,
                                  chunk_size=chunk)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_excludes_self(rng, metric):
    x = rng.normal(size=(150, 16))
    expected = naive_knn(naive_scores(x, x, metric), 5, exclude_self=True)
    np.testing.assert_array_equal(knn_from_embeddings(x, k=5, metric=metric, chunk_size=40),
                                  expected)
    assert not (knn_from_embeddings(x, k=5, metric=metric) == np.arange(150)[:, None]).any()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("n_candidates", [None, 4, 500])
def test_knn_ties_are_deterministic_and_chunk_independent(rng, metric, n_candidates):
    # integer grid with duplicated targets: many exactly equal scores and a zero vector
    t = rng.integers(-2, 3, size=(60, 4)).astype(np.float32)
    t = np.concatenate([t, t[:20], np.zeros((1, 4), np.float32)])
    q = rng.integers(-2, 3, size=(90, 4)).astype(np.float32)
    expected = naive_knn(naive_scores(q, t, metric), 4)
    stats = {}
    for chunk in (1, 17, 90):
        got = knn_from_embeddings(q, t, k=4, metric=metric, chunk_size=chunk,
                                  n_candidates=n_candidates, stats=stats)
        np.testing.assert_array_equal(got, expected)
    if n_candidates == 4:  # only 4 candidates for top-4 with ties: rows must be retried
        assert stats["retried_rows"] > 0


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_near_duplicates_fall_back_to_exact(rng, metric):
    # 5 clusters of 40 targets 1e-6 apart: bfloat16 cannot order them, so rows are retried
    base = rng.normal(size=(5, 32))
    t = (np.repeat(base, 40, axis=0) + 1e-6 * rng.normal(size=(200, 32))).astype(np.float32)
    q = rng.normal(size=(30, 32)).astype(np.float32)
    stats = {}
    got = knn_from_embeddings(q, t, k=10, metric=metric, chunk_size=8, stats=stats)
    np.testing.assert_array_equal(got, naive_knn(naive_scores(q, t, metric), 10))
    assert stats["retried_rows"] >= 30


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_rounding_bound_holds_for_every_pair(rng, metric, precision):
    # the certificate behind exactness: |exact - coarse| <= bound, without the safety factor
    from zsar.hubness.measures import _Engine

    q = (rng.normal(size=(64, 300)) + 1.0).astype(np.float32)
    t = (rng.normal(size=(500, 300)) * rng.uniform(0.1, 3, size=(500, 1))).astype(np.float32)
    engine = _Engine(q, t, metric, precision, exclude_self=False)
    rows = np.arange(64)
    buf = torch.empty((64, 500), dtype=getattr(torch, precision))
    coarse = engine.coarse(rows, buf).double().numpy()
    exact = engine.to_coarse_units(engine.exact(rows, np.tile(np.arange(500), (64, 1))), rows)
    assert (np.abs(exact - coarse) <= engine.bound(rows, coarse)).all()


def test_knn_restores_torch_threads(rng):
    before = torch.get_num_threads()
    knn_from_embeddings(rng.normal(size=(20, 8)), k=3, num_threads=1)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("kind", ["similarity", "distance"])
def test_knn_from_scores_ties_and_chunks(rng, kind):
    scores = rng.integers(0, 4, size=(40, 30)).astype(np.float64)  # heavy ties
    ranking = scores if kind == "similarity" else -scores
    for exclude_self in (False, True):
        s = scores[:30] if exclude_self else scores
        expected = naive_knn(ranking[:len(s)], 6, exclude_self)
        for chunk in (1, 7, 100):
            got = knn_from_scores(s, 6, kind=kind, exclude_self=exclude_self, chunk_size=chunk)
            np.testing.assert_array_equal(got, expected)


def test_k_occurrence_matches_naive(rng):
    q, t = rng.normal(size=(80, 10)), rng.normal(size=(50, 10))
    expected = naive_k_occurrence(naive_knn(naive_scores(q, t, "cosine"), 5), 50)
    np.testing.assert_array_equal(k_occurrence(q, t, k=5), expected)
    scores = naive_scores(q, t, "cosine")
    np.testing.assert_array_equal(k_occurrence(scores, k=5, metric="precomputed"), expected)
    np.testing.assert_array_equal(
        k_occurrence(1 - scores, k=5, metric="precomputed", kind="distance"), expected)
    assert k_occurrence(q, t, k=5).sum() == 80 * 5


def test_invalid_inputs_are_named(rng):
    x = rng.normal(size=(10, 4))
    with pytest.raises(ValueError, match="k=11"):
        knn_from_embeddings(x, x, k=11)
    with pytest.raises(ValueError, match="k=10"):
        knn_from_embeddings(x, k=10)  # self excluded: only 9 neighbours
    with pytest.raises(ValueError, match="metric='manhattan'"):
        k_occurrence(x, k=2, metric="manhattan")
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        knn_from_embeddings(x, k=2)
    with pytest.raises(ValueError, match="NaN"):
        knn_from_scores(x, k=2)


# ---------------------------------------------------------------- statistics of N_k
def test_skewness_matches_scipy(rng):
    k_occ = rng.poisson(3.0, size=500) ** 2
    assert skewness(k_occ) == pytest.approx(scipy.stats.skew(k_occ), rel=1e-12)
    assert skewness(np.full(20, 5)) == 0.0


def test_hand_computed_measures():
    # [0, 0, 0, 4]: mean 1, sum |dev| = 6; Gini from all ordered pairs: 24 / (2 * 16 * 1)
    k_occ = np.array([0, 0, 0, 4])
    assert robinhood_index(k_occ) == pytest.approx(0.75)
    assert gini_coefficient(k_occ) == pytest.approx(0.75)
    assert antihub_occurrence(k_occ) == pytest.approx(0.75)
    assert hub_occurrence(k_occ, k=1, hub_size=2) == pytest.approx(1.0)
    # [0, 2, 4]: sum |dev| = 4 -> 0.5 * 4 / 6; pairs sum 16 / (2 * 9 * 2)
    k_occ = np.array([4, 0, 2])
    assert robinhood_index(k_occ) == pytest.approx(1 / 3)
    assert gini_coefficient(k_occ) == pytest.approx(16 / 36)
    assert hub_occurrence(k_occ, k=1, hub_size=3) == pytest.approx(4 / 6)
    uniform = np.full(7, 3)
    assert robinhood_index(uniform) == 0 and gini_coefficient(uniform) == 0
    assert antihub_occurrence(uniform) == 0 and hub_occurrence(uniform, k=3) == 0


def test_gini_matches_pairwise_definition(rng):
    x = rng.integers(0, 9, size=37).astype(float)
    pairs = sum(abs(a - b) for a in x for b in x)
    assert gini_coefficient(x) == pytest.approx(pairs / (2 * len(x) ** 2 * x.mean()))


def test_hubness_report_fields_and_json(rng):
    x = rng.normal(size=(120, 30)) + 1.0
    report = hubness_report(x, k=5)
    k_occ = naive_k_occurrence(naive_knn(naive_scores(x, x, "cosine"), 5, True), 120)
    np.testing.assert_array_equal(report.k_occurrence, k_occ)
    assert report.skewness == pytest.approx(scipy.stats.skew(k_occ))
    assert report.robinhood == pytest.approx(robinhood_index(k_occ))
    json.dumps(report.as_dict(with_k_occurrence=True))
    from_scores = hubness_from_scores(naive_scores(x, x, "cosine"), k=5, exclude_self=True)
    assert from_scores.as_dict() == report.as_dict()
