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


CLASS_TEXT: dict[str, str] = {
    "frame_average": "name+description", "actionclip": "name", "devise": "name", "eszsl": "name", "rest": "name",
    "asu": "name", "motion_prompts": "name", "lss": "name", "supervised": "name",
}
"""The class text each method embeds by default (a ``text_kind`` of :data:`zsar.text.class_texts.TEXT_KINDS`).

Names go through the method's prompt templates (``video_person``). ASU adds each class's semantic
units and LSS its concepts on top of this text, whatever it is. Frame average and ActionCLIP take
the best of name / description / name+description on seen-class folds (docs/methods.md#recipes);
the others keep templated names; the ceiling (``supervised``) reads no class text.
"""


SCRATCH_RECIPES: dict[str, dict[str, Any]] = {name: dict(lr=1e-3) for name in TRAINED_METHODS}
"""Recipes from random init: every tower trains, AdamW at 1e-3 (the recorded random-init results)."""


PRETRAINED_RECIPES: dict[str, dict[str, Any]] = {
    # the world model's language tower is a locked MiniLM (LiT): fine-tuning keeps it locked, so
    # class texts are embedded once per fit and what the language model knows is not overwritten by
    # 31 class names; each learning rate is the best of 1e-5 / 1e-4 / 1e-3 by zero-shot top-1 on
    # held-out *seen* classes (python -m zsar.experiments.recipe_search; docs/methods.md#recipes)
    "actionclip": dict(freeze_text=True, lr=1e-5),
    "rest": dict(train_text=False, lr=1e-5),
    "asu": dict(train_text=False, lr=1e-4),
    "motion_prompts": dict(lr=1e-3),  # its towers stay frozen whenever weights are given
    "lss": dict(lr=1e-4),  # its text tower stays frozen; the student image tower trains
    "supervised": dict(lr=1e-4),
}
"""Recipes from a pretrained model (the world model): which towers train and the learning rate."""


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
                  trained: Mapping[str, Any] | None = None, pretrained: bool | None = None,
                  class_text: str | Mapping[str, str] | None = None) -> dict[str, Any]:
    """Constructor arguments of ``name`` in a comparison.

    Layers, later winning: :data:`DEFAULT_METHOD_KWARGS`, the recipe (:data:`PRETRAINED_RECIPES`
    when the method starts from pretrained weights, else :data:`SCRATCH_RECIPES`),
    :data:`SMOKE_METHOD_KWARGS` (if ``smoke``), ``common`` (every method: backbone, frames, batch
    size, device, ...) and ``trained`` (only :data:`TRAINED_METHODS`: epochs, lr). ``None`` values
    are dropped, so a parameter left at ``None`` keeps the recipe's value (e.g. its learning rate).
    ``pretrained`` ``None``: pretrained iff ``common`` names weights (``common["pretrained"]``).
    ``class_text``: the ``text_kind`` of every method (a string), of some (a mapping; the others
    keep theirs) or ``None``: each method's default in :data:`CLASS_TEXT`.

    Raises:
        ValueError: unknown ``name`` (the message lists :data:`zsar.methods.METHODS`).
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    if pretrained is None:
        pretrained = (common or {}).get("pretrained") is not None
    recipe = (PRETRAINED_RECIPES if pretrained else SCRATCH_RECIPES).get(name, {})
    text = class_text.get(name) if isinstance(class_text, Mapping) else class_text
    text_kind = {"text_kind": text or CLASS_TEXT.get(name)}
    layers = [DEFAULT_METHOD_KWARGS.get(name, {}), text_kind, recipe, SMOKE_METHOD_KWARGS.get(name, {}) if smoke else {},
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
