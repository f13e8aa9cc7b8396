"""A folder of 200 real clips with 5 % damaged in every way: all reported, the rest load, no hang."""

from __future__ import annotations

import re
import time
from pathlib import Path

import av
import numpy as np
import pytest

from zsar.data import scan as scan_module
from zsar.data.corrupt import CORRUPTION_KINDS, corrupt_copies
from zsar.data.decoding import read_frames
from zsar.data.errors import VideoDecodeError
from zsar.data.records import VideoList, VideoRecord
from zsar.data.scan import BadVideosError, scan_videos, strict_decode
from zsar.data.video_writer import write_video
from zsar.paths import shared_data_dir

# what a scan must say for each kind of damage (the container decides which symptom shows)
EXPECTED_REASON = {
    "zero_byte": "empty file",
    "truncated": "truncated|no valid container|no decodable frames|no usable codec|corrupt",
    "corrupt_header": "no valid container|header damaged|corrupt",
    "corrupt_middle": "no valid container|corrupt|truncated|no decodable frames|no usable codec",
    "text": "the file is text",
    "png": "still image",
    "no_frames": "no video stream|no decodable frames",
    "dangling_link": "dangling symbolic link",
    "directory": "is a directory",
}
HANG_LIMIT_S = 60


def tiny_clip(seed: int) -> np.ndarray:
    """8 frames of 32x32: a random background and a square moving right."""
    rng = np.random.default_rng(seed)
    frames = np.broadcast_to(rng.integers(0, 200, 3).astype(np.uint8), (8, 32, 32, 3)).copy()
    y, x = rng.integers(0, 20, 2)
    for t in range(8):
        frames[t, y:y + 8, x + t:x + t + 8] = 255
    return frames


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """200 tiny mp4 clips (two classes) of which 5 % are damaged; returns (VideoList, damage)."""
    root = tmp_path_factory.mktemp("clips")
    records = [VideoRecord(write_video(root / f"c{i % 2}" / f"clip{i:03d}.mp4", tiny_clip(i), 25),
                           i % 2, f"c{i % 2}/clip{i:03d}.mp4") for i in range(200)]
    damage = corrupt_copies([r.path for r in records], fraction=0.05, seed=0)
    return VideoList(records, ["zero", "one"], root, source="test_bad_files"), damage


def test_corruption_covers_every_kind(clip_folder):
    _, damage = clip_folder
    assert len(damage) == 10
    assert set(damage.values()) == set(CORRUPTION_KINDS)


@pytest.mark.parametrize("workers", [1, 2])
def test_scan_reports_every_bad_file_with_its_reason(clip_folder, workers, capfd):
    videos, damage = clip_folder
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="skipping 10 of 200"):
        report = scan_videos(videos, on_error="skip", workers=workers, timeout=20)
    assert time.perf_counter() - start < HANG_LIMIT_S, "scan too slow: a decoder hang?"
    assert capfd.readouterr().err == ""  # FFmpeg's complaints are captured, not printed
    assert report.count == 200 and len(report.ok) == 190
    reasons = dict(report.bad)
    assert set(reasons) == set(damage)
    for path, kind in damage.items():
        assert re.search(EXPECTED_REASON[kind], reasons[path]), (kind, reasons[path])
    assert all(report.infos[p].num_frames == 8 for p in report.ok)
    assert [r.path for r in report.videos.records] == report.ok  # order kept, bad ones gone
    text = str(report)
    assert text.startswith("scanned 200 videos") and all(str(p) in text for p in damage)


def test_raise_lists_all_bad_files(clip_folder):
    videos, damage = clip_folder
    with pytest.raises(BadVideosError) as info:
        scan_videos([r.path for r in videos.records], on_error="raise")
    message = str(info.value)
    assert "10 bad" in message and all(str(p) in message for p in damage)
    assert info.value.report.videos is None and len(info.value.report.bad) == 10


def test_remaining_clips_load(clip_folder):
    from zsar.data.dataset import VideoDataset
    from zsar.data.sampling import SegmentSampler

    videos, damage = clip_folder
    good = VideoList([r for r in videos.records if r.path not in damage], videos.class_names, videos.root)
    ds = VideoDataset(good, SegmentSampler(4))
    for i in range(len(ds)):
        assert ds[i]["video"].shape == (4, 3, 32, 32)
    bad = next(p for p, k in damage.items() if k == "corrupt_header")
    with pytest.raises(VideoDecodeError, match=re.escape(str(bad))):
        VideoDataset(VideoList([VideoRecord(bad, 0, "x")], ["zero"], videos.root))[0]


def test_concealed_damage_is_found_by_strict_decoding(tmp_path):
    """Garbage inside an AVI frame (chunk structure intact): decord conceals it, the scan does not.

    (Damage inside the bitstream is only detectable where the decoder notices it; see scan.py.)
    """
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        path = write_video(tmp_path / f"v{i}.avi", rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
                           25, codec="mpeg4")
        if i % 2:  # damage the payload of the last frame's packet (pos = payload offset)
            with av.open(str(path)) as container:
                pos, size = [(p.pos, p.size) for p in container.demux(video=0) if p.size][-1]
            data = bytearray(path.read_bytes())
            data[pos + size // 4: pos + 3 * size // 4] = rng.integers(0, 256, size // 2, dtype=np.uint8).tobytes()
            path.write_bytes(bytes(data))
        paths.append(path)
    for path in paths:  # the loader alone would train on these frames
        assert read_frames(path, [0, 15], backend="decord").shape == (2, 32, 32, 3)
    with pytest.warns(UserWarning):
        report = scan_videos(paths, on_error="skip")
    found = [p for p, _ in report.bad]
    # random bytes occasionally form a valid bitstream: no decoder can flag those
    assert set(found) <= set(paths[1::2]) and len(found) >= 3
    assert all(r.startswith("corrupt frame data: FFmpeg reports") for _, r in report.bad)
    with pytest.warns(UserWarning):  # FFmpeg's repeat suppression must not hide a second report
        assert scan_videos(paths, on_error="skip").bad == report.bad
    assert strict_decode(paths[0]) == 16 and strict_decode(paths[0], deep=True) == 16


def test_a_hanging_check_is_reported_not_waited_for(monkeypatch, tmp_path):
    def hang(path, backend, deep):
        time.sleep(30)

    monkeypatch.setattr(scan_module, "check_video", hang)
    start = time.perf_counter()
    with pytest.warns(UserWarning):
        report = scan_videos([tmp_path / "a.mp4", tmp_path / "b.mp4"], on_error="skip", workers=2, timeout=0.3)
    assert time.perf_counter() - start < 5
    assert [r for _, r in report.bad] == ["timed out after 0.3 s (decoder hang?)"] * 2


def test_corrupt_copies_refuses_shared_data_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="shared real data"):
        corrupt_copies([shared_data_dir() / "videos" / "x.mp4"])
    with pytest.raises(ValueError, match="fraction"):
        corrupt_copies([tmp_path / "a.mp4"], fraction=0)
    with pytest.raises(ValueError, match="unknown corruption kinds"):
        corrupt_copies([tmp_path / "a.mp4"], kinds=["chmod"])


def test_scan_rejects_unknown_policy():
    with pytest.raises(ValueError, match="on_error"):
        scan_videos([Path("x.mp4")], on_error="ignore")
