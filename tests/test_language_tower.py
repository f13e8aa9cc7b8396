"""A pretrained language tower inside open_clip, offline: the bundled all-MiniLM-L6-v2 as a text tower."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import torch

import zsar.models as zm
from zsar.models.language import LOCAL_PREFIX, local_text_tower, resolve_text_cfg
from zsar.text.semantic import MiniLMSpace

torch.set_num_threads(1)

MODEL = "zsar-ViT-T-16-64-minilm"


@pytest.fixture(scope="module")
def model():
    return zm.create_model(MODEL, pretrained=None)


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection fails, as it would on a machine without network."""
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_minilm_configs_are_registered_and_resolve_to_the_wheel():
    names = [m for m in zm.list_models() if m.endswith("-minilm")]
    assert {"zsar-ViT-T-16-64-minilm", "zsar-ViT-T-16-112-minilm", "zsar-ViT-S-16-minilm"} <= set(names)
    folder = local_text_tower("all-MiniLM-L6-v2")
    assert (folder / "model.safetensors").is_file()
    for name in names:
        cfg = zm.get_model_config(name)
        assert cfg["text_cfg"]["hf_model_name"] == cfg["text_cfg"]["hf_tokenizer_name"] == str(folder)
        assert cfg["vision_cfg"]["image_size"] in (64, 112, 128)
    assert resolve_text_cfg({"hf_model_name": LOCAL_PREFIX + "all-MiniLM-L6-v2"})["hf_model_name"] == str(folder)
    with pytest.raises(KeyError, match="unknown local text tower"):
        local_text_tower("bert-huge")


def test_text_tower_weights_equal_the_wheels(model):
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(str(local_text_tower("all-MiniLM-L6-v2"))).state_dict()
    # BERT's own pooler (a dense layer over [CLS]) is not part of the sentence model: it mean-pools
    reference = {k: v for k, v in reference.items() if not k.startswith("pooler.")}
    ours = model.text.transformer.state_dict()
    assert set(reference) == set(ours) and len(reference) > 50
    for name, value in reference.items():
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)


def test_builds_and_encodes_with_the_network_blocked(no_network):
    start = time.perf_counter()
    model = zm.create_model(MODEL, pretrained=None)
    tokenizer = zm.get_tokenizer(MODEL)
    tokens = tokenizer(["a person waves a hand", "a person jumps"])
    assert tokens.shape == (2, zm.get_model_config(MODEL)["text_cfg"]["context_length"])
    with torch.no_grad():
        feats = model.encode_text(tokens, normalize=True)
    assert feats.shape == (2, zm.get_model_config(MODEL)["embed_dim"]) and torch.isfinite(feats).all()
    assert time.perf_counter() - start < 60


def test_the_pooled_tower_output_is_the_minilm_sentence_embedding(model):
    """Before its (learned) projection the tower gives all-MiniLM-L6-v2's own sentence embeddings."""
    texts = ["a person claps their hands", "someone rides a bicycle in the street"]
    tokens = zm.get_tokenizer(MODEL)(texts)
    with torch.no_grad():
        out = model.text.transformer(input_ids=tokens, attention_mask=(tokens != model.text.config.pad_token_id).long())
        pooled = model.text.pooler(out, (tokens != model.text.config.pad_token_id).long())
    ours = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    np.testing.assert_allclose(ours, MiniLMSpace().encode(texts), atol=1e-5)


def test_lock_text_freezes_the_tower_and_the_default_trains_it(model):
    trainable = [n for n, p in model.named_parameters() if n.startswith("text.") and p.requires_grad]
    assert trainable, "by default the text tower is fine-tuned with the rest"
    locked = zm.create_model(MODEL, pretrained=None, lock_text=True)
    # open_clip's lock_text_tower: the pretrained transformer is frozen, its projection still learns
    assert not [n for n, p in locked.named_parameters() if n.startswith("text.transformer.") and p.requires_grad]
    assert all(p.requires_grad for n, p in locked.named_parameters() if n.startswith("text.proj"))
    assert all(p.requires_grad for n, p in locked.named_parameters() if n.startswith("visual."))


def test_clip_text_space_and_a_saved_checkpoint_round_trip(model, tmp_path):
    space = zm.ClipTextSpace(model, zm.get_tokenizer(MODEL), templates=["a video of a person {}."])
    vecs = space.encode(["running", "jumping"])
    assert vecs.shape == (2, zm.text_embed_dim(model)) and space.encoded_texts == ["running", "jumping"]
    path = zm.save_checkpoint(model, tmp_path / "m.pt")
    again = zm.create_model(MODEL, pretrained=str(path))
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("name, kwargs", [("frame_average", {}), ("actionclip", dict(epochs=1, lr=1e-4))])
def test_methods_run_on_the_minilm_backbone(tiny_bench, tmp_path, name, kwargs):
    from zsar.data.protocols import ZeroShotSplit
    from zsar.experiments.sources import load_embedded_source
    from zsar.experiments.split_data import build_split_data, default_dataset_factory
    from zsar.methods import make_method

    split = ZeroShotSplit(seen=(0, 2, 4, 6, 8, 10), unseen=(1, 3, 5, 7, 9, 11), name="odd")
    data = build_split_data(load_embedded_source(tiny_bench), split, val_fraction=0.2, seed=0)
    make = default_dataset_factory("zsar-ViT-T-16-64-minilm", 2, seed=0)
    method = make_method(name, backbone="zsar-ViT-T-16-64-minilm", frames=2, batch_size=6, progress=False,
                         resume=False, **kwargs)
    method.fit(make(data.train, "train"), data.seen_texts, tmp_path, val_dataset=make(data.val, "val"))
    scores = method.predict_scores(make(data.unseen_test, "unseen_test"), data.unseen_texts)
    assert scores.shape == (len(data.unseen_test), len(data.unseen_texts)) and np.isfinite(scores).all()
