"""collect_split_embeddings: a finished run restored once, every array cached, a second call encodes nothing."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

import zsar.experiments.restore as embeddings_module
from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.restore import (RunMismatchError, collect_split_embeddings, count_encoded_clips,
                                        mirror_run, run_weights_hash)
from zsar.experiments.feature_cache import FeatureCache
from zsar.experiments import build_split_data, run_split
from zsar.methods import relatedness_matrix, semantic_transfer
from zsar.models import FrameEncoder

REST = dict(frames=4, epochs=1, batch_size=6, progress=False, width=32, layers=1, heads=2, joint_dim=32,
            lr=1e-4, transfer_k=3)


@pytest.fixture(scope="module")
def rest_run(source, split, tmp_path_factory):
    """A finished ResT run (as 02_training leaves one) and the first, uncached collection of it."""
    run_dir = tmp_path_factory.mktemp("rest_run") / "rest" / split.name
    result = run_split("rest", REST, source, split, run_dir, seed=3, resume=False)
    cache = FeatureCache(tmp_path_factory.mktemp("features"))
    work = tmp_path_factory.mktemp("work") / "rest"
    first = collect_split_embeddings("rest", run_dir, source, split, work_dir=work, cache=cache)
    return run_dir, result, cache, work, first


def test_first_call_encodes_train_and_test_videos_once(rest_run, source, split):
    run_dir, result, cache, _, first = rest_run
    data = build_split_data(source, split, True, gzsl=True, seed=3)
    # the restore embeds the training videos for the seen prototypes, then the GZSL test videos once
    assert first.encoded_videos == len(data.train) + len(data.gzsl_test)
    assert cache.misses == 5 and cache.hits == 0
    S, U = len(split.seen), len(split.unseen)
    assert first.embeddings.shape == (len(data.gzsl_test), REST["joint_dim"]) and np.isfinite(first.embeddings).all()
    assert list(first.video_ids) == [r.video_id for r in data.gzsl_test.records]
    assert first.prototypes.shape == first.text_prototypes.shape == (S + U, REST["joint_dim"])
    assert list(first.class_ids) == list(split.seen) + list(split.unseen) and first.n_seen == S
    assert first.unseen_mask.sum() == len(data.unseen_test) and first.unseen_labels.max() == U - 1
    assert (0, 1) in first.unseen_pairs  # the pair put first among the unseen classes
    assert first.unseen_pairs == tuple(map(tuple, data.pairs))
    # the stored scores of run_split come back from the cached arrays
    with np.load(run_dir / "scores.npz") as stored:
        assert np.array_equal(stored["unseen_video_ids"], first.video_ids[first.unseen_mask])
        np.testing.assert_allclose(first.unseen_scores(), stored["unseen_scores"], atol=1e-5)
    assert abs((first.unseen_scores().argmax(1) == first.unseen_labels).mean() - result["metrics"]["top1"]) < 1e-9


def test_transfer_arrays_are_resTs_own_transfer(rest_run):
    *_, first = rest_run
    S, w = first.n_seen, first.transfer_weights
    assert w.shape == first.relatedness.shape == (first.n_unseen, S)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    assert ((w > 0).sum(1) == REST["transfer_k"]).all()
    # the joint label space is ResT's default transfer space: relatedness of the text prototypes
    np.testing.assert_allclose(first.relatedness, relatedness_matrix(first.text_prototypes[S:],
                                                                     first.text_prototypes[:S]), atol=1e-5)
    # unseen prototypes = semantic transfer of the seen ones with those weights (alpha = 1)
    again = semantic_transfer(first.prototypes[:S], first.relatedness, REST["transfer_k"], 0.1)
    np.testing.assert_allclose(first.prototypes[S:], again.prototypes, atol=1e-5)


def test_second_call_reads_everything_and_builds_no_model(rest_run, source, split, monkeypatch):
    run_dir, _, cache, work, first = rest_run

    def no_restore(*args, **kwargs):
        raise AssertionError("a fully cached collection must not restore the model")

    monkeypatch.setattr(embeddings_module, "restore_method", no_restore)
    again_cache = FeatureCache(cache.root)  # a new process: only the disk carries over
    second = collect_split_embeddings("rest", run_dir, source, split, work_dir=work, cache=again_cache)
    assert second.encoded_videos == 0 and again_cache.hits == 5 and again_cache.misses == 0
    for name in ("embeddings", "prototypes", "text_prototypes", "relatedness", "transfer_weights", "labels"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))


def test_the_training_run_is_only_read(rest_run):
    run_dir, _, _, work, _ = rest_run
    checkpoints = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*.pt"))
    assert checkpoints and checkpoints == sorted(p.relative_to(work) for p in work.rglob("*.pt"))
    for rel in checkpoints:  # hard links: same file, no copy
        assert os.path.samefile(run_dir / rel, work / rel)
    assert not (work / "metrics.json").exists() and not (work / "scores.npz").exists()


def test_a_retrained_run_is_a_miss(rest_run, source, split, tmp_path):
    run_dir, _, cache, _, first = rest_run
    changed = tmp_path / "changed"
    shutil.copytree(run_dir, changed)
    checkpoint = next(changed.rglob("*.pt"))
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0")  # other bytes, as a retrained run would have
    assert run_weights_hash(changed) != run_weights_hash(run_dir)
    counter = FeatureCache(cache.root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embeddings_module, "restore_method", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("restore")))
        with pytest.raises(RuntimeError, match="restore"):
            collect_split_embeddings("rest", changed, source, split, work_dir=tmp_path / "w", cache=counter)
    assert counter.misses == 1 and counter.hits == 0


def test_another_split_or_configuration_is_refused(rest_run, source, split, tmp_path):
    run_dir, *_ = rest_run
    swapped = ZeroShotSplit(split.unseen, split.seen, name="swapped", n_classes=split.n_classes)
    with pytest.raises(RunMismatchError, match="swapped"):
        collect_split_embeddings("rest", run_dir, source, swapped, work_dir=tmp_path / "w",
                                 cache=FeatureCache(tmp_path / "c"))
    edited = tmp_path / "edited"
    shutil.copytree(run_dir, edited)
    config = json.loads((edited / "method.json").read_text())
    config["params"]["transfer_k"] = 2
    (edited / "method.json").write_text(json.dumps(config))
    # resuming checkpoints of another configuration would retrain and delete them: refused
    with pytest.raises(RunMismatchError, match="another configuration"):
        collect_split_embeddings("rest", edited, source, split, work_dir=tmp_path / "w2",
                                 cache=FeatureCache(tmp_path / "c2"))
    assert sorted(p.name for p in edited.rglob("*.pt")) == sorted(p.name for p in run_dir.rglob("*.pt"))


def test_mirror_links_checkpoints_skips_results_and_drops_stale_ones(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "train" / "checkpoints").mkdir(parents=True)
    (src / "train" / "checkpoints" / "epoch_0000.pt").write_bytes(b"weights")
    (src / "method.json").write_text("{}")
    (src / "metrics.json").write_text("{}")
    (dst / "train" / "checkpoints").mkdir(parents=True)
    (dst / "train" / "checkpoints" / "epoch_0007.pt").write_bytes(b"stale")  # would be resumed first
    mirror_run(src, dst)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()) == [
        "method.json", "train/checkpoints/epoch_0000.pt"]
    assert os.path.samefile(src / "train/checkpoints/epoch_0000.pt", dst / "train/checkpoints/epoch_0000.pt")
    assert run_weights_hash(tmp_path / "nothing_here") == "none"


def test_count_encoded_clips_counts_frame_encoder_batches_inside_the_block():
    encoder = FrameEncoder(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5)))
    video = torch.zeros(3, 2, 3, 4, 4)  # (B, T, 3, H, W)
    with count_encoded_clips() as count:
        encoder(video)
        encoder(video[:2])
        torch.nn.Linear(2, 2)(torch.zeros(7, 2))  # other modules are not videos
    encoder(video)  # outside the block
    assert count == [5]
