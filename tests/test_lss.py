"""LSS (method D): seen-only concept space, concept losses, EMA teacher, fit/predict, ablations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.sources import load_embedded_source
from zsar.experiments.split_data import build_split_data, default_dataset_factory
from zsar.methods import ClassTexts, find_leaks
from zsar.methods.lss import (
    LSS,
    ConceptVocabulary,
    LSSModule,
    build_concept_vocabulary,
    concept_alignment_loss,
    concept_distillation_loss,
    deduplicate_concepts,
)
from zsar.models import create_model

torch.set_num_threads(1)

FRAMES = 4
SPLIT = ZeroShotSplit(seen=(0, 2, 4, 6, 8, 10), unseen=(1, 3, 5, 7, 9, 11), name="odd_unseen")
TINY = dict(width=32, layers=1, heads=2, frames=FRAMES, epochs=1, batch_size=6, lr=1e-4, progress=False,
            resume=False, concept_templates="clip_ucf101")
TEXTS = ClassTexts(("sit down", "stand up"), ("A person sits down on a chair.", "A person rises from a chair."),
                   ({"objects": ("chair",), "motions": ("sit",)}, {"objects": ("chair",), "motions": ("rise",)}))


@pytest.fixture(scope="module")
def data(tiny_bench):
    source = load_embedded_source(tiny_bench)
    return build_split_data(source, SPLIT, zero_shot=True, gzsl=False, val_fraction=0.2, seed=0)


def _fit(data, run_dir, backbone="zsar-ViT-T-16-64", **kwargs) -> tuple[LSS, object]:
    make = default_dataset_factory(backbone, FRAMES, seed=0)
    method = LSS(backbone=backbone, **{**TINY, **kwargs})
    method.fit(make(data.train, "train"), data.seen_texts, run_dir, val_dataset=make(data.val, "val"))
    return method, make


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    return _fit(data, tmp_path_factory.mktemp("lss"), ema_momentum=0.5)


def test_concept_vocabulary_has_each_class_attributes_and_shares_units():
    vocab = build_concept_vocabulary(TEXTS, ["a video of {}."])
    assert len(set(vocab.concepts)) == len(vocab.concepts) and vocab.class_mask.shape == (2, len(vocab.concepts))
    owned = [{c for c, m in zip(vocab.concepts, row) if m} for row in vocab.class_mask]
    assert {"a video of sit down.", "sit down", "A person sits down on a chair.", "sit", "chair"} <= owned[0]
    assert "chair" in owned[1] and "sit" not in owned[1]  # a shared unit is an attribute of both
    only_units = build_concept_vocabulary(TEXTS, "video", sources=["units"])
    assert set(only_units.concepts) == {"chair", "sit", "rise", "chair, sit", "chair, rise"}
    with pytest.raises(ValueError, match="concept sources"):
        build_concept_vocabulary(TEXTS, "video", sources=["verbs"])
    with pytest.raises(ValueError, match="no concept"):
        build_concept_vocabulary(ClassTexts(("wave",)), "video", sources=["units"])


def test_deduplicate_concepts_drops_twin_vectors_and_merges_their_classes():
    feats = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1e-6]]), dim=-1).numpy()
    vocab = ConceptVocabulary(("a", "b", "a'"), np.array([[1, 1, 0], [0, 0, 1]], dtype=bool))
    kept, out = deduplicate_concepts(feats, vocab, max_cosine=0.9999)
    assert out.concepts == ("a", "b") and kept.shape == (2, 2)
    np.testing.assert_array_equal(out.class_mask, [[True, True], [True, False]])
    _, by_rows = deduplicate_concepts(feats, vocab, max_cosine=0.9999, block=1)
    assert by_rows.concepts == out.concepts and np.array_equal(by_rows.class_mask, out.class_mask)


def test_concept_losses_match_naive_references():
    gen = torch.Generator().manual_seed(0)
    z, y = (F.normalize(torch.randn(3, 8, generator=gen), dim=-1) for _ in range(2))
    concepts = F.normalize(torch.randn(5, 8, generator=gen), dim=-1)
    positives = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    kl = 0.0
    for i in range(3):
        p = torch.softmax(y[i] @ concepts.T / 0.05, 0)
        q = torch.softmax(z[i] @ concepts.T / 0.1, 0)
        kl += float((p * (p.log() - q.log())).sum()) / 3
    assert float(concept_distillation_loss(z, y, concepts, 0.1, 0.05)) == pytest.approx(kl, rel=1e-5)
    assert float(concept_distillation_loss(z, z, concepts, 0.1, 0.1)) == pytest.approx(0.0, abs=1e-6)
    ref = np.mean([-np.mean([float(torch.log_softmax(z[i] @ concepts.T / 0.07, 0)[k])
                             for k in positives[i].nonzero().flatten()]) for i in range(3)])
    assert float(concept_alignment_loss(z, concepts, positives, 0.07)) == pytest.approx(ref, rel=1e-5)


def test_student_starts_as_teacher_and_update_teacher_is_an_ema():
    torch.manual_seed(0)
    model = create_model("zsar-ViT-T-16-64", None)
    module = LSSModule(model, F.normalize(torch.randn(7, 192), dim=-1), torch.ones(2, 7, dtype=torch.bool),
                       F.normalize(torch.randn(2, 192), dim=-1), width=32, heads=2, max_frames=FRAMES).eval()
    video = torch.randn(2, FRAMES, 3, 64, 64)
    with torch.no_grad():  # zero-initialised temporal output: the student is the frame average at first
        torch.testing.assert_close(module.embed_video(video)[0], module.embed_teacher(video), atol=1e-5, rtol=0)
    before = {n: p.detach().clone() for n, p in module.teacher.named_parameters()}
    with torch.no_grad():
        for p in module.encoder.visual.parameters():
            p.add_(torch.randn_like(p))
    module.update_teacher(0.9)
    student = dict(module.encoder.visual.named_parameters())
    for name, p in module.teacher.named_parameters():
        torch.testing.assert_close(p, 0.9 * before[name] + 0.1 * student[name])
    assert not any(p.requires_grad for p in module.teacher.parameters())
    assert not module.train().teacher.training  # the teacher stays in eval mode


def _initial_tower(method: LSS) -> dict[str, torch.Tensor]:
    """The image tower's initial weights: same seed, same backbone, same construction order."""
    from zsar.seed import seed_everything

    seed_everything(method.seed, deterministic=False)
    return {n: p.detach() for n, p in create_model(method.backbone, None).visual.named_parameters()}


def test_fit_predict_shapes_no_leak_and_teacher_between_init_and_student(fitted, data):
    method, make = fitted
    test = make(data.unseen_test, "unseen_test")
    scores = method.predict_scores(test, data.unseen_texts, data.seen_texts)
    assert scores.shape == (len(test), len(data.unseen_texts)) and np.isfinite(scores).all()
    emb, protos = method.video_embeddings(test), method.class_prototypes(data.unseen_texts)
    assert emb.shape == (len(test), 192) and protos.shape == (len(data.unseen_texts), 192)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert method.concept_scores(test).shape == (len(test), len(method.concepts_))
    assert not find_leaks(method.concepts_, data.seen_texts, data.unseen_texts)
    assert method.class_concepts_.any(axis=1).all() and len(method.concepts_) > 6 * 30
    np.testing.assert_allclose(np.linalg.norm(method.concept_features_, axis=1), 1.0, atol=1e-5)
    row = method.history_[-1]
    assert {"train_class_ce", "train_distill", "train_align", "val_top1"} <= set(row)
    assert method.trainable_parameters() > 0 and method.train_time_s_ > 0
    student = dict(method.module_.encoder.visual.named_parameters())
    gaps = [float((p - student[n]).detach().abs().max()) for n, p in method.module_.teacher.named_parameters()]
    assert 0 < max(gaps)  # m = 0.5: the teacher lags behind the student ...
    init = _initial_tower(method)
    assert any(not torch.equal(p.cpu(), init[n]) for n, p in method.module_.teacher.named_parameters())  # ... and moved


def test_ablations_remove_their_component_and_change_the_student(fitted, data, tmp_path):
    full, make = fitted
    ablated, _ = _fit(data, tmp_path, ema_momentum=0.5, use_distillation=False, use_alignment=False)
    assert ablated.module_.teacher is None and full.module_.teacher is not None
    assert {"train_distill", "train_align"}.isdisjoint(ablated.history_[-1])
    total = lambda m: sum(p.numel() for p in m.module_.parameters())  # noqa: E731
    assert total(full) - total(ablated) == sum(p.numel() for p in full.module_.teacher.parameters())
    assert ablated.trainable_parameters() == full.trainable_parameters()  # the teacher is never trained
    test = make(data.unseen_test, "unseen_test")
    assert not np.allclose(ablated.video_embeddings(test), full.video_embeddings(test), atol=1e-6)


def test_resnet_backbone_and_momentum_zero_copies_the_student(data, tmp_path):
    method, make = _fit(data, tmp_path, backbone="zsar-RN-T-64", ema_momentum=0.0, use_alignment=False)
    student = dict(method.module_.encoder.visual.state_dict())
    for name, value in method.module_.teacher.state_dict().items():  # parameters and BatchNorm stats
        torch.testing.assert_close(value, student[name], atol=0, rtol=0)
    scores = method.predict_scores(make(data.unseen_test, "unseen_test"), data.unseen_texts)
    assert scores.shape[1] == len(data.unseen_texts) and np.isfinite(scores).all()


def test_bad_params_fail_with_their_name(tmp_path, data):
    with pytest.raises(ValueError, match="teacher_temperature"):
        LSS(teacher_temperature=0.0).fit(None, data.seen_texts, tmp_path)
    with pytest.raises(ValueError, match="ema_momentum"):
        LSS(ema_momentum=1.5).fit(None, data.seen_texts, tmp_path)
    clone = LSS(**LSS(**TINY).get_params())
    assert clone.get_params() == LSS(**TINY).get_params()


class _Interrupted(RuntimeError):
    pass


def test_interrupted_fit_resumes_to_the_same_teacher_and_student(data, tmp_path, monkeypatch):
    """The EMA update inside ``loss_fn`` must survive a resume: the teacher is in the checkpoints."""
    kwargs = dict(epochs=2, ema_momentum=0.5, concept_templates="video")
    full, make = _fit(data, tmp_path / "full", **kwargs)
    make_loss_fn = LSS._loss_fn
    steps_per_epoch, calls = full.history_[0]["step"], []

    def counting_loss_fn(self, seen_texts):
        inner = make_loss_fn(self, seen_texts)

        def loss_fn(module, batch):
            calls.append(1)
            return inner(module, batch)
        return loss_fn

    def crashing_loss_fn(self, seen_texts):
        inner = counting_loss_fn(self, seen_texts)

        def loss_fn(module, batch):
            if len(calls) == steps_per_epoch:  # the first step of the second epoch
                raise _Interrupted
            return inner(module, batch)
        return loss_fn

    with monkeypatch.context() as patch:
        patch.setattr(LSS, "_loss_fn", crashing_loss_fn)
        with pytest.raises(_Interrupted):
            _fit(data, tmp_path / "cut", resume=True, **kwargs)
    assert sorted(p.name for p in (tmp_path / "cut" / "train" / "checkpoints").glob("epoch_*.pt")) == ["epoch_0000.pt"]
    calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(LSS, "_loss_fn", counting_loss_fn)
        resumed, _ = _fit(data, tmp_path / "cut", resume=True, **kwargs)
    assert len(calls) == steps_per_epoch  # only the second epoch was trained again
    # its train time counts the restored first epoch (recorded before the crash) and its own second
    assert resumed.train_time_s_ > resumed.history_.rows[0]["time_s"] + resumed.history_.rows[1]["time_s"]
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert drop_time(resumed.history_.rows) == drop_time(full.history_.rows)
    expected = full.module_.teacher.state_dict()
    for name, value in resumed.module_.teacher.state_dict().items():
        torch.testing.assert_close(value, expected[name], atol=0, rtol=0)
    test = make(data.unseen_test, "unseen_test")
    np.testing.assert_array_equal(resumed.video_embeddings(test), full.video_embeddings(test))
