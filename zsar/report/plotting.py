"""Plotting helpers shared by the notebooks: frame grids, strips, heatmaps, saving figures."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from zsar.io import atomic_path  # noqa: E402

# Okabe–Ito: a colour-blind-safe qualitative palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def set_style() -> None:
    """Readable fonts and the colour-blind-safe palette for every figure."""
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    })


def save_figure(fig, name: str, figures_dir: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``<figures_dir>/<name>.<fmt>`` for each format, atomically.

    Args:
        fig: a matplotlib figure.
        name: deterministic file stem, e.g. ``"01_class_grid"``.
        figures_dir: destination folder (created).
        formats: file formats; PNG for viewing, PDF for papers.
    """
    out = []
    for fmt in formats:
        path = Path(figures_dir) / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            # metadata without dates keeps the files deterministic
            fig.savefig(tmp, format=fmt, bbox_inches="tight",
                        metadata={"Software": None} if fmt == "png" else {"CreationDate": None})
        out.append(path)
    return out


def frame_grid(images: Sequence[np.ndarray], titles: Sequence[str], ncols: int = 8,
               cell: float = 1.5, title_size: int = 7):
    """A grid of ``(H, W, 3)`` uint8 images with a title under each; returns the figure."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell, nrows * (cell + 0.25)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=title_size)
    fig.tight_layout()
    return fig


def frame_strips(clips: Sequence[np.ndarray], labels: Sequence[str], cell: float = 1.2):
    """One row per clip of ``(T, H, W, 3)`` frames, the row labelled on the left; returns the figure."""
    t = max(len(c) for c in clips)
    fig, axes = plt.subplots(len(clips), t, figsize=(t * cell, len(clips) * cell), squeeze=False)
    for row, (clip, label) in enumerate(zip(clips, labels)):
        for col in range(t):
            ax = axes[row, col]
            ax.set_xticks([]); ax.set_yticks([])
            if col < len(clip):
                ax.imshow(clip[col])
            if col == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def similarity_heatmap(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str] | None = None,
                       title: str = "", cmap: str = "viridis", size: float = 10.0, label_size: int = 6,
                       cbar_label: str = "cosine similarity"):
    """A labelled heatmap of an ``(N, M)`` matrix; returns the figure."""
    col_labels = row_labels if col_labels is None else col_labels
    fig, ax = plt.subplots(figsize=(size, size * len(row_labels) / max(len(col_labels), 1) + 0.5))
    im = ax.imshow(matrix, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=label_size)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=label_size)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03, label=cbar_label)
    fig.tight_layout()
    return fig
