"""Small helpers every notebook uses: parameter checks, run folders, recorded metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from zsar import paths
from zsar.io import atomic_write_json

METRICS_FILE = "metrics.json"


class ParameterError(ValueError):
    """A notebook parameter has a value outside its allowed set; the message names both."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`ParameterError`."""
    allowed = list(allowed)
    if value not in allowed:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; choose one of {allowed}")
    return value


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None,
                types: tuple[type, ...] = (int, float)) -> Any:
    """Return ``value`` if it is a number of ``types`` within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, types):
        raise ParameterError(f"parameter {name}={value!r} must be of type {[t.__name__ for t in types]}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(f"parameter {name}={value!r} must lie in [{low}, {high}]")
    return value


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


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and paths so metrics serialise; NaN/inf become None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record_metrics(run_dir: str | Path, metrics: dict[str, Any], merge: bool = True) -> Path:
    """Write ``metrics`` to ``<run_dir>/metrics.json`` atomically (merged with what is there)."""
    path = Path(run_dir) / METRICS_FILE
    current = load_metrics(run_dir) if merge and path.exists() else {}
    current.update(_jsonable(metrics))
    return atomic_write_json(path, current)


def load_metrics(run_dir: str | Path) -> dict[str, Any]:
    """Read ``<run_dir>/metrics.json``."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())
