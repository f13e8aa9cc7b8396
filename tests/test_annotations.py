"""Annotation parsers and dataset factories: real official files (skipped when absent) + tmp layouts."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from zsar.data import annotations as ann
from zsar.data import datasets as ds
from zsar.data.errors import AnnotationError, MissingFilesError
from zsar.paths import shared_data_dir


def shared(*parts: str) -> Path:
    """A path under the shared real data, or skip the test with the reason."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def ucf_split_dir() -> Path:
    return shared("meta", "ucf101", "ucfTrainTestlist")


def make_ucf_layout(tmp_path: Path, dirs: list[str], n_per_class: int = 2, ext: str = ".avi"):
    """A tiny UCF101-style tree: ``videos/<Dir>/v_<Dir>_g01_cNN<ext>`` + ``splits/`` lists."""
    splits, videos = tmp_path / "splits", tmp_path / "videos"
    splits.mkdir()
    (splits / "classInd.txt").write_text("".join(f"{i} {d}\r\n" for i, d in enumerate(dirs, 1)))
    train, test = [], []
    for i, d in enumerate(dirs, 1):
        (videos / d).mkdir(parents=True)
        for c in range(1, n_per_class + 1):
            rel = f"{d}/v_{d}_g01_c{c:02d}{ext}"
            (videos / rel).write_bytes(b"x")
            (train if c % 2 else test).append(rel)
    (splits / "trainlist01.txt").write_text("".join(f"{r} {dirs.index(r.split('/')[0]) + 1}\r\n" for r in train))
    (splits / "testlist01.txt").write_text("".join(f"{r}\r\n" for r in test))
    return splits, videos


# ----------------------------------------------------------------------------- class names
@pytest.mark.parametrize("raw, human", [
    ("ApplyEyeMakeup", "apply eye makeup"), ("YoYo", "yo yo"), ("brush_hair", "brush hair"),
    ("HandstandPushups", "handstand pushups"), ("Clean and jerk", "clean and jerk"),
])
def test_humanize_class_name(raw, human):
    assert ann.humanize_class_name(raw) == human


def test_normalize_class_name_matches_across_styles():
    assert ann.normalize_class_name("passing American football (in game)") == "passing american football in game"
    compact = [ann.normalize_class_name(n, compact=True) for n in ("SkateBoarding", "skate_boarding")]
    assert compact == ["skateboarding", "skateboarding"]
    assert ann.normalize_class_name("clean_and_jerk") == ann.normalize_class_name("CleanAndJerk")


def test_class_name_map_hook():
    assert ann.display_names(["YoYo", "TaiChi"], {"TaiChi": "tai chi exercise"}) == ["yo yo", "tai chi exercise"]
    assert ann.display_names(["YoYo"], str.upper) == ["YOYO"]
    with pytest.raises(ValueError, match="Typo"):
        ann.display_names(["YoYo"], {"Typo": "x"})


# ----------------------------------------------------------------------------- real UCF101 / HMDB51
@pytest.mark.parametrize("split, n_train, n_test", [(1, 9537, 3783), (2, 9586, 3734), (3, 9624, 3696)])
@pytest.mark.shared_data
def test_ucf101_official_split_counts(split, n_train, n_test):
    train = ds.ucf101("/nonexistent", split, "train", ucf_split_dir(), check_files=False)
    test = ds.ucf101("/nonexistent", split, "test", ucf_split_dir(), check_files=False)
    assert (len(train), len(test)) == (n_train, n_test)
    assert len(train.class_names) == 101 and train.class_names[0] == "apply eye makeup"
    assert train.class_dirs[0] == "ApplyEyeMakeup"
    train_ids, test_ids = {r.video_id for r in train.records}, {r.video_id for r in test.records}
    assert not train_ids & test_ids and len(train_ids | test_ids) == 13320
    assert set(train.labels) == set(test.labels) == set(range(101))


@pytest.mark.shared_data
def test_ucf101_handstand_pushups_quirk():
    test = ds.ucf101("/data/ucf", 1, "test", ucf_split_dir(), check_files=False)
    idx = test.class_dirs.index("HandstandPushups")
    quirky = [r for r in test.records if "v_HandStandPushups_" in r.video_id]
    assert idx == 36 and quirky and all(r.label == idx for r in quirky)
    assert all(r.video_id.startswith("HandstandPushups/") for r in quirky)
    assert test.class_names[idx] == "handstand pushups"


@pytest.mark.shared_data
def test_hmdb51_official_splits():
    split_dir = shared("meta", "hmdb51", "testTrainMulti_7030_splits")
    label_map = ann.read_class_list(shared("meta", "hmdb51", "label_map_hmdb51.txt"))
    for split in (1, 2, 3):
        train = ds.hmdb51("/data/hmdb", split, "train", split_dir, check_files=False)
        test = ds.hmdb51("/data/hmdb", split, "test", split_dir, check_files=False)
        assert train.class_dirs == label_map and len(label_map) == 51  # same (alphabetical) order
        assert set(Counter(train.labels).values()) == {70} and set(Counter(test.labels).values()) == {30}
        assert not {r.video_id for r in train.records} & {r.video_id for r in test.records}
    every = ds.all_videos("hmdb51", root="/data/hmdb", split_dir=split_dir, check_files=False)
    assert len(every) == 6766 and every.class_names[0] == "brush hair"
    assert every.records[0].path == Path("/data/hmdb/brush_hair") / every.records[0].video_id.split("/", 1)[1]


@pytest.mark.shared_data
def test_hmdb51_class_order_vs_vificlip_files():
    """ViFi-CLIP's HMDB51 val lists index classes alphabetically, but its label csv follows TSN's
    class_list.txt, which swaps kick/kick_ball and sword/sword_exercise: using the two together
    mislabels those 4 classes (120 of 1530 test videos per split)."""
    split_dir = shared("meta", "hmdb51", "testTrainMulti_7030_splits")
    vifi_csv = shared("meta", "vificlip_splits", "labels", "hmdb_51_labels.csv")
    for split in (1, 2, 3):
        ours = ds.hmdb51("/d", split, "test", split_dir, check_files=False)
        vifi = ds.annotation_list("/d", shared("meta", "vificlip_splits", "zeroshot_eval", "hmdb_splits",
                                               f"val{split}.txt"), vifi_csv, check_files=False)
        ours_by_file = {r.video_id.split("/", 1)[1]: r.label for r in ours.records}
        assert ours_by_file == {r.video_id: r.label for r in vifi.records} and len(ours_by_file) == 1530
        wrong = Counter((ours.class_dirs[r.label], vifi.class_names[r.label]) for r in vifi.records
                        if ann.normalize_class_name(ours.class_dirs[r.label]) != vifi.class_names[r.label])
        assert wrong == {("kick", "kick ball"): 30, ("kick_ball", "kick"): 30,
                         ("sword", "sword exercise"): 30, ("sword_exercise", "sword"): 30}
    tsn = ds.hmdb51("/d", 1, "test", split_dir, check_files=False, class_order=split_dir / "class_list.txt")
    assert tsn.class_names == ann.read_class_names(vifi_csv) and tsn.class_dirs[20:22] == ["kick_ball", "kick"]
    with pytest.raises(AnnotationError, match="missing.*wave"):
        ds.hmdb51("/d", 1, "test", split_dir, check_files=False, class_order=tsn.class_dirs[:-1])


@pytest.mark.shared_data
def test_all_videos_ucf101_and_registry():
    every = ds.all_videos("ucf101", root="/d", split_dir=ucf_split_dir(), check_files=False)
    assert len(every) == 13320
    with pytest.raises(ValueError, match="allowed"):
        ds.make_video_list("ucf999")
    with pytest.raises(ValueError, match="subset"):
        ds.ucf101("/d", subset="val", split_dir=ucf_split_dir(), check_files=False)


@pytest.mark.shared_data
def test_vificlip_annotation_list():
    lst = shared("meta", "vificlip_splits", "zeroshot_eval", "ucf_splits", "val1.txt")
    labels = shared("meta", "vificlip_splits", "labels", "ucf_101_labels.csv")
    vl = ds.annotation_list("/d", lst, labels, check_files=False)
    assert len(vl) == 3783 and len(vl.class_names) == 101
    assert {r.label for r in vl.records if r.video_id.startswith("v_HandStandPushups")} == {36}


# ----------------------------------------------------------------------------- class files
@pytest.mark.parametrize("rel, n", [
    ("kinetics/label_map_k400.txt", 400), ("kinetics/label_map_k600.txt", 600),
    ("kinetics/label_map_k700.txt", 700), ("kinetics/k600_zeroshot_splits/kinetics_600_labels.csv", 600),
    ("activitynet/label_map_activitynet.txt", 200), ("activitynet/anet1.3_labels.csv", 200),
    ("ucf101/ucfTrainTestlist/classInd.txt", 101), ("hmdb51/label_map_hmdb51.txt", 51),
])
@pytest.mark.shared_data
def test_real_class_files(rel, n):
    assert len(ann.read_class_names(shared("meta", rel))) == n


@pytest.mark.shared_data
def test_activitynet_class_files_agree():
    a = ann.read_class_names(shared("meta", "activitynet", "anet1.3_labels.csv"))
    b = ann.read_class_names(shared("meta", "activitynet", "label_map_activitynet.txt"))
    assert set(a) == set(b)


# ----------------------------------------------------------------------------- Kinetics
@pytest.mark.shared_data
def test_kinetics400_val_csv():
    label_map = shared("meta", "kinetics", "label_map_k400.txt")
    vl = ds.kinetics("/k400/val", shared("meta", "kinetics", "kinetics-400_val.csv"), label_map,
                     layout="underscore", check_files=False)
    assert len(vl) == 19906 and len(set(vl.labels)) == 400
    assert vl.records[0].video_id == "abseiling/0wR5jVB-WPk_000417_000427.mp4"
    assert all(re.fullmatch(r"[^/]+/[\w-]{11}_\d{6}_\d{6}\.mp4", r.video_id) for r in vl.records)


def test_kinetics_layouts_detected(tmp_path):
    csv_text = "label,youtube_id,time_start,time_end,split\nclean and jerk,abcdefghijk,5,15,val\n"
    (tmp_path / "k.csv").write_text(csv_text)
    name = "abcdefghijk_000005_000015.mp4"
    for folder, layout in (("clean_and_jerk", "underscore"), ("clean and jerk", "label"), ("", "flat")):
        root = tmp_path / layout
        (root / folder).mkdir(parents=True)
        (root / folder / name).write_bytes(b"x")
        vl = ds.kinetics(root, tmp_path / "k.csv")
        assert vl.records[0].path == root / folder / name and f"({layout} layout)" in vl.source


def test_kinetics_unknown_label_and_bad_times(tmp_path):
    (tmp_path / "k.csv").write_text("label,youtube_id,time_start,time_end\nflying,abc,1,2\n")
    with pytest.raises(AnnotationError, match=r"k\.csv:2: 1 label.*flying"):
        ds.kinetics(tmp_path, tmp_path / "k.csv", ["swimming"], check_files=False)
    (tmp_path / "b.csv").write_text("label,youtube_id,time_start,time_end\nflying,abc,one,2\n")
    with pytest.raises(AnnotationError, match=r"b\.csv:2: bad times"):
        ds.kinetics(tmp_path, tmp_path / "b.csv", check_files=False)


@pytest.mark.shared_data
def test_kinetics600_zeroshot_eval_lists():
    split_dir = shared("meta", "kinetics", "k600_zeroshot_splits")
    for split, n in ((1, 14084), (2, 13978), (3, 14136)):
        vl = ds.kinetics600_zeroshot("/k600", split, split_dir, check_files=False)
        assert len(vl) == n and len(vl.class_names) == 160 and set(vl.labels) == set(range(160))


# ----------------------------------------------------------------------------- files on disk
def test_missing_files_reported_all_at_once(tmp_path):
    splits, videos = make_ucf_layout(tmp_path, ["Archery", "Biking", "YoYo"], n_per_class=4)
    gone = sorted(videos.rglob("*_c0[13].avi"))  # train videos of every class
    for p in gone:
        p.unlink()
    with pytest.raises(MissingFilesError) as err:
        ds.ucf101(videos, 1, "train", splits)
    assert sorted(err.value.missing) == sorted(str(p) for p in gone) and len(gone) == 6
    assert "trainlist" in str(err.value) or "split 1 train" in str(err.value)
    assert len(ds.ucf101(videos, 1, "train", splits, check_files=False)) == 6
    assert len(ds.ucf101(videos, 1, "test", splits)) == 6


def test_case_mismatched_folder_resolved(tmp_path):
    splits, videos = make_ucf_layout(tmp_path, ["HandstandPushups"], n_per_class=2)
    (videos / "HandstandPushups").rename(videos / "HandStandPushups")  # some re-packs spell it so
    vl = ds.ucf101(videos, 1, "all", splits)
    assert [r.path.parent.name for r in vl.records] == ["HandStandPushups"] * 2
    assert all(r.video_id.startswith("HandstandPushups/") for r in vl.records)


def test_embedded_layout(tmp_path):
    dirs = ["KickBall", "WaveHand"]
    make_ucf_layout(tmp_path, dirs, n_per_class=2, ext=".mp4")
    classes = [{"index": i, "dir": d, "name": n, "description": "", "units": {}, "temporal_pair": None}
               for i, (d, n) in enumerate(zip(dirs, ["kick a ball", "wave a hand"]))]
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    vl = ds.embedded(tmp_path, 1, "all")
    assert vl.class_names == ["kick a ball", "wave a hand"] and vl.class_dirs == dirs and len(vl) == 4


@pytest.mark.shared_data
def test_video_folder_on_shared_ucf101():
    vl = ds.video_folder(shared("videos", "ucf101"))
    assert len(vl.class_names) == 10 and len(vl) == 12
    assert Counter(vl.class_names[lab] for lab in vl.labels)["basketball"] == 3
    assert all(r.path.is_file() for r in vl.records)


@pytest.mark.shared_data
def test_video_folder_with_fixed_vocabulary():
    k400 = shared("meta", "kinetics", "label_map_k400.txt")
    vl = ds.video_folder(shared("videos", "kinetics"), class_names=k400)
    assert len(vl.class_names) == 400 and len(vl) == 6
    assert "clean and jerk" in {vl.class_names[lab] for lab in vl.labels}
    anet = ds.activitynet(shared("videos", "activitynet"), shared("meta", "activitynet", "anet1.3_labels.csv"))
    assert sorted(anet.class_names[lab] for lab in anet.labels) == ["Clean and jerk", "Walking the dog"]


def test_video_folder_unmatched_folder_refused(tmp_path):
    for d in ("archery", "unknown_thing", "other_unknown"):
        (tmp_path / d).mkdir()
    with pytest.raises(AnnotationError, match=r"other_unknown.*unknown_thing"):
        ds.video_folder(tmp_path, class_names=["Archery"])


# ----------------------------------------------------------------------------- malformed input
def test_duplicate_class_names_refused(tmp_path):
    (tmp_path / "labels.txt").write_text("archery\nhigh jump\nHigh_Jump\narchery\n")
    with pytest.raises(AnnotationError, match=r"labels\.txt: duplicate class names.*archery.*High_Jump"):
        ann.read_class_list(tmp_path / "labels.txt")
    (tmp_path / "classInd.txt").write_text("1 YoYo\n2 YoYo\n")
    with pytest.raises(AnnotationError, match="duplicate"):
        ann.read_class_index(tmp_path / "classInd.txt")
    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    with pytest.raises(AnnotationError, match="duplicate"):
        ds.annotation_list(tmp_path, tmp_path / "list.txt", ["run", "Run"], check_files=False)


@pytest.mark.parametrize("content, pattern", [
    ("a.mp4 0\nb.mp4\n", r"list\.txt:2: expected"),
    ("a.mp4 0\n\nb.mp4 7\n", r"list\.txt:3: label 7 outside"),
    ("my clip.mp4 x\n", r"list\.txt:1: expected"),
])
def test_malformed_annotation_list(tmp_path, content, pattern):
    (tmp_path / "list.txt").write_text(content)
    with pytest.raises(AnnotationError, match=pattern):
        ann.read_annotation_list(tmp_path / "list.txt", tmp_path, ["a", "b"])


def test_annotation_list_paths_with_spaces(tmp_path):
    (tmp_path / "list.txt").write_text("my dir/my clip.mp4 1\r\n")
    vl = ann.read_annotation_list(tmp_path / "list.txt", tmp_path, ["a", "b"])
    assert vl.records[0].video_id == "my dir/my clip.mp4" and vl.records[0].label == 1


def test_malformed_ucf_and_hmdb_lists(tmp_path):
    splits, _ = make_ucf_layout(tmp_path, ["Archery", "Biking"])
    (splits / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 1\nArchery/v_Archery_g01_c02.avi 2\n")
    with pytest.raises(AnnotationError, match=r"trainlist01\.txt:2: label 2 disagrees"):
        ann.read_ucf101_split(splits, tmp_path, 1, "train")
    (splits / "testlist01.txt").write_text("Archery/v_Biking_g01_c01.avi\n")
    with pytest.raises(AnnotationError, match=r"testlist01\.txt:1: file .* not of class"):
        ann.read_ucf101_split(splits, tmp_path, 1, "test")
    (tmp_path / "hm").mkdir()
    (tmp_path / "hm" / "run_test_split1.txt").write_text("a.avi 1\nb.avi 5\n")
    with pytest.raises(AnnotationError, match=r"run_test_split1\.txt:2"):
        ann.read_hmdb51_split(tmp_path / "hm", tmp_path, 1, "train")
    with pytest.raises(AnnotationError, match="no '\\*_test_split2.txt'"):
        ann.read_hmdb51_split(tmp_path / "hm", tmp_path, 2, "train")


def test_missing_annotation_file(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        ann.read_class_list(tmp_path / "nope.txt")
