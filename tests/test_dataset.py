"""The generic VideoDataset and the CLIP clip transform (against open_clip's PIL pipeline)."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from zsar.data.dataset import SAMPLE_KEYS, VideoDataset
from zsar.data.decoding import read_frames
from zsar.data.errors import VideoDecodeError
from zsar.data.records import VideoRecord
from zsar.data.sampling import DenseSampler, SegmentSampler
from zsar.data.scan import BadVideosError
from zsar.data.transforms import ClipVideoTransform, random_resized_crop_params
from zsar.models.preprocess import clip_preprocess_config, clip_transform


def test_sample_has_fixed_keys_and_true_frames(small_video_list, frame_index_of):
    ds = VideoDataset(small_video_list, SegmentSampler(8))
    assert len(ds) == 6 and ds.class_names == ["class a", "class b"]
    for i in (0, 4):
        sample = ds[i]
        assert tuple(sample) == SAMPLE_KEYS
        video = sample["video"]
        assert video.shape == (8, 3, 48, 64) and video.dtype == torch.uint8
        assert sample["label"] == (0 if i < 3 else 1) and sample["video_index"] == i
        assert sample["video_id"] == small_video_list.records[i].video_id
        assert sample["num_frames"] == (24 if i < 3 else 12)
        assert sample["frame_indices"].dtype == torch.int64
        assert sample["frame_indices"].tolist() == SegmentSampler(8)(sample["num_frames"]).tolist()
        decoded = frame_index_of(video.permute(0, 2, 3, 1).numpy())
        assert decoded.tolist() == sample["frame_indices"].tolist()


def test_training_randomness_is_per_seed_epoch_index(small_video_list):
    ds = VideoDataset(small_video_list, DenseSampler(4, 2), train=True, seed=3)
    first = [ds[i]["frame_indices"].tolist() for i in range(3)]
    assert first == [ds[i]["frame_indices"].tolist() for i in range(3)]  # same epoch: same draws
    ds.set_epoch(1)
    assert first != [ds[i]["frame_indices"].tolist() for i in range(3)]
    other = VideoDataset(small_video_list, DenseSampler(4, 2), train=True, seed=4)
    assert first != [other[i]["frame_indices"].tolist() for i in range(3)]
    evaluation = VideoDataset(small_video_list, DenseSampler(4, 2), train=False)
    evaluation.set_epoch(5)
    assert evaluation[0]["frame_indices"].tolist() == DenseSampler(4, 2)(24).tolist()


def test_dataloader_batches_do_not_depend_on_workers(small_video_list):
    def batches(workers):
        ds = VideoDataset(small_video_list, SegmentSampler(4), train=True, seed=0)
        loader = DataLoader(ds, batch_size=3, num_workers=workers)
        return [(b["video"], b["frame_indices"], b["label"]) for b in loader]

    for (v0, f0, l0), (v2, f2, l2) in zip(batches(0), batches(2), strict=True):
        assert v0.shape == (3, 4, 3, 48, 64)
        assert torch.equal(v0, v2) and torch.equal(f0, f2) and torch.equal(l0, l2)


def test_getitem_raises_on_bad_file_and_scan_handles_it(small_video_list, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 50)
    small_video_list.records.append(VideoRecord(bad, 1, "bad.mp4"))
    ds = VideoDataset(small_video_list, SegmentSampler(4))
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        ds[6]
    with pytest.raises(BadVideosError, match="bad.mp4"):
        ds.scan()
    assert len(ds) == 7  # "raise" leaves the dataset as it was
    with pytest.warns(UserWarning, match="skipping 1 of 7"):
        report = ds.scan(on_error="skip")
    assert len(ds) == 6 and report.bad[0][0] == bad and ds.scan_report is report
    assert ds[5]["video_id"] == "b/b2.mp4"


def test_clip_preprocess_config_reads_open_clip():
    cfg = clip_preprocess_config("ViT-B-32")
    assert cfg.size == 224 and cfg.mean == tuple(open_clip.OPENAI_DATASET_MEAN)
    assert clip_preprocess_config("ViT-L-14-336").size == 336
    tagged = clip_preprocess_config("ViT-B-32", "openai")
    assert tagged.std == tuple(open_clip.get_pretrained_cfg("ViT-B-32", "openai")["std"])
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-Nope'"):
        clip_preprocess_config("ViT-Nope")


def _textured_frames(t=3, h=120, w=170):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 1.5) % 256, (yy * 2.0) % 256, (xx + yy) % 256], -1)
    noise = rng.integers(-20, 20, (t, h, w, 3))
    return np.clip(base[None] + noise, 0, 255).astype(np.uint8)


def test_eval_transform_matches_open_clip_pil(shared_data):
    frames = [_textured_frames()]
    clip = shared_data / "videos" / "kinetics" / "skateboarding" / "skateboarding.mp4"
    frames.append(read_frames(clip, [0, 150, 299]))
    for model in ("ViT-B-32", "ViT-L-14-336"):
        cfg = clip_preprocess_config(model)
        reference = open_clip.image_transform(cfg.size, is_train=False, mean=cfg.mean, std=cfg.std)
        ours = ClipVideoTransform(cfg)
        for clip_frames in frames:
            got = ours(clip_frames)
            want = torch.stack([reference(Image.fromarray(f)) for f in clip_frames])
            assert got.shape == want.shape == (3, 3, cfg.size, cfg.size) and got.dtype == torch.float32
            diff = (got - want).abs()
            assert diff.max() < 0.05 and diff.mean() < 1e-3, (model, diff.max(), diff.mean())


def test_eval_transform_matches_open_clip_pil_synthetic():
    """Same check without the shared data: 2/255 at most after normalisation."""
    cfg = clip_preprocess_config("ViT-B-32")
    reference = open_clip.image_transform(cfg.size, is_train=False)
    frames = _textured_frames()
    diff = (ClipVideoTransform(cfg)(frames) - torch.stack([reference(Image.fromarray(f)) for f in frames])).abs()
    assert diff.max() < 0.05 and diff.mean() < 1e-3


def test_train_transform_is_reproducible_and_in_range():
    t = clip_transform("ViT-B-32", train=True, hflip=0.5)
    frames = torch.from_numpy(_textured_frames())
    a, b = t(frames, rng=np.random.default_rng(1)), t(frames, rng=np.random.default_rng(1))
    assert a.shape == (3, 3, 224, 224) and torch.equal(a, b)
    assert not torch.equal(a, t(frames, rng=np.random.default_rng(2)))
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = random_resized_crop_params(120, 170, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and top + h <= 120 and 0 <= left and left + w <= 170 and h > 0 and w > 0
    with pytest.raises(ValueError, match="uint8"):
        t(frames.float())


def test_dataset_with_clip_transform(small_video_list):
    ds = VideoDataset(small_video_list, SegmentSampler(8), transform=clip_transform("ViT-B-32", train=True),
                      train=True, seed=0)
    a, b = ds[1]["video"], ds[1]["video"]
    assert a.shape == (8, 3, 224, 224) and a.dtype == torch.float32 and torch.equal(a, b)
