"""The leakage guard: no unseen class text or video reaches training or model selection.

Every string any text encoder sees is recorded twice over: by each semantic space's
``encoded_texts`` (what the methods expose) and, independently, by patching the encoders and the
CLIP tokenizer themselves (a method that bypassed its spaces would still be caught). Every video
a method reads is recorded with its original class. During ``fit`` none may belong to an unseen
class; during prediction the unseen texts must appear (so this test can fail).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.runs import run_split
from zsar.experiments.sources import load_embedded_source
from zsar.experiments.split_data import build_split_data, default_dataset_factory
from zsar.methods import METHODS, ClassTexts, FrameAverage, LeakageError, find_leaks, forbidden_strings, make_method
from zsar.models.text_encoder import ClipTextSpace
from zsar.text.semantic import SemanticSpace

torch.set_num_threads(1)

FRAMES = 4
SPLIT = ZeroShotSplit(seen=(0, 2, 4, 6, 8, 10), unseen=(1, 3, 5, 7, 9, 11), name="odd_unseen")
COMMON = dict(frames=FRAMES, epochs=1, batch_size=6, progress=False, resume=False)
# every text kind and every semantic space is exercised by some method
ZERO_SHOT = {
    "frame_average": dict(text_kind="description"),
    "actionclip": dict(lr=1e-4, text_kind="units"),
    "devise": dict(map_epochs=5, semantic_space="glove", text_kind="name+description"),
    "eszsl": dict(semantic_space="minilm", visual="finetune", visual_epochs=1),
    "rest": dict(width=32, layers=1, heads=2, joint_dim=32, transfer_space="glove", transfer_alpha=0.5,
                 transfer_k=3),
    "motion_prompts": dict(width=32, heads=2, prompt_hidden=16, text_kind="name+description"),
    "lss": dict(width=32, layers=1, heads=2, concept_templates="clip_ucf101"),
    "asu": dict(width=32, layers=1, heads=2, regions=2, inference_units="target"),
}


class Recorder:
    """Texts and videos seen in the current phase (``"fit"`` or ``"predict"``)."""

    def __init__(self):
        self.phase = "fit"
        self.texts = {"fit": [], "predict": []}
        self.classes = {"fit": [], "predict": []}
        self.labels = {"fit": [], "predict": []}


class RecordingDataset(torch.utils.data.Dataset):
    """Wraps a dataset; records the original class and the label of every sample read."""

    def __init__(self, dataset, recorder: Recorder, original_label: dict[str, int]):
        self.dataset, self.recorder, self.original_label = dataset, recorder, original_label
        self.videos = dataset.videos  # labels without decoding, as the real datasets offer

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset[index]
        self.recorder.classes[self.recorder.phase].append(self.original_label[sample["video_id"]])
        self.recorder.labels[self.recorder.phase].append(int(sample["label"]))
        return sample


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    encode, encode_torch, tokenize = SemanticSpace.encode, ClipTextSpace.encode_torch, SimpleTokenizer.__call__

    def record(texts):
        rec.texts[rec.phase].extend([texts] if isinstance(texts, str) else [str(t) for t in texts])

    monkeypatch.setattr(SemanticSpace, "encode", lambda self, texts: (record(texts), encode(self, texts))[1])
    monkeypatch.setattr(ClipTextSpace, "encode_torch",
                        lambda self, texts: (record(texts), encode_torch(self, texts))[1])
    monkeypatch.setattr(SimpleTokenizer, "__call__",
                        lambda self, texts, *a, **k: (record(texts), tokenize(self, texts, *a, **k))[1])
    return rec


@pytest.fixture(scope="module")
def split_data(tiny_bench):
    source = load_embedded_source(tiny_bench)
    original = {r.video_id: r.label for r in source.videos.records}
    return source, build_split_data(source, SPLIT, val_fraction=0.2, seed=0), original


@pytest.mark.parametrize("name", sorted(ZERO_SHOT))
def test_no_unseen_text_or_video_reaches_fit_but_does_reach_predict(name, split_data, recorder, tmp_path):
    source, data, original = split_data
    make = default_dataset_factory("zsar-ViT-T-16-64", FRAMES, seed=0)
    wrap = lambda vl, role: RecordingDataset(make(vl, role), recorder, original)  # noqa: E731
    method = make_method(name, **COMMON, **ZERO_SHOT[name])
    method.fit(wrap(data.train, "train"), data.seen_texts, tmp_path, val_dataset=wrap(data.val, "val"))

    fit_texts = method.encoded_texts()
    assert not find_leaks(fit_texts, data.seen_texts, data.unseen_texts)
    assert not find_leaks(recorder.texts["fit"], data.seen_texts, data.unseen_texts)
    assert set(recorder.classes["fit"]) <= set(SPLIT.seen)
    assert set(recorder.labels["fit"]) <= set(range(len(SPLIT.seen)))
    if name != "frame_average":  # the untrained baseline reads neither videos nor texts to "fit"
        assert recorder.classes["fit"] and recorder.texts["fit"]

    recorder.phase = "predict"
    method.predict_scores(wrap(data.unseen_test, "unseen_test"), data.unseen_texts, data.seen_texts)
    assert set(recorder.classes["predict"]) == set(SPLIT.unseen)
    assert find_leaks(recorder.texts["predict"], data.seen_texts, data.unseen_texts)
    assert find_leaks(method.encoded_texts(), data.seen_texts, data.unseen_texts)


def test_forbidden_strings_skip_shared_units_and_catch_templated_names():
    seen = ClassTexts(("sit down",), ("A person sits down on a chair.",), ({"objects": ("chair",)},))
    unseen = ClassTexts(("stand up",), ("A person rises from a chair.",), ({"objects": ("chair",),
                                                                          "motions": ("rise",)},))
    forbidden = forbidden_strings(seen, unseen)
    assert "chair" not in forbidden and {"stand up", "rise", "A person rises from a chair."} <= forbidden
    assert find_leaks(["a video of a person stand up.", "sit down"], seen, unseen) == ["a video of a person stand up."]
    assert find_leaks(["a video of a person sit down.", "chair"], seen, unseen) == []


def test_split_data_keeps_unseen_and_test_videos_out_of_training(split_data):
    source, data, original = split_data
    train_ids = {r.video_id for r in data.train.records} | {r.video_id for r in data.val.records}
    assert {original[i] for i in train_ids} <= set(SPLIT.seen)
    assert not train_ids & source.test_ids  # GZSL: seen test-list videos are held out
    assert {original[r.video_id] for r in data.unseen_test.records} == set(SPLIT.unseen)
    gzsl_ids = {r.video_id for r in data.gzsl_test.records}
    assert not gzsl_ids & train_ids
    assert np.array_equal(np.unique(data.gzsl_test.labels), np.arange(12))
    ceiling = build_split_data(source, SPLIT, zero_shot=False, gzsl=True, val_fraction=0.2, seed=0)
    ceiling_ids = {r.video_id for r in ceiling.train.records} | {r.video_id for r in ceiling.val.records}
    assert not ceiling_ids & source.test_ids
    assert {r.video_id for r in ceiling.unseen_test.records} <= source.test_ids


class LeakyMethod(FrameAverage):
    """A broken method that peeks at an unseen class name while fitting."""

    name = "leaky"
    leak = ""

    def fit(self, train_dataset, seen_texts, run_dir, val_dataset=None):
        super().fit(train_dataset, seen_texts, run_dir, val_dataset)
        self.text_space_.encode([LeakyMethod.leak])
        return self


def test_run_split_raises_on_a_leaking_method(split_data, monkeypatch, tmp_path):
    source, data, _ = split_data
    monkeypatch.setitem(METHODS, "leaky", LeakyMethod)
    monkeypatch.setattr(LeakyMethod, "leak", data.unseen_texts.names[0])
    with pytest.raises(LeakageError, match="unseen"):
        run_split("leaky", dict(frames=FRAMES, progress=False), source, SPLIT, tmp_path, gzsl=False)
