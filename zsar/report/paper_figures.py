"""Paper-style summary figures drawn from the workbook's recorded results (used by notebook 07).

Drawn under :func:`paper_style` (paper fonts, the colour-blind-safe palette, TrueType fonts in
PDFs).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterable, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from zsar.report.plotting import PALETTE  # noqa: E402

ACCURACY_COLUMNS = {"top1": "top-1 %", "top5": "top-5 %", "mean_class_acc": "mean class acc %",
                    "gzsl_seen": "GZSL S %", "gzsl_unseen": "GZSL U %", "gzsl_harmonic": "GZSL H %",
                    "pair_acc": "temporal pair acc %"}
PAPER_RC = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
            "ytick.labelsize": 8, "legend.fontsize": 8, "figure.dpi": 110, "savefig.dpi": 200,
            "pdf.fonttype": 42, "ps.fonttype": 42, "axes.spines.top": False, "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE)}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Paper fonts, the colour-blind-safe palette and TrueType fonts in PDFs, inside the block."""
    with plt.rc_context(PAPER_RC):
        yield


def ordered_keys(keys: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``keys`` with those in ``preferred`` first, in that order (recorded JSON has sorted keys)."""
    keys = list(keys)
    return [p for p in preferred if p in keys] + [k for k in keys if k not in preferred]


def results_bars(summary: pd.DataFrame, chance: float | None = None,
                 metrics: Sequence[str] = ("top1", "mean_class_acc", "gzsl_harmonic", "fewshot", "pair_acc"),
                 title: str = ""):
    """Grouped bars, mean ± std over splits, of :func:`results_summary` rows; dashed lines: chance.

    Past the palette's 8 colours, bars repeat a colour with a hatch so every method stays distinct.
    """
    from zsar.report.results_plots import grouped_bars

    metrics = [m for m in metrics if f"{m}_mean" in summary and summary[f"{m}_mean"].notna().any()]
    names = {**ACCURACY_COLUMNS, "fewshot": "few-shot top-1 %", "mean_class_acc": "mean class %"}
    labels = {m: names.get(m, m).removesuffix(" %").removesuffix(" acc") for m in metrics}
    reference = {m: chance for m in ("top1", "mean_class_acc") if chance and m in metrics}
    if "pair_acc" in metrics:
        reference["pair_acc"] = 0.5
    width = max(5.0, len(metrics) * (0.6 + 0.16 * len(summary)) + 1.0)
    with paper_style():
        fig = grouped_bars(summary, metrics, labels=labels, ylabel="accuracy on unseen classes (%)", title=title,
                           reference=reference, figsize=(width, 3.2))
        ax = fig.axes[0]
        for i, bars in enumerate(c for c in ax.containers if isinstance(c, BarContainer)):
            for bar in bars:
                bar.set_hatch("///" if i >= len(PALETTE) else None)
        ax.legend(ncols=min(3, len(summary)), loc="upper center", bbox_to_anchor=(0.5, -0.12))
        fig.tight_layout()
    return fig


def transfer_sweep_figure(transfer_metrics: Mapping[str, Any]):
    """03's unseen top-1 against k, tau and alpha (mean ± std over splits) with the validation choice."""
    m = transfer_metrics
    sweeps, chosen, pure = m["sweeps"], m["chosen"], m["transfer_only"]
    marks = {"k": pure["k"], "tau": pure["tau"], "alpha": chosen["alpha"]}
    xlabels = {"k": "k, seen classes per unseen prototype", "tau": "τ, softmax temperature",
               "alpha": "α, weight of the transferred prototype"}
    params = [p for p in ("k", "tau", "alpha") if p in sweeps]
    with paper_style():
        fig, axes = plt.subplots(1, len(params), figsize=(2.4 * len(params), 2.5), sharey=True, squeeze=False)
        for ax, param in zip(axes[0], params):
            values = sorted(sweeps[param], key=float)
            mean = np.array([sweeps[param][v]["mean"] for v in values], dtype=float) * 100
            std = np.nan_to_num(np.array([sweeps[param][v].get("std", math.nan) for v in values], dtype=float)) * 100
            x = np.arange(len(values))
            ax.errorbar(x, mean, yerr=std, color=PALETTE[0], marker="o", markersize=3, capsize=2, lw=1.2)
            chosen_at = [i for i, v in enumerate(values) if math.isclose(float(v), float(marks[param]))]
            for i in chosen_at:
                ax.axvline(i, color=PALETTE[1], ls=":", lw=1.2, label="chosen on seen classes")
            if m.get("chance_top1"):
                ax.axhline(100 * m["chance_top1"], color="grey", ls="--", lw=0.8, label="chance")
            ax.set_xticks(x, values)
            ax.set_xlabel(xlabels[param])
        axes[0, 0].set_ylabel("unseen top-1 (%)")
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncols=2)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def _paired_barh(ax, before: Sequence[float], after: Sequence[float]) -> None:
    y = np.arange(len(before))
    ax.barh(y - 0.2, before, 0.4, label="raw cosine", color=PALETTE[0])
    ax.barh(y + 0.2, after, 0.4, label="best inductive reducer", color=PALETTE[1])
    ax.axvline(0, color="k", lw=0.6)


def hubness_figure(hubness_metrics: Mapping[str, Any]):
    """04's skewness and top-1 per method, raw and after the best inductive reducer; ResT text vs transfer."""
    m = hubness_metrics
    per = [m["per_method"][key] for key in ordered_keys(m["per_method"], m.get("methods", ()))]
    t, k = m.get("transfer_vs_text"), m.get("k", "k")
    sn = rf"$S_{{N_{{{k}}}}}$"
    with paper_style():
        fig, axes = plt.subplots(1, 3 if t else 2, figsize=(9.5 if t else 7.0, 1.2 + 0.32 * len(per)), squeeze=False,
                                 gridspec_kw={"width_ratios": [1, 1, 0.7] if t else [1, 1]})
        a, b = axes[0, 0], axes[0, 1]
        _paired_barh(a, [p["sn_before"] for p in per], [p["best_reducer_sn"] for p in per])
        _paired_barh(b, [100 * p["top1_before"] for p in per], [100 * p["best_reducer_top1"] for p in per])
        a.set_yticks(np.arange(len(per)), [p["display_name"] for p in per])
        b.set_yticks(np.arange(len(per)), [""] * len(per))
        for ax in (a, b):
            ax.invert_yaxis()
        a.set_xlabel(f"hubness: skewness {sn} of the k-occurrence")
        b.set_xlabel("unseen top-1 (%)")
        a.set_title("(a) lower: fewer hubs", loc="left")
        b.set_title("(b) accuracy", loc="left")
        fig.legend(*a.get_legend_handles_labels(), loc="upper center", ncols=2)
        if t:
            ax, kinds = axes[0, 2], ordered_keys(t["sn"], ("text", "transferred"))
            ax.bar(range(len(kinds)), [t["sn"][q]["mean"] for q in kinds], color=PALETTE[2:2 + len(kinds)],
                   yerr=[np.nan_to_num(t["sn"][q].get("std", math.nan)) for q in kinds], capsize=3)
            ax.set_xticks(range(len(kinds)), [q.replace(" ", "\n") for q in kinds])
            ax.set_ylabel(f"{sn}, mean ± std over splits")
            ax.set_title("(c) ResT unseen prototypes", loc="left")
            ax.axhline(0, color="k", lw=0.6)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig
