"""Clip samplers: shapes, bounds, determinism, short videos, against naive references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zsar.data.sampling import DenseSampler, SegmentSampler, make_sampler

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
