"""The class catalog (names, descriptions, semantic units, temporal pairs) and unit coverage."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from zsar.data.embedded.actions import UNIT_GROUPS, action_classes
from zsar.data.errors import AnnotationError, MissingFilesError


@dataclass(frozen=True)
class ClassInfo:
    """One class of the embedded benchmark, as notebooks see it.

    Attributes:
        index: 0-based class index (label); ``classInd.txt`` holds ``index + 1``.
        dir: UCF101-style folder name, e.g. ``KickABall``.
        name: natural English name, e.g. ``"kick a ball"``.
        description: one to three sentences.
        units: semantic units per group (``body_parts``, ``objects``, ``scenes``, ``motions``).
        temporal_pair: ``dir`` of the class whose clips are this class's clips played
            backwards, or None.
    """

    index: int
    dir: str
    name: str
    description: str
    units: dict = field(hash=False, compare=False)
    temporal_pair: str | None = None

    def to_dict(self) -> dict:
        """JSON-able dict (the ``classes.json`` record)."""
        return {"index": self.index, "dir": self.dir, "name": self.name, "description": self.description,
                "units": {g: list(self.units[g]) for g in UNIT_GROUPS}, "temporal_pair": self.temporal_pair}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassInfo":
        """Inverse of :meth:`to_dict`."""
        return cls(index=int(d["index"]), dir=d["dir"], name=d["name"], description=d["description"],
                   units={g: tuple(d["units"][g]) for g in UNIT_GROUPS}, temporal_pair=d.get("temporal_pair"))


def class_catalog(n_classes: int | None = None) -> list[ClassInfo]:
    """The catalog straight from the action data, without generating any video.

    Args:
        n_classes: keep only the first ``n_classes`` classes (as ``BenchmarkConfig.n_classes``);
            a temporal partner outside the kept classes becomes None.
    """
    classes = action_classes()[:n_classes]
    kept = {c.dir for c in classes}
    return [ClassInfo(index=c.index, dir=c.dir, name=c.name, description=c.description,
                      units={g: tuple(c.units[g]) for g in UNIT_GROUPS},
                      temporal_pair=c.temporal_pair if c.temporal_pair in kept else None) for c in classes]


def load_catalog(root: str | os.PathLike) -> list[ClassInfo]:
    """The catalog of a generated benchmark, read from ``<root>/classes.json``.

    Raises:
        MissingFilesError: ``classes.json`` does not exist.
        AnnotationError: it cannot be parsed.
    """
    path = Path(root) / "classes.json"
    if not path.is_file():
        raise MissingFilesError([path], source=f"embedded benchmark at {root}")
    try:
        return [ClassInfo.from_dict(d) for d in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, KeyError, TypeError) as e:
        raise AnnotationError(f"{path}: cannot parse class catalog: {e}") from e


def temporal_pairs(catalog: Iterable[ClassInfo]) -> list[tuple[int, int]]:
    """(forward index, reversed index) of every temporal pair in the catalog, each pair once."""
    catalog = list(catalog)
    by_dir = {c.dir: c.index for c in catalog}
    pairs = {tuple(sorted((c.index, by_dir[c.temporal_pair]))) for c in catalog if c.temporal_pair in by_dir}
    return sorted(pairs)


def unit_coverage(catalog: Iterable[ClassInfo], seen_class_indices: Iterable[int]) -> dict[str, float]:
    """Share of the unseen classes' units that occur in some seen class.

    Every (unseen class, unit) occurrence counts once, so a unit shared by many unseen classes
    weighs more: the number answers "how much of what describes a test class was seen".

    Args:
        catalog: the classes.
        seen_class_indices: ``index`` of the seen (training) classes; all others are unseen.

    Returns:
        Per unit group and ``overall``: covered share in [0, 1], NaN where the unseen classes
        have no unit in the group.
    """
    catalog = list(catalog)
    seen = {int(i) for i in seen_class_indices}
    out, hits, total = {}, 0, 0
    for g in UNIT_GROUPS:
        seen_units = {u for c in catalog if c.index in seen for u in c.units[g]}
        occurrences = [u in seen_units for c in catalog if c.index not in seen for u in c.units[g]]
        out[g] = float(np.mean(occurrences)) if occurrences else float("nan")
        hits, total = hits + sum(occurrences), total + len(occurrences)
    out["overall"] = hits / total if total else float("nan")
    return out


def coverage_under_random_splits(catalog: Iterable[ClassInfo], n_splits: int = 10,
                                 seed: int = 0) -> dict[str, dict[str, float]]:
    """:func:`unit_coverage` over the seeded 50/50 seen/unseen splits of the zero-shot protocol.

    The splits are exactly :func:`zsar.data.protocols.random_class_splits` ``(len(catalog),
    n_splits, 0.5, seed)``, i.e. the ones the training notebooks use with the same seed.

    Returns:
        Per unit group and ``overall``: ``{"mean": ..., "min": ...}`` over the splits.
    """
    from zsar.data.protocols import random_class_splits

    catalog = list(catalog)
    splits = random_class_splits(len(catalog), n_splits=n_splits, seen_fraction=0.5, seed=seed)
    runs = [unit_coverage(catalog, [catalog[i].index for i in split.seen]) for split in splits]
    return {k: {"mean": float(np.nanmean([r[k] for r in runs])), "min": float(np.nanmin([r[k] for r in runs]))}
            for k in runs[0]}
