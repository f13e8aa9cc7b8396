"""Compute video embeddings once: a feature matrix cache keyed by everything that shapes it.

The key hashes the canonical JSON of its parts:

* ``model_name`` — e.g. ``"zsar-ViT-T-16-64"``;
* ``checkpoint`` — what the weights are: :func:`state_dict_hash` of the model (exact bytes of
  every tensor), the sha256 of a checkpoint file, or a given string;
* ``sampling`` / ``transform`` — the sampler and preprocessing, described by :func:`describe`
  (public attributes, dataclass fields; a repr with a memory address is refused);
* ``dataset_ids`` — the ordered ids of the rows (hashed; the sidecar keeps them in full);
* anything else passed as a keyword (pooling, precision, :func:`dataset_fingerprint`, ...).

Video ids alone do not say what a file holds (a regenerated benchmark keeps its ids), so add
``data=dataset_fingerprint(videos)`` (sizes and mtimes) where files can change. Hash only the
weights the features depend on (the image tower, plus e.g. ``head=state_dict_hash(head)`` as an
extra part), not the text tower: sha256 runs at roughly 1-2 GB/s, so a ViT-B/16 CLIP costs
about half a second per key, a cost worth paying once per model, not per lookup.

Layout: ``<root>/<key>.npy`` ``(N, D)`` + ``<root>/<key>.json`` (parts, ids, shape), both
written atomically, the JSON last so that it marks the entry complete. ``<root>`` defaults to
``cache_dir()/"features"``.

Example::

    parts = dict(model_name=name, checkpoint=state_dict_hash(image_tower(model)), sampling=sampler,
                 transform=transform, data=dataset_fingerprint(dataset.videos))
    ids = [r.video_id for r in dataset.videos.records]
    feats = FeatureCache().get_or_compute(parts, ids, lambda: extract_features(encode, dataset, 16))
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from zsar.io import atomic_path, atomic_write_json
from zsar.paths import cache_dir

FORMAT_VERSION = 1


def state_dict_hash(model: torch.nn.Module | Mapping[str, Any]) -> str:
    """sha256 of a model's weights: every entry's name, dtype, shape and raw bytes, sorted by name.

    Args:
        model: an ``nn.Module`` or a state dict.

    Returns:
        64 hex characters; changes when any parameter or buffer changes by one bit.
    """
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        digest.update(name.encode("utf-8") + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}\0".encode())
            # bytes through a uint8 view: works for bf16/fp8, which numpy cannot represent
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
        else:  # e.g. _extra_state
            digest.update(repr(value).encode("utf-8"))
    return digest.hexdigest()


def file_hash(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """sha256 of a file's bytes (e.g. a checkpoint).

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_hash(checkpoint: Any) -> str:
    """What identifies the weights: a module or state dict is hashed, a file is hashed, a
    string that names no file (an already computed hash, a pretrained tag) is kept."""
    if checkpoint is None:
        return "none"
    if isinstance(checkpoint, (torch.nn.Module, Mapping)):
        return state_dict_hash(checkpoint)
    if isinstance(checkpoint, os.PathLike) or (isinstance(checkpoint, str) and os.path.isfile(checkpoint)):
        return file_hash(checkpoint)
    if isinstance(checkpoint, str):
        return checkpoint
    raise TypeError(f"checkpoint must be a module, state dict, path or string, "
                    f"got {type(checkpoint).__name__}")


def dataset_fingerprint(videos) -> str:
    """sha256 over ``(video_id, size, mtime_ns)`` of every record of a ``VideoList``: changes
    when a file is rewritten even if its id stays (e.g. a regenerated benchmark)."""
    digest = hashlib.sha256()
    for record in videos.records:
        st = os.stat(record.path)
        digest.update(f"{record.video_id}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8"))
    return digest.hexdigest()


def describe(obj: Any) -> Any:
    """A JSON-able description of a configuration value, stable across runs.

    Plain values pass through; dataclasses give their fields; other objects give their class
    and public attributes (``FrameSampler``, ``ClipVideoTransform``); functions their dotted
    name; tensors/arrays a hash of their bytes.

    Raises:
        TypeError: a module (hash its weights instead), a lambda, or an object whose only
            description is a repr with a memory address (it would change every run).
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)  # strict JSON has no nan/inf
    if isinstance(obj, (np.integer, np.floating)):
        return describe(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): describe(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if isinstance(obj, torch.nn.Module):
        raise TypeError(f"{type(obj).__name__}: pass checkpoint=state_dict_hash(model), not the module")
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        arr = obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else np.asarray(obj)
        return {"dtype": str(arr.dtype), "shape": list(arr.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(arr).data).hexdigest()}
    cls = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if dataclasses.is_dataclass(obj):
        return {"__class__": cls, **{f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, functools.partial):
        return {"__class__": cls, "func": describe(obj.func), "args": describe(obj.args),
                "keywords": describe(obj.keywords)}
    if callable(obj) and hasattr(obj, "__qualname__"):  # functions, classes: their name
        if "<lambda>" in obj.__qualname__:  # every lambda of a module would share one name
            raise TypeError(f"cannot describe lambda {obj!r} for a cache key; use a named function")
        return f"{obj.__module__}.{obj.__qualname__}"
    if hasattr(obj, "__dict__"):
        public = sorted((k, v) for k, v in vars(obj).items() if not k.startswith("_"))
        return {"__class__": cls, **{k: describe(v) for k, v in public}}
    text = repr(obj)
    if " at 0x" in text:
        raise TypeError(f"cannot describe {text} for a cache key; pass a dict of its settings")
    return text


def feature_key(model_name: str, checkpoint: Any, sampling: Any = None, transform: Any = None,
                dataset_ids: Sequence[str] = (), **extra: Any) -> str:
    """The cache key (64 hex characters) of a feature matrix; see the module doc for the parts.

    Args:
        model_name: the architecture.
        checkpoint: module, state dict, checkpoint path, or an identifying string
            (see :func:`checkpoint_hash`).
        sampling, transform: sampler and preprocessing (objects, dicts or strings).
        dataset_ids: ids of the rows, in order.
        **extra: more parts that change the features.
    """
    return _digest(canonical_parts(model_name, checkpoint, sampling, transform, dataset_ids, **extra))


def canonical_parts(model_name: str, checkpoint: Any, sampling: Any = None, transform: Any = None,
                    dataset_ids: Sequence[str] = (), **extra: Any) -> dict:
    """The JSON-able parts :func:`feature_key` hashes (weights and ids reduced to hashes)."""
    ids = "\n".join(str(i) for i in dataset_ids)
    return {"format": FORMAT_VERSION, "model_name": model_name, "checkpoint": checkpoint_hash(checkpoint),
            "sampling": describe(sampling), "transform": describe(transform),
            "dataset_ids": hashlib.sha256(ids.encode("utf-8")).hexdigest(), "n_ids": len(dataset_ids),
            "extra": describe(extra)}


def _digest(parts: dict) -> str:
    payload = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class FeatureCache:
    """Feature matrices on disk, reused while their key matches.

    Args:
        root: folder of the entries (default ``cache_dir()/"features"``).

    Attributes:
        hits, misses: how many :meth:`get_or_compute` calls loaded / computed.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "features"
        self.hits = 0
        self.misses = 0

    def resolve(self, key_parts: Mapping[str, Any], ids: Sequence[str]) -> tuple[str, dict]:
        """``(key, canonical parts)`` of ``key_parts`` (keywords of :func:`feature_key`) and ids.

        Weights are hashed here, once per call: pass ``checkpoint=state_dict_hash(model)``
        yourself to hash a large model once for several datasets.
        """
        if "dataset_ids" in key_parts:
            raise ValueError("pass the row ids as `ids`, not as key_parts['dataset_ids']")
        parts = canonical_parts(**key_parts, dataset_ids=list(ids))
        return _digest(parts), parts

    def paths(self, key: str) -> tuple[Path, Path]:
        """``(features .npy, sidecar .json)`` of ``key``."""
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    def load(self, key_parts: Mapping[str, Any], ids: Sequence[str], mmap: bool = False) -> np.ndarray | None:
        """The stored ``(N, D)`` matrix for these parts and ids, or ``None`` if there is none."""
        return self._load(self.resolve(key_parts, ids)[0], ids, mmap)

    def _load(self, key: str, ids: Sequence[str], mmap: bool) -> np.ndarray | None:
        npy, sidecar = self.paths(key)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            feats = np.load(npy, mmap_mode="r" if mmap else None)
        except (OSError, ValueError):  # missing or unreadable: a miss, recomputed and rewritten
            return None
        # the key already covers the ids; comparing them also catches a sidecar/array mismatch
        if meta.get("ids") != [str(i) for i in ids] or feats.shape[0] != len(ids):
            return None
        return feats

    def get_or_compute(self, key_parts: Mapping[str, Any], ids: Sequence[str],
                       compute_fn: Callable[[], Any], mmap: bool = False) -> np.ndarray:
        """Load the features of ``(key_parts, ids)``, or compute, store and return them.

        Args:
            key_parts: keyword arguments of :func:`feature_key` except ``dataset_ids``
                (``model_name``, ``checkpoint``, ``sampling``, ``transform``, extras).
            ids: ``(N,)`` row ids (e.g. the videos' ``video_id``), in the order of the rows.
            compute_fn: ``() -> (N, D)`` array or tensor, called only on a miss.
            mmap: memory-map a stored matrix instead of reading it.

        Returns:
            ``(N, D)`` numpy array.

        Raises:
            ValueError: ``compute_fn`` returned a number of rows other than ``len(ids)``.
        """
        key, parts = self.resolve(key_parts, ids)
        cached = self._load(key, ids, mmap)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        start = time.perf_counter()
        result = compute_fn()
        feats = result.detach().cpu().numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
        if feats.ndim < 1 or feats.shape[0] != len(ids):
            raise ValueError(f"feature cache {key}: compute_fn returned shape {feats.shape}, "
                             f"expected {len(ids)} rows (one per id)")
        npy, sidecar = self.paths(key)
        with atomic_path(npy) as tmp, open(tmp, "wb") as f:
            np.save(f, feats, allow_pickle=False)
        atomic_write_json(sidecar, {  # last: its presence marks the entry complete
            "key": key, "parts": parts, "ids": [str(i) for i in ids], "shape": list(feats.shape),
            "dtype": str(feats.dtype), "compute_seconds": round(time.perf_counter() - start, 3),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        return feats

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r}, hits={self.hits}, misses={self.misses})"
