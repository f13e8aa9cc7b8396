"""Motion prompts (method C, zsar.methods.motion_prompts): prompted text encoder, blocks, fit/predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.tokenizer import SimpleTokenizer

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.sources import load_embedded_source
from zsar.experiments.split_data import build_split_data, default_dataset_factory
from zsar.methods import find_leaks
from zsar.methods.motion_prompts import MotionPrompts, MotionPromptsModule, encode_prompted_text
from zsar.models import count_parameters, create_model, get_tokenizer

torch.set_num_threads(1)  # the machine is shared; small models gain nothing from threads

FRAMES = 4
SPLIT = ZeroShotSplit(seen=(0, 2, 4, 6, 8, 10), unseen=(1, 3, 5, 7, 9, 11), name="odd_unseen")
TINY = dict(frames=FRAMES, epochs=1, batch_size=6, progress=False, resume=False, width=32, heads=2,
            prompt_hidden=16, device="cpu")
TEXTS = ["kick a ball.", "a person walks backward slowly across a long empty room.", "clap"]


@pytest.fixture(scope="module")
def data(tiny_bench):
    source = load_embedded_source(tiny_bench)
    return build_split_data(source, SPLIT, zero_shot=True, gzsl=False, val_fraction=0.2, seed=0)


def _datasets(data, backbone="zsar-ViT-T-16-64"):
    make = default_dataset_factory(backbone, FRAMES, seed=0)
    return make(data.train, "train"), make(data.val, "val"), make(data.unseen_test, "unseen_test")


def _model(name="zsar-ViT-T-16-64"):
    torch.manual_seed(0)
    return create_model(name, None).eval(), get_tokenizer(name)


def _full_length_reference(model, prompts, tokens):
    """Naive prompted encoder: full context, no trimming, one text and one group at a time."""
    p = prompts.shape[1]
    out = torch.empty(prompts.shape[0], len(tokens), model.text_projection.shape[1])
    for g in range(prompts.shape[0]):
        for c in range(len(tokens)):
            emb = model.token_embedding(tokens[c])                          # (L0, W)
            x = torch.cat([emb[:1], prompts[g], emb[1:]])[None] + model.positional_embedding
            x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask))
            out[g, c] = F.normalize(x[0, int(tokens[c].argmax()) + p] @ model.text_projection, dim=-1)
    return out


@pytest.mark.parametrize("name", ["zsar-ViT-T-16-64", "zsar-RN-T-64"])
def test_prompted_encoder_without_prompts_is_open_clip_encode_text(name):
    model, tokenizer = _model(name)
    tokens = tokenizer(TEXTS)
    with torch.no_grad():
        ours = encode_prompted_text(model, torch.zeros(1, 0, model.token_embedding.embedding_dim), tokens)
        ref = F.normalize(model.encode_text(tokens), dim=-1)
    assert ours.shape == (1, len(TEXTS), ref.shape[1])
    torch.testing.assert_close(ours[0], ref, atol=1e-5, rtol=1e-5)


def test_prompted_encoder_matches_full_length_reference_and_is_differentiable():
    model, tokenizer = _model()
    p, width = 3, model.token_embedding.embedding_dim
    tokens = tokenizer(TEXTS, context_length=model.context_length - p)
    prompts = (torch.randn(2, p, width, generator=torch.Generator().manual_seed(1)) * 0.05).requires_grad_()
    ours = encode_prompted_text(model, prompts, tokens)
    with torch.no_grad():
        ref = _full_length_reference(model, prompts, tokens)
    torch.testing.assert_close(ours.detach(), ref, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours[0], ours[1])  # each group's prompts change its text features
    ours.sum().backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0


def _module(**switches):
    model, _ = _model()
    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(0)
    return MotionPromptsModule(model, n_prompts=2, width=32, heads=2, prompt_hidden=16, **switches).eval()


def _video_and_tokens():
    video = torch.randn(2, FRAMES, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    tokens = get_tokenizer("zsar-ViT-T-16-64")(TEXTS, context_length=30)
    return video, tokens


def test_motion_stream_makes_scores_order_aware():
    video, tokens = _video_and_tokens()
    with torch.no_grad():
        full, spatial = _module(), _module(use_motion_stream=False)
        forward, backward = full(video, tokens), full(video.flip(1), tokens)
        assert forward.shape == (2, len(TEXTS)) and torch.isfinite(forward).all()
        assert not torch.allclose(forward, backward, atol=1e-4)
        # the spatial stream, prompts and communication alone treat the frames as a set
        torch.testing.assert_close(spatial(video, tokens), spatial(video.flip(1), tokens), atol=1e-5, rtol=1e-5)


def test_dynamic_prompts_give_each_video_its_own_class_features():
    video, tokens = _video_and_tokens()
    with torch.no_grad():
        dynamic, static = _module(), _module(dynamic_prompts=False)
        _, cue = dynamic.video_tokens(video)
        per_video = dynamic.class_features(tokens, cue)
        shared = static.class_features(tokens, static.video_tokens(video)[1])
    assert per_video.shape == (2, len(TEXTS), 192) and shared.shape == (1, len(TEXTS), 192)
    assert not torch.allclose(per_video[0], per_video[1], atol=1e-6)
    np.testing.assert_allclose(per_video.norm(dim=-1).numpy(), 1.0, atol=1e-5)


def test_frozen_resnet_keeps_its_batchnorm_statistics_in_training_mode():
    model, tokenizer = _model("zsar-RN-T-64")
    for p in model.parameters():
        p.requires_grad_(False)
    module = MotionPromptsModule(model, n_prompts=2, width=32, heads=2, prompt_hidden=16).train()
    assert module.motion.training and not module.model.training
    before = {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}
    video, _ = _video_and_tokens()
    module(video, tokenizer(TEXTS, context_length=30)).sum().backward()
    assert before and all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert module.prompts.context.grad is not None and module.prompts.context.grad.abs().sum() > 0


def test_each_ablation_switch_removes_its_component():
    full = count_parameters(_module(), trainable_only=True)
    counts = {k: count_parameters(_module(**{k: False}), trainable_only=True)
              for k in ("use_motion_stream", "dynamic_prompts", "use_communication")}
    assert all(0 < c < full for c in counts.values()), counts
    assert _module(use_communication=False).communication is None
    assert not hasattr(_module(dynamic_prompts=False).prompts, "meta_net")
    assert not hasattr(_module(use_motion_stream=False).motion, "temporal_conv")


def test_fit_predict_frozen_backbone_and_no_leak(data, tmp_path, monkeypatch):
    tokenized = []
    original = SimpleTokenizer.__call__
    monkeypatch.setattr(SimpleTokenizer, "__call__",
                        lambda self, texts, *a, **k: (tokenized.extend(texts), original(self, texts, *a, **k))[1])
    train, val, test = _datasets(data)
    method = MotionPrompts(text_kind="name+description", seed=0, freeze_backbone=True, **TINY)
    method.fit(train, data.seen_texts, tmp_path, val_dataset=val)
    fit_texts = method.encoded_texts()
    assert set(data.seen_texts.texts("name+description")) <= set(fit_texts)
    assert not find_leaks(fit_texts, data.seen_texts, data.unseen_texts)
    assert tokenized and not find_leaks(tokenized, data.seen_texts, data.unseen_texts)
    # only the three blocks (and a logit scale) train: a small share of the model
    assert not any(p.requires_grad for p in method.module_.model.parameters())
    assert 0 < method.trainable_parameters() < 0.05 * method.total_parameters_
    scores = method.predict_scores(test, data.unseen_texts)
    assert scores.shape == (len(test), len(data.unseen_texts)) and np.isfinite(scores).all()
    assert find_leaks(method.encoded_texts(), data.seen_texts, data.unseen_texts)  # the guard can fail
    emb, protos = method.video_embeddings(test), method.class_prototypes(data.unseen_texts)
    assert emb.shape == (len(test), 192) and protos.shape == (len(data.unseen_texts), 192)
    np.testing.assert_allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-5)


def test_backbone_frozen_by_default_only_with_pretrained_weights(tmp_path):
    """``freeze_backbone=None``: a random-init CLIP trains, a pretrained one (local file) stays frozen."""
    from zsar.models import save_checkpoint

    checkpoint = save_checkpoint(_model(MotionPrompts().backbone)[0], tmp_path / "clip.pt")
    cases = {None: (None, False), str(checkpoint): (None, True), "explicit": (False, False)}
    for pretrained, (freeze, frozen) in cases.items():
        method = MotionPrompts(pretrained=None if pretrained in (None, "explicit") else pretrained,
                               freeze_backbone=freeze, **TINY)
        method._check_params()
        method.device_ = torch.device("cpu")
        method.spaces_ = []
        module = method._build_module(None)
        assert method.backbone_frozen_ is frozen
        assert all(p.requires_grad is not frozen for n, p in module.model.named_parameters() if n != "logit_scale")
    with pytest.raises(ValueError, match="freeze_backbone"):
        MotionPrompts(freeze_backbone="yes")._check_params()


def test_resnet_backbone_unfrozen_and_static_prompts(data, tmp_path):
    train, _, test = _datasets(data, "zsar-RN-T-64")
    method = MotionPrompts(backbone="zsar-RN-T-64", freeze_backbone=False, dynamic_prompts=False,
                           use_communication=False, **TINY)
    method.fit(train, data.seen_texts, tmp_path)
    assert method.trainable_parameters() > 0.9 * method.total_parameters_
    scores = method.predict_scores(test, data.unseen_texts)
    assert scores.shape == (len(test), len(data.unseen_texts)) and np.isfinite(scores).all()
    # without per-video prompts or communication the scores factor into embeddings x prototypes
    cos = method.video_embeddings(test) @ method.class_prototypes(data.unseen_texts).T
    scale = float(method.module_.logit_scale.detach().exp())
    np.testing.assert_allclose(scores, scale * cos, atol=1e-4)


def test_params_round_trip_and_bad_values(tmp_path):
    method = MotionPrompts(**TINY)
    assert MotionPrompts(**method.get_params()).get_params() == method.get_params()
    for bad in (dict(kernel_size=2), dict(class_template="no placeholder"), dict(n_prompts=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MotionPrompts(**{**TINY, **bad}).fit(None, None, tmp_path)
    with pytest.raises(ValueError, match="n_prompts=40"):
        MotionPrompts(**{**TINY, "n_prompts": 40}).fit([0], None, tmp_path)


def test_prompted_encoder_on_the_minilm_tower():
    """A Hugging Face text tower: no prompts is its encode_text; prompts are attended and learnable."""
    from zsar.methods.motion_prompts import context_length, token_embedding

    name = "zsar-ViT-T-16-64-minilm"
    model, tokenizer = create_model(name, None), get_tokenizer(name)
    width = token_embedding(model).embedding_dim
    tokens = tokenizer(TEXTS)
    with torch.no_grad():
        ours = encode_prompted_text(model, torch.zeros(1, 0, width), tokens)
        ref = F.normalize(model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(ours[0], ref, atol=1e-5, rtol=1e-5)
    p = 3
    short = tokenizer(TEXTS, context_length=context_length(model, tokenizer) - p)
    prompts = (torch.randn(2, p, width, generator=torch.Generator().manual_seed(1)) * 0.05).requires_grad_()
    feats = encode_prompted_text(model, prompts, short)
    assert feats.shape == (2, len(TEXTS), ref.shape[1]) and not torch.allclose(feats[0], feats[1])
    feats.sum().backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0


def test_the_table_name_says_which_prompts_ran():
    from zsar.methods import make_method

    assert "dynamic prompts" in make_method("motion_prompts").display_name
    assert "static prompts" in make_method("motion_prompts", dynamic_prompts=False).display_name
