"""Clip samplers: shapes, bounds, determinism, short videos, against naive references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zsar.data.sampling import DenseSampler, MMActionSampler, SegmentSampler, make_sampler

LENGTHS = [1, 2, 3, 7, 8, 9, 31, 64, 100, 301]


def naive_tsn_eval(num_frames, num_segments):
    """Centre of each of ``num_segments`` equal segments, written out frame by frame."""
    seg = num_frames / num_segments
    return [min(num_frames - 1, int(math.floor(math.floor(seg * i) + seg / 2))) for i in range(num_segments)]


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("num_segments,num_clips", [(1, 1), (8, 1), (8, 3), (16, 2)])
def test_tsn_shape_bounds_and_order(num_frames, num_segments, num_clips):
    sampler = SegmentSampler(num_segments, num_clips)
    rng = np.random.default_rng(0)
    for train in (False, True):
        idx = sampler(num_frames, 25.0, train=train, rng=rng)
        assert idx.shape == (num_clips * num_segments,) and idx.dtype == np.int64
        assert idx.min() >= 0 and idx.max() < num_frames
        for clip in idx.reshape(num_clips, num_segments):  # segments are in temporal order
            assert np.all(np.diff(clip) >= 0)


@pytest.mark.parametrize("num_frames", LENGTHS)
def test_tsn_eval_is_segment_centres(num_frames):
    idx = SegmentSampler(8)(num_frames)
    assert idx.tolist() == naive_tsn_eval(num_frames, 8)
    assert np.array_equal(idx, SegmentSampler(8)(num_frames, rng=np.random.default_rng(5)))  # rng ignored


def test_tsn_short_video_repeats_frames():
    idx = SegmentSampler(8)(3)
    assert sorted(set(idx.tolist())) == [0, 1, 2] and len(idx) == 8


def test_tsn_train_draws_cover_each_segment_uniformly():
    sampler, rng = SegmentSampler(8), np.random.default_rng(0)
    draws = np.stack([sampler(80, train=True, rng=rng) for _ in range(4000)])  # segments of 10
    for i in range(8):
        values, counts = np.unique(draws[:, i], return_counts=True)
        assert values.tolist() == list(range(10 * i, 10 * i + 10))
        assert counts.min() > 300  # 400 expected per value


def test_train_is_reproducible_and_needs_rng():
    for sampler in (SegmentSampler(8, 2), DenseSampler(4, 2, 3)):
        a = sampler(200, train=True, rng=np.random.default_rng(7))
        b = sampler(200, train=True, rng=np.random.default_rng(7))
        c = sampler(200, train=True, rng=np.random.default_rng(8))
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        with pytest.raises(ValueError, match="rng"):
            sampler(200, train=True)


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("clip_len,interval,num_clips", [(1, 1, 1), (8, 1, 1), (8, 4, 1), (16, 2, 3)])
def test_dense_shape_bounds(num_frames, clip_len, interval, num_clips):
    sampler = DenseSampler(clip_len, interval, num_clips)
    for train in (False, True):
        idx = sampler(num_frames, train=train, rng=np.random.default_rng(1))
        assert idx.shape == (num_clips * clip_len,)
        assert idx.min() >= 0 and idx.max() < num_frames
        clips = idx.reshape(num_clips, clip_len)
        assert np.all(np.diff(clips, axis=1) >= 0)
        span = (clip_len - 1) * interval + 1
        if span <= num_frames:  # fits: exact stride
            assert np.all(np.diff(clips, axis=1) == interval)


def test_dense_eval_is_centred_and_views_spread():
    assert DenseSampler(8, 2)(101).tolist() == list(range(43, 58, 2))  # span 15, free 86, start 43
    starts = DenseSampler(4, 1, num_clips=3)(100).reshape(3, 4)[:, 0]
    assert starts.tolist() == [16, 48, 80]  # free 96: 96 * (k + 0.5) / 3 = 16, 48, 80


def test_dense_short_video_spreads_over_whole_video():
    assert DenseSampler(8, 4)(5).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]


def test_dense_target_fps_keeps_duration():
    sampler = DenseSampler(8, 2, target_fps=15)
    assert sampler.interval_for(30.0) == 4 and sampler.interval_for(15.0) == 2
    assert sampler.interval_for(None) == 2  # unknown fps: stride as given
    assert np.diff(sampler(300, 30.0)).tolist() == [4] * 7


def test_make_sampler():
    assert isinstance(make_sampler("tsn", num_segments=4), SegmentSampler)
    assert isinstance(make_sampler("dense", clip_len=4), DenseSampler)
    assert make_sampler("segment", num_segments=4, num_clips=2).num_indices == 8
    with pytest.raises(ValueError, match="unknown sampler 'slowfast'.*dense"):
        make_sampler("slowfast")
    with pytest.raises(ValueError):
        SegmentSampler(0)
    with pytest.raises(ValueError, match="positive"):
        SegmentSampler(8)(0)


# --- mmaction2 0.x SampleFrames(clip_len=1, frame_interval=1, num_clips=T) -------------------------
# Reference written straight from open-mmlab/mmaction2 mmaction/datasets/pipelines/loading.py
# (0.x): SampleFrames._get_test_clips / _get_train_clips and the 'loop' step of __call__, with
# plain Python floats and a loop, start_index=0.


def reference_mmaction_test(num_frames, num_clips, twice_sample=False):
    clip_len = frame_interval = 1
    ori_clip_len = clip_len * frame_interval
    avg_interval = (num_frames - ori_clip_len + 1) / float(num_clips)
    if num_frames > ori_clip_len - 1:
        base_offsets = [i * avg_interval for i in range(num_clips)]
        clip_offsets = [int(b + avg_interval / 2.0) for b in base_offsets]  # astype(int)
        if twice_sample:
            clip_offsets = clip_offsets + base_offsets  # np.concatenate([clip_offsets, base])
    else:
        clip_offsets = [0] * num_clips
    return [int(o % num_frames) + 0 for o in clip_offsets]  # loop, start_index 0, astype(int)


def reference_mmaction_train_short(num_frames, num_clips):
    """The deterministic branch of _get_train_clips (``avg_interval == 0``), then 'loop'."""
    assert num_frames // num_clips == 0
    ratio = (num_frames - 1 + 1.0) / num_clips
    return [int(round(i * ratio) % num_frames) for i in range(num_clips)]  # round(): half to even


@pytest.mark.parametrize("num_segments", [8, 16, 32, 1, 3, 7, 12, 24])
@pytest.mark.parametrize("twice_sample", [False, True])
def test_mmaction_test_mode_matches_reference(num_segments, twice_sample):
    sampler = MMActionSampler(num_segments, twice_sample=twice_sample)
    assert sampler.num_indices == num_segments * (2 if twice_sample else 1)
    for n in range(1, 1001):
        idx = sampler(n, 25.0)
        assert idx.dtype == np.int64 and idx.shape == (sampler.num_indices,)
        assert idx.tolist() == reference_mmaction_test(n, num_segments, twice_sample), n
        if num_segments in (8, 16, 32):  # powers of two: the float result is the exact formula
            exact = [(2 * i + 1) * n // (2 * num_segments) for i in range(num_segments)]
            starts = [i * n // num_segments for i in range(num_segments)]
            assert idx.tolist() == exact + (starts if twice_sample else []), n


def test_mmaction_test_mode_example_and_float_truncation():
    assert MMActionSampler(8)(30).tolist() == [1, 5, 9, 13, 16, 20, 24, 28]
    assert SegmentSampler(8)(30).tolist() == [1, 4, 8, 12, 16, 19, 23, 27]  # "tsn" differs here
    assert make_sampler("tsn", num_segments=8)(30).tolist() != MMActionSampler(8)(30).tolist()
    assert MMActionSampler(8, twice_sample=True)(30).tolist() == \
        [1, 5, 9, 13, 16, 20, 24, 28] + [0, 3, 7, 11, 15, 18, 22, 26]
    # mmaction truncates 3 * (6/7) + (6/7)/2 = 2.999... to 2, where the exact value is 3
    assert MMActionSampler(7)(6).tolist()[3] == 2 == reference_mmaction_test(6, 7)[3]
    # short video: segments share frames, rng ignored in evaluation
    assert MMActionSampler(8)(3).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert np.array_equal(MMActionSampler(8)(3), MMActionSampler(8)(3, rng=np.random.default_rng(1)))


@pytest.mark.parametrize("num_segments", [8, 16, 32])
def test_mmaction_train_mode(num_segments):
    sampler = MMActionSampler(num_segments)
    for n in [*range(1, 3 * num_segments), 100, 255, 301, 1000]:
        a = sampler(n, train=True, rng=np.random.default_rng(3))
        assert np.array_equal(a, sampler(n, train=True, rng=np.random.default_rng(3)))
        assert a.shape == (num_segments,) and a.dtype == np.int64
        assert a.min() >= 0 and a.max() < n
        avg = n // num_segments
        if avg > 0:  # each draw inside its segment [i * avg, (i + 1) * avg); the tail is never used
            for i, v in enumerate(a.tolist()):
                assert math.floor(i * avg) <= v < math.floor((i + 1) * avg)
        else:  # n < T: mmaction's deterministic np.around branch, then 'loop'
            assert a.tolist() == reference_mmaction_train_short(n, num_segments), n
            assert np.array_equal(a, sampler(n, train=True, rng=np.random.default_rng(4)))
    c = sampler(1000, train=True, rng=np.random.default_rng(4))
    assert not np.array_equal(c, sampler(1000, train=True, rng=np.random.default_rng(3)))
    with pytest.raises(ValueError, match="rng"):
        sampler(100, train=True)


def test_mmaction_train_short_videos_round_half_even_and_loop():
    rng = np.random.default_rng(0)
    # n=4, T=8: i/2 -> around 0 0 1 2 2 2 3 4, and 4 loops to frame 0 (mmaction's 'loop')
    assert MMActionSampler(8)(4, train=True, rng=rng).tolist() == [0, 0, 1, 2, 2, 2, 3, 0]
    assert MMActionSampler(8)(3, train=True, rng=rng).tolist() == [0, 0, 1, 1, 2, 2, 2, 0]
    assert MMActionSampler(8)(1, train=True, rng=rng).tolist() == [0] * 8
    assert MMActionSampler(8)(8, train=True, rng=rng).tolist() == list(range(8))  # avg 1: no choice


def test_mmaction_train_draws_are_uniform_in_segment():
    sampler, rng = MMActionSampler(8), np.random.default_rng(0)
    draws = np.stack([sampler(87, train=True, rng=rng) for _ in range(4000)])  # avg 10, tail 80..86
    for i in range(8):
        values, counts = np.unique(draws[:, i], return_counts=True)
        assert values.tolist() == list(range(10 * i, 10 * i + 10))
        assert counts.min() > 300  # 400 expected per value
    # twice_sample is a test-time option in mmaction: training still returns T indices
    assert MMActionSampler(8, twice_sample=True)(87, train=True, rng=rng).shape == (8,)


def test_make_sampler_mmaction():
    sampler = make_sampler("mmaction", num_segments=8)
    assert isinstance(sampler, MMActionSampler)
    assert sampler.frames_per_clip == 8 and sampler.num_clips == 1 and sampler.num_indices == 8
    twice = make_sampler("MMAction", num_segments=16, twice_sample=True)
    assert twice.num_clips == 2 and twice.frames_per_clip == 16 and twice(100).shape == (32,)
    assert repr(twice) == "MMActionSampler(num_segments=16, twice_sample=True)"
    with pytest.raises(ValueError, match=r"unknown sampler 'x'.*\['actionclip', 'dense', 'mmaction', 'segment', 'tsn'\]"):
        make_sampler("x")
    with pytest.raises(ValueError):
        MMActionSampler(0)
