"""Named workbook configurations: notebook parameters that are set together.

* ``quick`` — the notebooks' own defaults, what ``make workbook`` runs: the world model of the
  ``open`` regime, the benchmark at 40 clips per class, 10 seeded splits, 2 epochs per fit,
  static prompts for the motion-prompt method, the 2-shot column (5 support draws, read from the
  finished runs) and no ablations. It is sized to finish within an hour on a 2-core CPU, world
  model and benchmark included (docs/performance.md).
* ``paper`` — the configuration of the results table: the full benchmark (150 clips per class),
  both corpus regimes (notebooks 02–07 run once per regime, ``disjoint`` into
  ``<runs>/disjoint/`` and ``<figures>/disjoint/``), 15 epochs, dynamic motion prompts, four
  ablations on every split. ``<runs>/regimes.md`` then puts notebook 06's tables of both regimes
  side by side. Every fit resumes where it stopped, so an interrupted run continues.

``-p NAME VALUE`` on the command line still wins over a preset's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A named set of notebook parameters; ``regimes``: the corpus regimes notebooks 02–07 run for."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    regimes: tuple[str, ...] = ("open",)


PRESETS: dict[str, Preset] = {
    "quick": Preset("quick", "the notebooks' defaults: one regime, 40 clips per class, 2 epochs, the 2-shot column, "
                             "no ablations (within an hour on 2 CPU cores)"),
    "paper": Preset(
        "paper", "the results table: both regimes, 150 clips per class, 15 epochs, full ablations",
        {"REGIMES": ["open", "disjoint"], "CLIPS_PER_CLASS": 150, "EPOCHS": 15, "METHOD_SETTINGS": {},
         "ABLATIONS": ["asu-no_mra", "asu-no_unit_selection", "motion_prompts-no_motion_stream",
                       "lss-no_distillation"], "ABLATION_SPLITS": None},
        regimes=("open", "disjoint")),
}
"""The presets ``python -m zsar.workbook --preset NAME`` knows."""


REGIME_NOTEBOOKS = ("02_training", "03_semantic_transfer", "04_hubness", "05_embeddings", "06_methods",
                    "07_paper_figures")
"""Notebooks that depend on the corpus regime (they read the world model of ``REGIME``)."""


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: unknown name (the message lists the presets).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]
