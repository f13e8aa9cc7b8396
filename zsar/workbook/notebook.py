"""Small helpers every notebook uses: parameter checks, run folders, recorded metrics.

The checks (:func:`check_choice`, :func:`check_range`, :class:`ParameterError`) live in
:mod:`zsar.experiments.parameters`, beside the experiment code that validates its own parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from zsar import paths
from zsar.experiments.parameters import ParameterError, check_choice, check_range  # noqa: F401
from zsar.io import atomic_write_json, atomic_write_text, jsonable
from zsar.paths import METRICS_FILE


def run_folder(notebook: str, output_dir: str | Path | None = None) -> Path:
    """The run folder of a notebook: ``output_dir`` if given, else ``runs/<notebook>``; created."""
    folder = Path(output_dir) if output_dir else paths.runs_dir() / notebook
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def figures_folder(figures_dir: str | Path | None = None) -> Path:
    """Where a notebook writes its figures: ``figures_dir`` if given, else the project's ``figures/``."""
    folder = Path(figures_dir) if figures_dir else paths.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def record_metrics(run_dir: str | Path, metrics: dict[str, Any], merge: bool = True) -> Path:
    """Write ``metrics`` to ``<run_dir>/metrics.json`` atomically (merged with what is there)."""
    path = Path(run_dir) / METRICS_FILE
    current = load_metrics(run_dir) if merge and path.exists() else {}
    current.update(jsonable(metrics))
    return atomic_write_json(path, current)


def load_metrics(run_dir: str | Path) -> dict[str, Any]:
    """Read ``<run_dir>/metrics.json``."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


def save_results(run_dir: str | Path, markdown: str, payload: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``run_dir/results.md`` and ``run_dir/results.json`` (NaN as ``null``) atomically."""
    run_dir = Path(run_dir)
    return (atomic_write_text(run_dir / "results.md", markdown),
            atomic_write_json(run_dir / "results.json", jsonable(payload)))
