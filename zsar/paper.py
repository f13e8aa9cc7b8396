"""Paper outputs from the workbook's run folders: result tables, summary figures, the figure index.

Nothing is trained here: notebook 07 reads what 02-06 recorded (``<runs>/<NN>_<name>/metrics.json``
and the per-split ``metrics.json`` of each ``run_split`` folder) and renders it. Tables
(:class:`PaperTable`) go to Markdown with the :class:`~zsar.evaluation.tables.TableHeader` line and
to booktabs LaTeX with ``$a \\pm b$`` cells, the best mean per column bold (reference rows such as
the supervised ceiling † never) and a caption stating protocol, backbone, frames, splits, seeds.
Figures are drawn under :func:`paper_style`. :func:`figure_index` maps every PNG of the figures
folder to the notebook of its ``NN_`` prefix and the parameters papermill ran it with.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from zsar.evaluation.tables import TableHeader, format_cells, latex_escape, summarize  # noqa: E402
from zsar import paths  # noqa: E402
from zsar.io import atomic_write_text  # noqa: E402
from zsar.notebook import METRICS_FILE  # noqa: E402
from zsar.plotting import PALETTE  # noqa: E402

ACCURACY_COLUMNS = {"top1": "top-1 %", "top5": "top-5 %", "mean_class_acc": "mean class acc %",
                    "gzsl_seen": "GZSL S %", "gzsl_unseen": "GZSL U %", "gzsl_harmonic": "GZSL H %",
                    "pair_acc": "temporal pair acc %"}
COST_COLUMNS = {"trainable_params": "trainable params (k)", "train_time_s": "train time (s)"}
COST_SCALE = {"trainable_params": 1e-3, "train_time_s": 1.0}
HIDDEN_PARAMETER_SUFFIXES = ("_DIR", "_FILE")  # machine-specific locations, not what makes a figure
PAPER_RC = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
            "ytick.labelsize": 8, "legend.fontsize": 8, "figure.dpi": 110, "savefig.dpi": 200,
            "pdf.fonttype": 42, "ps.fonttype": 42, "axes.spines.top": False, "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE)}


class MissingRunError(FileNotFoundError):
    """A run folder lacks the file a table or figure needs; the message names the path."""


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Paper fonts, the colour-blind-safe palette and TrueType fonts in PDFs, inside the block."""
    with plt.rc_context(PAPER_RC):
        yield


def find_run(runs_dir: str | Path, prefix: str) -> Path | None:
    """The run folder ``<runs_dir>/<prefix>_*`` holding a ``metrics.json`` (first by name), or None."""
    found = sorted(p for p in Path(runs_dir).glob(f"{prefix}_*") if (p / METRICS_FILE).is_file())
    return found[0] if found else None


def load_run(runs_dir: str | Path, prefix: str) -> tuple[Path, dict]:
    """``(run folder, metrics)`` of notebook ``prefix``'s run.

    Raises:
        MissingRunError: no ``<runs_dir>/<prefix>_*/metrics.json``.
    """
    run = find_run(runs_dir, prefix)
    if run is None:
        raise MissingRunError(f"no run folder {Path(runs_dir) / (prefix + '_*')} with a {METRICS_FILE}: "
                              f"run notebook {prefix} first")
    return run, json.loads((run / METRICS_FILE).read_text(encoding="utf-8"))


def _ordered(keys: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``keys`` with those in ``preferred`` first, in that order (recorded JSON has sorted keys)."""
    keys = list(keys)
    return [p for p in preferred if p in keys] + [k for k in keys if k not in preferred]


def _split_file(run_dir: Path, method: str, split: str, recorded: str) -> Path:
    local = run_dir / method / split / METRICS_FILE  # still found when the runs folder has moved
    path = local if local.is_file() else Path(recorded) / METRICS_FILE
    if not path.is_file():
        raise MissingRunError(f"per-split result {local} not found")
    return path


def run_results(run_dir: str | Path, run_metrics: Mapping[str, Any], key: str = "per_split") -> list[dict]:
    """The per-split results of a run, in table order: ``{"method", "split", "zero_shot", "metrics"}``.

    Read from ``results.json[key]`` where the notebook wrote one (06), else from the
    ``run_split`` folders named by ``run_metrics["run_dirs"]`` (02). Metrics recorded as null
    (NaN in JSON) come back as NaN.

    Raises:
        KeyError: the run records neither.
        MissingRunError: a per-split ``metrics.json`` named by ``run_dirs`` is absent.
    """
    run_dir = Path(run_dir)
    file = run_dir / "results.json"
    results = json.loads(file.read_text(encoding="utf-8")).get(key) if file.is_file() else None
    if not results:
        recorded, run_dirs = run_metrics.get("results"), run_metrics.get("run_dirs")
        if not isinstance(recorded, Mapping) or not isinstance(run_dirs, Mapping) or key != "per_split":
            raise KeyError(f"no per-split results: neither {file.name}[{key!r}] nor 'results' with 'run_dirs'")
        results = []
        for method in _ordered(recorded, run_metrics.get("methods", ())):
            for split, folder in run_dirs.get(method, {}).items():
                result = json.loads(_split_file(run_dir, method, split, folder).read_text(encoding="utf-8"))
                results.append({**result, "method": recorded[method].get("display_name", result["method"])})
    return [{**r, "metrics": {k: math.nan if v is None else v for k, v in r["metrics"].items()}} for r in results]


def results_summary(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """:func:`~zsar.evaluation.tables.summarize` of per-split results plus a ``zero_shot`` column.

    Returns:
        DataFrame indexed by method (first-seen order): ``<metric>_mean``, ``<metric>_std``
        (sample std over splits), ``runs``, ``zero_shot``.
    """
    frame = summarize(results)
    zero_shot = {}
    for r in results:
        zero_shot.setdefault(str(r["method"]), bool(r.get("zero_shot", True)))
    frame["zero_shot"] = [zero_shot[m] for m in frame.index]
    frame.index.name = "Method"
    return frame


def results_header(run_metrics: Mapping[str, Any]) -> TableHeader:
    """The protocol line of a run that records protocol, data, backbone, frames, splits and seed."""
    m = run_metrics
    classes = f" seen/unseen {m['n_seen']}/{m['n_unseen']}" if "n_seen" in m and "n_unseen" in m else ""
    weights = "" if "pretrained" not in m else " (random init)" if m["pretrained"] is None else f" ({m['pretrained']})"
    return TableHeader(protocol=f"{m['protocol']}{classes} on {m['data']}", backbone=f"{m['backbone']}{weights}",
                       frames=m["frames"], splits=m["splits"], seeds=m["seed"])


@dataclass(frozen=True)
class PaperTable:
    """One results table, rendered by :func:`table_markdown` / :func:`table_latex`.

    Attributes:
        name: file stem, e.g. ``"07_main_results"``.
        summary: rows to show (index: row label) with ``<metric>_mean`` / ``<metric>_std`` columns.
        header: the protocol line.
        columns: ``{metric: column title}``, in display order.
        scale: ``{metric: factor}`` applied for display (default 1; 100 shows fractions in percent).
        decimals: digits after the point, or ``{metric: digits}`` (1 where not given).
        lower_is_better: metrics whose smallest mean is the best.
        reference_rows: row labels shown but never bold (e.g. the supervised ceiling †).
        note: a sentence appended to the caption.
    """

    name: str
    summary: pd.DataFrame
    header: TableHeader
    columns: Mapping[str, str]
    scale: Mapping[str, float] = field(default_factory=dict)
    decimals: int | Mapping[str, int] = 1
    lower_is_better: Sequence[str] = ()
    reference_rows: Sequence[str] = ()
    note: str = ""

    def __post_init__(self):
        missing = [m for m in self.columns if f"{m}_mean" not in self.summary.columns]
        if missing:
            raise KeyError(f"table {self.name!r}: no '<metric>_mean' column for {missing}")

    def display_frame(self) -> pd.DataFrame:
        """``<metric>_mean`` / ``<metric>_std`` of the shown columns, scaled for display."""
        cols = {}
        for m in self.columns:
            factor = self.scale.get(m, 1.0)
            cols[f"{m}_mean"] = self.summary[f"{m}_mean"].astype(float) * factor
            cols[f"{m}_std"] = (self.summary[f"{m}_std"].astype(float) * factor if f"{m}_std" in self.summary
                                else np.nan)
        return pd.DataFrame(cols, index=self.summary.index)


def table_cells(table: PaperTable, plus_minus: str = "±", missing: str = "–") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``"mean ± std"`` strings and the bold mask: the best of the non-reference rows per column."""
    shown = table.display_frame()
    ref = shown.index.isin(list(table.reference_rows))
    texts, bests = [], []
    for m in table.columns:
        one = shown[[f"{m}_mean", f"{m}_std"]]
        digits = table.decimals.get(m, 1) if isinstance(table.decimals, Mapping) else table.decimals
        text, best = format_cells(one[~ref], 1.0, digits, table.lower_is_better, plus_minus, missing)
        ref_text, _ = format_cells(one[ref], 1.0, digits, (), plus_minus, missing)
        texts.append(pd.concat([text, ref_text]))
        bests.append(pd.concat([best, pd.DataFrame(False, index=ref_text.index, columns=ref_text.columns)]))
    return (pd.concat(texts, axis=1).reindex(shown.index),
            pd.concat(bests, axis=1).reindex(shown.index).fillna(False).astype(bool))


def table_markdown(table: PaperTable) -> str:
    """The header line in italics, the table with the best mean per column bold, then the note."""
    cells, best = table_cells(table)
    esc = lambda s: str(s).replace("|", r"\|")  # noqa: E731  a bar would end the cell
    lines = [f"*{table.header.line()}*", "",
             "| " + " | ".join([esc(table.summary.index.name or "Method")]
                               + [esc(table.columns[m]) for m in table.columns]) + " |",
             "|:--|" + "--:|" * len(table.columns)]
    for row, values in cells.iterrows():
        shown = [f"**{v}**" if best.at[row, m] else v for m, v in values.items()]
        lines.append(f"| {esc(row)} | " + " | ".join(shown) + " |")
    lines += ["", f"Mean ± std over splits (sample std); best per column in bold. {table.note}".rstrip()]
    return "\n".join(lines) + "\n"


def _tex(text: Any) -> str:
    return latex_escape(text).replace("†", r"$^\dagger$").replace("±", r"$\pm$")


def table_latex(table: PaperTable) -> str:
    """A booktabs ``table``: ``$a \\pm b$`` cells, best per column ``$\\mathbf{...}$``, protocol caption."""
    cells, best = table_cells(table, plus_minus=r"\pm", missing="--")
    caption = (_tex(table.header.line()) + r". Mean $\pm$ std over splits (sample std); best per column "
               r"in \textbf{bold}." + (" " + _tex(table.note) if table.note else ""))
    lines = [r"% requires \usepackage{booktabs}", r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
             rf"\label{{tab:{table.name}}}", r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule",
             " & ".join([_tex(table.summary.index.name or "Method")]
                        + [_tex(table.columns[m]) for m in table.columns]) + r" \\", r"\midrule"]
    for row, values in cells.iterrows():
        shown = ["--" if v == "--" else rf"$\mathbf{{{v}}}$" if best.at[row, m] else f"${v}$"
                 for m, v in values.items()]
        lines.append(_tex(row) + " & " + " & ".join(shown) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: PaperTable, folder: str | Path) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.tex`` and ``<name>.csv`` (the displayed numbers) atomically."""
    folder = Path(folder)
    csv = f"# {table.header.line()}\n" + table.display_frame().to_csv()
    return {"md": atomic_write_text(folder / f"{table.name}.md", table_markdown(table)),
            "tex": atomic_write_text(folder / f"{table.name}.tex", table_latex(table)),
            "csv": atomic_write_text(folder / f"{table.name}.csv", csv)}


def results_tables(results: Sequence[Mapping[str, Any]], run_metrics: Mapping[str, Any],
                   prefix: str = "07_main") -> list[PaperTable]:
    """Results (accuracies in percent, hubness) and cost tables of per-split results.

    Columns are those of :data:`ACCURACY_COLUMNS`, ``fewshot`` and ``s_n10`` the results hold; a
    method that is not zero-shot (the supervised ceiling †) is a reference row.
    """
    summary = results_summary(results)
    header, refs = results_header(run_metrics), list(summary.index[~summary["zero_shot"].astype(bool)])
    k_shot = run_metrics.get("k_shot", "K")
    shown = {**ACCURACY_COLUMNS, "fewshot": f"{k_shot}-shot top-1 %", "s_n10": "S_N10"}
    accuracy = {m: t for m, t in shown.items() if f"{m}_mean" in summary and summary[f"{m}_mean"].notna().any()}
    cost = {m: t for m, t in COST_COLUMNS.items() if f"{m}_mean" in summary}
    chance = run_metrics.get("chance_top1")
    note = (f"Accuracies on the unseen classes; chance top-1 {100 * chance:.1f} %"
            + (", temporal pairs 50 %. " if "pair_acc" in accuracy else ". ") if chance else "")
    note += "S_N10: skewness of the 10-occurrence, lower is better. " if "s_n10" in accuracy else ""
    note += "† not zero-shot: a ceiling trained on all classes, never bold." if refs else ""
    tables = [PaperTable(f"{prefix}_results", summary, header, accuracy, {m: 100.0 for m in accuracy if m != "s_n10"},
                         {"s_n10": 2}, ["s_n10"], refs, note.strip())]
    if cost:
        tables.append(PaperTable(f"{prefix}_costs", summary, header, cost, COST_SCALE, lower_is_better=list(cost),
                                 reference_rows=refs, note="Lower is better; training time on this machine."))
    return tables


def _stat_frame(rows: Mapping[str, Mapping[str, Mapping[str, float]]], index_name: str,
                order: Sequence[str] = ()) -> pd.DataFrame:
    """``{row: {metric: {"mean", "std"}}}`` -> ``<metric>_mean`` / ``<metric>_std`` columns, ``order`` rows first."""
    frame = pd.DataFrame({row: {f"{m}_{s}": (rows[row][m] or {}).get(s, math.nan) for m in rows[row]
                                for s in ("mean", "std")} for row in _ordered(rows, order)}).T.astype(float)
    frame.index.name = index_name
    return frame


def transfer_tables(transfer_metrics: Mapping[str, Any], header: TableHeader) -> list[PaperTable]:
    """03's prototype kinds (ZSL + GZSL) and its relatedness-space ablation, in percent."""
    m = transfer_metrics
    kinds = _stat_frame(m["prototype_kinds"], "Unseen prototype", ("text prototype", "transferred", "fused (chosen)"))
    cols = {k: ACCURACY_COLUMNS[k] for k in ("top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic")}
    chosen = m["chosen"]
    tables = [PaperTable("07_transfer_prototypes", kinds, header, cols, {k: 100.0 for k in cols},
                         note=f"ResT, semantic transfer chosen on seen-class validation: k={chosen['k']}, "
                              f"tau={chosen['tau']:g}, alpha={chosen['alpha']:g}.")]
    pairs = [tuple(part.strip() for part in row.split("·")) for row in m.get("relatedness", {})]
    if pairs and all(len(p) == 2 for p in pairs):
        spaces = _ordered(dict.fromkeys(p[0] for p in pairs), ("model", "clip", "minilm", "glove"))
        texts = _ordered(dict.fromkeys(p[1] for p in pairs), ("name", "description"))
        grid = {s: {t: m["relatedness"].get(f"{s} · {t}") for t in texts} for s in spaces}
        t = m.get("transfer_only", {})
        tables.append(PaperTable("07_transfer_relatedness", _stat_frame(grid, "Relatedness space"), header,
                                 {t_: f"class {t_}s, top-1 %" for t_ in texts}, {t_: 100.0 for t_ in texts},
                                 note=f"Pure transfer, k={t.get('k')}, tau={t.get('tau', math.nan):g}; "
                                      "unseen test top-1."))
    return tables


def hubness_table(hubness_metrics: Mapping[str, Any], header: TableHeader) -> PaperTable:
    """04's skewness and top-1 per method, raw and after its best inductive reducer (means only)."""
    rows, refs = {}, []
    per_method = hubness_metrics["per_method"]
    for p in (per_method[key] for key in _ordered(per_method, hubness_metrics.get("methods", ()))):
        label = f"{p['display_name']} / {p['best_reducer']}"
        rows[label] = {"sn_raw_mean": p["sn_before"], "sn_best_mean": p["best_reducer_sn"],
                       "top1_raw_mean": p["top1_before"], "top1_best_mean": p["best_reducer_top1"]}
        if not p.get("zero_shot", True):
            refs.append(label)
    frame = pd.DataFrame(rows).T.astype(float)
    frame.index.name = "Method / best reducer"
    k = hubness_metrics.get("k", "k")
    cols = {"sn_raw": f"S_N{k} raw", "sn_best": f"S_N{k} reduced", "top1_raw": "top-1 % raw",
            "top1_best": "top-1 % reduced"}
    return PaperTable("07_hubness", frame, header, cols, {"top1_raw": 100.0, "top1_best": 100.0}, decimals=2,
                      lower_is_better=["sn_raw", "sn_best"], reference_rows=refs,
                      note="Means over splits (04 records no per-split spread); 'reduced': the inductive "
                           "reducer with the best mean unseen top-1, named after the slash.")


def results_bars(summary: pd.DataFrame, chance: float | None = None,
                 metrics: Sequence[str] = ("top1", "mean_class_acc", "gzsl_harmonic", "fewshot", "pair_acc"),
                 title: str = ""):
    """Grouped bars, mean ± std over splits, of :func:`results_summary` rows; dashed lines: chance.

    Past the palette's 8 colours, bars repeat a colour with a hatch so every method stays distinct.
    """
    from zsar.plotting_results import grouped_bars

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
    per = [m["per_method"][key] for key in _ordered(m["per_method"], m.get("methods", ()))]
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
            ax, kinds = axes[0, 2], _ordered(t["sn"], ("text", "transferred"))
            ax.bar(range(len(kinds)), [t["sn"][q]["mean"] for q in kinds], color=PALETTE[2:2 + len(kinds)],
                   yerr=[np.nan_to_num(t["sn"][q].get("std", math.nan)) for q in kinds], capsize=3)
            ax.set_xticks(range(len(kinds)), [q.replace(" ", "\n") for q in kinds])
            ax.set_ylabel(f"{sn}, mean ± std over splits")
            ax.set_title("(c) ResT unseen prototypes", loc="left")
            ax.axhline(0, color="k", lw=0.6)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


@dataclass(frozen=True)
class FigureEntry:
    """One figure of the index: file, the notebook that made it, and its papermill parameters."""

    figure: str
    notebook: str | None
    parameters: Mapping[str, Any] | None  # None: no executed copy of the notebook in the runs folder
    formats: tuple[str, ...]


def executed_parameters(executed_notebook: str | Path) -> dict[str, Any] | None:
    """The parameters papermill injected into an executed notebook, without folder/file locations.

    Returns:
        ``{NAME: value}`` from ``metadata.papermill.parameters``; None when the file is absent or
        was not executed by papermill.
    """
    path = Path(executed_notebook)
    if not path.is_file():
        return None
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("papermill")
    if not isinstance(meta, Mapping):
        return None
    return {k: v for k, v in sorted(meta.get("parameters", {}).items()) if not k.endswith(HIDDEN_PARAMETER_SUFFIXES)}


def figure_index(figures_dir: str | Path, runs_dir: str | Path,
                 notebooks: Sequence[str] | None = None) -> list[FigureEntry]:
    """Every PNG under ``figures_dir`` with its notebook (by ``NN_`` prefix) and run parameters.

    Args:
        runs_dir: the runs folder holding the executed copies ``<stem>/<stem>.ipynb``.
        notebooks: notebook stems; default: the workbook's notebooks and the run folders of ``runs_dir``.

    Returns:
        Entries sorted by file name; ``notebook`` is None when no notebook has the prefix.
    """
    figures_dir, runs_dir = Path(figures_dir), Path(runs_dir)
    if notebooks is None:
        from zsar.workbook import list_notebooks

        notebooks = [nb.stem for nb in list_notebooks()] + [p.name for p in runs_dir.glob("[0-9][0-9]_*") if p.is_dir()]
    by_prefix: dict[str, str] = {}
    for stem in sorted(set(notebooks)):
        by_prefix.setdefault(stem[:2], stem)
    entries = []
    for png in sorted(figures_dir.glob("*.png")):
        stem = by_prefix.get(png.name[:2]) if png.name[2:3] == "_" else None
        formats = tuple(fmt for fmt in ("png", "pdf", "svg") if png.with_suffix(f".{fmt}").is_file())
        params = executed_parameters(runs_dir / stem / f"{stem}.ipynb") if stem else None
        entries.append(FigureEntry(png.name, stem, params, formats))
    return entries


def figure_index_markdown(entries: Sequence[FigureEntry], figures_label: str = "figures/") -> str:
    """The index as Markdown: figure, formats, notebook and the parameters it ran with."""
    lines = ["# Figure index", "",
             f"Every figure under `{figures_label}`, the notebook that makes it (its file-name prefix) and the "
             "parameters papermill ran that notebook with; parameters not listed keep the defaults of the "
             "notebook's `parameters` cell, and folder parameters are left out. Regenerate with "
             "`python -m zsar.workbook` (all notebooks; `07_paper_figures` rewrites this file).", "",
             "| figure | formats | notebook | parameters |", "|:--|:--|:--|:--|"]
    for e in entries:
        params = ("not run through papermill in this runs folder" if e.parameters is None else
                  ", ".join(f"`{k}={v!r}`" for k, v in e.parameters.items()) or "defaults")
        notebook = f"`notebooks/{e.notebook}.ipynb`" if e.notebook else "unknown: no notebook has this prefix"
        lines.append(f"| `{e.figure}` | {', '.join(e.formats)} | {notebook} | {params} |")
    return "\n".join(lines) + "\n"


def default_index_file(figures_dir: str | Path) -> Path | None:
    """``docs/figure_index.md`` when ``figures_dir`` is the project's ``figures/`` (which that file
    describes), else None: a smoke or scratch run elsewhere must not overwrite it."""
    same = Path(figures_dir).resolve() == paths.figures_dir()
    return paths.project_root() / "docs" / "figure_index.md" if same else None


def write_figure_index(path: str | Path, entries: Sequence[FigureEntry], figures_label: str = "figures/") -> Path:
    """Write :func:`figure_index_markdown` to ``path`` atomically; return the path."""
    return atomic_write_text(path, figure_index_markdown(entries, figures_label))
