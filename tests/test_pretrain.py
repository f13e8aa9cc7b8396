"""Contrastive pretraining on the captioned corpus (zsar.experiments.pretrain) and the zsar-world-* tags."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import zsar.models as zm
from zsar.data.embedded.corpus import generate_corpus, load_corpus
from zsar.experiments import pretrain as pretrain_module
from zsar.experiments.pretrain import (
    PRESETS,
    CaptionedClips,
    PretrainConfig,
    parse_world_tag,
    pretrain,
    world_checkpoint,
)

torch.set_num_threads(1)

BACKBONE = "zsar-ViT-T-16-64-minilm"
TINY = PretrainConfig(regime="disjoint", n_clips=24, size=32, duration=1.0, frames=2, epochs=2, batch_size=8,
                      held_out=0.25)


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """World checkpoints and corpora go to this test module's folders, not the project's."""
    root = tmp_path_factory.getbasetemp() / "pretrain_cache"
    monkeypatch.setenv("ZSAR_CACHE", str(root / "cache"))
    monkeypatch.setenv("ZSAR_DATA", str(root / "data"))


def test_world_tags_name_a_regime_and_a_preset():
    assert parse_world_tag("zsar-world-open") == PretrainConfig(regime="open")
    assert parse_world_tag("zsar-world-disjoint-smoke") == PretrainConfig(regime="disjoint", **PRESETS["smoke"])
    for bad in ("zsar-world-web", "zsar-world-open-huge", "openai"):
        with pytest.raises(ValueError, match="regime must be open or disjoint|not a world model tag"):
            parse_world_tag(bad)
    assert world_checkpoint(BACKBONE, TINY) != world_checkpoint(BACKBONE, PretrainConfig(regime="open"))
    assert world_checkpoint(BACKBONE, TINY).name.startswith("zsar-world-disjoint-")


def test_pretraining_writes_an_open_clip_checkpoint_and_its_record(tmp_path):
    out = pretrain(BACKBONE, TINY, tmp_path / "world.pt", device="cpu", progress=False)
    record = json.loads(out.with_suffix(".json").read_text())
    assert len(record["loss"]) == TINY.epochs and all(np.isfinite(record["loss"]))
    assert record["n_train"] == 18 and record["retrieval"]["n"] == 6 and record["retrieval"]["chance_r1"] == 1 / 6
    assert 0 <= record["retrieval"]["r1"] <= record["retrieval"]["r5"] <= 1
    # an open_clip checkpoint: create_model loads it like any local file, strictly
    model = zm.create_model(BACKBONE, pretrained=str(out))
    assert torch.equal(model.logit_scale.detach(), torch.load(out, map_location="cpu")["state_dict"]["logit_scale"])


def test_training_samples_draw_among_a_clips_captions_and_evaluation_takes_the_first(tmp_path):
    clips = load_corpus(generate_corpus(tmp_path / "corpus", TINY.corpus(), workers=1, progress=False))[:4]
    train, evaluation = (CaptionedClips(clips, BACKBONE, 2, train=t) for t in (True, False))
    drawn = []
    for epoch in range(6):
        train.set_epoch(epoch)
        drawn.append([train[i]["caption"] for i in range(len(clips))])
        assert [evaluation[i]["caption"] for i in range(len(clips))] == [c["captions"][0] for c in clips]
    for i, clip in enumerate(clips):
        assert {d[i] for d in drawn} <= set(clip["captions"]) and len({d[i] for d in drawn}) > 1
    assert train[0]["video"].shape == (2, 3, 64, 64)


def test_a_world_tag_resolves_through_create_model_and_is_built_once(monkeypatch):
    model = zm.create_model(BACKBONE, pretrained="zsar-world-disjoint-smoke")
    path = world_checkpoint(BACKBONE, parse_world_tag("zsar-world-disjoint-smoke"))
    assert path.is_file() and json.loads(path.with_suffix(".json").read_text())["config"]["regime"] == "disjoint"

    def refuse(*args, **kwargs):
        raise AssertionError("a cached world model must not be pretrained again")

    monkeypatch.setattr(pretrain_module, "pretrain", refuse)
    again = zm.create_model(BACKBONE, pretrained="zsar-world-disjoint-smoke")
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
