"""Method settings of a comparison, from one place shared by notebooks and benchmarks.

:data:`DEFAULT_METHOD_KWARGS` (full runs), :data:`SMOKE_METHOD_KWARGS` (CI-sized overrides) and
:func:`method_kwargs`, which layers the user's settings on top. :data:`ABLATION_VARIANTS` names
the switches of the methods that have them (ASU, motion prompts, LSS).
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from zsar.methods import METHODS, ZeroShotMethod

TRAINED_METHODS = ("actionclip", "rest", "asu", "motion_prompts", "lss", "supervised")
"""Methods with an iterative training loop: they take the shared ``epochs`` and ``lr``."""


DEFAULT_METHOD_KWARGS: dict[str, dict[str, Any]] = {
    "frame_average": {},
    "actionclip": {},
    "devise": dict(semantic_space="glove"),
    "eszsl": dict(semantic_space="glove"),
    "rest": dict(width=256, layers=2, heads=4, joint_dim=256),
    "asu": dict(width=256, layers=2, heads=4, regions=4),
    "motion_prompts": dict(width=256, heads=4, prompt_hidden=64),
    "lss": dict(width=256, layers=1, heads=4),
    "supervised": dict(width=256, layers=1, heads=4),
}
"""Per-method settings of a full comparison (widths etc.; the rest are the methods' defaults)."""


SMOKE_METHOD_KWARGS: dict[str, dict[str, Any]] = {
    "devise": dict(map_epochs=20),
    "rest": dict(width=32, layers=1, heads=2, joint_dim=32, transfer_k=3),
    "asu": dict(width=32, layers=1, heads=2, regions=2),
    # dynamic prompts encode every class text once per video (B x C text passes): ~10x the time
    # of the static ones on a CPU; the smoke run keeps the rest of the method
    "motion_prompts": dict(width=32, heads=2, prompt_hidden=16, dynamic_prompts=False),
    "lss": dict(width=32, layers=1, heads=2, concept_templates="video"),
    "supervised": dict(width=32, layers=1, heads=2),
}
"""Overrides of :data:`DEFAULT_METHOD_KWARGS` for CI-sized smoke runs (tiny heads, few epochs)."""


ABLATION_VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "asu-no_mra": ("asu", dict(use_mra=False), "ASU w/o multi-region attention"),
    "asu-no_unit_selection": ("asu", dict(use_unit_selection=False), "ASU w/o unit selection"),
    "motion_prompts-no_motion_stream": ("motion_prompts", dict(use_motion_stream=False),
                                        "Motion prompts w/o motion stream"),
    "motion_prompts-static_prompts": ("motion_prompts", dict(dynamic_prompts=False), "Motion prompts, static prompts"),
    "motion_prompts-no_communication": ("motion_prompts", dict(use_communication=False),
                                        "Motion prompts w/o communication"),
    "lss-no_distillation": ("lss", dict(use_distillation=False), "LSS w/o concept distillation"),
    "lss-no_alignment": ("lss", dict(use_alignment=False), "LSS w/o alignment"),
}
"""Ablation name -> ``(method, switches, table label)``."""


def default_backbone() -> str:
    """The backbone the methods use when none is given (:class:`ZeroShotMethod`'s default)."""
    return inspect.signature(ZeroShotMethod.__init__).parameters["backbone"].default


def method_kwargs(name: str, smoke: bool = False, common: Mapping[str, Any] | None = None,
                  trained: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Constructor arguments of ``name`` in a comparison.

    Layers, later winning: :data:`DEFAULT_METHOD_KWARGS`, :data:`SMOKE_METHOD_KWARGS` (if
    ``smoke``), ``common`` (every method: backbone, frames, batch size, device, ...) and ``trained``
    (only :data:`TRAINED_METHODS`: epochs, lr). ``None`` values are dropped, so a parameter left at
    ``None`` keeps the method's own default (e.g. each method's learning rate).

    Raises:
        ValueError: unknown ``name`` (the message lists :data:`zsar.methods.METHODS`).
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    layers = [DEFAULT_METHOD_KWARGS.get(name, {}), SMOKE_METHOD_KWARGS.get(name, {}) if smoke else {},
              common or {}, (trained or {}) if name in TRAINED_METHODS else {}]
    return {k: v for layer in layers for k, v in layer.items() if v is not None}


def ablation_kwargs(variant: str, base: Mapping[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """``(method, kwargs, changed)`` of ``variant``: ``base`` (the full method's kwargs) with its switches.

    ``changed`` is ``False`` when ``base`` already sets the switches that way (e.g. the smoke
    motion prompts are static), so the variant equals the full method.

    Raises:
        ValueError: unknown ``variant`` (the message lists :data:`ABLATION_VARIANTS`).
    """
    if variant not in ABLATION_VARIANTS:
        raise ValueError(f"unknown ablation {variant!r}; choose from {sorted(ABLATION_VARIANTS)}")
    method, switches, _ = ABLATION_VARIANTS[variant]
    changed = any(base.get(k, _init_default(method, k)) != v for k, v in switches.items())
    return method, {**base, **switches}, changed


def _init_default(method: str, param: str) -> Any:
    return inspect.signature(METHODS[method].__init__).parameters[param].default
