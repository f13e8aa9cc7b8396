"""Paper outputs from the workbook's run folders: result tables, summary figures, the figure index.

Nothing is trained here: notebook 07 reads what 02-06 recorded (``<runs>/<NN>_<name>/metrics.json``
and the per-split ``metrics.json`` of each ``run_split`` folder) and renders it. Tables
(:class:`PaperTable`) go to Markdown with the :class:`~zsar.evaluation.tables.TableHeader` line and
to booktabs LaTeX with ``$a \\pm b$`` cells, the best mean per column bold (reference rows such as
the supervised ceiling † never) and a caption stating protocol, backbone, frames, splits, seeds.
The figures themselves are drawn by :mod:`zsar.report.paper_figures`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from zsar.evaluation.tables import TableHeader, format_cells, latex_escape, summarize  # noqa: E402
from zsar.io import atomic_write_text  # noqa: E402
from zsar.paths import METRICS_FILE  # noqa: E402
from zsar.report.paper_figures import ACCURACY_COLUMNS, ordered_keys  # noqa: E402

COST_COLUMNS = {"trainable_params": "trainable params (k)", "train_time_s": "train time (s)"}
COST_SCALE = {"trainable_params": 1e-3, "train_time_s": 1.0}


class MissingRunError(FileNotFoundError):
    """A run folder lacks the file a table or figure needs; the message names the path."""


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
        for method in ordered_keys(recorded, run_metrics.get("methods", ())):
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


def table_record(table: PaperTable, files: Mapping[str, Path]) -> dict:
    """What a notebook records of a written table: rows, columns, whether every mean is finite
    (and which cells are missing), the reference rows and the files."""
    shown = table.display_frame()
    means = shown.filter(like="_mean")
    missing = [[r, c.removesuffix("_mean")] for c in means for r in means.index if not np.isfinite(means.at[r, c])]
    return {"rows": list(shown.index), "columns": list(table.columns), "means_finite": not missing,
            "missing_cells": missing, "reference_rows": list(table.reference_rows),
            **{k: str(path) for k, path in files.items()}}


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
                                for s in ("mean", "std")} for row in ordered_keys(rows, order)}).T.astype(float)
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
        spaces = ordered_keys(dict.fromkeys(p[0] for p in pairs), ("model", "clip", "minilm", "glove"))
        texts = ordered_keys(dict.fromkeys(p[1] for p in pairs), ("name", "description"))
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
    for p in (per_method[key] for key in ordered_keys(per_method, hubness_metrics.get("methods", ()))):
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
