"""zsar.models: registry, offline pretrained handling, video/text encoders, prompts, zero-shot head.

CPU only, seeded, small inputs; the tiny ``zsar-ViT-T-16-64`` model stands in for CLIP (no
pretrained weights can be downloaded here). Zero-shot weights are checked against a hand
computation and against ``open_clip.build_zero_shot_classifier``.
"""

import json
import time

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

import zsar.models as zm
from zsar.models import pretrained as pretrained_mod
from zsar.seed import seed_everything
from zsar.methods.base import make_text_space
from zsar.text.semantic import get_semantic_space

TINY = "zsar-ViT-T-16-64"
TAG_MODEL, TAG = "ViT-B-32", "laion2b_s34b_b79k"  # a real open_clip tag that is not cached here


@pytest.fixture(scope="module")
def tiny():
    seed_everything(0)
    return zm.create_model(TINY)


@pytest.fixture(scope="module")
def tokenizer():
    return zm.get_tokenizer(TINY)


@pytest.fixture(scope="module")
def video():
    return torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def outputs(model, tokens, images):
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


# ---------------------------------------------------------------- registry
def test_registry_lists_project_and_open_clip_configs():
    ours = zm.list_project_models()
    assert {TINY, "zsar-ViT-T-16-112", "zsar-ViT-S-16"} <= set(ours)
    assert set(ours) <= set(zm.list_models()) and "ViT-B-16" in zm.list_models()
    cfg = open_clip.get_model_config(TINY)  # visible to open_clip (and zsar.data.transforms)
    assert cfg["vision_cfg"]["image_size"] == 64 and cfg["vision_cfg"]["width"] == 192


def test_bad_project_configs_are_all_reported(tmp_path):
    (tmp_path / "zsar-broken.json").write_text(json.dumps({"embed_dim": 8, "vision_cfg": {}}))
    (tmp_path / "ViT-shadow.json").write_text(json.dumps({"embed_dim": 8, "vision_cfg": {}, "text_cfg": {}}))
    with pytest.raises(zm.ModelConfigError, match=r"(?s)ViT-shadow\.json.*zsar-broken\.json.*text_cfg"):
        zm.register_model_configs(tmp_path)


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(zm.UnknownModelError, match=r"'zsar-ViT-T-16-6'.*zsar-ViT-T-16-64"):
        zm.create_model("zsar-ViT-T-16-6")


def test_tiny_model_runs_both_towers(tiny, tokenizer):
    tokens = tokenizer(["a video of a person running.", "jumping", "swimming"])
    assert tokens.shape == (3, 32)
    image_feats, text_feats = outputs(tiny, tokens, torch.zeros(2, 3, 64, 64))
    assert image_feats.shape == (2, 192) and text_feats.shape == (3, 192)
    assert not tiny.training


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("layout", ["save_checkpoint", "raw_state_dict", "safetensors"])
def test_local_checkpoint_round_trip_is_exact(tiny, tokenizer, tmp_path, layout):
    path = tmp_path / ("ckpt.safetensors" if layout == "safetensors" else "ckpt.pt")
    if layout == "raw_state_dict":
        torch.save(tiny.state_dict(), path)
    else:
        zm.save_checkpoint(tiny, path)
    reloaded = zm.create_model(TINY, pretrained=str(path))
    tokens, images = tokenizer(["a person dancing"]), torch.randn(2, 3, 64, 64)
    for a, b in zip(outputs(tiny, tokens, images), outputs(reloaded, tokens, images)):
        assert torch.equal(a, b)


def test_ddp_prefixed_checkpoint_under_model_key_loads(tiny, tokenizer, tmp_path):
    path = tmp_path / "ddp.pt"
    torch.save({"model": {f"module.{k}": v for k, v in tiny.state_dict().items()}, "epoch": 3}, path)
    reloaded = zm.create_model(TINY, pretrained=path)
    tokens, images = tokenizer(["a person dancing"]), torch.randn(1, 3, 64, 64)
    for a, b in zip(outputs(tiny, tokens, images), outputs(reloaded, tokens, images)):
        assert torch.equal(a, b)


def test_checkpoint_of_another_architecture_names_the_file(tiny, tmp_path):
    path = zm.save_checkpoint(tiny, tmp_path / "tiny.pt")
    with pytest.raises(zm.CheckpointFormatError, match="tiny.pt"):
        zm.create_model("zsar-ViT-S-16", pretrained=path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        zm.create_model(TINY, pretrained=str(tmp_path / "missing.pt"))


def test_image_size_override_interpolates_positional_embedding(tiny, tmp_path):
    path = zm.save_checkpoint(tiny, tmp_path / "tiny.pt")
    bigger = zm.create_model(TINY, pretrained=path, image_size=96)
    assert bigger.visual.positional_embedding.shape == (6 * 6 + 1, 192)
    with torch.no_grad():
        assert bigger.encode_image(torch.zeros(1, 3, 96, 96)).shape == (1, 192)


# ---------------------------------------------------------------- pretrained tags, offline
def _forbid_download(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(open_clip, "download_pretrained", fail)


def test_tag_with_offline_flag_fails_fast_with_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _forbid_download(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(zm.PretrainedUnavailableError) as info:
        zm.create_model(TAG_MODEL, pretrained=TAG, cache_dir=tmp_path)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    for part in (TAG_MODEL, TAG, "HF_HUB_OFFLINE", "pretrained='/path/to/ckpt.pt'"):
        assert part in message
    assert (info.value.model_name, info.value.tag) == (TAG_MODEL, TAG)


def test_tag_with_hanging_network_fails_within_probe_timeout(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ZSAR_OFFLINE", raising=False)
    _forbid_download(monkeypatch)

    def hang(host, port, timeout):  # a DNS lookup that never returns in time
        time.sleep(6)
        return True
    monkeypatch.setattr(pretrained_mod, "_connect", hang)
    start = time.perf_counter()
    with pytest.raises(zm.PretrainedUnavailableError, match="unreachable"):
        zm.create_model(TAG_MODEL, pretrained=TAG, cache_dir=tmp_path)
    assert time.perf_counter() - start < pretrained_mod.PROBE_TIMEOUT_S + 3


def test_unknown_tag_fails_fast():
    start = time.perf_counter()
    with pytest.raises(zm.UnknownPretrainedTagError, match=r"'no-such-tag'.*'zsar-ViT-T-16-64'"):
        zm.create_model(TINY, pretrained="no-such-tag")
    assert time.perf_counter() - start < 10
    assert issubclass(zm.UnknownPretrainedTagError, ValueError)


def test_cached_tag_files_are_found_without_network(tmp_path):
    url_file = tmp_path / "clip" / "weights.pt"
    url_file.parent.mkdir()
    url_file.write_bytes(b"x")
    cfg = {"url": "https://example.org/a/weights.pt", "hf_hub": ""}
    assert pretrained_mod.cached_pretrained_file(cfg, tmp_path / "clip") == url_file
    # Hugging Face cache layout: models--org--repo/{refs/main, snapshots/<rev>/<file>}
    repo = tmp_path / "hub" / "models--org--repo"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "open_clip_model.safetensors").write_bytes(b"x")
    found = pretrained_mod.cached_pretrained_file({"hf_hub": "org/repo/open_clip_model.safetensors"},
                                                  tmp_path / "hub")
    assert found is not None and found.name == "open_clip_model.safetensors"
    assert pretrained_mod.cached_pretrained_file({"hf_hub": "org/other/"}, tmp_path / "hub") is None


# ---------------------------------------------------------------- video encoder
def test_encode_video_and_frame_average(tiny, video):
    with torch.no_grad():
        feats = zm.encode_video(tiny, video)
        chunked = zm.encode_video(tiny, video, frames_per_batch=4)
        direct = tiny.encode_image(video[1, 2][None], normalize=True)[0]
    assert feats.shape == (2, 3, 192)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(2, 3))
    torch.testing.assert_close(chunked, feats)
    torch.testing.assert_close(feats[1, 2], direct, atol=1e-5, rtol=1e-5)
    pooled = zm.frame_average(feats)
    assert pooled.shape == (2, 192)
    torch.testing.assert_close(pooled, F.normalize(feats.mean(1), dim=-1))
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(zm.frame_average(feats, mask)[0], F.normalize(feats[0, :2].mean(0), dim=0))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        zm.encode_video(tiny, video[0])


def test_frame_encoder_tokens_match_open_clip_output_tokens(tiny, video):
    encoder = zm.FrameEncoder(tiny)
    feats, tokens = encoder(video, return_tokens=True)
    assert tokens.shape == (2, 3, 4 * 4, 192) and feats.shape == (2, 3, 192)
    assert encoder.grid_size == (4, 4) and encoder.token_dim == 192 and encoder.output_dim == 192
    tiny.visual.output_tokens = True  # open_clip's own token path, as reference
    try:
        with torch.no_grad():
            ref_pooled, ref_tokens = tiny.visual(video.flatten(0, 1))
    finally:
        tiny.visual.output_tokens = False
    torch.testing.assert_close(tokens.detach(), ref_tokens.reshape(2, 3, 16, 192))
    torch.testing.assert_close(feats.detach(), ref_pooled.reshape(2, 3, 192))
    (feats.sum() + tokens.sum()).backward()  # trainable: gradients reach the patch embedding
    assert tiny.visual.conv1.weight.grad is not None
    tiny.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- prompts
def test_templates_and_build_prompts():
    assert len(zm.get_templates("clip_kinetics700")) == 28 and len(zm.get_templates("clip_ucf101")) == 48
    assert zm.get_templates() == ["a video of a person {}."]
    prompts = zm.build_prompts(["run", "jump"], ["a photo of {}.", "a video of {}."], {"jump": "leaving the ground"})
    assert prompts == [["a photo of run.", "a video of run."],
                       ["a photo of jump.", "a video of jump.", "leaving the ground"]]
    with pytest.raises(ValueError, match="placeholder"):
        zm.build_prompts(["run"], ["no placeholder"])
    with pytest.raises(ValueError, match="not class names"):
        zm.build_prompts(["run"], "photo", {"Run": "x"})
    with pytest.raises(KeyError, match="clip_ucf101"):
        zm.get_templates("nope")
    assert zm.readable_class_name("ApplyEyeMakeup") == "apply eye makeup"


@pytest.mark.parametrize("name, readable", [
    ("WalkADog", "walk a dog"), ("TakeAShower", "take a shower"), ("BMXRiding", "bmx riding"),
    ("PlayingTV", "playing tv"), ("YoYo", "yo yo"), ("walk_a_dog", "walk a dog"), ("doing a 360", "doing a 360"),
])
def test_readable_class_name_keeps_single_letter_words_and_acronyms(name, readable):
    assert zm.readable_class_name(name) == readable


def test_load_descriptions_layouts(tmp_path):
    by_name = tmp_path / "a.json"
    by_name.write_text(json.dumps({"Run": ["legs move", "fast"], "Jump": "up"}))
    assert zm.load_descriptions(by_name) == {"Run": ["legs move", "fast"], "Jump": ["up"]}
    by_index = tmp_path / "b.json"
    by_index.write_text(json.dumps({"0": ["legs"], "1": "up"}))
    assert zm.load_descriptions(by_index, ["Run", "Jump"]) == {"Run": ["legs"], "Jump": ["up"]}
    with pytest.raises(ValueError, match="class_names"):
        zm.load_descriptions(by_index)
    defs = tmp_path / "c.json"
    defs.write_text(json.dumps([{"word": "run", "defn": "move fast"}, {"word": "jump", "defn": "go up"}]))
    assert zm.load_descriptions(defs, ["Run", "Jump"]) == {"Run": ["move fast"], "Jump": ["go up"]}


# ---------------------------------------------------------------- zero-shot head
def test_zero_shot_classifier_is_template_average(tiny, tokenizer):
    classes, templates = ["running", "jumping", "swimming"], ["a photo of {}.", "a video of a person {}."]
    clf = zm.build_zero_shot_classifier(tiny, tokenizer, classes, templates)
    assert clf.shape == (192, 3)
    torch.testing.assert_close(clf.norm(dim=0), torch.ones(3))
    with torch.no_grad():
        for c, name in enumerate(classes):
            emb = F.normalize(tiny.encode_text(tokenizer([t.format(name) for t in templates])), dim=-1)
            torch.testing.assert_close(clf[:, c], F.normalize(emb.mean(0), dim=0))
    reference = open_clip.build_zero_shot_classifier(tiny, tokenizer, classes, templates, num_classes_per_batch=2)
    torch.testing.assert_close(clf, reference)


def test_zero_shot_classifier_with_descriptions_and_logits(tiny, tokenizer):
    clf = zm.build_zero_shot_classifier(tiny, tokenizer, ["run", "jump"], ["{}"], {"jump": ["hop", "leap"]})
    with torch.no_grad():
        emb = F.normalize(tiny.encode_text(tokenizer(["jump", "hop", "leap"])), dim=-1)
    torch.testing.assert_close(clf[:, 1], F.normalize(emb.mean(0), dim=0))
    feats = torch.randn(4, 192, generator=torch.Generator().manual_seed(2))
    logits = zm.zero_shot_logits(feats, clf, logit_scale=50.0)
    assert logits.shape == (4, 2)
    torch.testing.assert_close(logits, 50.0 * F.normalize(feats, dim=-1) @ clf)
    with pytest.raises(ValueError, match=r"\(D, C\)"):
        zm.zero_shot_logits(feats, clf.T)


# ---------------------------------------------------------------- text space
def test_clip_text_space_records_texts_and_matches_classifier(tiny, tokenizer):
    templates = ["a photo of {}.", "a video of a person {}."]
    space = make_text_space("clip", model=tiny, tokenizer=tokenizer, templates=templates)
    assert isinstance(space, zm.ClipTextSpace) and space.dim == 192
    with pytest.raises(ValueError, match="pass the model"):
        make_text_space("clip")
    assert make_text_space("glove").name == "glove"
    # the text layer knows only the offline spaces: the CLIP tower is a model's
    with pytest.raises(ValueError, match="unknown semantic space 'clip'"):
        get_semantic_space("clip")
    vecs = space.encode(["running", "jumping"])
    assert vecs.dtype == np.float32 and vecs.shape == (2, 192)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert space.encoded_texts == ["running", "jumping"]
    clf = zm.build_zero_shot_classifier(tiny, tokenizer, ["running", "jumping"], templates)
    np.testing.assert_allclose(vecs, clf.T.numpy(), atol=1e-5)
    # a space as the text side of the classifier: the leakage guard sees the filled prompts
    plain = zm.ClipTextSpace(tiny, tokenizer)
    zm.build_zero_shot_classifier(plain, None, ["swimming"], "photo")
    assert plain.encoded_texts == ["a photo of swimming."]


def test_clip_text_space_gradients_only_when_trainable(tiny, tokenizer):
    frozen = zm.ClipTextSpace(tiny, tokenizer)
    assert not frozen.encode_torch(["run"]).requires_grad
    trainable = zm.ClipTextSpace(tiny, tokenizer, trainable=True)
    out = trainable.encode_torch(["run", "jump"])
    assert out.requires_grad and trainable.encoded_texts == ["run", "jump"]
    out.sum().backward()
    assert tiny.token_embedding.weight.grad is not None
    tiny.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- transforms, golden output
def test_create_model_and_transforms_feeds_the_model(make_frames):
    model, train_tf, eval_tf = zm.create_model_and_transforms(TINY)
    frames = make_frames(4, 48, 64)
    clip = eval_tf(frames)
    assert clip.shape == (4, 3, 64, 64) and train_tf(frames, rng=np.random.default_rng(0)).shape == (4, 3, 64, 64)
    with torch.no_grad():
        assert zm.encode_video(model, clip[None]).shape == (1, 4, 192)
    _, _, eval96 = zm.create_model_and_transforms(TINY, image_size=96)
    assert eval96(frames).shape == (4, 3, 96, 96)


GOLDEN_LOGITS = [0.99862, 1.11820, 1.45442]  # torch 2.14.1, open_clip 3.3.0, CPU fp32


def test_golden_logits_of_seeded_tiny_model(tokenizer):
    """Fixed seed -> fixed weights -> fixed logits (catches silent changes to init or forward)."""
    seed_everything(0)
    model = zm.create_model(TINY)
    image = torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
    tokens = tokenizer(["a video of a person running.", "a video of a person jumping.", "swimming"])
    with torch.no_grad():
        logits, _ = model.get_logits(image, tokens)
    torch.testing.assert_close(logits[0], torch.tensor(GOLDEN_LOGITS), atol=1e-4, rtol=1e-4)
