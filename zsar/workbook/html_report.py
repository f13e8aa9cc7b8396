"""One page to look at after a workbook run: ``<runs>/report/index.html``.

:func:`write_report` renders each executed notebook ``<runs>/<stem>/<stem>.ipynb`` to
``<runs>/report/<stem>.html`` (nbconvert; its outputs' images are embedded in the page) and writes
an index that links those pages in run order with each notebook's status and wall time, shows the
results summary ``<runs>/summary.md`` and every PNG of the figures folder inline. The figures are
linked (or copied) into ``<runs>/report/figures/`` and referenced by relative paths, so the report
folder opens from disk on its own, with no network and no server. Every file is written atomically.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from zsar.io import atomic_write_text, link_or_copy
from zsar.workbook.monitor import format_duration

REPORT_DIR = "report"
INDEX_FILE = "index.html"
FIGURES_SUBDIR = "figures"
TITLE = "zsar workbook report"

STATUS_LABELS = {
    "ran": "ran",
    "failed": "failed",
    "missing": "missing (no executed notebook)",
    "unrendered": "ran, page not rendered",
}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; background: #fff; }
h1 { border-bottom: 2px solid #345; padding-bottom: .2em; }
h2 { margin-top: 1.6em; color: #345; }
table { border-collapse: collapse; margin: .6em 0 1.2em; }
th, td { border: 1px solid #bbb; padding: .25em .7em; text-align: left; vertical-align: top; }
th { background: #e8edf3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ran { color: #17692b; font-weight: 600; }
.failed { color: #b00020; font-weight: 600; }
.missing, .unrendered { color: #8a5a00; font-weight: 600; }
.meta { color: #555; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-family: monospace; color: #444; }
"""


@dataclass(frozen=True)
class NotebookEntry:
    """One row of the index: a notebook, its status, its wall time (None: unknown), its page."""

    stem: str
    status: str  # a key of STATUS_LABELS
    wall_time_s: float | None
    page: str | None  # file name under report/, None when no page was rendered
    note: str = ""


def write_report(runs_dir: Path, figures_dir: Path, notebooks: list[Path], timings: dict[str, float]) -> Path:
    """Render the run's notebooks and write ``<runs_dir>/report/index.html``; return its path.

    Holds after the call: for every notebook (in the given order, which is the run order) whose
    executed copy ``<runs_dir>/<stem>/<name>`` exists, ``<runs_dir>/report/<stem>.html`` is that
    notebook rendered, and the index links it; a notebook with no executed copy is listed as
    missing and has no page (a stale page of an earlier run is deleted). ``timings`` maps stems
    to seconds; a notebook absent from it is shown without a wall time. Every ``*.png`` of
    ``figures_dir`` is shown inline from ``report/figures/``; ``summary.md`` is shown when present.
    """
    runs_dir, figures_dir = Path(runs_dir), Path(figures_dir)
    report_dir = runs_dir / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    entries = [render_notebook(nb, runs_dir, report_dir, timings.get(nb.stem)) for nb in notebooks]
    figures = collect_figures(figures_dir, report_dir / FIGURES_SUBDIR)
    summary_path = runs_dir / "summary.md"
    summary = summary_path.read_text(encoding="utf-8") if summary_path.is_file() else None
    page = index_html(entries, figures, summary, runs_dir, datetime.now().astimezone())
    return atomic_write_text(report_dir / INDEX_FILE, page)


def render_notebook(notebook: Path, runs_dir: Path, report_dir: Path, wall_time_s: float | None) -> NotebookEntry:
    """Render the executed copy of ``notebook`` to ``report_dir/<stem>.html``; return its index row.

    The status is ``failed`` when papermill recorded an exception in the executed copy, ``ran``
    otherwise; ``missing`` (and no page) when there is no executed copy; ``unrendered`` when
    nbconvert could not render it (the error is kept as the row's note, the run is not stopped).
    """
    executed = runs_dir / notebook.stem / notebook.name
    page = report_dir / f"{notebook.stem}.html"
    if not executed.is_file():
        page.unlink(missing_ok=True)
        return NotebookEntry(notebook.stem, "missing", wall_time_s, None)
    try:
        body, failed = notebook_html(executed)
    except Exception as err:  # noqa: BLE001 - one unreadable notebook must not cost the whole report
        page.unlink(missing_ok=True)
        return NotebookEntry(notebook.stem, "unrendered", wall_time_s, None, f"{type(err).__name__}: {err}")
    atomic_write_text(page, body)
    return NotebookEntry(notebook.stem, "failed" if failed else "ran", wall_time_s, page.name)


def notebook_html(executed: Path) -> tuple[str, bool]:
    """``(html, failed)`` of an executed notebook: the nbconvert page (lab template, output images
    embedded) and whether papermill recorded that its execution raised."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    papermill = nb.metadata.get("papermill", {})
    failed = bool(papermill.get("exception")) or any(
        cell.get("metadata", {}).get("papermill", {}).get("status") == "failed" for cell in nb.cells)
    body, _ = HTMLExporter().from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    return body, failed


def collect_figures(figures_dir: Path, target_dir: Path) -> list[str]:
    """Link (or copy) every ``*.png`` of ``figures_dir`` into ``target_dir``; return the names, sorted.

    Afterwards ``target_dir`` holds exactly those PNGs: figures of an earlier run that are no
    longer in ``figures_dir`` are removed. A missing ``figures_dir`` gives an empty list.
    """
    names = sorted(p.name for p in figures_dir.glob("*.png")) if figures_dir.is_dir() else []
    target_dir.mkdir(parents=True, exist_ok=True)
    for stale in target_dir.glob("*.png"):
        if stale.name not in names:
            stale.unlink()
    for name in names:
        link_or_copy(figures_dir / name, target_dir / name)
    return names


def index_html(entries: list[NotebookEntry], figures: list[str], summary: str | None,
               runs_dir: Path, generated: datetime) -> str:
    """The index page: title, generation time, runs folder, notebook table, summary, figures.

    The page is self-contained apart from the relative links to ``<stem>.html`` and
    ``figures/<png>`` beside it; it loads nothing from the network. All text is HTML-escaped.
    """
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{esc(TITLE)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{esc(TITLE)}</h1>",
             f'<p class="meta">Generated {esc(generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip())}'
             f" from the runs folder <code>{esc(str(runs_dir))}</code>.</p>",
             "<h2>Notebooks</h2>", notebook_table(entries), "<h2>Results summary</h2>"]
    parts.append(markdown_html(summary) if summary is not None
                 else '<p class="missing">No <code>summary.md</code> in the runs folder.</p>')
    parts.append(f"<h2>Figures ({len(figures)})</h2>")
    if not figures:
        parts.append('<p class="missing">No PNG figures in the figures folder.</p>')
    for name in figures:
        src = f"{FIGURES_SUBDIR}/{quote(name)}"
        parts.append(f'<figure id="{esc(name)}"><a href="{esc(src)}"><img src="{esc(src)}" alt="{esc(name)}" '
                     f'loading="eager"></a><figcaption>{esc(name)}</figcaption></figure>')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def notebook_table(entries: list[NotebookEntry]) -> str:
    """The notebooks as an HTML table in the given order: number, link to the page, status, wall time."""
    esc = html.escape
    rows = ["<table>", "<tr><th>#</th><th>notebook</th><th>status</th><th>wall time</th></tr>"]
    for i, e in enumerate(entries, 1):
        name = f'<a href="{esc(quote(e.page))}">{esc(e.stem)}</a>' if e.page else esc(e.stem)
        status = esc(STATUS_LABELS[e.status]) + (f"<br><small>{esc(e.note)}</small>" if e.note else "")
        rows.append(f'<tr><td class="num">{i}</td><td>{name}</td><td class="{e.status}">{status}</td>'
                    f'<td class="num">{esc(format_seconds(e.wall_time_s))}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


def format_seconds(seconds: float | None) -> str:
    """:func:`~zsar.workbook.monitor.format_duration` (``"42s"``, ``"3m05s"``, ``"2h01m"``); ``"unknown"``
    for None or a non-finite value."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    return format_duration(seconds)


_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")


def markdown_html(text: str) -> str:
    """A small Markdown subset as HTML: ``#`` headings (shifted down two levels under the page's
    own), pipe tables (the ``|---|`` row dropped, first row as header), other lines as paragraphs.
    Inline ``code`` spans become ``<code>``; everything else is escaped, never interpreted."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            if not _TABLE_SEPARATOR.match(stripped):
                table.append([cell.strip() for cell in stripped.strip("|").split("|")])
            continue
        if table:
            out.append(_table_html(table))
            table = []
        heading = re.match(r"^(#{1,4})\s+(.*)$", stripped)
        if heading:
            level = min(len(heading.group(1)) + 2, 6)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    return "\n".join(out)


def _table_html(rows: list[list[str]]) -> str:
    head, body = rows[0], rows[1:]
    lines = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(lines + ["</table>"])


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

