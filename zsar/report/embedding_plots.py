"""2-D maps of video embeddings and prototypes (UMAP, t-SNE) and the figures of notebook 05.

* :func:`joint_projection` projects several blocks of vectors (videos, prototypes, ...) into
  one 2-D map with UMAP (umap-learn) or t-SNE (scikit-learn), cosine geometry, seeded;
* :func:`embedding_map` draws a map three ways: seen vs unseen with the unseen classes' text
  and transferred prototypes joined to their video clusters, unseen classes by class, and every
  video by a semantic unit of its class;
* :func:`relatedness_heatmap`, :func:`confusion_heatmap` (temporal pairs marked) and
  :func:`accuracy_vs_hubness` draw the other figures.

Colours come from the Okabe-Ito palette (:data:`zsar.report.plotting.PALETTE`); where there are more
classes than colours, each class gets a distinct (colour, marker) pair.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Mapping, Sequence

import numpy as np
from matplotlib.patches import Rectangle

from zsar.evaluation.scores import l2_normalize
from zsar.report.plotting import PALETTE  # first: it selects a headless backend before pyplot loads
import matplotlib.pyplot as plt  # noqa: E402  isort: skip

PROJECTIONS = ("umap", "tsne")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
SEEN_GREY = "#BBBBBB"
OTHER_UNITS = "other"


def subsample_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """``(M,)`` sorted indices keeping at most ``max_per_class`` items of each label, drawn at random.

    Args:
        labels: ``(N,)`` integer labels.
        max_per_class: cap per label; ``None`` keeps everything.
        seed: seed of the draw.
    """
    labels = np.asarray(labels)
    if max_per_class is None:
        return np.arange(len(labels))
    if max_per_class < 1:
        raise ValueError(f"max_per_class={max_per_class} must be at least 1")
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def project_2d(x: np.ndarray, method: str = "umap", seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
               perplexity: float = 30.0, n_epochs: int | None = None, max_iter: int | None = None,
               n_threads: int | None = None) -> np.ndarray:
    """``(N, 2)`` map of ``(N, D)`` vectors by cosine geometry (rows are L2-normalised first).

    Args:
        x: ``(N, D)`` vectors, ``N >= 4``.
        method: ``"umap"`` or ``"tsne"``.
        seed: random state of the layout (same seed, same map).
        n_neighbors, min_dist, n_epochs: UMAP settings; ``n_neighbors`` is capped at ``N - 1``.
        perplexity, max_iter: t-SNE settings; the perplexity is capped at ``(N - 1) / 3`` so that
            every point has enough neighbours.
        n_threads: cap on the OpenMP/BLAS threads (``None``: the libraries' default). On a CPU
            shared with other jobs, t-SNE's all-core OpenMP gradient can run 20x slower than on one
            thread.

    Raises:
        ValueError: unknown ``method`` or fewer than 4 points.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"projection method={method!r}; choose from {PROJECTIONS}")
    x = l2_normalize(x, np.float64).astype(np.float32)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"need at least 4 vectors of shape (N, D) to project, got {x.shape}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_threads):
        return _project(x, method, seed, n_neighbors, min_dist, perplexity, n_epochs, max_iter)


def _project(x, method, seed, n_neighbors, min_dist, perplexity, n_epochs, max_iter) -> np.ndarray:
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(perplexity=min(perplexity, (len(x) - 1) / 3), metric="cosine", init="pca", random_state=seed,
                    max_iter=max_iter or 1000).fit_transform(x)
    import umap
    from sklearn.neighbors import NearestNeighbors

    k = min(n_neighbors, len(x) - 1)
    # exact kNN from scikit-learn: at this size it is faster than umap's own search, whose numba
    # kernels are compiled on every first call of a process
    dists, idx = NearestNeighbors(n_neighbors=k, metric="cosine").fit(x).kneighbors(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, metric="cosine", random_state=seed, n_jobs=1,
                            n_epochs=n_epochs, precomputed_knn=(idx, dists))
        return reducer.fit_transform(x)


def joint_projection(blocks: Mapping[str, np.ndarray], method: str = "umap", seed: int = 0,
                     **kwargs) -> dict[str, np.ndarray]:
    """Project several ``(N_i, D)`` blocks into one map; returns ``{name: (N_i, 2)}``.

    Videos and prototypes must share a map to be compared, so they are projected together.
    ``kwargs`` go to :func:`project_2d`.
    """
    names = list(blocks)
    sizes = [len(blocks[n]) for n in names]
    points = project_2d(np.vstack([np.asarray(blocks[n]) for n in names]), method, seed, **kwargs)
    return dict(zip(names, np.split(points, np.cumsum(sizes)[:-1])))


def class_styles(n: int) -> list[tuple[str, str]]:
    """``n`` distinct ``(colour, marker)`` pairs: Okabe-Ito colours first, then the next marker."""
    colours = [c for c in PALETTE if c != "#000000"]
    return [(colours[i % len(colours)], MARKERS[(i // len(colours)) % len(MARKERS)]) for i in range(n)]


def cluster_centroids(points: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(C, 2)`` mean position of each label's points; NaN for a label without points."""
    out = np.full((n_classes, points.shape[1]), np.nan)
    for c in np.unique(labels):
        out[c] = points[labels == c].mean(axis=0)
    return out


def primary_units(units: Sequence[Mapping[str, Sequence[str]]], group: str, max_values: int = 7) -> list[str]:
    """Each class's first unit of ``group`` (``"none"`` without one), the rarest lumped as ``"other"``.

    Args:
        units: per class ``{group: (unit, ...)}``.
        group: e.g. ``"scenes"``.
        max_values: most frequent units kept (ties: the unit met first in class order); the rest
            become ``"other"`` so that a legend stays readable.
    """
    first = [(u.get(group) or ("none",))[0] for u in units]
    kept = {u for u, _ in Counter(first).most_common(max_values)}
    return [u if u in kept else OTHER_UNITS for u in first]


def _join(ax, starts: np.ndarray, ends: np.ndarray, **style) -> int:
    """Draw a segment from each start to each end (rows with NaN skipped); return how many."""
    drawn = 0
    for a, b in zip(starts, ends):
        if np.isfinite(a).all() and np.isfinite(b).all():
            ax.plot([a[0], b[0]], [a[1], b[1]], **style)
            drawn += 1
    return drawn


def _seen_vs_unseen(ax, videos, labels, n_seen, protos: Mapping[str, np.ndarray], centroids) -> None:
    unseen = labels >= n_seen
    ax.scatter(*videos[~unseen].T, s=16, c=PALETTE[0], alpha=0.6, lw=0, label="seen-class videos")
    ax.scatter(*videos[unseen].T, s=16, c=PALETTE[1], alpha=0.7, lw=0, label="unseen-class videos")
    looks = {"text prototype": ("X", PALETTE[3], "--"), "transferred prototype": ("*", PALETTE[2], "-")}
    for name, points in protos.items():
        marker, colour, line = looks.get(name, ("P", PALETTE[4], ":"))
        _join(ax, points, centroids[n_seen:], color=colour, lw=0.6, ls=line, alpha=0.7)
        ax.scatter(*points.T, s=60, marker=marker, c=colour, edgecolors="k", linewidths=0.4,
                   label=f"unseen {name}, joined to its videos")
    ax.set_title("seen vs unseen")
    ax.legend(fontsize=7, loc="best", framealpha=0.8)


def _by_class(ax, videos, labels, n_seen, class_names, protos: Mapping[str, np.ndarray], centroids) -> None:
    unseen = labels >= n_seen
    ax.scatter(*videos[~unseen].T, s=6, c=SEEN_GREY, alpha=0.4, lw=0)
    styles = class_styles(len(class_names) - n_seen)
    anchor = protos.get("transferred prototype", next(iter(protos.values()), None))
    for u, (colour, marker) in enumerate(styles):
        mine = labels == n_seen + u
        ax.scatter(*videos[mine].T, s=16, c=colour, marker=marker, alpha=0.8, lw=0)
        if anchor is not None:
            _join(ax, anchor[u:u + 1], centroids[n_seen + u:n_seen + u + 1], color=colour, lw=0.8)
            ax.scatter(*anchor[u], s=90, marker="*", c=colour, edgecolors="k", linewidths=0.5)
        if np.isfinite(centroids[n_seen + u]).all():
            ax.annotate(class_names[n_seen + u], centroids[n_seen + u], fontsize=5.5, alpha=0.9,
                        xytext=(2, 2), textcoords="offset points")
    ax.set_title("unseen classes, one style each (stars: prototypes; grey: seen)")


def _by_unit(ax, videos, labels, unit_of_class: Sequence[str], group: str) -> None:
    units = np.array([unit_of_class[c] for c in labels])
    order = [u for u, _ in Counter(unit_of_class).most_common() if u != OTHER_UNITS]
    order += [OTHER_UNITS] if OTHER_UNITS in unit_of_class else []
    for i, unit in enumerate(order):
        colour = SEEN_GREY if unit == OTHER_UNITS else PALETTE[i % len(PALETTE)]
        ax.scatter(*videos[units == unit].T, s=16, c=colour, alpha=0.75, lw=0, label=unit)
    ax.set_title(f"every video by its class's {group.replace('_', ' ')} unit")
    ax.legend(fontsize=7, markerscale=1.5, loc="best", framealpha=0.8)


def embedding_map(videos: np.ndarray, labels: np.ndarray, n_seen: int, class_names: Sequence[str],
                  unit_of_class: Sequence[str], unit_group: str, prototypes: Mapping[str, np.ndarray],
                  title: str = ""):
    """Three panels of one 2-D map: seen vs unseen, unseen classes, semantic units.

    Args:
        videos: ``(N, 2)`` mapped videos.
        labels: ``(N,)`` labels in ``0..S+U-1`` (``>= n_seen``: unseen class).
        n_seen: ``S``.
        class_names: ``S+U`` names, seen first.
        unit_of_class: ``S+U`` unit labels (see :func:`primary_units`).
        unit_group: the unit group's name, for the title.
        prototypes: ``{"text prototype" | "transferred prototype" | other: (U, 2)}`` mapped
            prototypes of the unseen classes; each is joined to its class's video centroid.
        title: figure title.

    Returns:
        The figure.
    """
    labels = np.asarray(labels)
    centroids = cluster_centroids(videos, labels, len(class_names))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6))
    _seen_vs_unseen(axes[0], videos, labels, n_seen, prototypes, centroids)
    _by_class(axes[1], videos, labels, n_seen, class_names, prototypes, centroids)
    _by_unit(axes[2], videos, labels, unit_of_class, unit_group)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def relatedness_heatmap(relatedness: np.ndarray, weights: np.ndarray, unseen_names: Sequence[str],
                        seen_names: Sequence[str], title: str = ""):
    """``(U, S)`` relatedness as colour, the transfer weights as dots (area grows with weight).

    Returns:
        The figure.
    """
    u, s = relatedness.shape
    fig, ax = plt.subplots(figsize=(max(8.0, 0.26 * s + 3), max(6.0, 0.24 * u + 2)))
    im = ax.imshow(relatedness, cmap="Blues", aspect="auto")
    rows, cols = np.nonzero(weights > 0)
    ax.scatter(cols, rows, s=8 + 120 * weights[rows, cols], c=PALETTE[3], edgecolors="k", linewidths=0.3)
    ax.set_xticks(range(s), seen_names, rotation=90, fontsize=6)
    ax.set_yticks(range(u), unseen_names, fontsize=6)
    ax.set_xlabel("seen class")
    ax.set_ylabel("unseen class")
    ax.set_title(f"{title}\ncolour: label relatedness; dots: transfer weights, area growing with the weight"
                 if title else "colour: label relatedness; dots: transfer weights, area growing with the weight")
    fig.colorbar(im, ax=ax, fraction=0.03, label="label relatedness (cosine)")
    fig.tight_layout()
    return fig


def confusion_heatmap(confusion: np.ndarray, class_names: Sequence[str], pairs: Sequence[tuple[int, int]] = (),
                      title: str = ""):
    """Row-normalised ``(C, C)`` confusion (rows: true class) with temporal pairs outlined.

    The two off-diagonal cells of each pair (``a`` taken for ``b`` and back) get a box and the
    pair's class names a colour, so a model that cannot tell time reversals apart shows up.

    Returns:
        The figure.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    rates = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.26 * n + 3), max(6.0, 0.26 * n + 2)))
    im = ax.imshow(rates, cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=6)
    ax.set_yticks(range(n), class_names, fontsize=6)
    paired = {c for p in pairs for c in p}
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for i, label in enumerate(labels):
            if i in paired:
                label.set_color(PALETTE[3])
                label.set_fontweight("bold")
    for a, b in pairs:
        for r, c in ((a, b), (b, a)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec=PALETTE[3], lw=1.4))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03, label="share of the class's videos")
    fig.tight_layout()
    return fig


def accuracy_vs_hubness(series: Mapping[str, tuple[np.ndarray, np.ndarray]], paired: Sequence[bool],
                        hub_size: float = 2.0, title: str = ""):
    """Per-class accuracy against hub occurrence ``N_k / mean N_k``, one colour per prototype kind.

    Args:
        series: ``{name: (ratio (U,), accuracy (U,))}``; the legend shows each Spearman rho.
        paired: ``(U,)`` the class is one of an unseen temporal pair (ringed marker).
        hub_size: a hub has ``N_k`` at least ``hub_size`` times the mean (dashed line).
        title: figure title.

    Returns:
        The figure.
    """
    from scipy.stats import spearmanr

    paired = np.asarray(paired, dtype=bool)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (name, (ratio, acc)) in enumerate(series.items()):
        rho = spearmanr(ratio, acc).statistic if np.ptp(ratio) > 0 and np.ptp(acc) > 0 else float("nan")
        colour = PALETTE[i % len(PALETTE)]
        ax.scatter(ratio, 100 * np.asarray(acc), s=22, c=colour, alpha=0.75, lw=0,
                   label=f"{name} (Spearman {rho:.2f})")
        ax.scatter(ratio[paired], 100 * np.asarray(acc)[paired], s=70, facecolors="none", edgecolors=colour, lw=1)
    if paired.any():
        ax.scatter([], [], s=70, facecolors="none", edgecolors="k", lw=1, label="class of a temporal pair")
    ax.axvline(hub_size, ls="--", c="k", lw=1, label=f"hub threshold, {hub_size:g} x mean")
    ax.axvline(1.0, ls=":", c="grey", lw=1, label="mean N_k")
    ax.set_xlabel("hub occurrence N_k / mean N_k")
    ax.set_ylabel("per-class top-1, %")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def unit_attention_figure(clips: Sequence[np.ndarray], row_names: Sequence[str], weights: Mapping[str, np.ndarray],
                          units: Mapping[str, Sequence[str]], declared: Sequence[Mapping[str, Sequence[str]]],
                          title: str = ""):
    """A few clips' frames beside their attention over each group's semantic units.

    Args:
        clips: per clip ``(F, H, W, 3)`` uint8 frames shown in a row.
        row_names: one label per clip (e.g. true class and prediction).
        weights: ``{group: (R, U_g)}`` attention of the clips over the group's units.
        units: ``{group: unit names}`` (columns of ``weights``); empty groups are left out.
        declared: per clip ``{group: units of its class}``, marked with a dot.

    Returns:
        The figure; colours are ``log2(weight x U_g)``, so 0 is uniform attention in every group.
    """
    shown = min(len(c) for c in clips)
    groups = [g for g in units if len(units[g])]
    ratios = [1.0] * shown + [max(1.2, 0.28 * len(units[g])) for g in groups]
    fig = plt.figure(figsize=(min(24, 2 + sum(ratios) * 0.9), 1.3 * len(clips) + 2.4))
    grid = fig.add_gridspec(len(clips), len(ratios), width_ratios=ratios, wspace=0.15, hspace=0.08)
    for r, clip in enumerate(clips):
        for c in range(shown):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(clip[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_names[r], rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                ax.set_title(f"frame {c + 1}", fontsize=8)
    ratio = {g: np.log2(np.maximum(weights[g] * len(units[g]), 1e-4)) for g in groups}
    limit = max(0.05, max(float(np.abs(v).max()) for v in ratio.values()))
    image = None
    for j, g in enumerate(groups):
        ax = fig.add_subplot(grid[:, shown + j])
        image = ax.imshow(ratio[g], aspect="auto", cmap="PuOr_r", vmin=-limit, vmax=limit)
        for r in range(len(clips)):
            for u, unit in enumerate(units[g]):
                if unit in declared[r].get(g, ()):
                    ax.plot(u, r, "o", ms=4, mfc="white", mec="black", mew=0.6)
        ax.set_xticks(range(len(units[g])), units[g], rotation=90, fontsize=7)
        ax.set_yticks([])
        ax.set_title(g.replace("_", " "), fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, fraction=0.015, pad=0.01, label="log2(attention ÷ uniform)")
    fig.suptitle(title, y=1.0)
    return fig
