"""Model registry and factory: open_clip's architectures plus the project's own small CLIPs.

The project's configs live as one JSON per architecture in ``model_configs/`` (open_clip's
format: ``embed_dim``, ``vision_cfg``, ``text_cfg``) and are added to open_clip's registry when
this module is imported, so ``open_clip.get_model_config`` / ``get_tokenizer`` see them too. Their names start with ``zsar-``:

* ``zsar-ViT-T-16-64``  — tiny ViT (width 192, 4 layers, patch 16) on 64 px frames.
* ``zsar-ViT-T-16-112`` — the same towers on 112 px frames (7 x 7 patch grid).
* ``zsar-ViT-S-16``     — width 384, 6 layers, patch 16 on 112 px frames; 77-token text.
* ``zsar-ViT-T-16-64-minilm``, ``zsar-ViT-T-16-112-minilm``, ``zsar-ViT-S-16-minilm`` — the same
  image towers with the pretrained all-MiniLM-L6-v2 as text tower (:mod:`zsar.models.language`).

:func:`create_model` is a thin layer over ``open_clip.create_model``: it resolves ``pretrained``
first (offline-safe, see :mod:`zsar.models.pretrained`) and loads checkpoints itself.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
from pathlib import Path

import open_clip
import torch
from open_clip.model import get_model_preprocess_cfg, set_model_preprocess_cfg
from open_clip.transform import merge_preprocess_dict

from zsar.models.language import has_local_text_tower, resolve_local_text_towers, resolve_text_cfg
from zsar.models.pretrained import load_checkpoint, pretrained_tag, resolve_pretrained

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
PROJECT_PREFIX = "zsar-"
PRECISIONS = ("fp32", "fp16", "bf16", "pure_fp16", "pure_bf16")
_REQUIRED_KEYS = ("embed_dim", "vision_cfg", "text_cfg")
_registered: set[Path] = set()
logger = logging.getLogger(__name__)


class UnknownModelError(KeyError):
    """An architecture name that neither open_clip nor the project registers."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0])


class ModelConfigError(ValueError):
    """A project model config file is malformed (named in the message)."""


def register_model_configs(folder: str | os.PathLike = MODEL_CONFIG_DIR) -> list[str]:
    """Validate every ``*.json`` in ``folder`` and add them to open_clip's registry.

    Idempotent per folder. open_clip silently skips files without the required keys; here
    every bad file is reported at once instead.

    Returns:
        The architecture names found in ``folder`` (file stems), sorted.

    Raises:
        ModelConfigError: a file is not valid JSON, lacks a required key, or is not named
            ``zsar-*`` (so it could shadow an open_clip architecture).
    """
    folder = Path(folder).resolve()
    files = sorted(folder.glob("*.json"))
    problems = [msg for f in files if (msg := _config_problem(f))]
    if problems:
        raise ModelConfigError("bad model config(s):\n  " + "\n  ".join(problems))
    if folder not in _registered:
        open_clip.add_model_config(folder)
        _registered.add(folder)
    resolve_local_text_towers()
    return [f.stem for f in files]


def _config_problem(path: Path) -> str | None:
    if not path.stem.startswith(PROJECT_PREFIX):
        return f"{path}: project configs must be named {PROJECT_PREFIX}*.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        return f"{path}: {err}"
    missing = [k for k in _REQUIRED_KEYS if k not in cfg]
    return f"{path}: missing keys {missing}" if missing else None


def list_models() -> list[str]:
    """All architecture names: open_clip's built-ins and the project's ``zsar-*`` configs."""
    return open_clip.list_models()


def list_project_models() -> list[str]:
    """The project's own architectures (``zsar-*``), sorted."""
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))


def get_model_config(model_name: str) -> dict:
    """A copy of the architecture config of ``model_name``.

    Raises:
        UnknownModelError: ``model_name`` is not registered (message suggests close names).
    """
    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        close = difflib.get_close_matches(model_name, list_models(), n=5)
        raise UnknownModelError(f"unknown model {model_name!r}; close names: {close}; "
                                f"see zsar.models.list_models()")
    resolve_text_cfg(cfg.get("text_cfg", {}))
    return cfg


def create_model(model_name: str, pretrained: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 precision: str = "fp32", image_size: int | tuple[int, int] | None = None,
                 cache_dir: str | os.PathLike | None = None, lock_text: bool = False,
                 **model_kwargs) -> torch.nn.Module:
    """Build an open_clip model, randomly initialised or from pretrained weights, in eval mode.

    A model whose text tower is a bundled pretrained language model (``*-minilm`` configs, see
    :mod:`zsar.models.language`) starts from that tower's weights, loaded from disk.

    Args:
        model_name: any name in :func:`list_models`, e.g. ``"zsar-ViT-T-16-64"``, ``"ViT-B-16"``.
        pretrained: ``None`` (random init, fully offline), a local checkpoint path (see
            :func:`zsar.models.pretrained.load_checkpoint` for accepted formats), or an open_clip
            tag such as ``"openai"`` (needs network or an already-filled cache).
        device: torch device of the returned model.
        precision: one of ``PRECISIONS`` (open_clip's meanings).
        image_size: input side ``S`` (or ``(H, W)``) overriding the config; pretrained
            positional embeddings are interpolated to it.
        cache_dir: download cache for tags.
        lock_text: freeze the text tower (open_clip's ``lock_text_tower``; a Hugging Face tower
            keeps its projection trainable), e.g. to keep a pretrained language model as it is.
        **model_kwargs: passed to ``open_clip.create_model`` (e.g. ``force_patch_dropout=0.5``).

    Returns:
        ``open_clip.CLIP`` (or ``CustomTextCLIP``) in eval mode; call ``.train()`` to fine-tune.

    Raises:
        UnknownModelError, ValueError: bad ``model_name`` / ``precision``.
        FileNotFoundError, PretrainedUnavailableError: see :func:`resolve_pretrained` — raised
            before any model is built, and within seconds when offline.
    """
    model_cfg = get_model_config(model_name)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not supported; choose from {PRECISIONS}")
    checkpoint = resolve_pretrained(model_name, pretrained, cache_dir)
    tag = pretrained_tag(pretrained)
    tag_cfg = open_clip.get_pretrained_cfg(model_name, tag) if tag else {}
    if tag_cfg.get("quick_gelu"):
        # OpenAI weights were trained with QuickGELU; the plain configs would silently differ
        model_kwargs.setdefault("force_quick_gelu", True)
    # no default tower weights from the network (timm / HF hub towers); a bundled text tower is on disk
    local_text = has_local_text_tower(model_cfg)
    resolve_local_text_towers()
    with _quiet_random_init_warning(hf=local_text):
        model = open_clip.create_model(model_name, pretrained=None, precision=precision, device=device,
                                       force_image_size=image_size, pretrained_image=False,
                                       pretrained_text=local_text, **model_kwargs)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, strict=True)
    if lock_text:
        model.lock_text_tower()
    logger.info("created %s (weights: %s)", model_name,
                checkpoint or ("bundled text tower, the rest random init" if local_text else "random init"))
    if tag_cfg:
        set_model_preprocess_cfg(model, merge_preprocess_dict(get_model_preprocess_cfg(model), tag_cfg))
    return model.eval()


@contextlib.contextmanager
def _quiet_random_init_warning(hf: bool = False):
    # open_clip warns "initialized randomly" / "partially" on the root logger even when we load
    # weights next (or load only the bundled text tower on purpose); transformers reports the
    # bundled tower's load (its unused pooler) and shows a progress bar
    def drop(record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("No pretrained weights loaded") or "initialized partially" in message)

    root = logging.getLogger()
    root.addFilter(drop)
    hf_logging = None
    if hf:  # only Hugging Face towers need transformers (slow to import)
        from transformers.utils import logging as hf_logging

        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        root.removeFilter(drop)
        if hf_logging is not None:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()


def get_tokenizer(model_name: str, context_length: int | None = None):
    """open_clip's tokenizer for ``model_name``: ``tokenizer(texts) -> (N, L)`` int64 tokens
    (a bundled text tower's own tokenizer, from disk)."""
    get_model_config(model_name)
    resolve_local_text_towers()
    return open_clip.get_tokenizer(model_name, context_length=context_length)


def count_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


register_model_configs()
