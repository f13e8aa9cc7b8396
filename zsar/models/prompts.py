"""Text prompts for zero-shot classification: templates and class descriptions as data.

Templates live in ``prompt_templates.json`` (named sets, with their sources); class descriptions
are data files loaded by :func:`load_descriptions`. :func:`build_prompts` turns class names into
one list of prompt strings per class, which :func:`zsar.models.zero_shot.build_zero_shot_classifier`
embeds and averages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

TEMPLATES_FILE = Path(__file__).resolve().parent / "prompt_templates.json"
DEFAULT_TEMPLATES = "video_person"

Template = str | Callable[[str], str]


@lru_cache(maxsize=1)
def _template_sets() -> dict[str, tuple[str, ...]]:
    data = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
    return {name: tuple(items) for name, items in data.items() if not name.startswith("_")}


def list_template_sets() -> list[str]:
    """Names of the bundled template sets (``"video_person"``, ``"clip_kinetics700"``, ...)."""
    return sorted(_template_sets())


def get_templates(name: str = DEFAULT_TEMPLATES) -> list[str]:
    """The template strings of a bundled set; each contains one ``{}`` for the class text.

    Raises:
        KeyError: unknown set name (the message lists the known ones).
    """
    sets = _template_sets()
    if name not in sets:
        raise KeyError(f"unknown template set {name!r}; choose from {sorted(sets)}")
    return list(sets[name])


def readable_class_name(name: str) -> str:
    """``"ApplyEyeMakeup"`` / ``"apply_eye_makeup"`` -> ``"apply eye makeup"``."""
    from zsar.text.semantic import tokenize_words

    return " ".join(tokenize_words(name)) or name


def _check_templates(templates: Sequence[Template]) -> None:
    if isinstance(templates, str) or not len(templates):
        raise ValueError(f"templates must be a non-empty sequence of strings/callables, got {templates!r}")
    for template in templates:
        if isinstance(template, str) and template.count("{}") != 1:
            raise ValueError(f"template {template!r} must contain exactly one '{{}}' placeholder")
        if not isinstance(template, str) and not callable(template):
            raise TypeError(f"template {template!r} is neither a format string nor a callable")


def apply_template(template: Template, text: str) -> str:
    """Fill one template (format string with ``{}`` or callable) with ``text``."""
    return template.format(text) if isinstance(template, str) else template(text)


def build_prompts(class_names: Sequence[str], templates: Sequence[Template] | str = DEFAULT_TEMPLATES,
                  descriptions: Mapping[str, str | Sequence[str]] | None = None,
                  template_descriptions: bool = False) -> list[list[str]]:
    """Prompt strings for each class.

    Each class gets every template filled with its name; with ``descriptions``, its
    descriptions are appended as extra prompts (each used as is, or also passed through the
    templates if ``template_descriptions``), so the classifier averages names and descriptions.

    Args:
        class_names: ``C`` class names, in label order.
        templates: format strings with one ``{}`` / callables, or a bundled set name.
        descriptions: optional ``{class name: text or [texts]}``; classes may be missing.
        template_descriptions: fill the templates with each description too.

    Returns:
        ``C`` lists of prompts; all of length ``len(templates)`` without descriptions.

    Raises:
        ValueError: empty ``class_names``, bad templates, or description keys that are not
            class names (probably a different naming; the message lists a few).
    """
    if isinstance(templates, str):
        templates = get_templates(templates)
    _check_templates(templates)
    if not len(class_names):
        raise ValueError("class_names is empty")
    descriptions = dict(descriptions or {})
    unknown = sorted(set(descriptions) - set(class_names))
    if unknown:
        raise ValueError(f"{len(unknown)} description keys are not class names, e.g. {unknown[:5]}")
    prompts = []
    for name in class_names:
        texts = [apply_template(t, name) for t in templates]
        extra = descriptions.get(name, [])
        extra = [extra] if isinstance(extra, str) else list(extra)
        for desc in extra:
            if template_descriptions:
                texts.extend(apply_template(t, desc) for t in templates)
            else:
                texts.append(desc)
        prompts.append(texts)
    return prompts


def load_descriptions(path: str | os.PathLike, class_names: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Read class descriptions from JSON into ``{class name: [texts]}``.

    Accepted layouts (those of ``data/meta/descriptions``):

    * ``{"ApplyEyeMakeup": "text" | ["text", ...]}`` — keyed by class name (GPT4Vis);
    * ``{"0": "text" | [...], "1": ...}`` — keyed by label index, needs ``class_names`` (OST, FROSTER);
    * ``[{"word": "apply eye makeup", "defn": "text"}, ...]`` — ER-ZSAR definitions, in label
      order; mapped onto ``class_names`` by position when given.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an unknown layout, or index keys without / beyond ``class_names``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"descriptions file not found: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list) and all(isinstance(d, Mapping) and {"word", "defn"} <= set(d) for d in data):
        keys = [d["word"] for d in data]
        if class_names is not None:
            if len(class_names) != len(data):
                raise ValueError(f"{path}: {len(data)} definitions for {len(class_names)} class names")
            keys = list(class_names)
        return {k: [d["defn"]] for k, d in zip(keys, data)}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object or a list of {{word, defn}}, got {type(data).__name__}")
    as_lists = {str(k): [v] if isinstance(v, str) else [str(x) for x in v] for k, v in data.items()}
    if all(k.isdigit() for k in as_lists):
        if class_names is None:
            raise ValueError(f"{path}: keyed by label index; pass class_names to map them")
        bad = [k for k in as_lists if int(k) >= len(class_names)]
        if bad:
            raise ValueError(f"{path}: label indices {bad[:5]} beyond {len(class_names)} class names")
        return {class_names[int(k)]: v for k, v in as_lists.items()}
    return as_lists
