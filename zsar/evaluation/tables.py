"""Result tables: mean ± std per method over splits, as pandas, Markdown and LaTeX.

Every rendered table starts with a header line stating the protocol, backbone, frames per
video, splits and seeds (:class:`TableHeader`); a number without those is not comparable with
anything, so the renderers refuse to run without one. The best mean of each column is bold.

A result is one run of one method on one split::

    {"method": "ResT", "split": 3, "seed": 0, "metrics": {"top1": 0.734, "harmonic": 0.51}}

Metrics are fractions in ``[0, 1]``; the renderers show them in percent (``scale=100``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from zsar.evaluation.metrics import mean_std
from zsar.io import atomic_write_text

PLUS_MINUS_MD, PLUS_MINUS_TEX = "±", r"$\pm$"
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple, range)):
        return ", ".join(str(v) for v in value) if len(value) <= 10 else f"{len(value)} ({value[0]}–{value[-1]})"
    return str(value)


@dataclass(frozen=True)
class TableHeader:
    """The protocol line every result table carries.

    Attributes:
        protocol: e.g. ``"UCF101 TruZe, 50/51 seen/unseen"``.
        backbone: e.g. ``"CLIP ViT-B/16"``.
        frames: frames per video, e.g. ``8``.
        splits: number or list of splits, e.g. ``10`` or ``[0, 1, 2]``.
        seeds: seed or list of seeds.
    """

    protocol: str
    backbone: str
    frames: int | str
    splits: int | str | Sequence
    seeds: int | str | Sequence

    def __post_init__(self):
        for name in ("protocol", "backbone", "frames", "splits", "seeds"):
            value = getattr(self, name)
            if value is None or (isinstance(value, (str, list, tuple)) and len(value) == 0):
                raise ValueError(f"table header field {name!r} is required, got {value!r}")

    def line(self) -> str:
        """``Protocol: …; Backbone: …; Frames: …; Splits: …; Seeds: …``."""
        # ';' not '|': a bar breaks Markdown tables and prints as a dash in LaTeX text
        return (f"Protocol: {self.protocol}; Backbone: {self.backbone}; Frames: {self.frames}; "
                f"Splits: {_describe(self.splits)}; Seeds: {_describe(self.seeds)}")


def _as_header(header: TableHeader | Mapping[str, Any]) -> TableHeader:
    if isinstance(header, TableHeader):
        return header
    if isinstance(header, Mapping):
        return TableHeader(**header)
    raise TypeError(f"a result table needs a TableHeader (protocol, backbone, frames, splits, seeds), got {header!r}")


def summarize(results: Iterable[Mapping[str, Any]], metrics: Sequence[str] | None = None,
              ddof: int = 1) -> pd.DataFrame:
    """Mean and std of each metric per method over its splits (and seeds).

    Args:
        results: dicts with ``method``, ``split``, ``metrics`` (a dict) and optionally ``seed``.
        metrics: metric names to keep, in order (default: all, in first-seen order).
        ddof: degrees of freedom of the std (1: sample std).

    Returns:
        DataFrame indexed by method (first-seen order) with columns ``<metric>_mean``,
        ``<metric>_std`` and ``runs`` (number of results).

    Raises:
        KeyError: a result lacks ``method``, ``split`` or ``metrics``.
        ValueError: the same (method, split, seed) appears twice, or ``results`` is empty.
    """
    values: dict[str, dict[str, list[float]]] = {}
    seen_runs: set[tuple] = set()
    found_metrics: dict[str, None] = {}
    for i, result in enumerate(results):
        missing = [k for k in ("method", "split", "metrics") if k not in result]
        if missing:
            raise KeyError(f"result #{i} lacks {missing}: {dict(result)}")
        run = (result["method"], result["split"], result.get("seed"))
        if run in seen_runs:
            raise ValueError(f"duplicate result for method, split, seed = {run}")
        seen_runs.add(run)
        per_method = values.setdefault(str(result["method"]), {"__runs__": []})
        per_method["__runs__"].append(1.0)
        for name, value in result["metrics"].items():
            found_metrics.setdefault(name)
            per_method.setdefault(name, []).append(float(value))
    if not values:
        raise ValueError("no results to summarise")
    rows = {}
    for method, per_metric in values.items():
        row: dict[str, float] = {}
        for name in metrics or list(found_metrics):
            mean, std = mean_std(per_metric[name], ddof) if per_metric.get(name) else (math.nan, math.nan)
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        row["runs"] = len(per_metric["__runs__"])
        rows[method] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "method"
    return frame


def _metric_names(summary: pd.DataFrame) -> list[str]:
    return [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]


def format_cells(summary: pd.DataFrame, scale: float = 100.0, decimals: int = 1,
                 lower_is_better: Iterable[str] = (), plus_minus: str = PLUS_MINUS_MD,
                 missing: str = "–") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``"mean ± std"`` strings per cell and a same-shaped bool frame marking the best per column.

    The best is decided on the rounded mean, so every cell that *shows* the best value is
    marked. A single run shows its mean alone; a missing metric shows ``missing``.
    """
    lower = set(lower_is_better)
    text, best = {}, {}
    for name in _metric_names(summary):
        means = (summary[f"{name}_mean"] * scale).round(decimals)
        stds = (summary[f"{name}_std"] * scale).round(decimals)
        target = means.min() if name in lower else means.max()
        best[name] = means.eq(target) & means.notna()
        text[name] = [(missing if pd.isna(m) else f"{m:.{decimals}f}" if pd.isna(s) else
                       f"{m:.{decimals}f} {plus_minus} {s:.{decimals}f}") for m, s in zip(means, stds)]
    index = summary.index
    return pd.DataFrame(text, index=index), pd.DataFrame(best, index=index)


def _md_escape(text: Any) -> str:
    """A bar inside a cell would end the cell."""
    return str(text).replace("|", r"\|")


def to_markdown(results: Iterable[Mapping[str, Any]], header: TableHeader | Mapping[str, Any],
                metrics: Sequence[str] | None = None, column_names: Mapping[str, str] | None = None,
                scale: float = 100.0, decimals: int = 1, lower_is_better: Iterable[str] = ()) -> str:
    """A Markdown table (header line, blank line, table) with the best mean per column bold."""
    header = _as_header(header)
    cells, best = format_cells(summarize(results, metrics), scale, decimals, lower_is_better)
    names = column_names or {}
    lines = [f"*{header.line()}*", "",
             "| Method | " + " | ".join(_md_escape(names.get(c, c)) for c in cells.columns) + " |",
             "|:--|" + "--:|" * len(cells.columns)]
    for method, row in cells.iterrows():
        shown = [f"**{v}**" if best.at[method, c] else v for c, v in row.items()]
        lines.append(f"| {_md_escape(method)} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in ``text``."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(results: Iterable[Mapping[str, Any]], header: TableHeader | Mapping[str, Any],
             metrics: Sequence[str] | None = None, column_names: Mapping[str, str] | None = None,
             scale: float = 100.0, decimals: int = 1, lower_is_better: Iterable[str] = (),
             label: str | None = None) -> str:
    """A booktabs ``table`` whose caption is the header line; the best mean per column bold."""
    header = _as_header(header)
    cells, best = format_cells(summarize(results, metrics), scale, decimals, lower_is_better,
                               plus_minus=PLUS_MINUS_TEX, missing="--")
    names = column_names or {}
    lines = [f"% {header.line()}", r"\begin{table}[t]", r"\centering",
             rf"\caption{{{latex_escape(header.line())}}}"]
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [r"\begin{tabular}{l" + "c" * len(cells.columns) + "}", r"\toprule",
              "Method & " + " & ".join(latex_escape(names.get(c, c)) for c in cells.columns) + r" \\",
              r"\midrule"]
    for method, row in cells.iterrows():
        shown = [rf"\textbf{{{v}}}" if best.at[method, c] else v for c, v in row.items()]
        lines.append(latex_escape(method) + " & " + " & ".join(shown) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def save_tables(results: Sequence[Mapping[str, Any]], folder: str | os.PathLike, name: str,
                header: TableHeader | Mapping[str, Any], **kwargs: Any) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.tex`` and ``<name>.csv`` (the numbers) atomically.

    ``kwargs`` go to :func:`to_markdown` / :func:`to_latex` (``metrics``, ``scale``, ...).
    The CSV's first line is the header line as a ``#`` comment.
    """
    folder = Path(folder)
    header = _as_header(header)
    summary = summarize(results, kwargs.get("metrics"))
    return {
        "md": atomic_write_text(folder / f"{name}.md", to_markdown(results, header, **kwargs)),
        "tex": atomic_write_text(folder / f"{name}.tex", to_latex(results, header, **kwargs)),
        "csv": atomic_write_text(folder / f"{name}.csv", f"# {header.line()}\n" + summary.to_csv()),
    }


def mean_std_text(values: Iterable[float], scale: float = 1.0, decimals: int = 2) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (sample std; the mean alone for a single value)."""
    x = np.asarray(list(values), dtype=np.float64) * scale
    if len(x) < 2:
        return f"{x.mean():.{decimals}f}" if len(x) else "–"
    return f"{x.mean():.{decimals}f} {PLUS_MINUS_MD} {x.std(ddof=1):.{decimals}f}"


def frame_markdown(frame: pd.DataFrame, index: bool = False) -> str:
    """A pipe table of any data frame (cells as they print); ``index`` adds the index as first column."""
    frame = frame.reset_index() if index else frame
    lines = ["| " + " | ".join(_md_escape(c) for c in frame.columns) + " |", "|" + "|".join(":--" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)

