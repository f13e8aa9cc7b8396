"""Clip samplers: map a video's length (and frame rate) to the frame indices to decode.

A sampler is called as ``sampler(num_frames, fps, train=..., rng=...)`` and returns an int64
array of shape ``(num_clips * frames_per_clip,)`` with every index in ``[0, num_frames)``.
Training draws from ``rng`` (a ``numpy.random.Generator``, so the dataset can derive one per
epoch and index); evaluation is deterministic and ignores ``rng``.

* :class:`SegmentSampler` (``"tsn"``) — TSN: split the video into ``num_segments`` equal
  segments, take one frame per segment (random in training, the centre in evaluation).
* :class:`DenseSampler` (``"dense"``) — ``clip_len`` frames ``frame_interval`` apart from a
  start (random in training, centred in evaluation); ``num_clips`` views are spread evenly.
* :class:`MMActionSampler` (``"mmaction"``) — the frame indices of mmaction2 0.x
  ``SampleFrames(clip_len=1, frame_interval=1, num_clips=T)``, the sampling of X-CLIP /
  ViFi-CLIP-style pipelines: like TSN, but evaluation takes frame ``int(i*n/T + n/(2T))``
  in float64 as mmaction computes it, training draws from ``n // T``-frame segments, and
  ``twice_sample`` adds a second evaluation view at the segment starts.
* :class:`ActionCLIPSampler` (``"actionclip"``) — ActionCLIP's segment centres
  ``int(i*n/T + (n/T - 1)/2)`` (one frame lower than mmaction's on many lengths).

Videos shorter than the sampled span repeat frames rather than index past the end.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class FrameSampler(ABC):
    """Base class. Subclasses set ``frames_per_clip`` and ``num_clips``."""

    frames_per_clip: int
    num_clips: int

    @property
    def num_indices(self) -> int:
        """Length of the index array one call returns (``num_clips * frames_per_clip``)."""
        return self.num_clips * self.frames_per_clip

    def __call__(self, num_frames: int, fps: float | None = None, *, train: bool = False,
                 rng: np.random.Generator | None = None) -> np.ndarray:
        """Frame indices for one video.

        Args:
            num_frames: number of decodable frames (> 0).
            fps: the video's frame rate; used only by samplers with a ``target_fps``.
            train: draw random positions from ``rng`` (else deterministic centred positions).
            rng: required when ``train`` is true.

        Returns:
            ``(num_clips * frames_per_clip,)`` int64 indices in ``[0, num_frames)``, clip-major.
        """
        if num_frames <= 0:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        if train and rng is None:
            raise ValueError(f"{type(self).__name__}: train=True needs a numpy Generator rng")
        idx = self._sample(int(num_frames), fps, rng if train else None)
        return np.clip(idx.astype(np.int64), 0, num_frames - 1)

    @abstractmethod
    def _sample(self, num_frames: int, fps: float | None, rng: np.random.Generator | None) -> np.ndarray:
        """Indices before clipping; ``rng`` is None in evaluation."""


class SegmentSampler(FrameSampler):
    """TSN segment sampling (Wang et al., 2016).

    Args:
        num_segments: frames per clip, one per equal-length segment.
        num_clips: views per video. In evaluation view ``k`` takes offset ``(k + 0.5) / num_clips``
            inside each segment (one view: the centre); in training each view is random.
    """

    def __init__(self, num_segments: int = 8, num_clips: int = 1):
        if num_segments < 1 or num_clips < 1:
            raise ValueError(f"num_segments and num_clips must be >= 1, got {num_segments}, {num_clips}")
        self.frames_per_clip = self.num_segments = int(num_segments)
        self.num_clips = int(num_clips)

    def _sample(self, num_frames, fps, rng):
        seg = num_frames / self.num_segments  # may be < 1: then segments share (repeat) frames
        starts = np.floor(seg * np.arange(self.num_segments))
        if rng is None:
            offsets = (np.arange(self.num_clips)[:, None] + 0.5) / self.num_clips
            return np.floor(starts[None, :] + offsets * seg).reshape(-1)
        # one uniform draw per segment and view, scaled to the segment's length
        u = rng.random((self.num_clips, self.num_segments))
        return np.floor(starts[None, :] + u * max(seg, 1.0)).reshape(-1)

    def __repr__(self) -> str:
        return f"SegmentSampler(num_segments={self.num_segments}, num_clips={self.num_clips})"


class DenseSampler(FrameSampler):
    """Consecutive frames at a fixed stride (SlowFast / X3D style clips).

    Args:
        clip_len: frames per clip.
        frame_interval: stride between sampled frames, in source frames.
        num_clips: views per video; in evaluation their starts are spread evenly with view
            ``k`` centred at ``(k + 0.5) / num_clips`` of the free range (one view: centred).
        target_fps: if set, the stride is rescaled by ``fps / target_fps`` so a clip spans the
            same time in videos of different frame rates.
    """

    def __init__(self, clip_len: int = 8, frame_interval: int = 1, num_clips: int = 1,
                 target_fps: float | None = None):
        if clip_len < 1 or frame_interval < 1 or num_clips < 1:
            raise ValueError("clip_len, frame_interval and num_clips must be >= 1, got "
                             f"{clip_len}, {frame_interval}, {num_clips}")
        self.frames_per_clip = self.clip_len = int(clip_len)
        self.frame_interval = int(frame_interval)
        self.num_clips = int(num_clips)
        self.target_fps = target_fps

    def interval_for(self, fps: float | None) -> int:
        """The stride used for a video at ``fps``."""
        if self.target_fps and fps and fps == fps:
            return max(1, round(self.frame_interval * fps / self.target_fps))
        return self.frame_interval

    def _sample(self, num_frames, fps, rng):
        interval = self.interval_for(fps)
        span = (self.clip_len - 1) * interval + 1
        if span > num_frames:
            # too short for the stride: spread clip_len frames over the whole video (repeats)
            one = np.floor(np.linspace(0, num_frames - 1, self.clip_len) + 0.5)
            return np.tile(one, self.num_clips)
        free = num_frames - span
        if rng is None:
            starts = np.floor(free * (np.arange(self.num_clips) + 0.5) / self.num_clips + 0.5)
        else:
            starts = rng.integers(0, free + 1, size=self.num_clips)
        return (starts[:, None] + interval * np.arange(self.clip_len)[None, :]).reshape(-1)

    def __repr__(self) -> str:
        return (f"DenseSampler(clip_len={self.clip_len}, frame_interval={self.frame_interval}, "
                f"num_clips={self.num_clips}, target_fps={self.target_fps})")


class MMActionSampler(FrameSampler):
    """mmaction2 0.x ``SampleFrames`` with ``clip_len=1, frame_interval=1, num_clips=T``.

    Reproduces the frame indices of ``SampleFrames._get_test_clips`` (evaluation),
    ``SampleFrames._get_train_clips`` (training, ``keep_tail_frames=False``) and the
    ``out_of_bound_opt='loop'`` step of ``SampleFrames.__call__``, in open-mmlab/mmaction2,
    ``mmaction/datasets/pipelines/loading.py`` (branch 0.x, v0.24.1), with ``start_index=0``
    (videos). With ``clip_len = frame_interval = 1`` each mmaction "clip" is one frame, so
    mmaction's ``num_clips`` is our ``num_segments`` (T). For ``n`` frames:

    * evaluation: ``avg = n / T`` (a float); segment ``i`` gives ``int(i * avg + avg / 2.0)``,
      i.e. ``floor(i*n/T + n/(2T))`` up to float rounding, computed in float64 exactly as
      mmaction does (for T a power of two that is the exact value; for other T the float
      result can be one lower, e.g. ``n=6, T=7, i=3`` gives 2, not 3, in mmaction and here).
      With ``twice_sample`` the T segment starts ``int(i * avg)`` follow the T centred indices.
      (mmaction's all-zeros branch, ``n <= clip_len - 1``, cannot occur: ``n >= 1``.)
    * training, ``n >= T``: ``avg = n // T`` (an integer); segment ``i`` gives
      ``i * avg + u_i``, ``u_i`` uniform in ``[0, avg)`` drawn from ``rng``. The last
      ``n - T * avg`` frames are never drawn (as in mmaction).
    * training, ``n < T``: deterministic ``round(i * n / T)`` (numpy's round-half-to-even,
      ``np.around``), then ``mod n``, so the last index can wrap to frame 0 (``n=4, T=8`` gives
      ``0 0 1 2 2 2 3 0``). mmaction's branch between these two (sorted random offsets when
      ``n > max(T, clip_len)``) cannot occur with ``clip_len=1`` since ``n // T == 0`` means
      ``n < T``; its all-zeros branch needs ``n < clip_len - 1``.

    Every offset goes through ``mod n`` (``'loop'``), then truncation to int, as in mmaction.
    The random stream differs from mmaction's (``np.random.randint`` on the global legacy
    state); the distribution is the same.

    Args:
        num_segments: T, frames per clip (one per segment).
        twice_sample: evaluation returns two views, ``(2 * T,)``: the T centred indices, then
            the T segment starts (mmaction's order). Training ignores it, as mmaction does, and
            returns ``(T,)`` (so ``num_indices`` describes evaluation only).

    Shapes: ``(T,)`` int64, or ``(2 * T,)`` in evaluation with ``twice_sample``; clip-major.
    """

    def __init__(self, num_segments: int = 8, twice_sample: bool = False):
        if num_segments < 1:
            raise ValueError(f"num_segments must be >= 1, got {num_segments}")
        self.frames_per_clip = self.num_segments = int(num_segments)
        self.twice_sample = bool(twice_sample)
        self.num_clips = 2 if self.twice_sample else 1

    def _test_offsets(self, num_frames: int) -> np.ndarray:
        avg = num_frames / float(self.num_segments)  # (n - clip_len + 1) / T, clip_len = 1
        starts = np.arange(self.num_segments) * avg  # float64, as mmaction's base_offsets
        centred = (starts + avg / 2.0).astype(np.int64)  # truncation (all values >= 0)
        if self.twice_sample:
            return np.concatenate([centred, starts])  # float; truncated after the loop step
        return centred

    def _train_offsets(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        avg = num_frames // self.num_segments  # integer segment length
        if avg > 0:
            return np.arange(self.num_segments) * avg + rng.integers(0, avg, size=self.num_segments)
        # n < T: evenly spread, rounded half to even; the top value may reach n (wraps below)
        return np.around(np.arange(self.num_segments) * (num_frames / self.num_segments))

    def _sample(self, num_frames, fps, rng):
        offsets = self._test_offsets(num_frames) if rng is None else self._train_offsets(num_frames, rng)
        return np.mod(offsets, num_frames).astype(np.int64)  # out_of_bound_opt='loop'

    def __repr__(self) -> str:
        return f"MMActionSampler(num_segments={self.num_segments}, twice_sample={self.twice_sample})"


class ActionCLIPSampler(FrameSampler):
    """ActionCLIP's segment sampling (``Action_DATASETS`` with ``new_length=1``, ``loop=False``).

    Reproduces ``_get_val_indices`` (evaluation) and ``_sample_indices`` (training) of
    sallymmx/ActionCLIP ``datasets/datasets.py`` (commit a06b48d), 0-based (ActionCLIP adds
    ``index_bias=1`` to name 1-based frame images; a video's frame ``k`` is its image ``k + 1``).
    For ``n`` frames and ``T`` segments:

    * evaluation: ``T == 1`` gives ``n // 2``; ``n <= T`` gives ``i * n // T``; otherwise
      ``int(i * n / T + (n / T - 1) / 2)`` (the segment centre, truncated, in float64).
    * training, ``n > T``: segment ``i`` spans ``[i * n // T, (i + 1) * n // T)`` and one frame
      is drawn uniformly in it; ``n <= T``: every frame once plus ``T - n`` uniform draws, sorted.

    Shapes: ``(T,)`` int64.
    """

    def __init__(self, num_segments: int = 8):
        if num_segments < 1:
            raise ValueError(f"num_segments must be >= 1, got {num_segments}")
        self.frames_per_clip = self.num_segments = int(num_segments)
        self.num_clips = 1

    def _sample(self, num_frames, fps, rng):
        n, t = num_frames, self.num_segments
        if rng is not None:
            if n <= t:
                return np.sort(np.concatenate([np.arange(n), rng.integers(0, n, size=t - n)]))
            ticks = np.arange(t + 1) * n // t
            return ticks[:-1] + rng.integers(0, ticks[1:] - ticks[:-1])
        if t == 1:
            return np.array([n // 2])
        if n <= t:
            return np.arange(t) * n // t
        return (np.arange(t) * n / t + (n / t - 1) / 2.0).astype(np.int64)

    def __repr__(self) -> str:
        return f"ActionCLIPSampler(num_segments={self.num_segments})"


SAMPLERS = {"tsn": SegmentSampler, "segment": SegmentSampler, "dense": DenseSampler,
            "mmaction": MMActionSampler, "actionclip": ActionCLIPSampler}


def make_sampler(name: str, **kwargs) -> FrameSampler:
    """Build a sampler by name: ``"tsn"``/``"segment"``, ``"dense"``, ``"mmaction"`` or
    ``"actionclip"``; kwargs go to its class.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        cls = SAMPLERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}") from None
    return cls(**kwargs)
