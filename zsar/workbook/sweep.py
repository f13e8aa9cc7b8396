"""Run one notebook over a Cartesian grid of parameter values and gather every point's metrics.

Usage::

    python -m zsar.workbook.sweep notebooks/03_semantic_transfer.ipynb \\
        --grid "K_GRID=[1],[3],[5]" --grid "TAU_GRID=[0.03],[0.1]" \\
        --fixed DATA_PREP_DIR=$PWD/runs/01_data_prep --fixed TRAINING_DIR=$PWD/runs/02_training --workers 2

Values are read like ``python -m zsar.workbook -p``: Python literals where they parse (int, float,
True/False/None, lists), else strings; commas inside brackets or quotes do not split a grid.

Layout under ``<out>/<stem>/`` (``<out>`` defaults to ``<runs>/sweeps``)::

    K_GRID=[1]__TAU_GRID=[0.03]/   one folder per point, named from its grid values
        point.json                 its parameters and outcome (ok / failed + the error's last lines)
        <stem>/                    the notebook's run folder: metrics.json + the executed notebook
        figures/                   its figures, so points never overwrite the project's figures/
    sweep.csv, sweep.json, sweep.md   one row per point: grid values, status, numeric metrics

A point whose folder already holds complete metrics for the same parameters is skipped unless
``--force``. The exit status is 1 when any point failed; the other points are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import multiprocessing
import re
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from zsar import paths
from zsar.io import atomic_write_json, atomic_write_text
from zsar.paths import METRICS_FILE
from zsar.workbook.notebook import load_metrics
from zsar.workbook.runner import list_notebooks, parse_value, run_notebook

POINT_FILE = "point.json"
TABLE_NAME = "sweep"
RESERVED = ("OUTPUT_DIR", "FIGURES_DIR")  # set per point by the sweep itself
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+\-\[\]]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_MAX_NAME = 160


class SweepSpecError(ValueError):
    """A sweep is ill-specified (unknown parameter, duplicate value, bad syntax); the message names it."""


@dataclass
class SweepPoint:
    """One grid point: its folder ``name``, its ``grid`` values, all its ``params`` (grid + fixed), its ``folder``."""

    name: str
    grid: dict[str, Any]
    params: dict[str, Any]
    folder: Path


def split_values(text: str) -> list[str]:
    """Split ``text`` on the commas that are not inside brackets, braces, parentheses or quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if depth != 0 or quote:
        raise SweepSpecError(f"unbalanced brackets or quotes in grid values {text!r}")
    return [p.strip() for p in parts]


def _assignment(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise SweepSpecError(f"{option} {text!r} must look like NAME=value")
    return name.strip(), value.strip()


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["K=1,3", "TAU=0.1,0.3"]`` -> ``{"K": [1, 3], "TAU": [0.1, 0.3]}`` (values as in the workbook)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, text = _assignment(item, "--grid")
        if name in grid:
            raise SweepSpecError(f"--grid {name} is given twice")
        texts = split_values(text)
        if any(not t for t in texts):
            raise SweepSpecError(f"--grid {item!r} has an empty value")
        values = [parse_value(t) for t in texts]
        keys = [json.dumps(v, sort_keys=True, default=repr) for v in values]
        if len(set(keys)) != len(keys):
            raise SweepSpecError(f"--grid {name} repeats a value: {values!r}")
        grid[name] = values
    return grid


def parse_fixed(items: list[str]) -> dict[str, Any]:
    """``["SEED=1", "DEVICE=cpu"]`` -> ``{"SEED": 1, "DEVICE": "cpu"}``."""
    pairs = [_assignment(item, "--fixed") for item in items]
    twice = sorted({n for n, _ in pairs if [m for m, _ in pairs].count(n) > 1})
    if twice:
        raise SweepSpecError(f"--fixed {twice} given twice")
    return {name: parse_value(text) for name, text in pairs}


def check_parameters(notebook: Path, grid: dict[str, Any], fixed: dict[str, Any]) -> list[str]:
    """Return the notebook's declared parameters; raise :class:`SweepSpecError` for a name it does not
    declare (listing the declared ones), a name the sweep sets itself, or one both swept and fixed."""
    import papermill as pm

    declared = list(pm.inspect_notebook(str(notebook)))
    both = sorted(set(grid) & set(fixed))
    if both:
        raise SweepSpecError(f"{both} given both as --grid and --fixed")
    reserved = sorted(n for n in [*grid, *fixed] if n in RESERVED)
    if reserved:
        raise SweepSpecError(f"{reserved} are set per point by the sweep; leave them out")
    unknown = [n for n in [*grid, *fixed] if n not in declared]
    if unknown:
        raise SweepSpecError(f"{notebook.name} does not declare {unknown}; its parameters are {declared}")
    return declared


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), default=repr)
    return repr(value)


def point_name(grid_values: dict[str, Any]) -> str:
    """Deterministic, file-system-safe folder name: ``K=3__TAU=0.1``.

    Characters outside ``[A-Za-z0-9._,=+-[]]`` become ``_`` and a long name is cut; either way a
    short hash of the exact values is appended so that two points never share a folder.
    """
    raw = "__".join(f"{k}={_value_text(v)}" for k, v in grid_values.items())
    safe = _UNSAFE.sub("_", raw)
    if safe == raw and len(raw) <= _MAX_NAME:
        return raw
    digest = hashlib.sha1(repr(sorted(grid_values.items())).encode()).hexdigest()[:8]
    return f"{safe[:_MAX_NAME]}~{digest}"


def make_points(grid: dict[str, list[Any]], fixed: dict[str, Any], sweep_dir: Path) -> list[SweepPoint]:
    """Every point of the Cartesian product of ``grid``, in grid order (last name varies fastest)."""
    points = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        name = point_name(values)
        points.append(SweepPoint(name, values, {**fixed, **values}, sweep_dir / name))
    return points


def resolve_notebook(text: str) -> Path:
    """A notebook path, or the stem / file name of one of the workbook's notebooks."""
    path = Path(text)
    if path.is_file():
        return path.resolve()
    matches = [nb for nb in list_notebooks() if text in (nb.stem, nb.name)]
    if not matches:
        raise SweepSpecError(f"notebook {text!r} not found; workbook notebooks: {[nb.stem for nb in list_notebooks()]}")
    return matches[0].resolve()


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def is_complete(point: SweepPoint) -> bool:
    """True when the point ran to the end with the same parameters and its metrics are on disk."""
    path = point.folder / POINT_FILE
    info = json.loads(path.read_text()) if path.is_file() else None
    return (info is not None and info.get("status") == "ok" and info.get("parameters") == _as_json(point.params)
            and (point.folder / info["run_dir"] / METRICS_FILE).is_file())


def _error_lines(exc: BaseException, keep: int = 8) -> str:
    """The last lines of the error (the kernel's traceback for a failed cell), without colour codes."""
    import papermill as pm

    text = str(exc) if isinstance(exc, pm.PapermillExecutionError) else "".join(traceback.format_exception(exc))
    lines = [line.rstrip() for line in _ANSI.sub("", text).splitlines() if line.strip().strip("-")]
    return "\n".join(lines[-keep:])


def _outcome(notebook: Path, point: SweepPoint, **fields: Any) -> dict[str, Any]:
    """The content of a point's ``point.json``."""
    return {"notebook": str(notebook), "point": point.name, "grid_names": list(point.grid), "grid": point.grid,
            "parameters": point.params, "run_dir": notebook.stem,
            "executed_notebook": str(point.folder / notebook.stem / notebook.name), **fields}


def run_point(notebook: Path, point: SweepPoint) -> dict[str, Any]:
    """Execute ``notebook`` for one point (in a worker process); record and return its outcome.

    Never raises for a failing notebook: the outcome has ``status="failed"``, ``error`` (last
    lines of the traceback) and ``executed_notebook`` (the partially executed copy).
    """
    run_dir = point.folder / notebook.stem
    info = _outcome(notebook, point, status="running")
    atomic_write_json(point.folder / POINT_FILE, _as_json(info))
    # record_metrics merges into an existing file: stale metrics of an earlier run must not leak in
    (run_dir / METRICS_FILE).unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        run_notebook(notebook, point.folder, point.folder / "figures", point.params)
        if not (run_dir / METRICS_FILE).is_file():
            raise FileNotFoundError(f"{notebook.name} finished but recorded no metrics: {run_dir / METRICS_FILE} "
                                    "is missing (call zsar.workbook.notebook.record_metrics)")
        info["status"] = "ok"
    except Exception as exc:  # a failed point is reported, the sweep goes on
        info.update(status="failed", error=_error_lines(exc))
    info["wall_time_s"] = round(time.perf_counter() - start, 1)
    atomic_write_json(point.folder / POINT_FILE, _as_json(info))
    return info


def run_points(notebook: Path, points: list[SweepPoint], workers: int = 1) -> list[dict[str, Any]]:
    """Run ``points`` in ``workers`` processes with a progress bar; outcomes in the order of ``points``."""
    outcomes: dict[str, dict[str, Any]] = {}
    # spawn: a clean interpreter per worker, no fork of this process's threads (tqdm's monitor)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_point, notebook, p): p for p in points}
        with tqdm(total=len(points), desc=f"sweep {notebook.stem}", unit="point") as bar:
            for future in as_completed(futures):
                point = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker process itself died (out of memory, killed)
                    outcome = _outcome(notebook, point, status="failed", error=_error_lines(exc))
                    atomic_write_json(point.folder / POINT_FILE, _as_json(outcome))
                outcomes[point.name] = outcome
                bar.set_postfix(failed=sum(o["status"] != "ok" for o in outcomes.values()), refresh=False)
                bar.update()
    return [outcomes[p.name] for p in points]


def format_failure(outcome: dict[str, Any]) -> str:
    """A report of one failed point: its parameters, the error's last lines, its executed notebook."""
    error = "\n".join("    " + line for line in str(outcome.get("error", "")).splitlines())
    return (f"point {outcome['point']} FAILED\n  parameters: {outcome['grid']}\n  error:\n{error}\n"
            f"  executed notebook: {outcome['executed_notebook']}")


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested metrics as ``{"a.b.c": value}``; None (a NaN recorded) -> NaN; no str/bool/list."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "."))
        elif value is None:
            flat[name] = math.nan
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (bool, int, float)):
        return (1, float(value))
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=repr))


def gather(sweep_dir: str | Path) -> pd.DataFrame:
    """Reload a sweep: one row per point folder under ``sweep_dir``.

    Returns:
        DataFrame ``(n_points, n_grid + 2 + n_metrics)``: the grid parameters (in grid order), ``status``
        (``ok`` / ``failed`` / ``running``), the flattened numeric metrics of every ``ok`` point
        (NaN elsewhere) and ``point`` (the folder name); rows sorted by the grid values.

    Raises:
        FileNotFoundError: ``sweep_dir`` holds no point folder.
    """
    sweep_dir = Path(sweep_dir)
    files = sorted(sweep_dir.glob(f"*/{POINT_FILE}"))
    if not files:
        raise FileNotFoundError(f"no sweep point (*/{POINT_FILE}) under {sweep_dir}")
    infos = [(path.parent, json.loads(path.read_text())) for path in files]
    names = list(dict.fromkeys(n for _, info in infos for n in info["grid_names"]))
    rows, metric_names = [], {}
    for folder, info in infos:
        row = {n: info["grid"].get(n) for n in names}
        row["status"] = info["status"]
        run_dir = folder / info["run_dir"]
        if info["status"] == "ok" and (run_dir / METRICS_FILE).is_file():
            for key, value in flatten_metrics(load_metrics(run_dir)).items():
                column = f"metrics.{key}" if key in names or key in ("status", "point") else key
                metric_names[column] = None
                row[column] = value
        row["point"] = folder.name
        rows.append(row)
    rows.sort(key=lambda r: [_sort_key(r[n]) for n in names])
    frame = pd.DataFrame(rows, columns=[*names, "status", *metric_names, "point"])
    empty = [c for c in metric_names if frame[c].isna().all()]
    return frame.drop(columns=empty)


def _md_cell(value: Any) -> str:
    text = ("" if math.isnan(value) else f"{value:.4g}") if isinstance(value, float) else _value_text(value)
    return text.replace("|", r"\|")


def to_markdown(frame: pd.DataFrame, title: str = "") -> str:
    """A Markdown pipe table of ``frame`` (numbers to 4 significant digits), below an optional title."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [title, ""] if title else []
    lines += ["| " + " | ".join(_md_cell(str(c)) for c in frame.columns) + " |",
              "|" + "|".join("--:" if n else ":--" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_tables(frame: pd.DataFrame, sweep_dir: str | Path, title: str = "") -> dict[str, Path]:
    """Write ``sweep.csv``, ``sweep.json`` (a list of rows, NaN as null) and ``sweep.md`` atomically."""
    sweep_dir = Path(sweep_dir)
    records = json.loads(frame.to_json(orient="records", double_precision=15))
    return {"csv": atomic_write_text(sweep_dir / f"{TABLE_NAME}.csv", frame.to_csv(index=False)),
            "json": atomic_write_json(sweep_dir / f"{TABLE_NAME}.json", records),
            "md": atomic_write_text(sweep_dir / f"{TABLE_NAME}.md", to_markdown(frame, title))}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zsar.workbook.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", help="notebook path, or the stem of a workbook notebook (03_semantic_transfer)")
    parser.add_argument("--grid", action="append", required=True, metavar="NAME=v1,v2",
                        help="a swept parameter and its values; repeat for a Cartesian grid")
    parser.add_argument("--fixed", action="append", default=[], metavar="NAME=value",
                        help="a parameter set to one value for every point; repeatable")
    parser.add_argument("--workers", type=int, default=1, help="points run in parallel (worker processes)")
    parser.add_argument("--smoke", action="store_true", help="pass SMOKE=True to every point")
    parser.add_argument("--out", type=Path, default=None, help="sweeps folder (default: <runs>/sweeps)")
    parser.add_argument("--force", action="store_true", help="re-run points that already have complete metrics")
    parser.add_argument("--dry-run", action="store_true", help="print the points and what would run, run nothing")
    return parser


def _plan(args: argparse.Namespace) -> tuple[Path, Path, dict[str, Any], list[SweepPoint]]:
    notebook = resolve_notebook(args.notebook)
    grid, fixed = parse_grid(args.grid), parse_fixed(args.fixed)
    if args.smoke and fixed.setdefault("SMOKE", True) is not True:
        raise SweepSpecError(f"--smoke contradicts --fixed SMOKE={fixed['SMOKE']!r}")
    check_parameters(notebook, grid, fixed)
    if args.workers < 1:
        raise SweepSpecError(f"--workers {args.workers} must be at least 1")
    sweep_dir = (args.out or paths.runs_dir() / "sweeps").resolve() / notebook.stem
    return notebook, sweep_dir, fixed, make_points(grid, fixed, sweep_dir)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        notebook, sweep_dir, fixed, points = _plan(args)
    except SweepSpecError as exc:
        parser.error(str(exc))
    done = set() if args.force else {p.name for p in points if is_complete(p)}
    todo = [p for p in points if p.name not in done]
    print(f"[zsar.workbook.sweep] {notebook.name}: {len(points)} points in {sweep_dir}; {len(done)} already complete "
          f"(skipped), {len(todo)} to run with {min(args.workers, max(len(todo), 1))} worker(s)", flush=True)
    if args.dry_run:
        for p in points:
            print(f"  {'skip' if p.name in done else 'run '}  {p.name}  {p.params}")
        return 0
    outcomes = run_points(notebook, todo, args.workers) if todo else []
    failed = [o for o in outcomes if o["status"] != "ok"]
    for outcome in failed:
        print("[zsar.workbook.sweep] " + format_failure(outcome), flush=True)
    fixed_text = ", ".join(f"{k}={_value_text(v)}" for k, v in fixed.items()) or "none"
    tables = write_tables(gather(sweep_dir), sweep_dir, f"*sweep of {notebook.name}; fixed: {fixed_text}*")
    print(f"[zsar.workbook.sweep] {len(failed)} of {len(todo)} run point(s) failed; table: {tables['md']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
