"""Read frames from video files: decord first, PyAV where decord cannot be trusted.

``open_video(path)`` returns a :class:`VideoHandle` with ``num_frames``, ``fps``, ``height``,
``width`` and ``get_frames(indices) -> (N, H, W, 3) uint8``. With ``backend="auto"``:

1. cheap file-system checks (missing, dangling symlink, directory, FIFO, empty, unreadable),
   so that nothing reaches a decoder that could block on it;
2. a PyAV probe of the container header (a few ms): rejects text, images renamed to a video
   suffix, files without a video stream, and ``.avi``/``.mkv`` files whose container header is
   gone; decord's own error path prints to stderr, so it is only called on files that probe well;
3. decord (fast random access) for containers with an index; its frame count is trusted when it
   agrees with the container's declared count, otherwise verified by decoding the last frame;
4. PyAV (sequential decoding, frame count by decoding) for raw elementary streams, GIFs and any
   file whose decord count did not verify.

The verified (backend, frame count) of a file is cached per process, keyed by path, size and
mtime, so a dataset pays for the probe once per file, not once per epoch.
Every failure is a :class:`~zsar.data.errors.VideoDecodeError` naming the file and the reason.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import av
import decord
import numpy as np

from zsar.data.errors import VideoDecodeError

BACKENDS = ("auto", "decord", "pyav")

# decord's bundled FFmpeg prints concealment warnings ("Error at MB", "ac-tex damaged") to
# stderr for every damaged frame; errors reach us as exceptions, so the log is noise.
decord.logging.set_level(decord.logging.QUIET)

# FFmpeg demuxers that read a single still image: such a file is not a video even if it probes.
_IMAGE_FORMATS = re.compile(r"(_pipe$|^image2|^png$|^webp$|^bmp$|^tiff$)")
# Demuxers for raw elementary streams and animations: no index, so decord cannot count frames.
_SEQUENTIAL_FORMATS = {"gif", "m4v", "h264", "hevc", "mpegvideo", "rawvideo", "mjpeg", "apng"}
# Suffixes whose container must really be there; ``.mp4`` may hold a raw MPEG-4 stream (UCF101-24).
_SUFFIX_CONTAINERS = {".avi": "avi", ".mkv": "matroska", ".webm": "matroska", ".flv": "flv",
                      ".mov": "mov", ".mp4": "mov"}
_CACHE: dict[tuple, "VideoInfo"] = {}
_CACHE_MAX = 200_000


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a file.

    Attributes:
        path: the file.
        backend: ``"decord"`` or ``"pyav"``, the back-end that reads it.
        num_frames: verified number of decodable frames.
        fps: average frame rate (``nan`` when the file does not say).
        height, width: frame size in pixels.
        container: FFmpeg demuxer name, e.g. ``"avi"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"m4v"``.
        declared_frames: frame count the container header declares (``None`` if it declares
            none); fewer decodable frames than declared means the file is truncated.
        declared_exact: ``declared_frames`` is a stored count, not duration x fps (matroska).
    """

    path: Path
    backend: str
    num_frames: int
    fps: float
    height: int
    width: int
    container: str = ""
    declared_frames: int | None = None
    declared_exact: bool = True


class VideoHandle:
    """An open video. Use as a context manager or call :meth:`close`.

    Attributes:
        info: the file's :class:`VideoInfo`; ``num_frames``, ``fps``, ``height``, ``width``,
            ``backend`` and ``path`` are shortcuts to it.
    """

    def __init__(self, info: VideoInfo):
        self.info = info

    path = property(lambda self: self.info.path)
    backend = property(lambda self: self.info.backend)
    num_frames = property(lambda self: self.info.num_frames)
    fps = property(lambda self: self.info.fps)
    height = property(lambda self: self.info.height)
    width = property(lambda self: self.info.width)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode frames by index.

        Args:
            indices: ``(N,)`` frame indices in ``[0, num_frames)``, any order, repeats allowed.

        Returns:
            ``(N, H, W, 3)`` uint8 RGB frames in the order of ``indices``.

        Raises:
            IndexError: an index is outside ``[0, num_frames)``.
            VideoDecodeError: the decoder failed.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_frames):
            raise IndexError(f"{self.path}: frame indices {idx.min()}..{idx.max()} outside "
                             f"[0, {self.num_frames})")
        if idx.size == 0:
            return np.empty((0, self.height, self.width, 3), np.uint8)
        return self._decode(idx)

    def _decode(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release the decoder and the file."""

    def __enter__(self) -> "VideoHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"{type(self).__name__}({str(i.path)!r}, {i.num_frames} frames, {i.fps:.2f} fps, {i.width}x{i.height})"


class DecordHandle(VideoHandle):
    """Random access through ``decord.VideoReader`` (seeks via the container index)."""

    def __init__(self, path: Path, num_threads: int = 1, info: VideoInfo | None = None):
        try:
            self._vr = decord.VideoReader(str(path), num_threads=num_threads)
            n = len(self._vr)
        except (decord.DECORDError, RuntimeError) as e:
            raise VideoDecodeError(path, f"decord cannot open it: {_short(e)}") from None
        if n <= 0:
            raise VideoDecodeError(path, "video stream has no frames")
        if info is None:  # explicit backend="decord": no PyAV probe, so learn the size from frame 0
            h, w = self._vr[0].shape[:2]
            info = VideoInfo(path, "decord", n, float(self._vr.get_avg_fps()), h, w)
        super().__init__(replace(info, backend="decord", num_frames=n))

    def _decode(self, idx: np.ndarray) -> np.ndarray:
        try:
            return self._vr.get_batch(idx.tolist()).asnumpy()
        except (decord.DECORDError, RuntimeError) as e:
            msg = _short(e)
            if "send_packet" in msg:  # FFmpeg refused the packet's bytes: say so, not the C++ check
                msg = "corrupt frame data, the decoder rejected a packet"
            raise VideoDecodeError(self.path, f"decord failed on frames {_fmt(idx)}: {msg}") from None

    def close(self) -> None:
        self._vr = None  # decord has no close(); dropping the reader frees it


class PyAVHandle(VideoHandle):
    """Sequential decoding with PyAV: works without a container index (raw streams, GIF).

    ``get_frames`` decodes from the start up to the largest index, so it costs O(max index);
    the auto back-end only routes short, index-less files here. Packets the decoder rejects
    are skipped (as FFmpeg's own tools do); :mod:`zsar.data.scan` is where damage is reported.
    """

    def __init__(self, path: Path, info: VideoInfo | None = None):
        self._path = path
        info = info if info is not None else _probe_container(path)
        if info.num_frames < 0:  # not yet counted: the header's count is not trusted here
            info = replace(info, num_frames=self._count_frames())
        if info.num_frames == 0:
            hint = f" (the header declares {info.declared_frames}: truncated?)" if info.declared_frames else ""
            raise VideoDecodeError(path, f"video stream has no decodable frames{hint}")
        super().__init__(replace(info, backend="pyav"))

    def _frames(self):
        """Yield decoded ``av.VideoFrame`` objects, skipping packets the decoder rejects."""
        try:
            with av.open(str(self._path)) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    try:
                        yield from packet.decode()
                    except av.error.InvalidDataError:
                        continue
        except av.error.FFmpegError as e:
            raise VideoDecodeError(self._path, f"PyAV failed while decoding: {e}") from None

    def _count_frames(self) -> int:
        return sum(1 for _ in self._frames())

    def _decode(self, idx: np.ndarray) -> np.ndarray:
        wanted = set(idx.tolist())
        last = int(idx.max())
        got: dict[int, np.ndarray] = {}
        frames = self._frames()
        try:
            for i, frame in enumerate(frames):
                if i in wanted:
                    got[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        finally:
            frames.close()  # closes the container now, not when the generator is collected
        if len(got) < len(wanted):
            missing = sorted(wanted - set(got))
            raise VideoDecodeError(self.path, f"frames {_fmt(np.array(missing))} could not be decoded")
        return np.stack([got[i] for i in idx.tolist()])


def open_video(path: str | os.PathLike, backend: str = "auto", num_threads: int = 1) -> VideoHandle:
    """Open a video for frame access.

    Args:
        path: the video file.
        backend: ``"auto"`` (validate, then decord or PyAV, see module doc), ``"decord"`` or
            ``"pyav"`` (force one back-end; the file-system checks still run).
        num_threads: decoding threads for decord; 1 suits DataLoader workers.

    Returns:
        An open :class:`VideoHandle`.

    Raises:
        VideoDecodeError: the file is missing, unreadable, not a video, or cannot be decoded.
        ValueError: unknown ``backend``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = Path(path)
    key = check_file(path)
    if backend == "decord":
        return DecordHandle(path, num_threads)
    if backend == "pyav":
        return PyAVHandle(path)
    cached = _CACHE.get(key)
    if cached is not None:
        if cached.backend == "decord":
            return DecordHandle(path, num_threads, cached)
        return PyAVHandle(path, cached)
    handle = _open_verified(path, num_threads)
    if len(_CACHE) < _CACHE_MAX:
        _CACHE[key] = handle.info
    return handle


def _open_verified(path: Path, num_threads: int) -> VideoHandle:
    """Probe, then decord with a verified frame count, else PyAV (the auto back-end)."""
    info = _probe_container(path)
    if info.container.split(",")[0] in _SEQUENTIAL_FORMATS:
        return PyAVHandle(path, info)
    try:
        handle = DecordHandle(path, num_threads, info)
    except VideoDecodeError:
        return PyAVHandle(path, info)
    if not _counts_agree(handle.num_frames, info):
        try:  # trust but verify: decord's count is only usable if its last frame decodes
            handle.get_frames([handle.num_frames - 1])
        except VideoDecodeError:
            handle.close()
            return PyAVHandle(path, info)
    return handle


def probe(path: str | os.PathLike, backend: str = "auto") -> VideoInfo:
    """Return the :class:`VideoInfo` of a file (opens and closes it)."""
    with open_video(path, backend) as handle:
        return handle.info


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend: str = "auto") -> np.ndarray:
    """Decode ``indices`` of a file: ``(N, H, W, 3)`` uint8. See :func:`open_video`."""
    with open_video(path, backend) as handle:
        return handle.get_frames(indices)


def clear_cache() -> None:
    """Forget every verified (backend, frame count); the next open probes again."""
    _CACHE.clear()


def check_file(path: Path) -> tuple:
    """Reject what is not a readable, non-empty regular file before any decoder sees it.

    Returns:
        ``(path, size, mtime_ns)``, the cache key of the file's current contents.

    Raises:
        VideoDecodeError: missing, dangling symlink, directory, FIFO/device, empty, unreadable.
    """
    if not os.path.lexists(path):
        raise VideoDecodeError(path, "file does not exist")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoDecodeError(path, f"dangling symbolic link to {os.readlink(path)}") from None
    except OSError as e:
        raise VideoDecodeError(path, f"unreadable: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoDecodeError(path, "is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the decoder's open() forever
        raise VideoDecodeError(path, "not a regular file (FIFO, socket or device)")
    if st.st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise VideoDecodeError(path, f"unreadable: {e.strerror}") from None
    if _looks_like_text(head):
        raise VideoDecodeError(path, "not a video: the file is text")
    return (str(path), st.st_size, st.st_mtime_ns)


def _probe_container(path: Path) -> VideoInfo:
    """Read the container header with PyAV; ``num_frames`` is -1 (not counted yet)."""
    try:
        with av.open(str(path)) as container:
            fmt = container.format.name
            if _IMAGE_FORMATS.search(fmt):
                raise VideoDecodeError(path, f"not a video: a still image ({fmt} demuxer)")
            if not container.streams.video:
                kinds = ", ".join(s.type for s in container.streams) or "none"
                raise VideoDecodeError(path, f"no video stream (streams: {kinds})")
            _check_suffix(path, fmt)
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else math.nan
            declared, exact = int(stream.frames) or None, True
            if declared is None and container.duration and fps == fps:  # matroska: from duration
                declared, exact = round(container.duration / av.time_base * fps), False
            ctx = stream.codec_context
            if ctx is None:
                raise VideoDecodeError(path, "video stream has no usable codec (damaged header?)")
            return VideoInfo(path, "", -1, fps, ctx.height, ctx.width, fmt, declared, exact)
    except av.error.EOFError:
        raise VideoDecodeError(path, "truncated: the file ends inside the container header") from None
    except av.error.InvalidDataError:
        raise VideoDecodeError(path, "corrupt or not a video: FFmpeg finds no valid container") from None
    except av.error.FFmpegError as e:
        raise VideoDecodeError(path, f"cannot open: {e}") from None


def _check_suffix(path: Path, fmt: str) -> None:
    """A ``.avi`` that FFmpeg only reads as a raw stream has lost its container header."""
    expected = _SUFFIX_CONTAINERS.get(path.suffix.lower())
    if expected is None or expected in fmt:
        return
    if path.suffix.lower() == ".mp4" and fmt in ("m4v", "h264", "hevc"):
        return  # raw elementary streams named .mp4 exist in the wild (UCF101-24 demo clips)
    raise VideoDecodeError(path, f"container header damaged: a {path.suffix} file that FFmpeg "
                                 f"reads as {fmt!r}")


def _counts_agree(counted: int, info: VideoInfo) -> bool:
    """Whether a counted frame number matches the header's (stored count or duration x fps)."""
    declared = info.declared_frames
    if declared is None:
        return False
    return abs(counted - declared) <= _tolerance(info)


def _tolerance(info: VideoInfo) -> int:
    # duration x fps is rounded and may include a trailing frame's duration: allow a few frames
    d = info.declared_frames or 0
    return max(1, d // 100) if info.declared_exact else max(2, d * 3 // 100)


def truncation_reason(info: VideoInfo) -> str | None:
    """Why the file looks truncated or damaged (fewer frames than declared), else ``None``."""
    if info.declared_frames is None or info.num_frames >= info.declared_frames - _tolerance(info):
        return None
    return (f"frames missing (truncated or damaged file): the header declares "
            f"{info.declared_frames} frames, only {info.num_frames} are readable")


def _looks_like_text(head: bytes) -> bool:
    """Printable UTF-8 without NUL bytes: no video container starts like that."""
    if not head or b"\x00" in head:
        return False
    for cut in range(4):  # the 512-byte window may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _short(err: Exception) -> str:
    """First meaningful line of a decord/FFmpeg error (drops timestamps and C++ stack traces)."""
    line = next((s for s in str(err).splitlines() if s.strip()), type(err).__name__)
    line = re.sub(r"^(\[[\d:]+\]\s+\S+:\d+:\s*)+", "", line)  # decord nests these prefixes
    return line.strip()[:200]


def _fmt(idx: np.ndarray) -> str:
    idx = idx.tolist()
    return str(idx) if len(idx) <= 8 else f"{idx[:4]}...{idx[-2:]} ({len(idx)} indices)"
