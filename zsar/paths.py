"""Every path the workbook uses comes from here; notebooks never hard-code one.

The project root is ``$ZSAR_ROOT`` if set, else the checkout that holds this package
(the folder with ``pyproject.toml`` above ``zsar/``), else the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

METRICS_FILE = "metrics.json"
"""The file a run folder records its metrics in (notebooks, split runs)."""


def project_root() -> Path:
    """Return the project root folder."""
    env = os.environ.get("ZSAR_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd().resolve()


def data_dir() -> Path:
    """Generated data (the embedded benchmark) — ``$ZSAR_DATA`` or ``<root>/data``."""
    return Path(os.environ.get("ZSAR_DATA", project_root() / "data")).resolve()


def runs_dir() -> Path:
    """Run folders with metrics, checkpoints and executed notebooks — ``<root>/runs``."""
    return Path(os.environ.get("ZSAR_RUNS", project_root() / "runs")).resolve()


def figures_dir() -> Path:
    """Figures written by the notebooks — ``<root>/figures``."""
    return Path(os.environ.get("ZSAR_FIGURES", project_root() / "figures")).resolve()


def cache_dir() -> Path:
    """Feature and frame caches — ``$ZSAR_CACHE`` or ``<root>/cache``."""
    return Path(os.environ.get("ZSAR_CACHE", project_root() / "cache")).resolve()


def shared_data_dir() -> Path:
    """The read-only real clips and official split files (``../shared/data``), may be absent."""
    return Path(os.environ.get("ZSAR_SHARED_DATA", project_root().parent / "shared" / "data")).resolve()


def notebooks_dir() -> Path:
    """The ordered notebooks."""
    return project_root() / "notebooks"
