"""Decode once: a cache of resized uint8 frames, and a dataset that samples clips from it.

Decoding H.264 dominates the cost of a pass over a video dataset on CPU. :class:`FrameCache`
decodes every file once, resizes it the way the CLIP eval transform does (shorter side ``S``,
bicubic, antialiased, on uint8, centre crop ``S x S``) and stores the frames as a
memory-mappable ``.npy``; :class:`CachedVideoDataset` then draws clips from it with the same
samplers, sample keys and per-sample random streams as :class:`~zsar.data.dataset.VideoDataset`.

All frames are kept by default, so training can still draw random TSN offsets; long videos can
keep every ``frame_stride``-th frame and at most ``max_frames`` (spread evenly). Sampled indices
always refer to the source video and are mapped to the nearest kept frame.

Layout (``<root>`` defaults to ``cache_dir()/frames``)::

    <root>/<key>/manifest.json        policy + index of the clips (num_frames, fps, size)
    <root>/<key>/<ab>/<clip>.npy      (K, 3, S, S) uint8 kept frames, channels first
    <root>/<key>/<ab>/<clip>.json     the clip's metadata, written last: it commits the entry

``<key>`` hashes the policy (size, resize mode, interpolation, kept frames, back-end) and
``<clip>`` the file identity (resolved path, size, mtime_ns), so a changed file or policy
never reads a stale entry. Files are written atomically (temp file + ``os.replace``); a killed
build leaves at most a hidden temp file, which is ignored and later removed.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode
from tqdm.auto import tqdm

from zsar.data.dataset import VideoDataset
from zsar.data.decoding import BACKENDS, open_video
from zsar.data.errors import VideoDecodeError, ZsarDataError
from zsar.data.records import VideoList, VideoRecord
from zsar.data.sampling import FrameSampler
from zsar.data.scan import ScanReport, raise_or_warn
from zsar.io import atomic_path, atomic_write_json
from zsar.paths import cache_dir

FORMAT_VERSION = 1  # bump when the stored bytes change for the same policy
DECODE_CHUNK = 32  # frames decoded per decord call: bounds memory for long videos
PYAV_CHUNK = 512  # PyAV restarts at frame 0 per call: quadratic only beyond this many frames
_INTERPOLATIONS = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}


class FrameCacheMissError(ZsarDataError):
    """A video has no complete entry in the frame cache (never built, or the file changed)."""

    def __init__(self, path, cache_folder, reason: str = "not built yet, or the file's size/mtime "
                                                         "changed since"):
        self.path, self.cache_folder = str(path), str(cache_folder)
        super().__init__(f"{self.path}: not in the frame cache {self.cache_folder} ({reason}); "
                         "run FrameCache.build(videos)")


def kept_indices(num_frames: int, max_frames: int | None = None, frame_stride: int = 1) -> np.ndarray:
    """Source indices a cache entry keeps: every ``frame_stride``-th, at most ``max_frames``.

    Returns:
        ``(K,)`` int64, increasing. When thinning to ``max_frames`` the picks sit at the centres
        of ``max_frames`` equal runs, as TSN's evaluation views do.
    """
    idx = np.arange(0, num_frames, frame_stride, dtype=np.int64)
    if max_frames is not None and len(idx) > max_frames:
        idx = idx[((np.arange(max_frames) + 0.5) * len(idx) / max_frames).astype(np.int64)]
    return idx


def resize_frames(frames: np.ndarray, size: int | None, interpolation: str = "bicubic",
                  resize_mode: str = "shortest") -> np.ndarray:
    """Resize like :class:`~zsar.data.transforms.ClipVideoTransform` in evaluation.

    The same torchvision calls on the same ``(N, 3, H, W)`` uint8 layout, so that the eval
    transform applied to cached frames (a no-op resize and crop) gives identical tensors.

    Args:
        frames: ``(N, H, W, 3)`` uint8.
        size: output side ``S``; ``None`` returns ``frames`` unchanged.

    Returns:
        ``(N, S, S, 3)`` uint8.
    """
    if size is None:
        return frames
    x = torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2)
    interp = _INTERPOLATIONS[interpolation]
    if resize_mode == "squash":
        x = TF.resize(x, [size, size], interp, antialias=True)
    else:
        x = TF.center_crop(TF.resize(x, size, interp, antialias=True), [size, size])
    return x.permute(0, 2, 3, 1).numpy()


def file_identity(path: str | os.PathLike, resolved: str | None = None) -> tuple[str, int, int]:
    """``(resolved path, size, mtime_ns)`` of a file: what a cache entry is valid for.

    Args:
        resolved: ``path`` already resolved (skips a syscall per path component).

    Raises:
        VideoDecodeError: the file cannot be stat'ed (missing, dangling link, unreadable).
    """
    try:
        resolved = resolved or str(Path(path).resolve())
        st = os.stat(resolved)
    except OSError as e:
        raise VideoDecodeError(path, f"cannot stat: {e.strerror or e}") from None
    return resolved, int(st.st_size), int(st.st_mtime_ns)


def clip_key(identity: tuple[str, int, int]) -> str:
    """Hex name of a file's cache entry."""
    return hashlib.sha256("\0".join(map(str, identity)).encode("utf-8")).hexdigest()[:32]


class CachedClip:
    """One cache entry; frames are read from disk only when asked for.

    Attributes:
        path: the entry's ``.npy`` file, ``(K, 3, S, S)`` uint8 (channels first, see
            :meth:`take`).
        num_frames: decodable frames of the source video (what samplers are called with).
        fps: the source's frame rate (``nan`` if unknown).
        kept: ``(K,)`` source index of each cached frame.
    """

    def __init__(self, path: Path, meta: dict, kept: np.ndarray):
        self.path, self.kept = path, kept
        self.num_frames, self.fps = int(meta["num_frames"]), float(meta["fps"])
        self.shape, self._offset = tuple(meta["shape"]), int(meta["offset"])

    @property
    def frames(self) -> np.ndarray:
        """``(K, S, S, 3)`` uint8, memory-mapped read-only (a view of the stored array)."""
        return np.load(self.path, mmap_mode="r").transpose(0, 2, 3, 1)

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames at source ``indices`` ``(N,)``, each from the nearest kept frame (ties: the earlier).

        Returns:
            ``(N, S, S, 3)`` uint8, a writable view of a contiguous ``(N, 3, S, S)`` array, and
            the ``(N,)`` source indices used. Channels-first storage is what the model wants,
            and it halves the cost of normalising in ``ClipVideoTransform``, whose arithmetic
            is slow on channels-last strides.

        Raises:
            FrameCacheMissError: the entry's file has been removed or truncated.
        """
        idx = np.asarray(indices, dtype=np.int64)
        if len(self.kept) == self.num_frames:  # all frames kept: positions are indices
            pos = idx
        else:
            right = np.clip(np.searchsorted(self.kept, idx), 0, len(self.kept) - 1)
            left = np.clip(right - 1, 0, len(self.kept) - 1)
            pos = np.where(np.abs(self.kept[left] - idx) <= np.abs(self.kept[right] - idx), left, right)
        out = np.empty((len(pos),) + self.shape[1:], np.uint8)
        frame_bytes = out[0].nbytes if len(pos) else 0
        # a seek + read per frame: cheaper than mapping the file and parsing its header per sample
        try:
            with open(self.path, "rb", buffering=0) as f:
                for j, p in enumerate(pos.tolist()):
                    f.seek(self._offset + p * frame_bytes)
                    if f.readinto(memoryview(out[j]).cast("B")) != frame_bytes:
                        raise FrameCacheMissError(self.path, self.path.parent.parent, "truncated entry")
        except FileNotFoundError:
            raise FrameCacheMissError(self.path, self.path.parent.parent, "entry file removed") from None
        return out.transpose(0, 2, 3, 1), self.kept[pos]


@dataclass
class FrameCacheReport(ScanReport):
    """Outcome of :meth:`FrameCache.build`; ``ok``/``bad``/``videos`` as in a scan report.

    Attributes:
        built: entries decoded and written by this build.
        reused: entries that were already complete.
        folder: the cache folder of this policy.
    """

    built: int = 0
    reused: int = 0
    folder: Path | None = None

    def __str__(self) -> str:
        head = (f"frame cache {self.folder}: {self.count} videos in {self.seconds:.1f} s, "
                f"{self.built} decoded, {self.reused} reused, {len(self.bad)} bad")
        return "\n".join([head] + [f"  {p}: {reason}" for p, reason in self.bad])


@dataclass
class _Todo:
    path: Path
    key: str
    paths: list[Path] = field(default_factory=list)  # every listed path naming this file


class FrameCache:
    """Decoded, resized frames of video files, one memory-mappable ``.npy`` per file.

    Args:
        root: folder of the per-policy caches (default ``cache_dir()/"frames"``).
        size: output side ``S`` (e.g. the model's 64 or 112); ``None`` keeps the decoded size.
        max_frames: keep at most this many frames per video (``None``: no limit).
        frame_stride: keep every ``frame_stride``-th frame.
        interpolation: ``"bicubic"`` or ``"bilinear"`` (match the model's preprocessing).
        resize_mode: ``"shortest"`` (shorter side + centre crop) or ``"squash"``.
        backend: decoding back-end, as for :class:`~zsar.data.dataset.VideoDataset`.

    Attributes:
        key: hash of the policy; names the folder ``root / key``.
        folder: ``root / key``.
    """

    def __init__(self, root: str | os.PathLike | None = None, size: int | None = 64,
                 max_frames: int | None = None, frame_stride: int = 1, interpolation: str = "bicubic",
                 resize_mode: str = "shortest", backend: str = "auto"):
        _check_policy(size=size, max_frames=max_frames, frame_stride=frame_stride,
                      interpolation=interpolation, resize_mode=resize_mode, backend=backend)
        self.root = Path(root) if root is not None else cache_dir() / "frames"
        self.size, self.max_frames, self.frame_stride = size, max_frames, int(frame_stride)
        self.interpolation, self.resize_mode, self.backend = interpolation, resize_mode, backend
        self.config = {"format": FORMAT_VERSION, "size": size, "max_frames": max_frames,
                       "frame_stride": self.frame_stride, "interpolation": interpolation,
                       "resize_mode": resize_mode, "backend": backend}
        payload = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        self.key = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
        self.folder = self.root / self.key
        self._index: dict[str, dict] = {}  # clip key -> metadata, filled as entries are read
        self._resolved: dict[Path, str] = {}

    @classmethod
    def for_transform(cls, cfg, root: str | os.PathLike | None = None, **kwargs) -> "FrameCache":
        """A cache matching a :class:`~zsar.data.transforms.ClipPreprocessConfig` (size, mode)."""
        return cls(root, size=cfg.size, interpolation=cfg.interpolation, resize_mode=cfg.resize_mode,
                   **kwargs)

    def entry_paths(self, key: str) -> tuple[Path, Path]:
        """``(frames .npy, metadata .json)`` of clip ``key``."""
        base = self.folder / key[:2] / key
        return base.with_suffix(".npy"), base.with_suffix(".json")

    def clip(self, video: VideoRecord | str | os.PathLike, build_missing: bool = False) -> CachedClip:
        """The cache entry of a video (a record or a path).

        Args:
            build_missing: decode and store a missing entry instead of raising.

        Raises:
            FrameCacheMissError: no complete entry for the file's current size and mtime.
            VideoDecodeError: the file is gone, or (``build_missing``) cannot be decoded.
        """
        path = Path(video.path if isinstance(video, VideoRecord) else video)
        key = clip_key(self._identity(path))
        meta = self._index.get(key) or self._read_meta(key)
        if meta is None and build_missing:
            meta = _build_entry(str(path), key, str(self.folder), self.config)
            if isinstance(meta, str):
                raise VideoDecodeError(path, meta)
            self._index[key] = meta
        if meta is None:
            raise FrameCacheMissError(path, self.folder)
        kept = kept_indices(meta["num_frames"], self.max_frames, self.frame_stride)
        return CachedClip(self.entry_paths(key)[0], meta, kept)

    def _identity(self, path: Path) -> tuple[str, int, int]:
        # a path is resolved once per process; size and mtime are read on every call
        identity = file_identity(path, self._resolved.get(path))
        self._resolved[path] = identity[0]
        return identity

    def get(self, video: VideoRecord | str | os.PathLike) -> np.ndarray:
        """``(K, S, S, 3)`` uint8 memory-mapped frames of a video; see :meth:`clip`."""
        return self.clip(video).frames

    def __contains__(self, video) -> bool:
        try:
            self.clip(video)
        except (FrameCacheMissError, VideoDecodeError):
            return False
        return True

    def _read_meta(self, key: str) -> dict | None:
        npy, meta_path = self.entry_paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing or unreadable metadata: not an entry, a build rewrites it
        if not npy.is_file():
            return None
        self._index[key] = meta
        return meta

    def build(self, videos: VideoList | Iterable, workers: int | None = None, progress: bool | None = None,
              on_error: str = "raise") -> FrameCacheReport:
        """Decode and store every video that has no complete entry yet.

        Args:
            videos: a :class:`VideoList`, or records / paths.
            workers: decoding processes (``None``: all CPUs); 1 decodes in this process.
            progress: tqdm bar; ``None`` shows it only on a terminal.
            on_error: after building every good file, ``"raise"`` a
                :class:`~zsar.data.scan.BadVideosError` listing every bad file, or ``"skip"``
                (warn; ``report.videos`` omits them).

        Returns:
            A :class:`FrameCacheReport`; entries of good files are written in either case.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        start = time.perf_counter()
        self.clean_temps()
        paths = _paths_of(videos)
        report = FrameCacheReport(folder=self.folder)
        reasons: dict[Path, str] = {}
        todo: dict[str, _Todo] = {}  # by clip key: a file listed twice is decoded once
        for path in paths:
            try:
                key = clip_key(file_identity(path))
            except VideoDecodeError as e:
                reasons[path] = e.reason
                continue
            if key in todo or self._read_meta(key) is None:
                todo.setdefault(key, _Todo(path, key)).paths.append(path)
            else:
                report.reused += 1
        for item, result in zip(todo.values(), self._decode_all(list(todo.values()), workers, progress)):
            if isinstance(result, str):
                reasons.update({p: result for p in item.paths})
            else:
                self._index[item.key] = result
                report.built += 1
        report.ok = [p for p in paths if p not in reasons]
        report.bad = [(p, reasons[p]) for p in paths if p in reasons]
        if isinstance(videos, VideoList):
            report.videos = VideoList([r for r in videos.records if Path(r.path) not in reasons],
                                      videos.class_names, videos.root, videos.source, videos.class_dirs)
        self.write_manifest()
        report.seconds = time.perf_counter() - start
        return _finish_report(report, on_error)

    def _decode_all(self, todo: list[_Todo], workers: int | None, progress: bool | None) -> list:
        """Metadata dict or failure reason of each item, in order."""
        args = [(str(t.path), t.key, str(self.folder), self.config) for t in todo]
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
        disable = None if progress is None else not progress
        results: list = []
        with tqdm(total=len(todo), desc=f"frame cache {self.key}", unit="video", disable=disable) as bar:
            if workers == 1:
                for a in args:
                    results.append(_build_entry(*a))
                    bar.update(1)
                return results
            with ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init) as pool:
                for result in pool.map(_build_entry, *zip(*args)):  # in order
                    results.append(result)
                    bar.update(1)
        return results

    def write_manifest(self) -> Path:
        """Write ``manifest.json`` (policy + every complete entry on disk) atomically."""
        path = self.folder / "manifest.json"
        keys = sorted(p.stem for p in self.folder.glob("??/*.json"))
        clips = {k: meta for k in keys if (meta := self._index.get(k) or self._read_meta(k)) is not None}
        return atomic_write_json(path, {"config": self.config, "key": self.key, "clips": clips})

    def clean_temps(self, max_age_s: float = 3600.0) -> int:
        """Remove temp files older than ``max_age_s`` (left by killed writers); returns how many.

        Younger ones may belong to a build running in another process, so they are kept;
        readers never open temp files either way.
        """
        removed, now = 0, time.time()
        for tmp in self.folder.glob("**/.*.tmp.*"):
            try:
                if now - tmp.stat().st_mtime >= max_age_s:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def __repr__(self) -> str:
        return (f"FrameCache({str(self.folder)!r}, size={self.size}, max_frames={self.max_frames}, "
                f"frame_stride={self.frame_stride}, {self.interpolation}, {self.resize_mode})")


def _check_policy(**values) -> None:
    allowed = {"size": (lambda v: v is None or (isinstance(v, int) and v >= 1), "None or an int >= 1"),
               "max_frames": (lambda v: v is None or v >= 1, "None or >= 1"),
               "frame_stride": (lambda v: v >= 1, ">= 1"),
               "interpolation": (lambda v: v in _INTERPOLATIONS, sorted(_INTERPOLATIONS)),
               "resize_mode": (lambda v: v in ("shortest", "squash"), ["shortest", "squash"]),
               "backend": (lambda v: v in BACKENDS, list(BACKENDS))}
    for name, value in values.items():
        ok, what = allowed[name]
        if not ok(value):
            raise ValueError(f"FrameCache {name}={value!r}: must be {what}")


def _paths_of(videos) -> list[Path]:
    items = videos.records if isinstance(videos, VideoList) else videos
    return [Path(v.path if isinstance(v, VideoRecord) else v) for v in items]


def _finish_report(report: FrameCacheReport, on_error: str) -> FrameCacheReport:
    return raise_or_warn(report, on_error, what="frame cache: ", stacklevel=4)


def _pool_context():
    """fork on Linux, as DataLoader workers do; the platform default (spawn) elsewhere.

    A forked child can deadlock in a thread pool it inherits in use. The workers only run
    torch with one thread (set before any op, so no OpenMP region is entered), decord and PyAV
    (a decoder per file, no pool kept across files); OpenCV, which deadlocked the embedded
    generator's forked workers, is never called. forkserver/spawn would add seconds of imports
    per build, more than decoding a small benchmark takes.
    """
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _worker_init() -> None:
    torch.set_num_threads(1)  # parallelism is over files; torch's own threads would oversubscribe


def _build_entry(path: str, key: str, folder: str, config: dict) -> dict | str:
    """Decode, resize and store one file; its metadata dict, or why it cannot be decoded.

    Only :class:`VideoDecodeError` (a bad file) becomes a reason; anything else (a full disk,
    a bug) propagates, with the path noted, after the temp file has been removed.
    """
    base = Path(folder) / key[:2] / key
    try:
        with open_video(path, config["backend"]) as handle:
            kept = kept_indices(handle.num_frames, config["max_frames"], config["frame_stride"])
            size = config["size"]
            shape = (len(kept), 3, size or handle.height, size or handle.width)
            # PyAV decodes from the first frame on every call: few, large chunks
            chunk = DECODE_CHUNK if handle.backend == "decord" else PYAV_CHUNK
            with atomic_path(base.with_suffix(".npy")) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                for i in range(0, len(kept), chunk):
                    frames = resize_frames(handle.get_frames(kept[i:i + chunk]), size,
                                           config["interpolation"], config["resize_mode"])
                    out[i:i + chunk] = frames.transpose(0, 3, 1, 2)
                out.flush()
                offset = out.offset  # header length: lets readers seek straight to a frame
                del out
            info = handle.info
    except VideoDecodeError as e:
        return e.reason
    except Exception as e:
        if hasattr(e, "add_note"):  # Python >= 3.11
            e.add_note(f"while caching the frames of {path}")
        raise
    meta = {"path": str(path), "num_frames": int(info.num_frames), "fps": float(info.fps),
            "height": int(info.height), "width": int(info.width), "backend": info.backend,
            "num_kept": int(len(kept)), "shape": list(shape), "offset": int(offset)}
    atomic_write_json(base.with_suffix(".json"), meta)  # last: its presence marks the entry complete
    return meta


class CachedVideoDataset(VideoDataset):
    """:class:`~zsar.data.dataset.VideoDataset` that reads frames from a :class:`FrameCache`.

    Same sample keys (:data:`~zsar.data.dataset.SAMPLE_KEYS`), same per-sample Generators
    (``SeedSequence([seed, epoch, index])``), and the sampler sees the source's frame count and
    fps, so ``frame_indices`` match a decoding dataset whenever the cache keeps every frame.
    With ``ClipVideoTransform`` at the cache's size, evaluation samples are identical to a
    decoding dataset's: its resize and crop return already-``S x S`` frames untouched
    (torchvision short-circuits), leaving only the normalisation to pay for.

    Args:
        videos: the labelled videos (their entries must be built, unless ``build_missing``).
        cache: the :class:`FrameCache`.
        sampler, transform, train, seed: as for ``VideoDataset``.
        build_missing: decode and store missing entries on first access instead of raising.
    """

    def __init__(self, videos: VideoList, cache: FrameCache, sampler: FrameSampler | None = None,
                 transform: Callable | None = None, train: bool = False, seed: int = 0,
                 build_missing: bool = False):
        super().__init__(videos, sampler, transform, train, seed, backend=cache.backend)
        self.cache = cache
        self.build_missing = build_missing
        t_size = getattr(getattr(transform, "cfg", None), "size", None)
        if not train and cache.size is not None and t_size is not None and t_size != cache.size:
            warnings.warn(f"transform size {t_size} != frame cache size {cache.size}: frames are "
                          "resized twice, so samples differ from decoding the video", stacklevel=2)

    def __getitem__(self, index: int) -> dict:
        """Clip ``index`` from the cache; keys are :data:`~zsar.data.dataset.SAMPLE_KEYS`.

        Raises:
            IndexError: ``index`` out of range.
            FrameCacheMissError: the video has no entry (build the cache first).
        """
        if not 0 <= index < len(self.videos):
            raise IndexError(f"index {index} out of range for {len(self.videos)} videos")
        record = self.videos.records[index]
        # same Generators as VideoDataset; skipped (~70 us) when neither sampler nor transform draws
        draws = self.train or (self._transform_takes_rng and getattr(self.transform, "train", True))
        sample_rng, transform_rng = self.rngs(index) if draws else (None, None)
        clip = self.cache.clip(record, build_missing=self.build_missing)
        indices = self.sampler(clip.num_frames, clip.fps, train=self.train, rng=sample_rng)
        frames, used = clip.take(indices)
        frames = torch.from_numpy(frames)  # (T, S, S, 3) uint8 view of contiguous (T, 3, S, S)
        if self.transform is None:
            video = frames.permute(0, 3, 1, 2)  # contiguous again, no copy
        elif self._transform_takes_rng:
            video = self.transform(frames, rng=transform_rng)
        else:
            video = self.transform(frames)
        return {"video": video, "label": int(record.label), "video_index": int(index),
                "video_id": record.video_id, "frame_indices": torch.from_numpy(used),
                "num_frames": int(clip.num_frames)}

    def __repr__(self) -> str:
        return (f"CachedVideoDataset({len(self)} videos, {self.cache}, {self.sampler}, "
                f"transform={self.transform}, train={self.train}, seed={self.seed}, epoch={self.epoch})")
