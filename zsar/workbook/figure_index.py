"""The figure index: every figure of a figures folder, the notebook that made it, its parameters.

A figure ``NN_name.png`` belongs to the notebook whose file name starts with ``NN_``; the
parameters are those papermill injected into the executed copy of that notebook in the runs
folder (machine-specific folder and file locations left out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from zsar import paths
from zsar.io import atomic_write_text
from zsar.workbook.runner import list_notebooks

HIDDEN_PARAMETER_SUFFIXES = ("_DIR", "_FILE")  # machine-specific locations, not what makes a figure


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
