"""Damage copies of video files in the ways real datasets are damaged (for tests and demos).

:func:`corrupt_copies` picks a fraction of the given files and replaces each, in place, by one
kind of damage, cycling through :data:`CORRUPTION_KINDS` so every kind appears once there are
enough files. Pass copies: the files are overwritten. Paths under the shared real-data folder
are refused.

Kinds and what a scan should say:

=================  ===============================================================
``zero_byte``      empty file
``truncated``      cut at a random point in the middle 10-90 % of its size
``corrupt_header`` the first quarter (at most 1 KiB) overwritten with random bytes
``corrupt_middle`` the middle 40 % of the bytes overwritten with random bytes
``text``           a text file with the video's name
``png``            a PNG image with the video's name
``no_frames``      a container of the same type with a video stream and no frames
``dangling_link``  a symbolic link to a file that does not exist
``directory``      a directory with the video's name
=================  ===============================================================

``chmod 000`` is not a kind: the tests run as root, which reads such files anyway.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

import av
import numpy as np
from PIL import Image

from zsar.io import atomic_write_bytes
from zsar.paths import shared_data_dir

CORRUPTION_KINDS = ("zero_byte", "truncated", "corrupt_header", "corrupt_middle", "text", "png",
                    "no_frames", "dangling_link", "directory")


def corrupt_copies(paths: Iterable[str | os.PathLike], fraction: float = 0.05, seed: int = 0,
                   kinds: Iterable[str] = CORRUPTION_KINDS) -> dict[Path, str]:
    """Damage ``round(fraction * len(paths))`` (at least 1) of the files, in place.

    Args:
        paths: video files (copies: they are overwritten).
        fraction: share of the files to damage, in ``(0, 1]``.
        seed: chooses the files, their kinds and the random bytes.
        kinds: damage kinds to cycle through (default all of :data:`CORRUPTION_KINDS`).

    Returns:
        ``{path: kind}`` of the damaged files, sorted by path.

    Raises:
        ValueError: bad ``fraction`` or kind, or a path inside the shared real-data folder.
    """
    paths = sorted(Path(p) for p in paths)
    kinds = tuple(kinds)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    unknown = set(kinds) - set(CORRUPTION_KINDS)
    if unknown or not kinds:
        raise ValueError(f"unknown corruption kinds {sorted(unknown)}; choose from {CORRUPTION_KINDS}")
    _refuse_shared_data(paths)
    rng = np.random.default_rng(seed)
    n_bad = max(1, round(fraction * len(paths))) if paths else 0
    chosen = sorted(rng.choice(len(paths), size=n_bad, replace=False).tolist())
    order = rng.permutation(len(kinds))  # which kind comes first varies with the seed
    damaged = {}
    for i, file_index in enumerate(chosen):
        kind = kinds[order[i % len(kinds)]]
        corrupt_file(paths[file_index], kind, rng)
        damaged[paths[file_index]] = kind
    return damaged


def corrupt_file(path: str | os.PathLike, kind: str, rng: np.random.Generator) -> None:
    """Apply one damage ``kind`` to ``path`` in place (see the module doc)."""
    path = Path(path)
    data = path.read_bytes() if kind in ("truncated", "corrupt_header", "corrupt_middle") else b""
    if kind == "zero_byte":
        atomic_write_bytes(path, b"")
    elif kind == "truncated":
        cut = int(rng.integers(len(data) // 10, max(len(data) * 9 // 10, len(data) // 10 + 1)))
        atomic_write_bytes(path, data[:cut])
    elif kind == "corrupt_header":
        atomic_write_bytes(path, _overwrite(data, 0, min(1024, max(1, len(data) // 4)), rng))
    elif kind == "corrupt_middle":
        atomic_write_bytes(path, _overwrite(data, len(data) * 3 // 10, len(data) * 7 // 10, rng))
    elif kind == "text":
        atomic_write_bytes(path, b"This is not a video; it is a note left in its place.\n" * 8)
    elif kind == "png":
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue())
    elif kind == "no_frames":
        _write_empty_video(path)
    elif kind == "dangling_link":
        path.unlink()
        path.symlink_to(path.with_name(path.name + ".missing"))
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    else:
        raise ValueError(f"unknown corruption kind {kind!r}; choose from {CORRUPTION_KINDS}")


def _overwrite(data: bytes, start: int, stop: int, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    out[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    return bytes(out)


def _write_empty_video(path: Path) -> None:
    """A container with a video stream and no frames (MP4's muxer drops the empty track)."""
    fmt = {".avi": "avi", ".mkv": "matroska", ".mov": "mov"}.get(path.suffix.lower(), "mp4")
    codec = "mpeg4" if fmt == "avi" else "libx264"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    atomic_write_bytes(path, buf.getvalue())


def _refuse_shared_data(paths: list[Path]) -> None:
    shared = shared_data_dir()
    for p in paths:
        resolved = p.resolve()
        if resolved == shared or shared in resolved.parents:
            raise ValueError(f"refusing to damage {p}: it is inside the shared real data {shared}")
