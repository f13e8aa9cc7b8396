"""Run the whole workbook: every notebook in order through papermill, then a results summary.

Usage::

    python -m zsar.workbook                 # full run on the embedded benchmark
    python -m zsar.workbook --smoke         # the CI-sized run
    python -m zsar.workbook --only 01_data_prep -p N_SPLITS 5

Each notebook runs with ``OUTPUT_DIR=<runs>/<notebook>`` and ``FIGURES_DIR=<figures>``; the
executed copy is saved beside its ``metrics.json``. ``<runs>/summary.md`` and ``summary.json``
gather every notebook's metrics.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path
from typing import Any

from zsar import paths
from zsar.io import atomic_write_json, atomic_write_text
from zsar.paths import METRICS_FILE


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
    parser.add_argument("--seed", type=int, default=0, help="SEED passed to every notebook")
    parser.add_argument("--only", nargs="*", default=None, help="notebook stems to run (default: all)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="default: <root>/runs")
    parser.add_argument("--figures-dir", type=Path, default=None, help="default: <root>/figures")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--log-output", action="store_true", help="stream cell output to the terminal")
    args = parser.parse_args(argv)

    runs_dir = (args.runs_dir or paths.runs_dir()).resolve()
    figures_dir = (args.figures_dir or paths.figures_dir()).resolve()
    params = {"SMOKE": args.smoke, "SEED": args.seed, **{k: parse_value(v) for k, v in args.parameter}}
    params = resolve_path_parameters(params)
    notebooks = [nb for nb in list_notebooks() if args.only is None or nb.stem in args.only]
    if not notebooks:
        parser.error(f"no notebook matches --only {args.only}; have {[n.stem for n in list_notebooks()]}")
    if args.only is None:  # a whole-workbook run regenerates figures/ from scratch: no stale figure survives
        removed = clear_figures(figures_dir)
        print(f"[zsar.workbook] removed {removed} old figure file(s) from {figures_dir}", flush=True)
    timings: dict[str, float] = {}
    for nb in notebooks:
        start = time.perf_counter()
        print(f"[zsar.workbook] running {nb.name} ...", flush=True)
        run_notebook(nb, runs_dir, figures_dir, params, log_output=args.log_output)
        timings[nb.stem] = time.perf_counter() - start
        print(f"[zsar.workbook] {nb.name} done in {timings[nb.stem]:.0f} s", flush=True)
    summarise(runs_dir, notebooks, timings)
    print(f"[zsar.workbook] summary: {runs_dir / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
