"""The one generic video dataset; per-dataset factories only build its :class:`VideoList`.

A sample is a dict with fixed keys (pytorchvideo's shape)::

    video          (T, 3, H, W) tensor: float32 from a transform, uint8 without one
    label          int, index into ``videos.class_names``
    video_index    int, position in the dataset
    video_id       str, the record's id (path relative to the dataset root)
    frame_indices  (T,) int64 tensor, the decoded frames
    num_frames     int, decodable frames in the file

Randomness (training clip positions and crops) comes from a Generator derived from
``SeedSequence([seed, epoch, index])``, so a sample is the same whatever the worker count or
order of access; call :meth:`VideoDataset.set_epoch` each epoch to get new draws.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from zsar.data.decoding import open_video
from zsar.data.records import VideoList
from zsar.data.sampling import FrameSampler, make_sampler
from zsar.data.scan import scan_videos

SAMPLE_KEYS = ("video", "label", "video_index", "video_id", "frame_indices", "num_frames")


class VideoDataset(Dataset):
    """Frames sampled from each video of a :class:`VideoList`.

    Args:
        videos: the labelled videos.
        sampler: a :class:`~zsar.data.sampling.FrameSampler` (default TSN with 8 segments).
        transform: ``(T, H, W, 3)`` uint8 tensor -> ``(T, 3, S, S)`` tensor, e.g.
            :class:`~zsar.data.transforms.ClipVideoTransform`; it receives ``rng=`` if its
            signature has an ``rng`` parameter. ``None``: the uint8 frames, channels first.
        train: random sampling/augmentation (else deterministic evaluation views).
        seed: base of the per-sample random streams.
        backend: decoding back-end, see :func:`zsar.data.decoding.open_video`.
        on_error: what :meth:`scan` does with bad files: ``"raise"`` or ``"skip"`` (drop them,
            with a warning and a report). ``__getitem__`` always raises ``VideoDecodeError``.
    """

    def __init__(self, videos: VideoList, sampler: FrameSampler | None = None,
                 transform: Callable | None = None, train: bool = False, seed: int = 0,
                 backend: str = "auto", on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.videos = videos
        self.sampler = sampler if sampler is not None else make_sampler("tsn", num_segments=8)
        self.transform = transform
        self.train = train
        self.seed = int(seed)
        self.backend = backend
        self.on_error = on_error
        self.epoch = 0
        self.scan_report = None
        self._transform_takes_rng = _accepts_rng(transform)

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def class_names(self) -> list[str]:
        return self.videos.class_names

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before building the epoch's iterator)."""
        self.epoch = int(epoch)

    def rngs(self, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        """Independent (sampler, transform) Generators of sample ``index`` in this epoch."""
        ss = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        a, b = ss.spawn(2)
        return np.random.default_rng(a), np.random.default_rng(b)

    def __getitem__(self, index: int) -> dict:
        """Decode and transform the frames of video ``index``; keys are :data:`SAMPLE_KEYS`.

        Raises:
            IndexError: ``index`` out of range.
            VideoDecodeError: the file cannot be decoded (run :meth:`scan` first to find those).
        """
        if not 0 <= index < len(self.videos):
            raise IndexError(f"index {index} out of range for {len(self.videos)} videos")
        record = self.videos.records[index]
        sample_rng, transform_rng = self.rngs(index)
        with open_video(record.path, self.backend) as handle:
            indices = self.sampler(handle.num_frames, handle.fps, train=self.train, rng=sample_rng)
            frames = torch.from_numpy(handle.get_frames(indices))  # (T, H, W, 3) uint8
            num_frames = handle.num_frames
        if self.transform is None:
            video = frames.permute(0, 3, 1, 2).contiguous()
        elif self._transform_takes_rng:
            video = self.transform(frames, rng=transform_rng)
        else:
            video = self.transform(frames)
        return {
            "video": video,
            "label": int(record.label),
            "video_index": int(index),
            "video_id": record.video_id,
            "frame_indices": torch.from_numpy(indices),
            "num_frames": int(num_frames),
        }

    def scan(self, on_error: str | None = None, workers: int = 1, timeout: float = 60.0,
             deep: bool = False, progress: bool | None = None):
        """Check every file (see :func:`zsar.data.scan.scan_videos`).

        With ``on_error="skip"`` the bad files are removed from ``self.videos`` (a warning
        names them); with ``"raise"`` a :class:`~zsar.data.scan.BadVideosError` lists them all.
        The report is kept in ``self.scan_report`` and returned.
        """
        report = scan_videos(self.videos, on_error=on_error or self.on_error, workers=workers,
                             timeout=timeout, backend=self.backend, deep=deep, progress=progress)
        self.videos = report.videos
        self.scan_report = report
        return report

    def __repr__(self) -> str:
        return (f"VideoDataset({len(self)} videos, {len(self.class_names)} classes, {self.sampler}, "
                f"transform={self.transform}, train={self.train}, seed={self.seed}, epoch={self.epoch})")


def _accepts_rng(fn) -> bool:
    if fn is None:
        return False
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return False
