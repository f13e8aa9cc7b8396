"""Linear-probe evaluation (zsar.experiments.linear_probe) against scikit-learn and on separable data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from zsar.experiments.linear_probe import linear_probe, linear_probe_method


def _blobs(n_per_class: int, num_classes: int, dim: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * 3.0
    labels = np.repeat(np.arange(num_classes), n_per_class)
    return centres[labels] + spread * rng.normal(size=(len(labels), dim)), labels


def test_separable_classes_are_probed_perfectly_and_noise_is_at_chance():
    x, y = _blobs(20, 4, 16, 0.3, seed=0)
    xt, yt = _blobs(10, 4, 16, 0.3, seed=0)  # same centres (same seed), fresh noise below
    xt = xt + 0.3 * np.random.default_rng(1).normal(size=xt.shape)
    assert linear_probe(x, y, xt, yt) == {"top1": 1.0, "mean_class_acc": 1.0}
    rng = np.random.default_rng(2)
    noise = linear_probe(rng.normal(size=(400, 8)), rng.integers(0, 4, 400), rng.normal(size=(400, 8)),
                         rng.integers(0, 4, 400), C=0.01)
    assert 0.15 < noise["top1"] < 0.35


def test_matches_a_hand_built_scaler_and_logistic_regression():
    x, y = _blobs(15, 3, 6, 4.0, seed=3)  # overlapping: accuracy strictly between chance and 1
    xt, yt = _blobs(15, 3, 6, 4.0, seed=3)
    xt = xt[::-1] + np.random.default_rng(4).normal(size=xt.shape)
    yt = yt[::-1]
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=0.5, max_iter=1000, random_state=0).fit(scaler.transform(x), y)
    pred = clf.predict(scaler.transform(xt))
    per_class = [np.mean(pred[yt == c] == c) for c in range(3)]
    report = linear_probe(x, y, xt, yt, C=0.5, seed=0)
    assert report["top1"] == pytest.approx(np.mean(pred == yt))
    assert report["mean_class_acc"] == pytest.approx(np.mean(per_class))
    assert 0.34 < report["top1"] < 1.0


def test_standardisation_makes_the_probe_blind_to_feature_scale():
    x, y = _blobs(12, 3, 5, 2.0, seed=5)
    xt, yt = _blobs(6, 3, 5, 2.0, seed=6)
    scale = np.array([1e-3, 1.0, 1e3, 10.0, 0.1])
    assert linear_probe(x * scale, y, xt * scale, yt) == pytest.approx(linear_probe(x, y, xt, yt))


def test_mean_class_accuracy_weights_classes_equally():
    # class 0 has 9 test samples (all far on its side), class 1 one sample placed in class 0's region
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    y = np.array([0, 0, 1, 1])
    xt, yt = np.array([[-1.5]] * 9 + [[-1.5]]), np.array([0] * 9 + [1])
    report = linear_probe(x, y, xt, yt)
    assert report["top1"] == pytest.approx(0.9) and report["mean_class_acc"] == pytest.approx(0.5)


def test_bad_inputs_fail_naming_the_problem():
    x, y = _blobs(5, 2, 3, 1.0, seed=0)
    with pytest.raises(ValueError, match="test classes \\[7\\]"):
        linear_probe(x, y, x[:2], np.array([0, 7]))
    with pytest.raises(ValueError, match="at least two training classes"):
        linear_probe(x, np.zeros(len(x), dtype=int), x, np.zeros(len(x), dtype=int))
    with pytest.raises(ValueError, match="test features D=2"):
        linear_probe(x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="train_labels must have shape"):
        linear_probe(x, y[:-1], x, y)
    with pytest.raises(TypeError, match="integers"):
        linear_probe(x, y.astype(float), x, y)
    with pytest.raises(ValueError, match="non-finite"):
        linear_probe(np.where(x > 0, np.nan, x), y, x, y)
    with pytest.raises(ValueError, match="C must be > 0"):
        linear_probe(x, y, x, y, C=0)


class _FixedEmbeddings:
    """A stand-in 'method': the embedding of sample i is row i of a table."""

    def __init__(self, table: np.ndarray):
        self.table = table

    def video_embeddings(self, dataset) -> np.ndarray:
        return self.table[[s["index"] for s in dataset]]


def test_linear_probe_method_reads_embeddings_and_dataset_labels():
    x, y = _blobs(10, 3, 4, 0.2, seed=7)
    dataset = [{"index": i, "label": int(label)} for i, label in enumerate(y)]
    report = linear_probe_method(_FixedEmbeddings(x), dataset[::2], dataset[1::2], C=1.0)
    assert report == {"top1": 1.0, "mean_class_acc": 1.0}
