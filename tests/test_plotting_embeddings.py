"""Projections (UMAP, t-SNE) and the figures of notebook 05, on small seeded data."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from scipy.stats import spearmanr

from zsar.report.plotting import PALETTE
from zsar.report.embedding_plots import (OTHER_UNITS, accuracy_vs_hubness, class_styles, cluster_centroids,
                                      confusion_heatmap, embedding_map, joint_projection, primary_units,
                                      project_2d, relatedness_heatmap, subsample_per_class)


def blobs(n_per: int = 20, n_classes: int = 3, dim: int = 16, seed: int = 0):
    """Tight clusters around orthogonal directions: ``(n_classes * n_per, dim)`` and labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_classes] * 5
    x = np.concatenate([c + rng.normal(scale=0.3, size=(n_per, dim)) for c in centres])
    return x, np.repeat(np.arange(n_classes), n_per)


def knn_purity(points: np.ndarray, labels: np.ndarray, k: int = 3) -> float:
    """Share of each point's k nearest 2-D neighbours (itself excluded) that share its label."""
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def test_subsample_per_class_caps_each_label_at_random():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 7)
    keep = subsample_per_class(labels, 3, seed=0)
    assert np.all(np.diff(keep) > 0)
    assert np.bincount(labels[keep]).tolist() == [3, 2, 3]
    assert np.array_equal(keep, subsample_per_class(labels, 3, seed=0))
    assert not np.array_equal(keep, subsample_per_class(labels, 3, seed=1))
    assert np.array_equal(subsample_per_class(labels, None, seed=0), np.arange(len(labels)))
    with pytest.raises(ValueError, match="max_per_class=0"):
        subsample_per_class(labels, 0, seed=0)


def test_tsne_keeps_clusters_apart_is_seeded_and_caps_perplexity():
    x, y = blobs()
    a = project_2d(x, "tsne", seed=0, perplexity=30.0, max_iter=250, n_threads=1)  # 60 points: capped at 19.7
    assert a.shape == (60, 2) and np.isfinite(a).all()
    assert knn_purity(a, y) >= 0.95
    np.testing.assert_array_equal(a, project_2d(x, "tsne", seed=0, perplexity=30.0, max_iter=250, n_threads=1))


def test_umap_keeps_clusters_apart_and_is_seeded():
    x, y = blobs()
    a = project_2d(x, "umap", seed=0, n_neighbors=5, n_epochs=100, n_threads=1)
    assert a.shape == (60, 2) and np.isfinite(a).all()
    assert knn_purity(a, y) >= 0.95
    np.testing.assert_array_equal(a, project_2d(x, "umap", seed=0, n_neighbors=5, n_epochs=100, n_threads=1))


def test_project_rejects_unknown_methods_and_too_few_points():
    with pytest.raises(ValueError, match="pca"):
        project_2d(np.ones((10, 3)), "pca")
    with pytest.raises(ValueError, match="at least 4"):
        project_2d(np.ones((3, 3)), "tsne")


def test_joint_projection_puts_prototypes_with_their_videos():
    x, y = blobs()
    means = np.stack([x[y == c].mean(0) for c in range(3)])
    maps = joint_projection({"videos": x, "prototypes": means}, "tsne", seed=0, perplexity=10.0, max_iter=500,
                            n_threads=1)
    assert maps["videos"].shape == (60, 2) and maps["prototypes"].shape == (3, 2)
    centroids = cluster_centroids(maps["videos"], y, 3)
    nearest = np.linalg.norm(maps["prototypes"][:, None] - centroids[None], axis=-1).argmin(1)
    assert nearest.tolist() == [0, 1, 2]


def test_cluster_centroids_match_a_loop_and_leave_empty_classes_nan():
    rng = np.random.default_rng(0)
    points, labels = rng.normal(size=(9, 2)), np.array([0, 0, 2, 2, 2, 0, 3, 3, 0])
    got = cluster_centroids(points, labels, 5)
    for c in (0, 2, 3):
        np.testing.assert_allclose(got[c], points[labels == c].mean(0))
    assert np.isnan(got[1]).all() and np.isnan(got[4]).all()


def test_class_styles_are_distinct_and_start_with_the_palette():
    styles = class_styles(30)
    assert len(set(styles)) == 30
    assert [c for c, _ in styles[:7]] == [c for c in PALETTE if c != "#000000"]
    assert {m for _, m in styles[:7]} == {"o"} and styles[7][1] == "s"


def test_primary_units_take_the_first_unit_and_lump_rare_ones():
    units = [{"scenes": ("gym", "street")}, {"scenes": ("gym",)}, {"scenes": ("beach",)}, {"objects": ("ball",)},
             {"scenes": ("snow",)}, {"scenes": ("gym",)}]
    assert primary_units(units, "scenes") == ["gym", "gym", "beach", "none", "snow", "gym"]
    # the two most frequent stay (ties: the one met first), the rest become "other"
    assert primary_units(units, "scenes", max_values=2) == ["gym", "gym", "beach", OTHER_UNITS, OTHER_UNITS, "gym"]


def test_embedding_map_joins_each_unseen_prototype_to_its_videos():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4])  # 2 seen classes; unseen class 4 has 1 video
    videos = rng.normal(size=(len(labels), 2))
    protos = {"text prototype": rng.normal(size=(3, 2)), "transferred prototype": rng.normal(size=(3, 2))}
    names = ["s0", "s1", "u0", "u1", "u2"]
    fig = embedding_map(videos, labels, 2, names, ["gym", "gym", "snow", "beach", "gym"], "scenes", protos, "t")
    axes = fig.axes
    assert len(axes) == 3
    assert len(axes[0].lines) == 2 * 3  # text and transferred prototype of each unseen class
    assert len(axes[1].lines) == 3 and sorted(t.get_text() for t in axes[1].texts) == ["u0", "u1", "u2"]
    assert [t.get_text() for t in axes[2].get_legend().get_texts()] == ["gym", "snow", "beach"]


def test_relatedness_heatmap_draws_one_dot_per_nonzero_weight():
    rng = np.random.default_rng(0)
    rel = rng.uniform(size=(4, 6))
    weights = np.zeros_like(rel)
    weights[np.arange(4), rng.integers(0, 6, 4)] = 1.0
    fig = relatedness_heatmap(rel, weights, list("abcd"), list("ABCDEF"), title="t")
    dots = fig.axes[0].collections[0].get_offsets()
    assert len(dots) == 4
    assert sorted(map(tuple, np.asarray(dots, dtype=int))) == sorted(zip(*np.nonzero(weights.T)))


def test_confusion_heatmap_outlines_both_cells_of_each_pair_and_colours_their_names():
    conf = np.diag([3, 2, 4, 1]) + np.eye(4, k=1, dtype=int)
    fig = confusion_heatmap(conf, ["a", "b", "c", "d"], pairs=[(0, 1)], title="t")
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert sorted(p.get_xy() for p in boxes) == [(-0.5, 0.5), (0.5, -0.5)]
    coloured = [t.get_text() for t in ax.get_yticklabels() if t.get_color() == PALETTE[3]]
    assert coloured == ["a", "b"]
    image = ax.images[0].get_array()
    np.testing.assert_allclose(image.sum(1), 1.0)  # rows normalised


def test_accuracy_vs_hubness_reports_spearman_per_series():
    rng = np.random.default_rng(0)
    ratio, acc = rng.uniform(0, 3, 12), rng.uniform(0, 1, 12)
    fig = accuracy_vs_hubness({"transferred prototype": (ratio, acc)}, paired=np.arange(12) < 2, hub_size=2.0)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"transferred prototype (Spearman {spearmanr(ratio, acc).statistic:.2f})" in texts
    assert "class of a temporal pair" in texts
