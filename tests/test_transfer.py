"""Semantic transfer (zsar.methods.transfer): weights, limits and a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.methods.transfer import (describe_weights, relatedness_matrix, semantic_transfer, topk_indices,
                                   transfer_weights)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _naive_weights(rel: np.ndarray, k: int, tau: float) -> np.ndarray:
    """Row by row, obviously correct: sort, keep k, softmax."""
    out = np.zeros_like(rel, dtype=np.float64)
    for u, row in enumerate(rel):
        top = sorted(range(len(row)), key=lambda s: (-row[s], s))[:k]
        e = np.array([np.exp(row[s] / tau) for s in top])
        out[u, top] = e / e.sum()
    return out


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
def test_weights_are_softmax_over_topk(rng, k, tau):
    rel = rng.uniform(-1, 1, size=(5, 7))
    weights, top = transfer_weights(rel, k, tau)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-12)
    assert (weights >= 0).all()
    assert ((weights > 0).sum(1) == k).all()  # exactly k non-zeros: zero outside top-k
    outside = np.ones_like(weights, dtype=bool)
    outside[np.arange(5)[:, None], top] = False
    assert (weights[outside] == 0).all()
    np.testing.assert_allclose(weights, _naive_weights(rel, k, tau), atol=1e-12)


def test_topk_is_sorted_and_ties_go_to_lower_index():
    rel = np.array([[0.2, 0.9, 0.9, 0.1]])
    assert topk_indices(rel, 3).tolist() == [[1, 2, 0]]


def test_zero_temperature_and_tiny_temperature_give_one_hot(rng):
    rel = rng.uniform(-1, 1, size=(4, 6))
    for tau in (0.0, 1e-6):
        weights, _ = transfer_weights(rel, 3, tau)
        expected = np.zeros_like(rel)
        expected[np.arange(4), rel.argmax(1)] = 1.0
        np.testing.assert_allclose(weights, expected, atol=1e-9)
        assert np.isfinite(weights).all()


def test_one_hot_transfer_copies_the_nearest_seen_prototype(rng):
    seen = rng.normal(size=(6, 8))
    rel = rng.uniform(-1, 1, size=(3, 6))
    result = semantic_transfer(seen, rel, k=4, temperature=0.0)
    unit = seen / np.linalg.norm(seen, axis=1, keepdims=True)
    np.testing.assert_allclose(result.prototypes, unit[rel.argmax(1)], atol=1e-6)


def test_alpha_zero_gives_the_text_prototype(rng):
    seen, text = rng.normal(size=(6, 8)), rng.normal(size=(3, 8))
    result = semantic_transfer(seen, rng.uniform(size=(3, 6)), k=2, temperature=0.1, text_prototypes=text, alpha=0.0)
    np.testing.assert_allclose(result.prototypes, text / np.linalg.norm(text, axis=1, keepdims=True), atol=1e-6)


def test_against_a_hand_computation():
    # 3 seen classes with 2-d prototypes; one unseen class related 0.9 / 0.5 / 0.1; k=2, tau=0.2
    seen = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    rel = np.array([[0.9, 0.5, 0.1]])
    text = np.array([[0.0, -1.0]])
    w0 = np.exp(0.9 / 0.2) / (np.exp(0.9 / 0.2) + np.exp(0.5 / 0.2))  # = 1 / (1 + e^-2)
    assert w0 == pytest.approx(1 / (1 + np.exp(-2.0)))
    mixed = np.array([w0, 1 - w0]) / np.hypot(w0, 1 - w0)  # transferred, normalised
    fused = 0.75 * mixed + 0.25 * text[0]
    expected = fused / np.linalg.norm(fused)
    result = semantic_transfer(seen, rel, k=2, temperature=0.2, text_prototypes=text, alpha=0.75)
    np.testing.assert_allclose(result.weights, [[w0, 1 - w0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(result.prototypes[0], expected, atol=1e-6)
    assert result.topk.tolist() == [[0, 1]]


def test_k_larger_than_seen_is_clipped(rng):
    result = semantic_transfer(rng.normal(size=(3, 4)), rng.uniform(size=(2, 3)), k=10, temperature=1.0)
    assert result.topk.shape == (2, 3) and (result.weights > 0).all()


def test_relatedness_is_cosine(rng):
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))
    naive = np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a])
    np.testing.assert_allclose(relatedness_matrix(a, b), naive, atol=1e-12)


def test_bad_arguments_raise(rng):
    seen, rel = rng.normal(size=(3, 4)), rng.uniform(size=(2, 3))
    with pytest.raises(ValueError, match="text_prototypes"):
        semantic_transfer(seen, rel, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        semantic_transfer(seen, rel, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        transfer_weights(rel, 2, -1.0)
    with pytest.raises(ValueError, match="k="):
        transfer_weights(rel, 0, 1.0)
    with pytest.raises(ValueError, match="relatedness"):
        semantic_transfer(seen, rng.uniform(size=(2, 5)))


def test_describe_weights_lists_composing_classes():
    result = semantic_transfer(np.eye(3), np.array([[0.9, 0.5, 0.1]]), k=2, temperature=0.2)
    described = describe_weights(result, ["new"], ["a", "b", "c"])
    assert [name for name, _ in described["new"]] == ["a", "b"]
    assert sum(w for _, w in described["new"]) == pytest.approx(1.0)
