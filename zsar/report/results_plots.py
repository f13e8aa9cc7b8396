"""Result figures of the training and transfer notebooks: curves and bars with spread over splits.

Every helper takes long-format data (one row per split and setting, as the notebooks collect
it), aggregates it with :func:`mean_std_by` — mean and sample standard deviation (``ddof=1``)
over the rows of each group, the same statistic as the result tables — and returns a figure
(or draws on a given axis). Nothing here reads or writes files; save with
:func:`zsar.report.plotting.save_figure`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from zsar.report.plotting import PALETTE  # noqa: E402


def mean_std_by(frame: pd.DataFrame, by: str | Sequence[str], value: str) -> pd.DataFrame:
    """Mean, sample std (``ddof=1``; NaN for a single row) and count of ``value`` per group.

    Rows whose ``value`` is NaN are left out. Groups keep their first-seen order.

    Returns:
        DataFrame with the ``by`` columns and ``mean``, ``std``, ``n``.
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in keys + [value] if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the frame; it has {list(frame.columns)}")
    valid = frame.dropna(subset=[value])
    grouped = valid.groupby(keys, sort=False)[value]
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.size()})
    return out.reset_index()


def errorbar_lines(ax, frame: pd.DataFrame, x: str, y: str, hue: str | None = None,
                   labels: Mapping[str, str] | None = None, linestyle: str = "-", marker: str = "o",
                   colors: Mapping[str, str] | None = None, capsize: float = 3.0) -> dict[str, pd.DataFrame]:
    """Draw ``y`` against ``x`` (mean ± std over the other rows) on ``ax``, one line per ``hue``.

    Args:
        frame: long format: columns ``x``, ``y`` and ``hue`` (e.g. one row per split and ``x``).
        labels: legend label per ``hue`` value (default: the value).
        colors: colour per ``hue`` value (default: the palette in order).

    Returns:
        ``{hue value: the aggregated frame (x, mean, std, n)}``, in drawing order.
    """
    groups = [(None, frame)] if hue is None else list(frame.groupby(hue, sort=False))
    drawn = {}
    for i, (name, part) in enumerate(groups):
        stats = mean_std_by(part, x, y).sort_values(x)
        color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        label = (labels or {}).get(name, None if name is None else str(name))
        yerr = stats["std"].fillna(0.0).to_numpy()
        ax.errorbar(stats[x].to_numpy(), stats["mean"].to_numpy(), yerr=yerr, label=label, color=color,
                    linestyle=linestyle, marker=marker, markersize=4, capsize=capsize, lw=1.5)
        drawn[name] = stats
    return drawn


def training_curves(history: pd.DataFrame, panels: Sequence[tuple[str, str]], hue: str = "method",
                    x: str = "epoch", ncols: int | None = None):
    """One panel per metric of a per-epoch history, mean ± std over splits per ``hue``.

    Args:
        history: rows of ``history.csv`` of many runs, with columns ``x``, ``hue`` and the metrics.
        panels: ``(column, title)`` per panel; a column absent from the frame gives an empty panel
            saying so.

    Returns:
        The figure.
    """
    ncols = ncols or len(panels)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (column, title) in zip(axes.ravel(), panels):
        ax.set_title(title)
        ax.set_xlabel(x)
        if column not in history.columns or history[column].isna().all():
            ax.text(0.5, 0.5, f"no '{column}' recorded", ha="center", va="center", transform=ax.transAxes)
            continue
        errorbar_lines(ax, history, x, column, hue)
        epochs = sorted(history.loc[history[column].notna(), x].unique())
        ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: int(np.ceil(len(epochs) / 12))])
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def grouped_bars(summary: pd.DataFrame, metrics: Sequence[str], labels: Mapping[str, str] | None = None,
                 ylabel: str = "", title: str = "", scale: float = 100.0,
                 reference: Mapping[str, float] | None = None, figsize: tuple[float, float] | None = None):
    """Bars of ``<metric>_mean`` with ``<metric>_std`` error bars: metric groups, one bar per row.

    Args:
        summary: indexed by the bar name (e.g. method), columns ``<metric>_mean``/``<metric>_std``
            as :func:`zsar.evaluation.tables.summarize` returns.
        metrics: metric groups along the x axis.
        labels: x tick label per metric.
        scale: multiply values (``100``: fractions shown in percent).
        reference: ``{metric: value}`` drawn as a dashed line over that group (e.g. chance).

    Returns:
        The figure.
    """
    names = list(summary.index)
    width = 0.8 / max(len(names), 1)
    size = figsize or (min(16.0, max(6.0, 1.1 * len(metrics) + 0.18 * len(names) * len(metrics))), 3.8)
    fig, ax = plt.subplots(figsize=size)
    centers = np.arange(len(metrics))
    for i, name in enumerate(names):
        means = np.array([summary.at[name, f"{m}_mean"] for m in metrics], dtype=float) * scale
        stds = np.array([summary.at[name, f"{m}_std"] for m in metrics], dtype=float) * scale
        x = centers - 0.4 + width * (i + 0.5)
        ax.bar(x, np.nan_to_num(means), width, label=str(name), color=PALETTE[i % len(PALETTE)])
        spread = np.isfinite(stds) & (stds > 1e-9) & np.isfinite(means)  # no caps for one run or no spread
        ax.errorbar(x[spread], means[spread], yerr=stds[spread], fmt="none", ecolor="k", capsize=2, lw=1)
    for j, m in enumerate(metrics):
        if reference and m in reference:
            ax.hlines(reference[m] * scale, j - 0.45, j + 0.45, colors="grey", linestyles="--", lw=1)
    ax.set_xticks(centers, [(labels or {}).get(m, m) for m in metrics])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncols=min(3, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


def signed_bars(values: pd.Series, title: str = "", xlabel: str = "", scale: float = 100.0,
                errors: pd.Series | None = None, max_rows: int = 40):
    """Horizontal bars of ``values`` (index = labels), sorted, positive and negative coloured apart.

    At most ``max_rows`` bars: the largest and smallest half each when there are more.

    Returns:
        The figure.
    """
    values = values.dropna().sort_values()
    total = len(values)
    if total > max_rows:
        values = pd.concat([values.iloc[: max_rows // 2], values.iloc[-(max_rows - max_rows // 2):]])
        title = f"{title}\n{max_rows} of {total} shown: the smallest and the largest"
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.22 * max(len(values), 1)))
    colors = [PALETTE[2] if v > 0 else PALETTE[3] if v < 0 else "grey" for v in values]
    widths = values.to_numpy(dtype=float) * scale
    rows = np.arange(len(values))
    ax.barh(rows, widths, color=colors)
    if errors is not None:
        err = errors.reindex(values.index).to_numpy(dtype=float) * scale
        spread = np.isfinite(err) & (err > 1e-9)
        ax.errorbar(widths[spread], rows[spread], xerr=err[spread], fmt="none", ecolor="k", capsize=2, lw=0.8)
    ax.set_yticks(rows, [str(i) for i in values.index], fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def methods_bar_figure(summary: pd.DataFrame, metrics: Mapping[str, str], zero_shot: Mapping[str, bool],
                       chance: float | None = None, title: str = "", hubness: str = "s_n10"):
    """Accuracies of every method as grouped bars (left) and their hubness (right), mean ± std over splits.

    Args:
        summary: :func:`~zsar.evaluation.tables.summarize` frame (index: method names; ``<m>_mean``
            / ``<m>_std`` columns, accuracies as fractions).
        metrics: ``{metric: axis label}`` of the accuracy bars, in order.
        zero_shot: ``{method name: zero-shot?}``; the others (the ceiling) are grey and hatched.
        chance: chance top-1 drawn as a dashed line over the first metric, or ``None``.
        hubness: the column of the right panel (``S_N10``).

    Returns:
        The figure.
    """
    names = list(summary.index)
    short = {n: n.split(" (")[0] + (" †" if n.endswith("†") and "(" in n else "") for n in names}
    style = {n: ({"color": PALETTE[i % len(PALETTE)]} if zero_shot[n] else {"color": "#bbbbbb", "hatch": "//"})
             for i, n in enumerate(names)}
    fig, (ax, ax_h) = plt.subplots(1, 2, figsize=(min(16, 5 + 1.1 * len(names)), 4.4),
                                   gridspec_kw={"width_ratios": [3, 1.3]})
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        x = np.arange(len(metrics)) - 0.4 + width * (i + 0.5)
        means = np.array([summary.at[name, f"{m}_mean"] for m in metrics]) * 100
        stds = np.array([summary.at[name, f"{m}_std"] for m in metrics]) * 100
        ax.bar(x, np.nan_to_num(means), width, label=short[name], **style[name])
        _error_bars(ax, x, means, stds)
        ax_h.bar(i, summary.at[name, f"{hubness}_mean"], **style[name])
        _error_bars(ax_h, np.array([i]), np.array([summary.at[name, f"{hubness}_mean"]]),
                    np.array([summary.at[name, f"{hubness}_std"]]))
    if chance is not None:
        ax.hlines(100 * chance, -0.45, 0.45, colors="grey", linestyles="--", lw=1)
    ax.set_xticks(range(len(metrics)), list(metrics.values()))
    ax.set_ylabel("accuracy, %")
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=min(5, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax_h.axhline(0, color="k", lw=0.8)
    ax_h.set_xticks(range(len(names)), [short[n] for n in names], rotation=60, ha="right", fontsize=8)
    ax_h.set_ylabel("S_N10 (skewness of N_10)")
    ax_h.set_title("hubness, lower = fewer hubs")
    fig.tight_layout()
    return fig


def _error_bars(ax, x: np.ndarray, means: np.ndarray, stds: np.ndarray) -> None:
    """Black error bars where there is a spread (no caps on a single run or a constant value)."""
    spread = np.isfinite(stds) & (stds > 1e-9) & np.isfinite(means)
    ax.errorbar(x[spread], means[spread], yerr=stds[spread], fmt="none", ecolor="k", capsize=2, lw=0.8)
