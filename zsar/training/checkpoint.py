"""Atomic training checkpoints: model, optimizer, scheduler, AMP scaler, RNG states, history.

A checkpoint may leave out frozen tensors that still hold their starting values (a locked
pretrained text tower: ~90 MB of the ~108 MB of a fine-tuned world model), keeping a digest of
each (:func:`frozen_digests`); :func:`load_checkpoint` then takes them from the model it loads
into and refuses one whose values differ, so the model must be built from the same start.

A checkpoint is written with ``torch.save`` to a temp file in the same folder and moved onto its
name with ``os.replace`` (:func:`zsar.io.atomic_path`), so a run killed while saving leaves the
previous checkpoint intact and never a truncated file under a checkpoint name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from zsar.io import atomic_path

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (or ``model``)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def checkpoint_path(folder: str | os.PathLike, epoch: int) -> Path:
    """``<folder>/epoch_0003.pt``: the checkpoint written after ``epoch`` (0-based) finished."""
    return Path(folder) / f"epoch_{int(epoch):04d}.pt"


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The ``epoch_*.pt`` checkpoints in ``folder`` sorted by epoch (temp files are skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _EPOCH_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The checkpoint of the highest epoch in ``folder``, or ``None`` if there is none."""
    found = list_checkpoints(folder)
    return found[-1] if found else None


def tensor_digest(tensor: torch.Tensor) -> str:
    """A digest of a tensor's dtype, shape and bytes (any device; the bytes are read on the CPU)."""
    data = tensor.detach().cpu().contiguous().reshape(-1)
    digest = hashlib.blake2b(data.view(torch.uint8).numpy() if data.numel() else b"",
                             digest_size=16)
    digest.update(f"{data.dtype}{tuple(tensor.shape)}".encode())
    return digest.hexdigest()


def frozen_digests(model: nn.Module, names: Iterable[str] | None = None) -> dict[str, str]:
    """``{state-dict name: digest}`` of the parameters with ``requires_grad=False``.

    Args:
        model: the model (a DDP wrapper is unwrapped).
        names: only these names (default: every frozen parameter, shared ones under each name).
    """
    wanted = None if names is None else set(names)
    return {name: tensor_digest(p)
            for name, p in unwrap_model(model).named_parameters(remove_duplicate=False)
            if not p.requires_grad and (wanted is None or name in wanted)}


def capture_rng_states(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Python, NumPy, torch (CPU and current CUDA device) RNG states, plus named generators.

    NumPy's state is stored as plain Python values so that the checkpoint loads with
    ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def restore_rng_states(states: Mapping[str, Any],
                       generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Inverse of :func:`capture_rng_states`.

    Raises:
        KeyError: a generator in ``generators`` has no saved state.
    """
    random.setstate(_as_python_state(states["python"]))
    npy = states["numpy"]
    np.random.set_state((npy["kind"], np.asarray(npy["keys"], dtype=np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"].cpu())
    saved = states.get("generators", {})
    for name, generator in (generators or {}).items():
        if name not in saved:
            raise KeyError(f"no saved RNG state for generator {name!r}; saved: {sorted(saved)}")
        generator.set_state(saved[name].cpu())


def _as_python_state(state: Any) -> tuple:
    """``random.setstate`` needs tuples; a round trip through some loaders yields lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss


def save_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None, scaler: Any | None = None, epoch: int = 0,
                    step: int = 0, rng_states: Any | None = None,
                    history: list[dict] | None = None, extra: dict | None = None,
                    omit: Mapping[str, str] | None = None) -> Path:
    """Write a training checkpoint atomically and return its path.

    Args:
        path: destination, e.g. :func:`checkpoint_path` ``(folder, epoch)``.
        model: the model (a DDP wrapper is unwrapped, so the keys carry no ``module.`` prefix).
        optimizer, scheduler, scaler: saved through their ``state_dict()`` when given.
        epoch: the last finished epoch (0-based).
        step: optimizer steps taken so far.
        rng_states: from :func:`capture_rng_states` (or a list of them, one per rank).
        history: the per-epoch metric rows so far.
        extra: anything else (the run configuration, the best metric, ...); keep it to plain
            Python values and tensors so that the file loads with ``weights_only=True``.
        omit: ``{name: digest}`` of frozen tensors left out of the file (from
            :func:`frozen_digests`, taken when they held their starting values); loading then
            needs a model that holds the same values.
    """
    state = unwrap_model(model).state_dict()
    omit = dict(omit or {})
    unknown = sorted(set(omit) - set(state))
    if unknown:
        raise KeyError(f"omit names tensors the model does not have: {unknown[:5]}")
    payload = {
        "version": CHECKPOINT_VERSION,
        "model": {k: v for k, v in state.items() if k not in omit},
        "omitted": omit,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "rng_states": rng_states,
        "history": list(history or []),
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any | None = None,
                    scaler: Any | None = None,
                    generators: Mapping[str, torch.Generator] | None = None,
                    restore_rng: bool = True, map_location: str | torch.device = "cpu",
                    strict: bool = True, weights_only: bool = True,
                    allow_missing_training_state: bool = False) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into the given objects.

    Args:
        path: the checkpoint file.
        model, optimizer, scheduler, scaler: restored in place when given.
        generators: named ``torch.Generator`` s (e.g. a DataLoader's) restored in place.
        restore_rng: restore the Python/NumPy/torch RNG states (when the checkpoint holds a
            single state dict; per-rank lists are left to the caller).
        map_location: where tensors are loaded (``"cpu"`` keeps GPU memory free).
        strict: every tensor of ``model`` must be in the file or among the tensors it left out
            (``omitted``), and nothing else may be in it.
        weights_only: ``torch.load``'s safe mode; set ``False`` only for trusted files whose
            ``extra`` holds arbitrary objects.
        allow_missing_training_state: leave ``optimizer`` / ``scheduler`` / ``scaler``
            untouched when the file holds none (a run's final checkpoint, see
            :class:`~zsar.training.loop.Trainer`) instead of raising.

    Returns:
        The payload dict (``epoch``, ``step``, ``history``, ``extra``, ``rng_states``, ...).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a zsar checkpoint, a part to restore is missing, or the
            model holds other values than the file's for the frozen tensors it left out.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=weights_only)
    if not isinstance(payload, dict) or "version" not in payload or "model" not in payload:
        raise ValueError(f"{path} is not a zsar training checkpoint")
    if model is not None:
        _load_model_state(unwrap_model(model), payload, strict, path)
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if payload.get(name) is None:
            if allow_missing_training_state:
                continue
            raise ValueError(f"checkpoint {path} holds no {name} state")
        obj.load_state_dict(payload[name])
    states = payload.get("rng_states")
    if restore_rng and isinstance(states, dict):
        restore_rng_states(states, generators)
    return payload


def _load_model_state(module: nn.Module, payload: Mapping[str, Any], strict: bool, path: Path) -> None:
    """Load ``payload["model"]`` into ``module``; its omitted tensors must match ``module``'s own."""
    omitted = payload.get("omitted") or {}
    if omitted:
        state = module.state_dict()
        differ = sorted(name for name, digest in omitted.items()
                        if name not in state or tensor_digest(state[name]) != digest)
        if differ:
            raise ValueError(f"{path} leaves out {len(omitted)} frozen tensors that the model must "
                             f"hold already, and {len(differ)} are missing or differ here "
                             f"({differ[:3]}): build the model from the same start (pretrained "
                             "weights and settings) as the run that wrote it")
    result = module.load_state_dict(payload["model"], strict=strict and not omitted)
    if strict and omitted:
        missing = sorted(set(result.missing_keys) - set(omitted))
        if missing or result.unexpected_keys:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__}: "
                               f"missing keys {missing[:5]}, unexpected keys {result.unexpected_keys[:5]}")


def strip_training_state(path: str | os.PathLike) -> bool:
    """Rewrite ``path`` (atomically) without its optimizer, scheduler and scaler states.

    For a checkpoint that is only ever restored, never trained on (a finished run's
    ``best.pt``). Returns whether there was anything to drop.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if all(payload.get(k) is None for k in ("optimizer", "scheduler", "scaler")):
        return False
    payload.update(optimizer=None, scheduler=None, scaler=None)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return True


def prune_checkpoints(folder: str | os.PathLike, keep_last: int | None) -> list[Path]:
    """Delete all but the ``keep_last`` most recent ``epoch_*.pt`` files; return the deleted."""
    if keep_last is None:
        return []
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 or None, got {keep_last}")
    old = list_checkpoints(folder)[:-keep_last]
    for p in old:
        p.unlink(missing_ok=True)
        log.debug("deleted old checkpoint %s", p)
    return old
