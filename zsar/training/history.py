"""Per-epoch training history, kept as ``history.csv`` and ``history.json`` in the run folder.

Both files are rewritten atomically after every epoch, so a plot or a notebook reading them
while a run is going never sees a half-written row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from zsar.io import atomic_write_json, atomic_write_text

CSV_NAME = "history.csv"
JSON_NAME = "history.json"


def _plain(value: Any) -> Any:
    """Tensors / numpy scalars -> Python numbers; NaN and inf -> ``None`` (valid JSON)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"history values must be scalars, got {type(value).__name__}: {value!r}")


class History:
    """Rows of per-epoch metrics, e.g. ``{"epoch": 0, "train_loss": 1.2, "lr": 1e-4, ...}``.

    Args:
        rows: initial rows (e.g. restored from a checkpoint).
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = ()):
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def append(self, row: dict[str, Any]) -> dict[str, Any]:
        """Add one epoch's metrics (scalars only); return the stored row."""
        clean = {str(k): _plain(v) for k, v in row.items()}
        self.rows.append(clean)
        return clean

    def columns(self) -> list[str]:
        """All keys in first-seen order (eval metrics may be missing from some epochs)."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def column(self, name: str) -> list[Any]:
        """The values of ``name`` per epoch (``None`` where an epoch lacks it)."""
        if self.rows and name not in self.columns():
            raise KeyError(f"no column {name!r} in history; columns: {self.columns()}")
        return [row.get(name) for row in self.rows]

    def to_csv(self) -> str:
        """The rows as CSV text (missing values empty)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_dataframe(self):
        """The rows as a pandas DataFrame, one row per epoch."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns())

    def write(self, run_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``history.csv`` and ``history.json`` into ``run_dir`` atomically."""
        run_dir = Path(run_dir)
        csv_path = atomic_write_text(run_dir / CSV_NAME, self.to_csv())
        json_path = atomic_write_json(run_dir / JSON_NAME, self.rows)
        return csv_path, json_path

    @classmethod
    def read(cls, run_dir: str | os.PathLike) -> "History":
        """Load ``<run_dir>/history.json``.

        Raises:
            FileNotFoundError: the run folder has no history.
        """
        path = Path(run_dir) / JSON_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no training history at {path}")
        return cls(json.loads(path.read_text()))
