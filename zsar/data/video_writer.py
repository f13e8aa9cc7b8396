"""Write frames to a real video file with PyAV (H.264 in MP4 by default), atomically."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from zsar.io import atomic_path


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    codec: str = "libx264",
    crf: int = 18,
    preset: str = "veryfast",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode ``frames`` to ``path`` (temp file + rename, so a kill leaves no partial file).

    Args:
        path: destination; the container is chosen from its extension (``.mp4``, ``.avi``, ``.mkv``).
        frames: ``(T, H, W, 3)`` uint8 RGB frames; H and W must be even for yuv420p.
        fps: frame rate (may be fractional).
        codec: FFmpeg encoder name, e.g. ``libx264`` or ``mpeg4``.
        crf: constant rate factor for x264 (lower is better quality); ignored by other codecs.
        preset: x264 speed preset.
        pix_fmt: pixel format of the encoded stream.

    Returns:
        The destination path.

    The encoder runs single-threaded with no B-frames-dependent randomness, so the same
    frames give byte-identical files.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise ValueError(f"no frames to write to {path}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=_container_format(Path(path))) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            stream.thread_count = 1  # deterministic output, and the caller parallelises over clips
            if codec == "libx264":
                # cpu-independent: identical bytes whatever the process encoded before (determinism)
                stream.options = {"crf": str(crf), "preset": preset, "x264-params": "cpu-independent=1"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return Path(path)


def _container_format(path: Path) -> str | None:
    """FFmpeg muxer name for a destination (the temp file's extension is not trusted)."""
    return {".mp4": "mp4", ".avi": "avi", ".mkv": "matroska", ".mov": "mov"}.get(path.suffix.lower())
