"""Zero-shot protocols: split validation, seeded splits, cross-dataset overlap, K600, K-shot, GZSL."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from zsar.data import annotations as ann
from zsar.data import datasets as ds
from zsar.data import protocols as P
from zsar.data.errors import SplitError
from zsar.data.records import VideoList, VideoRecord
from zsar.paths import shared_data_dir


def shared(*parts: str) -> Path:
    """A path under the shared real data, or skip the test with the reason."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def toy_list(n_classes: int = 6, per_class: int = 5) -> VideoList:
    records = [VideoRecord(Path(f"/v/c{c}/{i}.mp4"), c, f"c{c}/{i}.mp4")
               for c in range(n_classes) for i in range(per_class)]
    return VideoList(records, [f"class {c}" for c in range(n_classes)], Path("/v"), "toy")


# ----------------------------------------------------------------------------- ZeroShotSplit
def test_zero_shot_split_validation():
    split = P.ZeroShotSplit([3, 1], (0, 2), seed=1, name="s", n_classes=4)
    assert split.seen == (1, 3) and split.unseen == (0, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.seen = (0,)
    with pytest.raises(SplitError, match=r"both seen and unseen: \[2\]"):
        P.ZeroShotSplit((1, 2), (2, 3))
    with pytest.raises(SplitError, match=r"duplicate class indices \[1\]"):
        P.ZeroShotSplit((1, 1), (2,))
    with pytest.raises(SplitError, match=r"out of range 0\.\.3: \[4\]"):
        P.ZeroShotSplit((1,), (4,), n_classes=4)
    with pytest.raises(SplitError, match="out of range"):
        P.ZeroShotSplit((-1,), (2,))
    with pytest.raises(SplitError, match="non-empty"):
        P.ZeroShotSplit((), (2,))


def test_random_class_splits_deterministic_and_balanced():
    splits = P.random_class_splits(101, n_splits=10, seed=0)
    assert splits == P.random_class_splits(101, n_splits=10, seed=0)
    assert splits != P.random_class_splits(101, n_splits=10, seed=1)
    assert len({s.unseen for s in splits}) == 10
    for s in splits:
        assert (len(s.seen), len(s.unseen)) == (51, 50)
        assert sorted(s.seen + s.unseen) == list(range(101))
    hmdb = P.random_class_splits(51, 3, seed=7)
    assert all((len(s.seen), len(s.unseen)) == (26, 25) for s in hmdb)
    # the first splits do not change when more are asked for
    assert P.random_class_splits(51, 5, seed=7)[:3] == hmdb
    # every class is unseen in some split over 10 draws (no class is systematically seen)
    assert len(set().union(*(s.unseen for s in splits))) > 90
    with pytest.raises(ValueError, match="seen_fraction"):
        P.random_class_splits(10, seen_fraction=1.0)


# ----------------------------------------------------------------------------- cross-dataset
@pytest.mark.shared_data
def test_cross_dataset_ucf101_vs_kinetics400():
    k400 = ann.read_class_names(shared("meta", "kinetics", "label_map_k400.txt"))
    ucf = ds.ucf101("/d", split_dir=shared("meta", "ucf101", "ucfTrainTestlist"), check_files=False).class_dirs
    exact = P.cross_dataset_split(k400, ucf, compact=False)
    loose = P.cross_dataset_split(k400, ucf)
    print(f"UCF101 vs K400: exact {len(exact.dropped)} dropped, compact {len(loose.dropped)}:",
          loose.dropped_names())
    assert (len(exact.kept), len(exact.dropped)) == (82, 19)
    assert (len(loose.kept), len(loose.dropped)) == (79, 22)
    dropped = dict(loose.dropped_names())
    assert dropped["Archery"] == "archery" and dropped["SkateBoarding"] == "skateboarding"
    assert dropped["CleanAndJerk"] == "clean and jerk" and "ApplyEyeMakeup" not in dropped
    assert sorted(loose.kept + tuple(t for t, _ in loose.dropped)) == list(range(101))
    synonym = P.cross_dataset_split(k400, ucf, synonyms={"PushUps": "push up"})
    assert len(synonym.dropped) == 23 and ("PushUps", "push up") in synonym.dropped_names()


@pytest.mark.shared_data
def test_cross_dataset_hmdb51_vs_kinetics400():
    k400 = ann.read_class_names(shared("meta", "kinetics", "label_map_k400.txt"))
    hmdb = ann.read_class_names(shared("meta", "hmdb51", "label_map_hmdb51.txt"))
    split = P.cross_dataset_split(k400, hmdb)
    assert split.dropped_names() == [("pushup", "push up"), ("situp", "situp")]


def test_cross_dataset_refuses_duplicate_vocabulary():
    with pytest.raises(ann.AnnotationError, match="duplicate"):
        P.cross_dataset_split(["Run", "run"], ["walk"])


# ----------------------------------------------------------------------------- Kinetics-600
@pytest.mark.shared_data
def test_kinetics600_zeroshot_splits():
    split_dir = shared("meta", "kinetics", "k600_zeroshot_splits")
    k400 = ann.read_class_names(shared("meta", "kinetics", "label_map_k400.txt"))
    k600 = ann.read_class_names(shared("meta", "kinetics", "label_map_k600.txt"))
    splits = P.kinetics600_zeroshot_splits(split_dir, k600, source_class_names=k400)
    assert [len(s.class_names) for s in splits] == [160, 160, 160]
    assert all(len(set(s.indices)) == 160 for s in splits)
    assert all([k600[i] for i in s.indices] == list(s.class_names) for s in splits)
    union = set().union(*(s.class_names for s in splits))
    new_in_k600 = set(k600) - set(k400)
    print(f"K600 zero-shot splits cover {len(union)} classes; K600 has {len(new_in_k600)} names not in K400")
    assert union <= new_in_k600 and (len(union), len(new_in_k600)) == (217, 232)
    assert splits[0].class_names != splits[1].class_names
    with pytest.raises(SplitError, match="also in the source"):
        P.kinetics600_zeroshot_splits(split_dir, k600, source_class_names=[splits[0].class_names[0]])


# ----------------------------------------------------------------------------- K-shot
def test_kshot_indices():
    labels = [c for c in range(5) for _ in range(6)] + [9, 9]
    a = P.kshot_indices(labels, range(5), k=2, seed=3)
    assert a == P.kshot_indices(labels, range(5), k=2, seed=3)
    assert a.support != P.kshot_indices(labels, range(5), k=2, seed=4).support
    assert Counter(labels[i] for i in a.support) == {c: 2 for c in range(5)}
    assert not set(a.support) & set(a.query)
    assert sorted(a.support + a.query) == list(range(30))  # class 9 not asked for: in neither
    with pytest.raises(SplitError, match=r"fewer than 8 videos.*\{0: 6, 1: 6"):
        P.kshot_indices(labels, range(5), k=8)


# ----------------------------------------------------------------------------- split lists, GZSL
def test_split_video_list():
    vl = toy_list()
    split = P.ZeroShotSplit((0, 1, 2), (3, 4, 5))
    train, test = P.split_video_list(vl, split)
    assert set(train.labels) == {0, 1, 2} and set(test.labels) == {3, 4, 5}
    assert len(train) + len(test) == len(vl) and train.class_names == vl.class_names
    with pytest.raises(SplitError, match="beyond the 6 classes"):
        P.split_video_list(vl, P.ZeroShotSplit((0,), (6,)))
    sub = P.restrict_classes(test, split.unseen)
    assert set(sub.labels) == {0, 1, 2} and sub.class_names == ["class 3", "class 4", "class 5"]


def test_gzsl_partition_disjoint():
    vl = toy_list(per_class=10)
    split = P.random_class_splits(6, 1, seed=2)[0]
    part = P.gzsl_partition(vl, split, seen_test_fraction=0.2, seed=0)
    ids = [{r.video_id for r in x.records} for x in (part.seen_train, part.seen_test, part.unseen_test)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert sum(map(len, ids)) == len(vl)
    assert set(part.seen_test.labels) == set(part.seen_train.labels) == set(split.seen)
    assert set(part.unseen_test.labels) == set(split.unseen)
    assert Counter(part.seen_test.labels) == {c: 2 for c in split.seen}
    assert P.gzsl_partition(vl, split, 0.2, seed=0).seen_test.records == part.seen_test.records


@pytest.mark.shared_data
def test_gzsl_partition_with_official_test_list():
    split_dir = shared("meta", "ucf101", "ucfTrainTestlist")
    every = ds.all_videos("ucf101", root="/d", split_dir=split_dir, check_files=False)
    official_test = ds.ucf101("/d", 1, "test", split_dir, check_files=False)
    split = P.random_class_splits(101, 1, seed=0)[0]
    part = P.gzsl_partition(every, split, heldout_ids=official_test)
    test_ids = {r.video_id for r in official_test.records}
    assert all(r.video_id in test_ids for r in part.seen_test.records)
    assert not any(r.video_id in test_ids for r in part.seen_train.records)
    assert len(part.seen_train) + len(part.seen_test) + len(part.unseen_test) == 13320


def test_harmonic_mean():
    assert P.harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert P.harmonic_mean(0.8, 0.2) == pytest.approx(0.32)
    assert P.harmonic_mean(0.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        P.harmonic_mean(-0.1, 0.5)
