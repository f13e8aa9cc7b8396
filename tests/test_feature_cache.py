"""FeatureCache: hit, miss, invalidation on weights / sampling / transform / ids, atomic writes."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

import zsar.experiments.feature_cache as feature_cache_module
from zsar.data.sampling import DenseSampler, SegmentSampler
from zsar.data.transforms import ClipPreprocessConfig, ClipVideoTransform
from zsar.experiments.feature_cache import (FeatureCache, dataset_fingerprint, describe, feature_key,
                                          file_hash, state_dict_hash)

IDS = ["a/a0.mp4", "a/a1.mp4", "b/b0.mp4"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))


def parts_for(model, **overrides):
    parts = dict(model_name="toy", checkpoint=state_dict_hash(model), sampling=SegmentSampler(8),
                 transform=ClipVideoTransform(ClipPreprocessConfig(size=32)))
    return {**parts, **overrides}


class Counter:
    """compute_fn that counts its calls and returns fixed (3, 2) features."""

    def __init__(self, value: float = 1.0):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return torch.full((len(IDS), 2), self.value) + torch.arange(len(IDS))[:, None]


def test_hit_returns_what_the_miss_stored(tmp_path, model):
    cache, compute = FeatureCache(tmp_path), Counter()
    first = cache.get_or_compute(parts_for(model), IDS, compute)
    assert isinstance(first, np.ndarray) and first.shape == (3, 2) and compute.calls == 1
    again = FeatureCache(tmp_path)  # a new process: only the disk carries over
    second = again.get_or_compute(parts_for(model), IDS, compute)
    assert compute.calls == 1 and again.hits == 1 and again.misses == 0
    np.testing.assert_array_equal(first, second)
    mapped = again.get_or_compute(parts_for(model), IDS, compute, mmap=True)
    assert isinstance(mapped, np.memmap)
    sidecar = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert sidecar["ids"] == IDS and sidecar["shape"] == [3, 2]
    assert sidecar["parts"]["checkpoint"] == state_dict_hash(model)


def test_changed_weights_or_config_or_ids_miss(tmp_path, model):
    cache, compute = FeatureCache(tmp_path), Counter()
    cache.get_or_compute(parts_for(model), IDS, compute)
    with torch.no_grad():
        model[0].weight[0, 0] += 1e-6  # one parameter, one ulp-scale change
    changed = [
        (parts_for(model), IDS),
        (parts_for(model, sampling=SegmentSampler(16)), IDS),
        (parts_for(model, sampling=DenseSampler(8)), IDS),
        (parts_for(model, transform=ClipVideoTransform(ClipPreprocessConfig(size=64))), IDS),
        (parts_for(model, model_name="other"), IDS),
        (parts_for(model), IDS[::-1]),  # same videos, other row order
        (parts_for(model, pooling="mean"), IDS),
    ]
    for parts, ids in changed:
        cache.get_or_compute(parts, ids, compute)
    assert compute.calls == 1 + len(changed) and cache.hits == 0
    assert len(list(tmp_path.glob("*.npy"))) == 1 + len(changed)


def test_state_dict_and_file_hashes(tmp_path, model):
    h = state_dict_hash(model)
    assert h == state_dict_hash(model.state_dict()) and len(h) == 64
    clone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    clone.load_state_dict(model.state_dict())
    assert state_dict_hash(clone) == h
    assert state_dict_hash(model.to(torch.bfloat16)) != h  # same values rounded: other bytes
    path = tmp_path / "w.pt"
    torch.save(clone.state_dict(), path)
    assert file_hash(path) == file_hash(str(path))
    assert feature_key("toy", path) == feature_key("toy", file_hash(path))  # a path is hashed
    assert feature_key("toy", clone) == feature_key("toy", h)


def test_describe_is_stable_and_refuses_unstable_values():
    t = ClipVideoTransform(ClipPreprocessConfig(size=32))
    d = describe(t)
    assert d["cfg"]["size"] == 32 and d["train"] is False and "_mean" not in d
    assert describe(SegmentSampler(8)) == describe(SegmentSampler(8)) != describe(SegmentSampler(4))
    assert describe(functools.partial(np.mean, axis=1))["keywords"] == {"axis": 1}
    with pytest.raises(TypeError, match="state_dict_hash"):
        describe(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="lambda"):
        describe(lambda x: x)
    with pytest.raises(TypeError, match="0x"):
        describe(object())


def test_bad_compute_and_crash_leave_no_entry(tmp_path, model, monkeypatch):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match="expected 3 rows"):
        cache.get_or_compute(parts_for(model), IDS, lambda: np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed after the array, before the sidecar
    monkeypatch.setattr(feature_cache_module, "atomic_write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute(parts_for(model), IDS, Counter())
    monkeypatch.undo()
    compute = Counter(5.0)
    feats = cache.get_or_compute(parts_for(model), IDS, compute)  # no sidecar: recomputed
    assert compute.calls == 1 and feats[0, 0] == 5.0
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    with pytest.raises(ValueError, match="ids"):
        cache.get_or_compute({**parts_for(model), "dataset_ids": IDS}, IDS, compute)


def test_dataset_fingerprint_follows_file_changes(small_video_list):
    before = dataset_fingerprint(small_video_list)
    assert before == dataset_fingerprint(small_video_list)
    path = small_video_list.records[0].path
    path.write_bytes(path.read_bytes() + b"\0")
    assert dataset_fingerprint(small_video_list) != before
