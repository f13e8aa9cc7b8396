"""Named evaluation protocols and ``python -m zsar.evaluate``.

Against the official files in ``../shared/data/meta`` (skipped with the reason when absent): every
protocol's classes and split sizes. The samplers against the references' formulas for every clip
length 1-1000. The command end to end on the embedded benchmark laid out as a ViFi-CLIP protocol
and on the real clips in ``../shared/data/videos``, with a saved random-init checkpoint.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zsar import evaluate
from zsar.data import annotations as ann
from zsar.data.annotations import normalize_class_name
from zsar.data.dataset import VideoDataset
from zsar.data.errors import MissingFilesError
from zsar.data.eval_protocol import EvalProtocol, get_protocol, half_class_draws, list_protocols, protocol_splits
from zsar.data.sampling import ActionCLIPSampler, MMActionSampler
from zsar.data.transforms import ClipPreprocessConfig, ClipVideoTransform, three_crop
from zsar.experiments.protocol_eval import class_classifiers, class_prompts, split_scores
from zsar.models import create_model, get_templates, save_checkpoint
from zsar.paths import shared_data_dir

BACKBONE = "zsar-ViT-T-16-64"


def meta(*parts: str) -> Path:
    path = shared_data_dir().joinpath("meta", *parts)
    if not path.exists():
        pytest.skip(f"official split files not available: {path}")
    return path


def offline_splits(name: str):
    """The protocol's splits read from the shared meta folder, without looking for the videos."""
    return protocol_splits(get_protocol(name), "/nonexistent", meta(), check_files=False)


# ----------------------------------------------------------------------------- protocols as data
def test_every_bundled_protocol_is_valid_and_names_its_source():
    names = list_protocols()
    assert {"vificlip-ucf101", "vificlip-hmdb51", "vificlip-hmdb51-fixed", "vificlip-k600", "full-ucf101", "full-hmdb51", "half-ucf101",
            "half-hmdb51", "half-embedded", "actionclip-ucf101"} <= set(names)
    for name in names:
        p = get_protocol(name)
        assert p.source and p.title and p.frames >= 1
        get_templates(p.templates)  # a bundled template set
        assert json.dumps(p.describe())  # JSON-ready


def test_protocol_validation_and_files(tmp_path):
    with pytest.raises(ValueError, match="crops=2"):
        EvalProtocol("x", "t", "s", "ucf101", {"kind": "lists"}, 8, crops=2)
    with pytest.raises(ValueError, match="splits kind"):
        EvalProtocol("x", "t", "s", "ucf101", {"kind": "nope"}, 8)
    with pytest.raises(KeyError, match="vificlip-ucf101"):
        get_protocol("no-such-protocol")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"title": "t", "source": "s", "dataset": "ucf101", "frames": 4,
                                "splits": {"kind": "lists", "classes": "c.csv", "lists": ["l.txt"]}}))
    assert get_protocol(path).name == "mine"


@pytest.mark.shared_data
@pytest.mark.parametrize("split, official, n", [(1, "testlist01.txt", 3783), (2, "testlist02.txt", 3734),
                                                (3, "testlist03.txt", 3696)])
def test_vificlip_ucf101_lists_are_the_official_test_lists(split, official, n):
    s = offline_splits("vificlip-ucf101")[split - 1]
    assert len(s.videos) == n and len(s.class_names) == 101
    class_ind = ann.read_class_index(meta("ucf101", "ucfTrainTestlist", "classInd.txt"))
    assert [normalize_class_name(c, True) for c in s.class_names] == [normalize_class_name(c, True) for c in class_ind]
    listed = [line.split()[0] for _, line in ann.read_lines(meta("ucf101", "ucfTrainTestlist", official))]
    truth = {Path(p).name.lower(): class_ind.index(p.split("/")[0]) if p.split("/")[0] in class_ind else
             [c.lower() for c in class_ind].index(p.split("/")[0].lower()) for p in listed}
    assert {Path(r.video_id).name.lower(): r.label for r in s.videos.records} == truth


def official_hmdb51_test(split: int) -> dict[str, str]:
    """``{file name: normalised class}`` of the official test videos (id 2) of HMDB51 split ``split``."""
    truth = {}
    for f in sorted(meta("hmdb51", "testTrainMulti_7030_splits").glob(f"*_test_split{split}.txt")):
        cls = f.name[: -len(f"_test_split{split}.txt")]
        truth.update({line.split()[0]: normalize_class_name(cls, True)
                      for _, line in ann.read_lines(f) if line.split()[1] == "2"})
    return truth


@pytest.mark.shared_data
@pytest.mark.parametrize("split", [1, 2, 3])
def test_vificlip_hmdb51_lists_are_the_official_test_videos(split):
    truth = official_hmdb51_test(split)
    fixed = offline_splits("vificlip-hmdb51-fixed")[split - 1]
    got = {Path(r.video_id).name: normalize_class_name(fixed.class_names[r.label], True) for r in fixed.videos.records}
    assert got == truth and len(fixed.videos) == 1530 and len(fixed.class_names) == 51
    # as published, ViFi-CLIP's label csv swaps two pairs of classes against its lists' labels
    s = offline_splits("vificlip-hmdb51")[split - 1]
    assert len(s.videos) == 1530 and len(s.class_names) == 51
    as_published = {Path(r.video_id).name: normalize_class_name(s.class_names[r.label], True) for r in s.videos.records}
    swapped = {(truth[k], v) for k, v in as_published.items() if truth[k] != v}
    assert swapped == {("kick", "kickball"), ("kickball", "kick"), ("sword", "swordexercise"), ("swordexercise", "sword")}
    assert sum(truth[k] != v for k, v in as_published.items()) == 120


@pytest.mark.shared_data
def test_vificlip_k600_three_splits_of_160_new_classes():
    splits = offline_splits("vificlip-k600")
    k400 = {normalize_class_name(c, True) for c in ann.read_class_names(meta("kinetics", "label_map_k400.txt"))}
    k600 = {normalize_class_name(c, True) for c in ann.read_class_names(meta("kinetics", "label_map_k600.txt"))}
    assert [len(s.videos) for s in splits] == [14084, 13978, 14136]  # videos (the files end without a newline)
    for s in splits:
        names = {normalize_class_name(c, True) for c in s.class_names}
        assert len(names) == 160 and names <= k600 and not names & k400
        assert {r.label for r in s.videos.records} == set(range(160))
    assert len({c for s in splits for c in s.class_names}) == 217  # ER-ZSAR's 3 test draws from the 220 new


@pytest.mark.shared_data
@pytest.mark.parametrize("name, n_videos, n_classes", [("full-ucf101", 13320, 101), ("full-hmdb51", 6766, 51)])
def test_full_class_protocols_take_every_video(name, n_videos, n_classes):
    (s,) = offline_splits(name)
    assert len(s.videos) == n_videos and len(s.class_names) == n_classes
    assert len({r.video_id for r in s.videos.records}) == n_videos


@pytest.mark.shared_data
@pytest.mark.parametrize("name, n_classes, n_test", [("half-ucf101", 101, 50), ("half-hmdb51", 51, 25)])
def test_half_class_protocols_use_the_e2e_draw(name, n_classes, n_test):
    splits = offline_splits(name)
    (full,) = offline_splits(name.replace("half", "full"))
    assert len(splits) == 10
    for i, s in enumerate(splits):
        np.random.seed(i)  # Brattoli et al.'s main.py, verbatim in Text4Vis
        chosen = np.random.permutation(n_classes)[: n_classes // 2]
        assert len(s.class_names) == n_test
        assert set(s.class_names) == {full.class_names[c] for c in chosen}
        assert len(s.videos) == sum(r.label in set(chosen.tolist()) for r in full.videos.records)
    assert half_class_draws(n_classes, {"draw": "e2e", "n_splits": 10})[3] == \
        np.random.RandomState(3).permutation(n_classes)[: n_classes // 2].tolist()


# ----------------------------------------------------------------------------- samplers and views
@pytest.mark.parametrize("name", ["vificlip-ucf101", "vificlip-hmdb51", "vificlip-k600"])
def test_vificlip_protocols_sample_as_mmaction_test_mode_for_every_length(name):
    sampler = get_protocol(name).frame_sampler()
    assert isinstance(sampler, MMActionSampler) and sampler.num_indices == 32
    for n in range(1, 1001):  # floor(i*n/T + n/(2T)), exact in float64 for T = 32
        assert sampler(n).tolist() == [(2 * i + 1) * n // 64 for i in range(32)], n


def reference_actionclip_val(num_frames: int, num_segments: int) -> list[int]:
    """sallymmx/ActionCLIP datasets/datasets.py ``_get_val_indices`` (new_length=1, loop=False), 0-based."""
    if num_segments == 1:
        return [num_frames // 2]
    if num_frames <= num_segments:
        return [i * num_frames // num_segments for i in range(num_segments)]
    offset = (num_frames / num_segments - 1) / 2.0
    return [int(i * num_frames / num_segments + offset) for i in range(num_segments)]


@pytest.mark.parametrize("t", [1, 8, 16, 32])
def test_actionclip_sampler_matches_reference_for_every_length(t):
    sampler = ActionCLIPSampler(t)
    for n in range(1, 1001):
        assert sampler(n).tolist() == reference_actionclip_val(n, t), n
        drawn = sampler(n, train=True, rng=np.random.default_rng(n))
        assert drawn.shape == (t,) and 0 <= drawn.min() and drawn.max() < n
    assert get_protocol("actionclip-ucf101").frame_sampler().num_indices == 8


def test_three_crop_positions_follow_mmaction():
    x = torch.arange(2 * 3 * 4 * 10).reshape(2, 3, 4, 10)  # (T, C, H=4, W=10), crop 4: step (10-4)//2 = 3
    out = three_crop(x, 4)
    assert out.shape == (6, 3, 4, 4)
    for k, left in enumerate([0, 3, 6]):
        assert torch.equal(out[2 * k:2 * k + 2], x[..., left:left + 4])
    tall = three_crop(x.transpose(-1, -2), 4)
    assert torch.equal(tall[2:4], x.transpose(-1, -2)[..., 3:7, :])
    frames = np.zeros((2, 48, 80, 3), dtype=np.uint8)
    assert ClipVideoTransform(ClipPreprocessConfig(size=32), crops=3)(frames).shape == (6, 3, 32, 32)
    one = ClipVideoTransform(ClipPreprocessConfig(size=32), short_side=40)(frames)
    assert one.shape == (2, 3, 32, 32)


def test_scores_average_templates_and_views_as_the_protocol_says():
    model = create_model(BACKBONE, None)
    from zsar.models import get_tokenizer

    tok = get_tokenizer(BACKBONE)
    rng = np.random.default_rng(0)
    views = rng.normal(size=(5, 2, model.text_projection.shape[1])).astype(np.float32)
    views /= np.linalg.norm(views, axis=-1, keepdims=True)
    names = ["jump", "run", "swim"]
    prompts = [[t.format(n) for t in ("a {}", "the {} now")] for n in names]
    base = dict(name="x", title="t", source="s", dataset="ucf101", splits={"kind": "lists"}, frames=8)
    soft_protocol = EvalProtocol(**base, template_average="softmax")
    soft = split_scores(views, class_classifiers(prompts, soft_protocol, model, tok), soft_protocol, 10.0)
    with torch.no_grad():
        per_t = [torch.nn.functional.normalize(model.encode_text(tok([p[i] for p in prompts])), dim=-1) for i in range(2)]
    expected = np.mean([np.mean(torch.softmax(10.0 * torch.from_numpy(views) @ w.T, -1).numpy(), axis=1)
                        for w in per_t], axis=0)
    np.testing.assert_allclose(soft, expected, atol=1e-5)
    emb_protocol = EvalProtocol(**base, view_average="embedding")
    emb = split_scores(views, class_classifiers(prompts, emb_protocol, model, tok), emb_protocol, 10.0)
    assert emb.shape == (5, 3) and np.allclose(emb.sum(1), 1.0, atol=1e-5)
    assert class_prompts(get_protocol("vificlip-ucf101"), ["ApplyEyeMakeup"]) == [["ApplyEyeMakeup"]]
    with pytest.raises(ValueError, match="no description"):
        class_prompts(get_protocol("vificlip-ucf101"), ["a", "b"], "description", descriptions={"a": ["x"]})


# ----------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(create_model(BACKBONE, None), tmp_path_factory.mktemp("ckpt") / "random_init.pt")


def vificlip_layout(bench: Path, out: Path) -> Path:
    """The embedded benchmark laid out as ViFi-CLIP's UCF101 files: a label csv and flat ``val1.txt``."""
    from zsar.data import datasets

    everything = datasets.all_videos("embedded", root=bench)
    (out / "labels").mkdir(parents=True)
    with open(out / "labels" / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("id", "name"), *enumerate(everything.class_names)])
    (out / "val1.txt").write_text("".join(f"{r.path.name} {r.label}\n" for r in everything.records))
    protocol = {**get_protocol("vificlip-ucf101").__dict__, "name": "embedded-as-vificlip", "frames": 4,
                "splits": {"kind": "lists", "classes": "labels/labels.csv", "lists": ["val1.txt"]}}
    (out / "protocol.json").write_text(json.dumps(protocol))
    return out / "protocol.json"


def test_command_on_the_embedded_benchmark_laid_out_as_ucf101(tiny_bench, random_checkpoint, tmp_path,
                                                              monkeypatch, capsys):
    monkeypatch.setenv("ZSAR_CACHE", str(tmp_path / "cache"))
    protocol = vificlip_layout(tiny_bench, tmp_path / "meta")
    args = ["--protocol", str(protocol), "--data-root", str(tiny_bench / "videos"), "--meta-dir",
            str(tmp_path / "meta"), "--backbone", BACKBONE, "--pretrained", str(random_checkpoint),
            "--device", "cpu", "--out", str(tmp_path / "result.json")]
    assert evaluate.main(args) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "result.json").read_text())
    assert "protocol   embedded-as-vificlip" in printed and "MMActionSampler(num_segments=4" in printed
    assert result["splits"][0]["n_videos"] == 48 and result["splits"][0]["n_classes"] == 12
    assert 0.0 <= result["summary"]["top1_mean"] <= result["summary"]["top5_mean"] <= 1.0
    # a second run decodes nothing: every video embedding comes from the feature cache
    monkeypatch.setattr(VideoDataset, "__getitem__", lambda *a: pytest.fail("decoded a video on a cached run"))
    assert evaluate.main(args + ["--templates", "video_person"]) == 0
    again = json.loads((tmp_path / "result.json").read_text())
    assert again["text"]["templates"] == "video_person" and again["splits"][0]["n_videos"] == 48


def test_half_embedded_protocol_end_to_end(tiny_bench, random_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZSAR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "half.json"
    assert evaluate.main(["--protocol", "half-embedded", "--data-root", str(tiny_bench), "--backbone", BACKBONE,
                          "--pretrained", str(random_checkpoint), "--text", "description", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["splits"]) == 10 and all(r["n_classes"] == 6 and r["n_videos"] == 24 for r in result["splits"])
    assert "mean ± std" in capsys.readouterr().out


def shared_ucf_clips(shared_data: Path, out: Path) -> Path:
    """A protocol over the real UCF101 clips of ``../shared/data/videos``, ViFi-CLIP's class list."""
    names = ann.read_class_names(shared_data / "meta/vificlip_splits/labels/ucf_101_labels.csv")
    index = {normalize_class_name(n, True): i for i, n in enumerate(names)}
    with open(shared_data / "videos/labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "ucf101"]
    (out / "clips.txt").write_text("".join(f"{r['path']} {index[normalize_class_name(r['class_dir'], True)]}\n"
                                           for r in rows))
    protocol = {**get_protocol("vificlip-ucf101").__dict__, "name": "shared-ucf101-clips", "frames": 8,
                "splits": {"kind": "lists", "classes": str(shared_data / "meta/vificlip_splits/labels/ucf_101_labels.csv"),
                           "lists": [str(out / "clips.txt")]}}
    (out / "protocol.json").write_text(json.dumps(protocol))
    return out / "protocol.json"


@pytest.mark.shared_data
def test_command_on_the_shared_real_clips(shared_data, random_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZSAR_CACHE", str(tmp_path / "cache"))
    protocol = shared_ucf_clips(shared_data, tmp_path)
    out = tmp_path / "real.json"
    assert evaluate.main(["--protocol", str(protocol), "--data-root", str(shared_data / "videos"),
                          "--meta-dir", "/", "--backbone", BACKBONE, "--pretrained", str(random_checkpoint),
                          "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["splits"][0]["n_videos"] == 12 and result["splits"][0]["n_classes"] == 101
    assert "top-1" in capsys.readouterr().out


@pytest.mark.shared_data
def test_missing_videos_are_refused_with_the_list_before_the_model_is_built(shared_data, tmp_path, capsys):
    code = evaluate.main(["--protocol", "vificlip-ucf101", "--data-root", str(shared_data / "videos" / "ucf101"),
                          "--backbone", BACKBONE, "--pretrained", str(tmp_path / "no_such_weights.pt"),
                          "--out", str(tmp_path / "result.json")])
    err = capsys.readouterr().err
    assert code == 2 and "missing file(s) named in protocol vificlip-ucf101" in err and "and 11" in err
    listed = (tmp_path / "result.missing.txt").read_text().split()
    assert f"the full list: {tmp_path / 'result.missing.txt'}" in err and any(p.endswith("/v_YoYo_g07_c04.avi") for p in listed)
    with pytest.raises(MissingFilesError) as info:
        protocol_splits(get_protocol("vificlip-ucf101"), shared_data / "videos" / "ucf101")
    all_listed = {r.path for s in offline_splits("vificlip-ucf101") for r in s.videos.records}
    on_disk = {p.name for p in (shared_data / "videos" / "ucf101").rglob("*.*")}
    found = {p for p in all_listed if p.name in on_disk}  # the shared clips that are in a test list
    assert 0 < len(found) < 12 and len(info.value.missing) == len(all_listed) - len(found) == len(listed)


def test_weights_that_cannot_be_loaded_offline_are_refused(tiny_bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ZSAR_CACHE", str(tmp_path / "cache"))
    base = ["--protocol", "half-embedded", "--data-root", str(tiny_bench)]
    assert evaluate.main(base + ["--backbone", BACKBONE, "--pretrained", str(tmp_path / "nope.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert evaluate.main(base + ["--backbone", "ViT-B-16", "--pretrained", "openai"]) == 2
    err = capsys.readouterr().err
    assert "openai" in err and "ViT-B-16" in err
