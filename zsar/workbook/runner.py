"""Run the whole workbook: every notebook in order through papermill, then a results summary.

Usage::

    python -m zsar.workbook                 # the quick preset: the notebooks' defaults (about an hour on 2 CPU cores)
    python -m zsar.workbook --preset paper  # the results table: full benchmark, both corpus regimes, 15 epochs
    python -m zsar.workbook --smoke         # the CI-sized run
    python -m zsar.workbook --only 01_data_prep -p N_SPLITS 5

Each notebook runs with ``OUTPUT_DIR=<runs>/<notebook>`` and ``FIGURES_DIR=<figures>``; the
executed copy is saved beside its ``metrics.json``. ``<runs>/summary.md`` and ``summary.json``
gather every notebook's metrics; ``<runs>/report/index.html`` links every executed notebook
rendered to HTML, with the summary and the figures (``--no-report`` skips it). A preset with
several corpus regimes (:mod:`zsar.workbook.presets`) runs notebooks 02–07 once more per further
regime, into ``<runs>/<regime>/`` and ``<figures>/<regime>/``, and writes ``<runs>/regimes.md``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from zsar import paths
from zsar.io import atomic_write_json, atomic_write_text
from zsar.paths import METRICS_FILE
from zsar.progress import ENV as PROGRESS_ENV
from zsar.workbook.html_report import write_report
from zsar.workbook.monitor import ProgressMonitor, Timings, format_duration
from zsar.workbook.presets import PRESETS, REGIME_NOTEBOOKS, get_preset


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """The workbook's notebooks in run order (``NN_name.ipynb``, sorted by name)."""
    folder = folder or paths.notebooks_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(notebook: Path, runs_dir: Path, figures_dir: Path, parameters: dict[str, Any],
                 kernel_name: str = "python3", log_output: bool = False) -> Path:
    """Execute one notebook with papermill into ``<runs_dir>/<stem>/``; return the run folder.

    Only parameters the notebook declares in its ``parameters`` cell are passed, so one
    command line can address several notebooks.
    """
    import papermill as pm

    run_dir = runs_dir / notebook.stem
    run_dir.mkdir(parents=True, exist_ok=True)
    declared = set(pm.inspect_notebook(str(notebook)))
    params = {"OUTPUT_DIR": str(run_dir), "FIGURES_DIR": str(figures_dir), **parameters}
    params = {k: v for k, v in params.items() if k in declared}
    pm.execute_notebook(str(notebook), str(run_dir / notebook.name), parameters=params,
                        kernel_name=kernel_name, cwd=str(notebook.parent), log_output=log_output,
                        progress_bar=False)
    return run_dir


def timing_mode(args: argparse.Namespace) -> str:
    """What earlier wall times are comparable with this run: smoke or full, and the ``-p`` parameters."""
    extra = "".join(f" {name}={value}" for name, value in sorted(args.parameter))
    preset = "" if getattr(args, "preset", "quick") == "quick" else f" preset={args.preset}"
    return ("smoke" if args.smoke else "full") + preset + extra


def run_in_order(notebooks: list[Path], runs_dir: Path, figures_dir: Path, params: dict[str, Any],
                 log_output: bool, mode: str) -> tuple[dict[str, float], str | None]:
    """Run ``notebooks`` in order, printing progress; stop at the first that fails.

    While a notebook runs, ``$ZSAR_PROGRESS_FILE`` points at ``<runs>/<stem>/progress.jsonl`` and a
    :class:`~zsar.workbook.monitor.ProgressMonitor` prints what it reports (method, split, epoch)
    with the elapsed time and an estimate of what is left from earlier runs of the same ``mode``.

    Returns:
        ``({stem: wall seconds}, stem of the failed notebook or None)``.
    """
    timings: dict[str, float] = {}
    book, start_all = Timings(mode), time.time()
    stems = [nb.stem for nb in notebooks]
    for i, nb in enumerate(notebooks):
        label, remaining = f"{nb.stem} ({i + 1}/{len(notebooks)})", stems[i + 1:]
        print(f"[zsar.workbook] {label} starting | total {format_duration(time.time() - start_all)} | "
              f"left {book.left(remaining, nb.stem)}", flush=True)
        events = runs_dir / nb.stem / "progress.jsonl"
        events.parent.mkdir(parents=True, exist_ok=True)
        events.unlink(missing_ok=True)
        start = time.perf_counter()
        try:
            with _environment(PROGRESS_ENV, str(events)), ProgressMonitor(
                    events, label, start_all, lambda elapsed, stem=nb.stem, rest=remaining: book.left(rest, stem, elapsed)):
                run_notebook(nb, runs_dir, figures_dir, params, log_output=log_output)
        except Exception as err:  # papermill's PapermillExecutionError names the failing cell
            timings[nb.stem] = time.perf_counter() - start
            print(f"[zsar.workbook] {nb.name} FAILED after {format_duration(timings[nb.stem])}: "
                  f"{str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}\n"
                  f"[zsar.workbook] the executed notebook with the error: {runs_dir / nb.stem / nb.name}", flush=True)
            return timings, nb.stem
        timings[nb.stem] = time.perf_counter() - start
        book.record(nb.stem, timings[nb.stem])
        print(f"[zsar.workbook] {nb.name} done in {format_duration(timings[nb.stem])}", flush=True)
    return timings, None


@contextlib.contextmanager
def _environment(name: str, value: str):
    """``os.environ[name] = value`` inside the block (the kernel papermill starts inherits it)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def run_regimes(notebooks: list[Path], runs_dir: Path, figures_dir: Path, params: dict[str, Any],
                regimes: tuple[str, ...], log_output: bool, mode: str) -> tuple[dict[str, float], str | None]:
    """The whole run: ``notebooks`` for the first regime, then the regime-dependent ones per further regime.

    A further regime ``r`` reads ``01_data_prep`` of the first and writes ``<runs>/r/`` and
    ``<figures>/r/``; its wall times are keyed ``r/<stem>``.
    """
    timings, failed = run_in_order(notebooks, runs_dir, figures_dir, {**params, "REGIME": regimes[0]},
                                   log_output, mode)
    for regime in regimes[1:]:
        later = [nb for nb in notebooks if nb.stem in REGIME_NOTEBOOKS]
        if failed or not later:
            break
        print(f"[zsar.workbook] regime {regime}: notebooks {', '.join(nb.stem for nb in later)}", flush=True)
        sub = {**params, "REGIME": regime, "DATA_PREP_DIR": str(runs_dir / "01_data_prep")}
        more, failed = run_in_order(later, runs_dir / regime, figures_dir / regime, sub, log_output,
                                    f"{mode} regime={regime}")
        timings.update({f"{regime}/{stem}": t for stem, t in more.items()})
        failed = failed and f"{regime}/{failed}"
    return timings, failed


def regimes_table(runs_dir: Path, regimes: tuple[str, ...]) -> Path | None:
    """``<runs>/regimes.md``: notebook 06's comparison table of each regime, one after the other.

    The first regime's notebook 06 is ``<runs>/06_methods``, a further one's ``<runs>/<regime>/06_methods``.
    Returns the file, or ``None`` when no regime has a table yet.
    """
    parts = []
    for i, regime in enumerate(regimes):
        table = (runs_dir if i == 0 else runs_dir / regime) / "06_methods" / "results.md"
        if table.is_file():
            parts.append(f"# Corpus regime `{regime}`\n\n" + table.read_text(encoding="utf-8").strip() + "\n")
    if not parts:
        return None
    path = runs_dir / "regimes.md"
    atomic_write_text(path, "\n".join(parts))
    return path


def closing_words(runs_dir: Path, figures_dir: Path) -> str:
    """The last lines of a run: the main results table (notebook 06's) and where the figures are."""
    lines = []
    table = runs_dir / "06_methods" / "results.md"
    if table.is_file():
        lines += ["[zsar.workbook] main results (notebook 06, " + str(table) + "):", table.read_text().strip()]
    figures = sorted(figures_dir.glob("*.png")) if figures_dir.is_dir() else []
    lines.append(f"[zsar.workbook] {len(figures)} figure(s) in {figures_dir}")
    return "\n".join(lines)


def summarise(runs_dir: Path, notebooks: list[Path], timings: dict[str, float]) -> dict[str, Any]:
    """Gather each notebook's ``metrics.json`` into ``summary.json`` and ``summary.md``."""
    summary: dict[str, Any] = {}
    lines = ["# Workbook results summary", ""]
    for nb in notebooks:
        metrics_path = runs_dir / nb.stem / METRICS_FILE
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        summary[nb.stem] = {"wall_time_s": round(timings.get(nb.stem, float("nan")), 1), "metrics": metrics}
        lines += [f"## {nb.stem}  ({timings.get(nb.stem, float('nan')):.0f} s)", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_short(v)} |" for k, v in metrics.items()]
        lines.append("")
    atomic_write_json(runs_dir / "summary.json", summary)
    atomic_write_text(runs_dir / "summary.md", "\n".join(lines) + "\n")
    return summary


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clear_figures(figures_dir: Path) -> int:
    """Delete the notebooks' figures (``NN_*.png`` / ``NN_*.pdf``) in ``figures_dir``; return how many."""
    old = [p for pattern in ("[0-9][0-9]_*.png", "[0-9][0-9]_*.pdf") for p in Path(figures_dir).glob(pattern)]
    for path in old:
        path.unlink()
    return len(old)


def parse_value(text: str) -> Any:
    """papermill-style ``-p NAME VALUE``: Python literals where they parse, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def resolve_path_parameters(params: dict[str, Any], cwd: Path | None = None) -> dict[str, Any]:
    """Make relative folder parameters absolute against ``cwd`` (default: the current directory).

    Notebooks run with their own folder as working directory, so ``-p DATA_ROOT data/x`` typed in
    the repository root would otherwise name ``notebooks/data/x``. Folder parameters (names ending
    in ``_DIR`` or ``_ROOT``) are resolved when they are relative strings; ``PRETRAINED`` only when
    it names an existing file (otherwise it is an open_clip tag); other values are kept.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    out = dict(params)
    for name, value in params.items():
        if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
            continue
        is_folder = name.endswith(("_DIR", "_ROOT"))
        if is_folder or (name == "PRETRAINED" and (cwd / value).is_file()):
            out[name] = str((cwd / Path(value).expanduser()).resolve())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CI-sized run (SMOKE=True)")
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                        help="; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))
    parser.add_argument("--seed", type=int, default=0, help="SEED passed to every notebook")
    parser.add_argument("--only", nargs="*", default=None, help="notebook stems to run (default: all)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="default: <root>/runs")
    parser.add_argument("--figures-dir", type=Path, default=None, help="default: <root>/figures")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--log-output", action="store_true", help="stream cell output to the terminal")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report <runs>/report/index.html")
    args = parser.parse_args(argv)

    runs_dir = (args.runs_dir or paths.runs_dir()).resolve()
    figures_dir = (args.figures_dir or paths.figures_dir()).resolve()
    preset = get_preset(args.preset)
    params = {"SMOKE": args.smoke, "SEED": args.seed, **preset.parameters,
              **{k: parse_value(v) for k, v in args.parameter}}
    params = resolve_path_parameters(params)
    notebooks = [nb for nb in list_notebooks() if args.only is None or nb.stem in args.only]
    if not notebooks:
        parser.error(f"no notebook matches --only {args.only}; have {[n.stem for n in list_notebooks()]}")
    if args.only is None:  # a whole-workbook run regenerates figures/ from scratch: no stale figure survives
        removed = clear_figures(figures_dir) + sum(clear_figures(figures_dir / r) for r in preset.regimes[1:]
                                                   if (figures_dir / r).is_dir())
        print(f"[zsar.workbook] removed {removed} old figure file(s) from {figures_dir}", flush=True)
    regimes = (params["REGIME"],) if "REGIME" in params else preset.regimes  # -p REGIME runs that one only
    timings, failed = run_regimes(notebooks, runs_dir, figures_dir, params, regimes, args.log_output, timing_mode(args))
    if len(regimes) > 1 and (table := regimes_table(runs_dir, regimes)) is not None:
        print(f"[zsar.workbook] both regimes' tables: {table}", flush=True)
    summarise(runs_dir, notebooks, timings)
    print(f"[zsar.workbook] summary: {runs_dir / 'summary.md'}", flush=True)
    if not args.no_report:  # every workbook notebook: those not run now show their earlier run, or as missing
        report = write_report(runs_dir, figures_dir, list_notebooks(), timings)
        print(f"[zsar.workbook] report: {report}", flush=True)
    print(closing_words(runs_dir, figures_dir), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
