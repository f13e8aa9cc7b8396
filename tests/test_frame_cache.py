"""FrameCache and CachedVideoDataset: identical frames, no re-decoding, invalidation, atomicity."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import zsar.data.frame_cache as fc
from zsar.data.dataset import SAMPLE_KEYS, VideoDataset
from zsar.data.decoding import probe, read_frames
from zsar.data.frame_cache import (CachedVideoDataset, FrameCache, FrameCacheMissError, kept_indices,
                                   resize_frames)
from zsar.data.records import VideoList, VideoRecord
from zsar.data.sampling import DenseSampler, SegmentSampler
from zsar.data.scan import BadVideosError
from zsar.data.transforms import ClipPreprocessConfig, ClipVideoTransform
from zsar.data.video_writer import write_video


class SimulatedCrash(Exception):
    """Stands for a kill in the middle of writing an entry."""


@pytest.fixture
def count_decodes(monkeypatch):
    """Counts files opened for decoding by the frame cache (in this process)."""
    calls = []

    def counting_open(path, *args, **kwargs):
        calls.append(str(path))
        return real_open(path, *args, **kwargs)

    real_open = fc.open_video
    monkeypatch.setattr(fc, "open_video", counting_open)
    return calls


def reference(path, size):
    """Direct decode of every frame + the eval transform's resize/crop."""
    return resize_frames(read_frames(path, range(probe(path).num_frames)), size)


def test_cache_hit_equals_direct_decode_and_resize(small_video_list, tmp_path):
    cache = FrameCache(tmp_path / "cache", size=32)
    report = cache.build(small_video_list, workers=1)
    assert report.built == 6 and report.reused == 0 and not report.bad
    for record in small_video_list.records:
        frames = cache.get(record)
        assert isinstance(frames, np.memmap) and frames.dtype == np.uint8
        assert frames.shape == (24 if record.label == 0 else 12, 32, 32, 3)
        np.testing.assert_array_equal(frames, reference(record.path, 32))
    manifest = (cache.folder / "manifest.json").read_text()
    assert '"num_frames": 24' in manifest and '"fps": 25.0' in manifest
    full = FrameCache(tmp_path / "cache", size=None)  # keep the decoded size
    full.build(small_video_list.records[:1], workers=1)
    np.testing.assert_array_equal(full.get(small_video_list.records[0]),
                                  read_frames(small_video_list.records[0].path, range(24)))


def test_second_build_decodes_nothing(small_video_list, tmp_path, count_decodes):
    FrameCache(tmp_path, size=32).build(small_video_list, workers=1)
    assert len(count_decodes) == 6
    count_decodes.clear()
    again = FrameCache(tmp_path, size=32)  # a fresh instance: state comes from disk
    report = again.build(small_video_list, workers=1)
    assert count_decodes == [] and report.built == 0 and report.reused == 6
    again.get(small_video_list.records[0])
    assert count_decodes == []


def test_changed_file_or_policy_gets_a_new_entry(small_video_list, tmp_path, count_decodes, make_frames):
    cache = FrameCache(tmp_path, size=32)
    cache.build(small_video_list, workers=1)
    first, second = small_video_list.records[:2]
    st = os.stat(first.path)
    os.utime(first.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    write_video(second.path, make_frames(20), 25)  # new size and frame count
    for record in (first, second):
        with pytest.raises(FrameCacheMissError, match=record.path.name):
            cache.get(record)
    count_decodes.clear()
    report = cache.build(small_video_list, workers=1)
    assert sorted(count_decodes) == sorted([str(first.path), str(second.path)])
    assert report.built == 2 and report.reused == 4
    assert cache.get(second).shape[0] == 20
    for policy in (dict(size=16), dict(size=32, max_frames=8), dict(size=32, frame_stride=2),
                   dict(size=32, resize_mode="squash")):
        other = FrameCache(tmp_path, **policy)
        assert other.key != cache.key and other.folder != cache.folder
        with pytest.raises(FrameCacheMissError):
            other.get(first)


def test_crash_while_writing_leaves_no_entry(small_video_list, tmp_path, monkeypatch):
    cache = FrameCache(tmp_path, size=32)
    calls = {"n": 0}
    real_resize = fc.resize_frames

    def crashing_resize(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # mid-file: two chunks of the first clip are already in the temp file
            raise SimulatedCrash
        return real_resize(*args, **kwargs)

    monkeypatch.setattr(fc, "DECODE_CHUNK", 4)
    monkeypatch.setattr(fc, "resize_frames", crashing_resize)
    with pytest.raises(SimulatedCrash):
        cache.build(small_video_list, workers=1)
    assert [p for p in cache.folder.rglob("*") if p.is_file()] == []  # no entry, no temp file
    monkeypatch.setattr(fc, "resize_frames", real_resize)
    record = small_video_list.records[0]
    # killed between the frames and the metadata: frames without metadata are not an entry
    monkeypatch.setattr(fc, "atomic_write_json", lambda *a, **k: (_ for _ in ()).throw(SimulatedCrash()))
    with pytest.raises(SimulatedCrash):
        cache.build([record], workers=1)
    monkeypatch.undo()
    assert cache.entry_paths(fc.clip_key(fc.file_identity(record.path)))[0].is_file()
    with pytest.raises(FrameCacheMissError):
        cache.get(record)
    # a killed process leaves a temp file: ignored, and removed once old
    stale = cache.folder / "ab" / ".deadbeef.tmp.npy"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half an array")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    report = cache.build(small_video_list, workers=1)
    assert report.built == 6 and not stale.exists()
    np.testing.assert_array_equal(cache.get(record), reference(record.path, 32))


def test_bad_files_are_reported_not_dropped(small_video_list, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    records = small_video_list.records + [VideoRecord(text, 0, "notes.mp4"),
                                          VideoRecord(tmp_path / "gone.mp4", 1, "gone.mp4")]
    videos = VideoList(records, small_video_list.class_names, tmp_path)
    cache = FrameCache(tmp_path / "cache", size=32)
    with pytest.raises(BadVideosError, match="notes.mp4") as err:
        cache.build(videos, workers=1)
    assert {p.name for p, _ in err.value.report.bad} == {"notes.mp4", "gone.mp4"}
    assert all(r in cache for r in small_video_list.records)  # good files were cached anyway
    with pytest.warns(UserWarning, match="2 of 8"):
        report = cache.build(videos, workers=1, on_error="skip")
    assert len(report.videos) == 6 and report.reused == 6


def test_process_pool_build_matches_in_process(small_video_list, tmp_path):
    serial, pooled = FrameCache(tmp_path / "a", size=32), FrameCache(tmp_path / "b", size=32)
    serial.build(small_video_list, workers=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a parent whose torch thread pool is in use must not hang forked workers
    try:
        resize_frames(np.zeros((16, 240, 320, 3), np.uint8), 32)  # OpenMP region in the parent
        assert pooled.build(small_video_list, workers=2).built == 6
    finally:
        torch.set_num_threads(threads)
    for record in small_video_list.records:
        np.testing.assert_array_equal(serial.get(record), pooled.get(record))


def test_cached_dataset_equals_decoding_dataset_in_evaluation(small_video_list, tmp_path):
    transform = ClipVideoTransform(ClipPreprocessConfig(size=32))
    cache = FrameCache.for_transform(transform.cfg, tmp_path)
    cache.build(small_video_list, workers=1)
    for sampler in (SegmentSampler(8), DenseSampler(4, 2, num_clips=2)):
        direct = VideoDataset(small_video_list, sampler, transform)
        cached = CachedVideoDataset(small_video_list, cache, sampler, transform)
        for i in range(len(direct)):
            a, b = direct[i], cached[i]
            assert tuple(b) == SAMPLE_KEYS
            assert torch.equal(a["video"], b["video"]), f"sample {i}"
            assert torch.equal(a["frame_indices"], b["frame_indices"])
            assert {k: a[k] for k in SAMPLE_KEYS[1:4] + ("num_frames",)} == \
                   {k: b[k] for k in SAMPLE_KEYS[1:4] + ("num_frames",)}


def test_cached_dataset_training_draws_the_same_frames(small_video_list, tmp_path, frame_index_of):
    transform = ClipVideoTransform(ClipPreprocessConfig(size=32), train=True)
    cache = FrameCache(tmp_path, size=32)
    cache.build(small_video_list, workers=1)
    direct = VideoDataset(small_video_list, SegmentSampler(8), transform, train=True, seed=7)
    cached = CachedVideoDataset(small_video_list, cache, SegmentSampler(8), transform, train=True, seed=7)
    for epoch in (0, 1):
        direct.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(direct)):
            a, b = direct[i], cached[i]
            assert torch.equal(a["frame_indices"], b["frame_indices"])
            assert b["video"].shape == (8, 3, 32, 32) and b["video"].dtype == torch.float32
    raw = CachedVideoDataset(small_video_list, cache, SegmentSampler(8), train=True, seed=7)
    sample = raw[0]
    assert sample["video"].dtype == torch.uint8 and sample["video"].is_contiguous()
    assert frame_index_of(sample["video"].permute(0, 2, 3, 1).numpy()).tolist() == \
        sample["frame_indices"].tolist()


def test_thinned_cache_maps_to_nearest_kept_frame(small_video_list, tmp_path, frame_index_of):
    assert kept_indices(24, max_frames=6).tolist() == [2, 6, 10, 14, 18, 22]
    assert kept_indices(10, frame_stride=3).tolist() == [0, 3, 6, 9]
    cache = FrameCache(tmp_path, size=32, max_frames=6)
    cache.build(small_video_list, workers=1)
    record = small_video_list.records[0]
    clip = cache.clip(record)
    assert clip.frames.shape[0] == 6 and clip.num_frames == 24
    frames, used = clip.take(np.array([0, 3, 4, 5, 23]))
    assert used.tolist() == [2, 2, 2, 6, 22]  # 4 is as near to 2 as to 6: the earlier one wins
    assert frame_index_of(frames).tolist() == used.tolist()
    sample = CachedVideoDataset(small_video_list, cache, SegmentSampler(8))[0]
    assert set(sample["frame_indices"].tolist()) <= set(clip.kept.tolist())


def test_missing_entry_can_be_built_on_access(small_video_list, tmp_path, count_decodes):
    cache = FrameCache(tmp_path, size=32)
    with pytest.raises(FrameCacheMissError, match="FrameCache.build"):
        CachedVideoDataset(small_video_list, cache)[0]
    lazy = CachedVideoDataset(small_video_list, cache, build_missing=True)
    assert lazy[0]["video"].shape == (8, 3, 32, 32)
    assert lazy[0]["video"].shape == (8, 3, 32, 32) and len(count_decodes) == 1
    with pytest.raises(ValueError, match="frame_stride"):
        FrameCache(tmp_path, frame_stride=0)


def test_dataloader_batches_do_not_depend_on_workers(small_video_list, tmp_path):
    cache = FrameCache(tmp_path, size=32)
    cache.build(small_video_list, workers=1)

    def batches(workers):
        ds = CachedVideoDataset(small_video_list, cache, SegmentSampler(4), train=True, seed=0)
        return [(b["video"], b["frame_indices"]) for b in DataLoader(ds, batch_size=3, num_workers=workers)]

    for (v0, f0), (v2, f2) in zip(batches(0), batches(2), strict=True):
        assert v0.shape == (3, 4, 3, 32, 32) and torch.equal(v0, v2) and torch.equal(f0, f2)
