"""Paper outputs from the workbook's run folders: result tables, summary figures, the figure index.

Nothing here trains or evaluates: it reads what notebooks 02-06 recorded under the runs folder
(``<runs>/<NN>_<name>/metrics.json`` and, for per-split numbers, the ``metrics.json`` of each
``run_split`` folder) and renders it.

* Tables (:class:`PaperTable`): one row per method or setting, ``<metric>_mean`` /
  ``<metric>_std`` columns in the units the values are recorded in (accuracies as fractions,
  scaled per column for display). Markdown with the :class:`~zsar.evaluation.tables.TableHeader`
  line; LaTeX as a booktabs table with ``$a \\pm b$`` cells, the best mean per column in bold
  (reference rows such as the supervised ceiling † are shown but never bold) and a caption
  stating protocol, backbone, frames, splits and seeds.
* Figures: the main results bars, the semantic-transfer sweeps of 03, hubness before/after of 04,
  drawn under :func:`paper_style` (Okabe-Ito palette, readable fonts, embedded PDF fonts).
* Figure index (:func:`figure_index`): every PNG of the figures folder, the notebook that made it
  (its ``NN_`` file-name prefix) and the parameters papermill ran that notebook with (the
  executed copy ``<runs>/<stem>/<stem>.ipynb``).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
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


def load_run(runs_dir: str | Path, prefix: str) -> tuple[str, dict]:
    """``(stem, metrics)`` of notebook ``prefix``'s run folder.

    Raises:
        MissingRunError: no ``<runs_dir>/<prefix>_*/metrics.json``.
    """
    run = find_run(runs_dir, prefix)
    if run is None:
        raise MissingRunError(f"no run folder {Path(runs_dir) / (prefix + '_*')} with a {METRICS_FILE}: "
                              f"run notebook {prefix} first")
    return run.name, json.loads((run / METRICS_FILE).read_text(encoding="utf-8"))


def results_summary(run_metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Mean and std per method of a 02-style run: ``results`` per method, ``run_dirs`` per split.

    The per-split ``metrics.json`` files named in ``run_dirs`` are read and summarised again
    (sample std over splits); without them the recorded ``mean`` / ``std`` are used.

    Returns:
        DataFrame indexed by display name (recorded order) with ``<metric>_mean``,
        ``<metric>_std``, ``runs`` and ``zero_shot`` columns.

    Raises:
        KeyError: ``run_metrics`` has no ``results`` of ``{method: {display_name, mean, std}}``.
    """
    results = run_metrics.get("results")
    if not isinstance(results, Mapping) or not all(isinstance(r, Mapping) and "mean" in r for r in results.values()):
        raise KeyError(f"expected 'results': {{method: {{'display_name', 'mean', 'std'}}}}, got keys {sorted(run_metrics)}")
    rows = []
    for key, recorded in results.items():
        files = [Path(d) / METRICS_FILE for d in run_metrics.get("run_dirs", {}).get(key, {}).values()]
        if files and all(f.is_file() for f in files):
            per_split = [json.loads(f.read_text(encoding="utf-8")) for f in files]
            rows.append(summarize([{**r, "method": recorded.get("display_name", key)} for r in per_split]))
        else:
            row = {f"{m}_{stat}": recorded[stat].get(m, math.nan) for m in recorded["mean"] for stat in ("mean", "std")}
            rows.append(pd.DataFrame([{**row, "runs": recorded.get("n_splits", 1)}],
                                     index=[recorded.get("display_name", key)]))
        rows[-1]["zero_shot"] = bool(recorded.get("zero_shot", True))
    frame = pd.concat(rows)
    frame.index.name = "method"
    return frame


def results_header(run_metrics: Mapping[str, Any]) -> TableHeader:
    """The protocol line of a 02-style run (protocol, data, seen/unseen, backbone, frames, splits, seed)."""
    m = run_metrics
    weights = "random init" if m.get("pretrained") is None else f"pretrained {m['pretrained']}"
    return TableHeader(protocol=f"{m['protocol']} seen/unseen {m['n_seen']}/{m['n_unseen']} on {m['data']}",
                       backbone=f"{m['backbone']} ({weights})", frames=m["frames"], splits=m["splits"],
                       seeds=m["seed"])


@dataclass(frozen=True)
class PaperTable:
    """One results table, rendered by :func:`table_markdown` / :func:`table_latex`.

    Attributes:
        name: file stem, e.g. ``"07_main_results"``.
        summary: rows to show (index: row label) with ``<metric>_mean`` / ``<metric>_std`` columns.
        header: the protocol line.
        columns: ``{metric: column title}``, in display order.
        scale: ``{metric: factor}`` applied for display (default 1; 100 shows fractions in percent).
        decimals: digits after the point.
        lower_is_better: metrics whose smallest mean is the best.
        reference_rows: row labels shown but never bold (e.g. the supervised ceiling †).
        note: a sentence appended to the caption.
    """

    name: str
    summary: pd.DataFrame
    header: TableHeader
    columns: Mapping[str, str]
    scale: Mapping[str, float] = field(default_factory=dict)
    decimals: int = 1
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
    parts = [format_cells(shown[~ref], 1.0, table.decimals, table.lower_is_better, plus_minus, missing)]
    if ref.any():
        text, best = format_cells(shown[ref], 1.0, table.decimals, (), plus_minus, missing)
        parts.append((text, best & False))
    cells = pd.concat([p[0] for p in parts]).reindex(shown.index)
    best = pd.concat([p[1] for p in parts]).reindex(shown.index)
    return cells, best


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


def table_latex(table: PaperTable) -> str:
    """A booktabs ``table``: ``$a \\pm b$`` cells, best per column ``$\\mathbf{...}$``, protocol caption."""
    cells, best = table_cells(table, plus_minus=r"\pm", missing="--")
    caption = (latex_escape(table.header.line()) + r". Mean $\pm$ std over splits (sample std); best per column "
               r"in \textbf{bold}." + (" " + latex_escape(table.note) if table.note else ""))
    lines = [r"% requires \usepackage{booktabs}", r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
             rf"\label{{tab:{table.name}}}", r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule",
             " & ".join([latex_escape(table.summary.index.name or "Method")]
                        + [latex_escape(table.columns[m]) for m in table.columns]) + r" \\", r"\midrule"]
    for row, values in cells.iterrows():
        shown = ["--" if v == "--" else rf"$\mathbf{{{v}}}$" if best.at[row, m] else f"${v}$" for m, v in values.items()]
        lines.append(latex_escape(row) + " & " + " & ".join(shown) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: PaperTable, folder: str | Path) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.tex`` and ``<name>.csv`` (the displayed numbers) atomically."""
    folder = Path(folder)
    csv = f"# {table.header.line()}\n" + table.display_frame().to_csv()
    return {"md": atomic_write_text(folder / f"{table.name}.md", table_markdown(table)),
            "tex": atomic_write_text(folder / f"{table.name}.tex", table_latex(table)),
            "csv": atomic_write_text(folder / f"{table.name}.csv", csv)}


def results_tables(run_metrics: Mapping[str, Any], prefix: str = "07_main") -> list[PaperTable]:
    """Accuracy (percent) and cost tables of a 02-style run; the ceiling † is a reference row."""
    summary = results_summary(run_metrics)
    header, refs = results_header(run_metrics), list(summary.index[~summary["zero_shot"].astype(bool)])
    accuracy = {m: t for m, t in ACCURACY_COLUMNS.items() if f"{m}_mean" in summary}
    cost = {m: t for m, t in COST_COLUMNS.items() if f"{m}_mean" in summary}
    chance = run_metrics.get("chance_top1")
    note = (f"Accuracies on the unseen classes; chance top-1 {100 * chance:.1f} %, temporal pairs 50 %. "
            if chance else "") + "† not zero-shot: a ceiling trained on all classes, never bold."
    tables = [PaperTable(f"{prefix}_results", summary, header, accuracy, {m: 100.0 for m in accuracy},
                         reference_rows=refs, note=note)]
    if cost:
        tables.append(PaperTable(f"{prefix}_costs", summary, header, cost, COST_SCALE, lower_is_better=list(cost),
                                 reference_rows=refs, note="Lower is better; training time on this machine."))
    return tables


def _stat_frame(rows: Mapping[str, Mapping[str, Mapping[str, float]]], index_name: str) -> pd.DataFrame:
    """``{row: {metric: {"mean", "std"}}}`` -> a ``<metric>_mean`` / ``<metric>_std`` frame."""
    frame = pd.DataFrame({row: {f"{m}_{s}": (v or {}).get(s, math.nan) for m, v in metrics.items()
                                for s in ("mean", "std")} for row, metrics in rows.items()}).T.astype(float)
    frame.index.name = index_name
    return frame


def transfer_tables(transfer_metrics: Mapping[str, Any], header: TableHeader) -> list[PaperTable]:
    """03's prototype kinds (ZSL + GZSL) and its relatedness-space ablation, in percent."""
    m = transfer_metrics
    kinds = _stat_frame(m["prototype_kinds"], "Unseen prototype")
    cols = {k: ACCURACY_COLUMNS[k] for k in ("top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic")}
    chosen = m["chosen"]
    tables = [PaperTable("07_transfer_prototypes", kinds, header, cols, {k: 100.0 for k in cols},
                         note=f"ResT, semantic transfer chosen on seen-class validation: k={chosen['k']}, "
                              f"tau={chosen['tau']:g}, alpha={chosen['alpha']:g}.")]
    pairs = [tuple(part.strip() for part in row.split("·")) for row in m.get("relatedness", {})]
    if pairs and all(len(p) == 2 for p in pairs):
        spaces, texts = list(dict.fromkeys(p[0] for p in pairs)), list(dict.fromkeys(p[1] for p in pairs))
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
    for p in hubness_metrics["per_method"].values():
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
                 metrics: Sequence[str] = ("top1", "mean_class_acc", "gzsl_harmonic", "pair_acc"), title: str = ""):
    """Grouped bars, mean ± std over splits, of :func:`results_summary` rows; dashed lines: chance."""
    from zsar.plotting_results import grouped_bars

    metrics = [m for m in metrics if f"{m}_mean" in summary]
    labels = {m: ACCURACY_COLUMNS[m].removesuffix(" %").removesuffix(" acc") for m in metrics}
    reference = {m: chance for m in ("top1", "mean_class_acc") if chance and m in metrics}
    if "pair_acc" in metrics:
        reference["pair_acc"] = 0.5
    with paper_style():
        fig = grouped_bars(summary, metrics, labels=labels, ylabel="accuracy on unseen classes (%)", title=title,
                           reference=reference, figsize=(max(5.0, 1.3 * len(metrics) + 1.5), 3.2))
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
        axes[0, 0].legend(loc="best")
        fig.tight_layout()
    return fig


def _paired_bars(ax, names: Sequence[str], before: Sequence[float], after: Sequence[float], labels: Sequence[str]):
    x = np.arange(len(names))
    ax.bar(x - 0.2, before, 0.4, label=labels[0], color=PALETTE[0])
    ax.bar(x + 0.2, after, 0.4, label=labels[1], color=PALETTE[1])
    ax.set_xticks(x, names, rotation=30, ha="right")


def hubness_figure(hubness_metrics: Mapping[str, Any]):
    """04's skewness and top-1 per method before/after the best inductive reducer; ResT text vs transfer."""
    m = hubness_metrics
    per = list(m["per_method"].values())
    names = [p["display_name"] for p in per]
    t = m.get("transfer_vs_text")
    k = m.get("k", "k")
    with paper_style():
        fig, axes = plt.subplots(1, 3 if t else 2, figsize=(10.5 if t else 7.5, 3.2), squeeze=False)
        ax = axes[0, 0]
        _paired_bars(ax, names, [p["sn_before"] for p in per], [p["best_reducer_sn"] for p in per],
                     ["raw cosine", "best inductive reducer"])
        ax.set_ylabel(f"skewness S_N{k} of N_{k} (lower: fewer hubs)")
        ax.axhline(0, color="k", lw=0.6)
        ax.legend(loc="best")
        ax = axes[0, 1]
        _paired_bars(ax, names, [100 * p["top1_before"] for p in per], [100 * p["best_reducer_top1"] for p in per],
                     ["raw cosine", "best inductive reducer"])
        ax.set_ylabel("unseen top-1 (%)")
        if t:
            ax = axes[0, 2]
            kinds = list(t["sn"])
            ax.bar(range(len(kinds)), [t["sn"][q]["mean"] for q in kinds], color=PALETTE[2:2 + len(kinds)],
                   yerr=[np.nan_to_num(t["sn"][q].get("std", math.nan)) for q in kinds], capsize=3)
            ax.set_xticks(range(len(kinds)), kinds, rotation=30, ha="right")
            ax.set_ylabel(f"S_N{k}, ResT unseen prototypes")
            ax.axhline(0, color="k", lw=0.6)
        fig.tight_layout()
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
        figures_dir: the figures folder.
        runs_dir: the runs folder holding ``<stem>/<stem>.ipynb`` executed copies.
        notebooks: notebook stems, e.g. ``["01_data_prep", ...]``; default: the workbook's
            notebooks plus the run folders of ``runs_dir``.

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
    """``docs/figure_index.md`` when ``figures_dir`` is the project's figures folder, else None.

    The committed index describes the committed ``figures/``; a smoke or scratch run elsewhere must
    not overwrite it.
    """
    same = Path(figures_dir).resolve() == paths.figures_dir()
    return paths.project_root() / "docs" / "figure_index.md" if same else None


def write_figure_index(path: str | Path, entries: Sequence[FigureEntry], figures_label: str = "figures/") -> Path:
    """Write :func:`figure_index_markdown` to ``path`` atomically; return the path."""
    return atomic_write_text(path, figure_index_markdown(entries, figures_label))
