"""Video decoding: both back-ends on small real files, bad inputs, and the 25 real clips."""

from __future__ import annotations

import csv
import io
import os
import re
import time

import av
import numpy as np
import pytest
from PIL import Image

from zsar.data import decoding
from zsar.data.decoding import open_video, probe, read_frames, truncation_reason
from zsar.data.errors import VideoDecodeError
from zsar.data.video_writer import write_video


def write_raw_m4v(path, frames, fps=25):
    """A raw MPEG-4 Part 2 elementary stream (no container), like the UCF101-24 demo clips."""
    with av.open(str(path), "w", format="m4v") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_gif(path, frames):
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)
    return path


@pytest.mark.parametrize("name,codec", [("h264.mp4", "libx264"), ("xvid.avi", "mpeg4"), ("h264.mkv", "libx264")])
def test_containers_decode_with_decord(make_video, frame_index_of, name, codec):
    path = make_video(name, codec=codec)
    with open_video(path) as video:
        assert (video.backend, video.num_frames, video.height, video.width) == ("decord", 24, 48, 64)
        assert video.fps == pytest.approx(25)
        wanted = [23, 0, 5, 5, 12]  # any order, repeats allowed
        frames = video.get_frames(wanted)
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frame_index_of(frames), wanted)


def test_backends_agree(small_mp4, frame_index_of):
    idx = [0, 7, 8, 23]
    a = read_frames(small_mp4, idx, backend="decord")
    b = read_frames(small_mp4, idx, backend="pyav")
    np.testing.assert_array_equal(frame_index_of(b), idx)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # same FFmpeg colour conversion


@pytest.mark.parametrize("writer,container", [(write_raw_m4v, "m4v"), (write_gif, "gif")])
def test_index_less_files_fall_back_to_pyav(tmp_path, make_frames, frame_index_of, writer, container):
    path = writer(tmp_path / ("raw.mp4" if container == "m4v" else "anim.gif"), make_frames(20))
    info = probe(path)
    assert (info.backend, info.num_frames, info.container) == ("pyav", 20, container)
    np.testing.assert_array_equal(frame_index_of(read_frames(path, [19, 3, 3])), [19, 3, 3])


def test_indices_are_checked(small_mp4):
    with open_video(small_mp4) as video:
        with pytest.raises(IndexError, match="small.mp4"):
            video.get_frames([0, 24])
        assert video.get_frames([]).shape == (0, 48, 64, 3)
    with pytest.raises(ValueError, match="backend"):
        open_video(small_mp4, backend="opencv")


def test_truncated_avi_counts_present_frames(tmp_path):
    """The header says 40 frames; the count must be what is really there, and be flagged."""
    rng = np.random.default_rng(0)
    full = write_video(tmp_path / "full.avi", rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8), 25, codec="mpeg4")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as container:
        present = sum(1 for _ in container.decode(video=0))
    with open_video(cut) as video:
        assert video.info.declared_frames == 40
        assert video.num_frames == present < 40
        video.get_frames([video.num_frames - 1])
        assert "truncated" in truncation_reason(video.info)
    assert truncation_reason(probe(full)) is None


def test_verified_count_is_cached(make_video, monkeypatch):
    path = make_video("cached.mp4")
    decoding.clear_cache()
    probe(path)

    def no_probe(p):
        raise AssertionError("container probed again although the file is cached")

    monkeypatch.setattr(decoding, "_probe_container", no_probe)
    assert probe(path).num_frames == 24


def _bad_inputs(tmp_path, make_video):
    """name -> (path, expected reason pattern)."""
    good = make_video("source.mp4").read_bytes()
    png = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 99, np.uint8)).save(png, format="PNG")
    files = {
        "zero.mp4": (b"", "empty file"),
        "truncated.mp4": (good[: len(good) // 3], "no valid container|truncated|no decodable"),
        "header.mp4": (bytes(256) + good[256:], "no valid container|damaged"),
        "text.mp4": (b"hello, I am a text file\n" * 10, "text"),
        "image.mp4": (png.getvalue(), "still image"),
    }
    out = {}
    for name, (data, reason) in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = (tmp_path / name, reason)
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    os.mkfifo(tmp_path / "pipe.mp4")  # opening a FIFO for reading would block forever
    with av.open(str(tmp_path / "empty.avi"), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    out.update({
        "missing.mp4": (tmp_path / "missing.mp4", "does not exist"),
        "folder.mp4": (tmp_path / "folder.mp4", "directory"),
        "dangling.mp4": (tmp_path / "dangling.mp4", "dangling symbolic link"),
        "pipe.mp4": (tmp_path / "pipe.mp4", "not a regular file"),
        "empty.avi": (tmp_path / "empty.avi", "no decodable frames"),
    })
    return out


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_bad_inputs_raise_named_errors(tmp_path, make_video, backend):
    start = time.perf_counter()
    for name, (path, reason) in _bad_inputs(tmp_path, make_video).items():
        with pytest.raises(VideoDecodeError) as info:
            with open_video(path, backend) as video:
                video.get_frames([0, video.num_frames - 1])
        assert info.value.path == str(path) and str(path) in str(info.value)
        if backend == "auto":  # forced back-ends report their decoder's own words
            assert info.value.reason and re.search(reason, info.value.reason), (name, info.value.reason)
    assert time.perf_counter() - start < 30, "decoding bad inputs took too long (a hang?)"


def test_decord_warnings_are_silenced(tmp_path, capfd):
    """A damaged-but-decodable AVI: FFmpeg's concealment messages must not reach stderr."""
    rng = np.random.default_rng(1)
    path = write_video(tmp_path / "noisy.avi", rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8), 25, codec="mpeg4")
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 2048] = rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with open_video(path, "decord") as video:
        video.get_frames(range(video.num_frames))
    assert capfd.readouterr().err == ""


def test_all_real_clips_load(shared_data):
    """Every clip in labels.csv opens with its listed frame count and size; first/last decode."""
    root = shared_data / "videos"
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))
    assert len(rows) == 25
    for row in rows:
        path = root / row["path"]
        with open_video(path) as video:
            assert video.num_frames == int(row["frames"]), row["path"]
            assert (video.width, video.height) == (int(row["width"]), int(row["height"])), row["path"]
            assert video.fps == pytest.approx(float(row["fps"]), abs=0.01), row["path"]
            frames = video.get_frames([0, video.num_frames // 2, video.num_frames - 1])
            assert frames.shape == (3, video.height, video.width, 3)
            assert frames.std() > 1, f"{row['path']}: blank frames"
        # containers with an index go to decord; raw elementary streams and the GIF to PyAV
        raw = row["codec"] == "gif" or "elementary stream" in row["note"]
        assert video.backend == ("pyav" if raw else "decord"), row["path"]
