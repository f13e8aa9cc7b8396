"""Pretrained CLIP weights: resolve a tag or a local path, load and save checkpoints offline.

open_clip resolves a pretrained *tag* by downloading it, and without network the Hugging Face
client retries for about a minute before failing with a generic error. Here a tag is resolved
in this order, and fails fast with :class:`PretrainedUnavailableError` otherwise:

1. an explicit local file (``pretrained="/path/to/ckpt.pt"``) — always offline;
2. the file already in the local cache (Hugging Face hub cache or ``~/.cache/clip``);
3. a download, but only when not offline: ``HF_HUB_OFFLINE=1`` (or ``ZSAR_OFFLINE=1``) is
   respected, and otherwise a TCP probe of the download host must answer within 2 s.

Checkpoints may be raw state dicts, dicts holding one under ``state_dict`` / ``model`` /
``model_state_dict``, or carry ``module.`` (DDP) / ``_orig_mod.`` (``torch.compile``) prefixes.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlparse

import open_clip
import torch
from open_clip.convert import convert_state_dict
from open_clip.model import resize_pos_embed, resize_text_pos_embed

from zsar.io import atomic_path

PROBE_TIMEOUT_S = 2.0
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
_STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_HF_DEFAULT_FILE = "open_clip_pytorch_model.bin"
_TRUTHY = {"1", "true", "yes", "on"}


class PretrainedUnavailableError(RuntimeError):
    """Pretrained weights named by a tag cannot be found locally nor downloaded.

    Attributes:
        model_name, tag: what was asked for.
        reason: why it is unavailable.
    """

    def __init__(self, model_name: str, tag: str, reason: str):
        self.model_name, self.tag, self.reason = model_name, tag, reason
        super().__init__(f"pretrained weights {tag!r} for model {model_name!r} are unavailable: {reason}. "
                         + self.hint())

    def hint(self) -> str:
        return (f"Download them on a machine with network (zsar.models.create_model({self.model_name!r}, "
                f"pretrained={self.tag!r}) fills the Hugging Face cache, which you can copy; or "
                f"save_checkpoint(model, 'ckpt.pt')), then pass the file: pretrained='/path/to/ckpt.pt'. "
                f"pretrained=None gives random weights.")


class UnknownPretrainedTagError(PretrainedUnavailableError, ValueError):
    """``pretrained`` is neither an existing file nor a tag open_clip knows for the model."""

    def hint(self) -> str:
        return (f"Pass a tag from open_clip.list_pretrained_tags_by_model({self.model_name!r}), "
                f"a checkpoint file path, or None for random weights.")


class CheckpointFormatError(ValueError):
    """A checkpoint file holds no usable state dict, or does not fit the model."""


def is_offline(host: str = "huggingface.co", port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if downloads must not be tried: offline env flags set, or ``host`` unreachable.

    The probe runs in a daemon thread joined for ``timeout`` seconds, because DNS lookups ignore
    socket timeouts and can hang far longer on a machine without network.
    """
    if offline_flag():
        return True
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(_connect(host, port, timeout)), daemon=True)
    thread.start()
    thread.join(timeout)
    return not (result and result[0])


def offline_flag() -> str | None:
    """Name of the set offline environment variable (``HF_HUB_OFFLINE`` / ``ZSAR_OFFLINE``), if any."""
    for flag in ("HF_HUB_OFFLINE", "ZSAR_OFFLINE"):
        if os.environ.get(flag, "").strip().lower() in _TRUTHY:
            return flag
    return None


def _connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def looks_like_path(pretrained: str | os.PathLike) -> bool:
    """True if ``pretrained`` reads as a file path rather than a tag (separator or ckpt suffix)."""
    text = os.fspath(pretrained)
    return isinstance(pretrained, Path) or os.sep in text or "/" in text or text.endswith(CHECKPOINT_SUFFIXES)


def pretrained_tag(pretrained: str | os.PathLike | None) -> str | None:
    """``pretrained`` if it names an open_clip tag, ``None`` if it is empty or a file path."""
    if pretrained is None or pretrained == "" or os.path.isfile(pretrained) or looks_like_path(pretrained):
        return None
    return str(pretrained)


_BUILDERS: dict[str, Callable[[str, str], Path]] = {}


def register_pretrained_builder(prefix: str, builder: Callable[[str, str], Path]) -> None:
    """Make tags starting with ``prefix`` resolve through ``builder(model_name, tag) -> checkpoint path``.

    The project's own pretrained models (``zsar-world-*``, registered by
    :mod:`zsar.experiments.pretrain`) are built offline and cached; such a tag resolves like an
    open_clip tag, the builder training the model the first time it is asked for.
    """
    _BUILDERS[prefix] = builder


def resolve_pretrained(model_name: str, pretrained: str | os.PathLike | None,
                       cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Local checkpoint file for ``pretrained`` (``None`` for random init).

    Args:
        model_name: open_clip architecture name, e.g. ``"ViT-B-16"``.
        pretrained: ``None``, a checkpoint path, an open_clip tag (``"openai"``, ...) or a tag of a
            registered builder (:func:`register_pretrained_builder`, e.g. ``"zsar-world-open"``).
        cache_dir: download cache (open_clip's ``cache_dir``); default Hugging Face / ``~/.cache/clip``.

    Raises:
        FileNotFoundError: ``pretrained`` looks like a path and no such file exists.
        UnknownPretrainedTagError: not a file and not a tag of ``model_name``.
        PretrainedUnavailableError: a known tag that is not cached and cannot be downloaded.
    """
    if pretrained is None or pretrained == "":
        return None
    if os.path.isfile(pretrained):
        return Path(pretrained)
    if looks_like_path(pretrained):
        raise FileNotFoundError(f"checkpoint for model {model_name!r} not found: {os.fspath(pretrained)}")
    tag = str(pretrained)
    for prefix, builder in _BUILDERS.items():
        if tag.startswith(prefix):
            return Path(builder(model_name, tag))
    tag_cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not tag_cfg:
        known = open_clip.list_pretrained_tags_by_model(model_name)
        raise UnknownPretrainedTagError(model_name, tag, f"not a file and not a known tag (known tags: {known})")
    cached = cached_pretrained_file(tag_cfg, cache_dir)
    if cached is not None:
        return cached
    host = _download_host(tag_cfg)
    flag = offline_flag()
    if flag or is_offline(host):
        why = f"{flag}=1 is set" if flag else f"{host} is unreachable (probe timeout {PROBE_TIMEOUT_S:g} s)"
        raise PretrainedUnavailableError(model_name, tag, f"not in the local cache and {why}")
    try:
        return Path(open_clip.download_pretrained(tag_cfg, cache_dir=cache_dir))
    except Exception as err:  # the hub / urllib raise many unrelated types; keep the cause chained
        raise PretrainedUnavailableError(model_name, tag, f"download failed: {err}") from err


def cached_pretrained_file(tag_cfg: Mapping, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The already-downloaded file of an open_clip pretrained config, or ``None``."""
    if tag_cfg.get("file"):
        return Path(tag_cfg["file"]) if os.path.isfile(tag_cfg["file"]) else None
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        # as in open_clip: "org/repo/file.bin", or "org/repo/" for the default file name
        repo_id, filename = os.path.split(hub)
        filename = filename or _HF_DEFAULT_FILE
        # open_clip prefers a .safetensors twin of .bin/.pth files; accept either
        stem, ext = os.path.splitext(filename)
        candidates = [stem + ".safetensors"] if ext in (".bin", ".pth") else []
        for name in candidates + [filename]:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    url = tag_cfg.get("url", "")
    if url:
        root = Path(cache_dir) if cache_dir else Path("~/.cache/clip").expanduser()
        target = root / os.path.basename(urlparse(url).path)
        if target.is_file():
            return target
    return None


def _download_host(tag_cfg: Mapping) -> str:
    if tag_cfg.get("hf_hub"):
        return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    return urlparse(tag_cfg.get("url", "")).hostname or "huggingface.co"


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a plain ``{name: tensor}`` state dict on the CPU.

    Accepts ``.safetensors`` and ``torch.save`` files (loaded with ``weights_only=True``), a raw
    state dict or a dict with a ``state_dict`` / ``model`` / ``model_state_dict`` entry, and
    strips ``module.`` / ``_orig_mod.`` prefixes.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointFormatError: the file holds no mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return unwrap_state_dict(load_file(str(path), device="cpu"), source=str(path))
    if _is_torchscript_archive(path):
        # OpenAI's original checkpoints are TorchScript, which torch.load(weights_only=True) refuses
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
        for key in ("input_resolution", "context_length", "vocab_size"):  # metadata, not weights
            state.pop(key, None)
        return unwrap_state_dict(state, source=str(path))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError) as err:
        raise CheckpointFormatError(f"{path}: not readable with torch.load(weights_only=True): "
                                    f"{str(err).splitlines()[0]}") from err
    return unwrap_state_dict(checkpoint, source=str(path))


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def unwrap_state_dict(checkpoint, source: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The model state dict inside ``checkpoint`` with wrapper prefixes removed."""
    if isinstance(checkpoint, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise CheckpointFormatError(f"{source}: expected a (non-empty) state dict, got {type(checkpoint).__name__}")
    bad = [k for k, v in checkpoint.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointFormatError(f"{source}: entries that are not tensors: {bad[:5]} "
                                    f"(keys at top level: {list(checkpoint)[:8]})")
    state = dict(checkpoint)
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_checkpoint(model: torch.nn.Module, checkpoint: str | os.PathLike | Mapping, strict: bool = True):
    """Load a checkpoint file or state dict into an open_clip model, in place.

    Applies open_clip's own fix-ups: third-party format conversion, scalar/1-d ``logit_scale``,
    and interpolation of image/text positional embeddings to the model's size.

    Returns:
        ``torch.nn.modules.module._IncompatibleKeys`` (empty lists when ``strict``).

    Raises:
        CheckpointFormatError: keys or shapes do not match the model (message names the source).
    """
    source = "<state_dict>" if isinstance(checkpoint, Mapping) else os.fspath(checkpoint)
    state = unwrap_state_dict(checkpoint, source) if isinstance(checkpoint, Mapping) else load_state_dict(checkpoint)
    state = convert_state_dict(model, state)
    for name in ("logit_scale", "logit_bias"):
        own = getattr(model, name, None)
        if name in state and own is not None and own.ndim != state[name].ndim:
            state[name] = state[name].reshape(own.shape)
    try:
        if hasattr(model, "visual"):
            resize_pos_embed(state, model)
        resize_text_pos_embed(state, model)
        return model.load_state_dict(state, strict=strict)
    except (RuntimeError, AssertionError) as err:  # open_clip's resizers assert on width changes
        raise CheckpointFormatError(f"{source} does not fit {type(model).__name__}: {err}") from err


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, **extra) -> Path:
    """Write ``{"state_dict": model.state_dict(), **extra}`` atomically (``.safetensors``: tensors only).

    ``extra`` must be ``torch.load(weights_only=True)``-safe (numbers, strings, lists, dicts).
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            if extra:
                raise ValueError(f"{path}: safetensors files hold tensors only; drop extra={sorted(extra)}")
            from safetensors.torch import save_file

            save_file(state, str(tmp))
        else:
            torch.save({"state_dict": state, **extra}, tmp)
    return path
