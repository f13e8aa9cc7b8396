"""ASU (method B, zsar.methods.asu): fit/predict, unit bank protocol, unit attention, ablations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsar.data.protocols import ZeroShotSplit
from zsar.evaluation.scores import cosine_scores
from zsar.experiments.sources import load_embedded_source
from zsar.experiments.split_data import build_split_data, default_dataset_factory
from zsar.methods import NotFittedError, find_leaks
from zsar.methods.asu import ASU, UnitSelection, unit_selection_loss
from zsar.methods.base import dataset_labels, evaluation_view
from zsar.models import count_parameters

torch.set_num_threads(1)

FRAMES = 4
SPLIT = ZeroShotSplit(seen=(0, 2, 4, 6, 8, 10), unseen=(1, 3, 5, 7, 9, 11), name="odd_unseen")
TINY = dict(width=32, layers=1, heads=2, regions=2, frames=FRAMES, epochs=1, batch_size=6, progress=False,
            resume=False, device="cpu", backbone="zsar-ViT-T-16-64")  # the backbone the data fixture preprocesses for


@pytest.fixture(scope="module")
def data(tiny_bench):
    source = load_embedded_source(tiny_bench)
    split = build_split_data(source, SPLIT, zero_shot=True, gzsl=False, val_fraction=0.2, seed=0)
    make = default_dataset_factory("zsar-ViT-T-16-64", FRAMES, seed=0)
    return split, make


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """ASU fitted once (1 epoch), with the texts its spaces encoded during fit."""
    split, make = data
    method = ASU(**TINY).fit(make(split.train, "train"), split.seen_texts, tmp_path_factory.mktemp("asu"),
                             val_dataset=make(split.val, "val"))
    return method, list(method.encoded_texts())


def test_fit_predict_shapes_and_finite_scores(fitted, data):
    method, _ = fitted
    split, make = data
    test = make(split.unseen_test, "unseen_test")
    scores = method.predict_scores(test, split.unseen_texts, split.seen_texts)
    assert scores.shape == (len(test), len(split.unseen_texts)) and np.isfinite(scores).all()
    gzsl = method.predict_scores(test, split.seen_texts + split.unseen_texts)
    assert gzsl.shape == (len(test), 12)
    emb, protos = method.video_embeddings(test), method.class_prototypes(split.unseen_texts)
    assert emb.shape == (len(test), 192) and protos.shape == (6, 192)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores, emb @ protos.T, atol=1e-5)  # seen bank: the same embeddings
    assert method.trainable_parameters() > 0 and method.train_time_s_ > 0
    assert np.isfinite(method.history_[-1]["train_unit"]) and "val_top1" in method.history_[-1]


def test_bank_and_fit_texts_come_from_seen_classes_only(fitted, data):
    method, fit_texts = fitted
    split, make = data
    seen_units = {g: {u for c in split.seen_texts.units for u in c[g]} for g in method.bank_.groups}
    assert {g: set(us) for g, us in method.bank_.units.items()} == seen_units
    assert set(method.bank_.all_units) <= set(fit_texts)  # the units went through a recorded space
    assert not find_leaks(fit_texts, split.seen_texts, split.unseen_texts)
    test = make(split.unseen_test, "unseen_test")
    method.predict_scores(test, split.unseen_texts)
    assert find_leaks(method.encoded_texts(), split.seen_texts, split.unseen_texts)  # the guard can fail


def test_target_units_extend_the_bank_only_at_prediction(fitted, data):
    method, _ = fitted
    split, make = data
    test = make(split.unseen_test, "unseen_test")
    seen_scores = method.predict_scores(test, split.unseen_texts)
    try:
        method.inference_units = "target"
        bank = method.inference_bank(split.unseen_texts)
        new = [u for u in bank.all_units if u not in method.bank_.all_units]
        assert new, "the unseen classes of the tiny split bring new units"
        before = len(method.encoded_texts())
        target_scores = method.predict_scores(test, split.unseen_texts)
        assert set(new) <= set(method.encoded_texts()[before:])
        # decoding stored tokens with the target bank equals encoding the clips with it in one pass
        one_pass = cosine_scores(method._embed(test, bank), method.class_prototypes(split.unseen_texts))
        np.testing.assert_allclose(target_scores, one_pass, rtol=1e-5, atol=1e-5)
        features = method.video_features(test)
        assert {"embedding", "frames", "visual"} <= set(features)
        np.testing.assert_allclose(features["embedding"], method._embed(test, method.bank_), atol=1e-5)
        attention = method.unit_attention(test, split.unseen_texts)
    finally:
        method.inference_units = "seen"
    assert target_scores.shape == seen_scores.shape and not np.allclose(target_scores, seen_scores)
    assert {g: a.shape[1] for g, a in attention.items()} == {g: len(u) for g, u in bank.units.items()}


def test_unit_attention_rows_are_distributions_and_top_k_keeps_k(fitted, data):
    method, _ = fitted
    split, make = data
    test = make(split.unseen_test, "unseen_test")
    attention = method.unit_attention(test)
    for g, a in attention.items():
        assert a.shape == (len(test), len(method.bank_.units[g]))
        np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)
        assert (a > 0).all()  # soft selection
    selection = method.module_.selection
    try:
        selection.top_k = 1
        hard = method.unit_attention(test)
    finally:
        selection.top_k = None
    # one unit per frame and group: a clip's weights are spread over at most FRAMES units
    for g, a in hard.items():
        np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)
        assert ((a > 0).sum(1) <= min(FRAMES, a.shape[1])).all()


def test_time_order_changes_the_video_embedding(fitted, data):
    method, _ = fitted
    split, make = data
    test = make(split.unseen_test, "unseen_test")

    class Reversed(torch.utils.data.Dataset):
        def __len__(self):
            return len(test)

        def __getitem__(self, i):
            return {**test[i], "video": test[i]["video"].flip(0)}

    assert not np.allclose(method.video_embeddings(test), method.video_embeddings(Reversed()), atol=1e-4)


def test_ablation_switches_remove_their_component(fitted, data, tmp_path):
    full, _ = fitted
    split, make = data
    train, test = make(split.train, "train"), make(split.unseen_test, "unseen_test")
    no_mra = ASU(**TINY, use_mra=False).fit(train, split.seen_texts, tmp_path / "no_mra")
    no_sel = ASU(**TINY, use_unit_selection=False).fit(train, split.seen_texts, tmp_path / "no_sel")
    assert no_mra.module_.mra is None and no_sel.module_.selection is None
    mra_params = count_parameters(full.module_.mra) + full.regions * full.width  # + region slot embeddings
    assert full.trainable_parameters() - no_mra.trainable_parameters() == mra_params
    assert full.trainable_parameters() - no_sel.trainable_parameters() == count_parameters(full.module_.selection)
    for method in (no_mra, no_sel):
        scores = method.predict_scores(test, split.unseen_texts)
        assert scores.shape == (len(test), 6) and np.isfinite(scores).all()
    assert no_mra.unit_attention(test)["motions"].shape == (len(test), len(full.bank_.units["motions"]))
    with pytest.raises(ValueError, match="use_unit_selection"):
        no_sel.unit_attention(test)


def test_unit_loss_concentrates_attention_on_the_declared_units(data, tmp_path):
    """The outcome of unit supervision: after training with the unit loss, training clips put far
    more attention on their own class's units than the same model trained without it."""
    split, make = data
    train = make(split.train, "train")
    mass = {}
    for weight in (0.0, 5.0):
        method = ASU(**{**TINY, "epochs": 10, "lr": 3e-3}, unit_space="glove", unit_loss_weight=weight,
                     train_backbone=False, train_text=False).fit(train, split.seen_texts, tmp_path / str(weight))
        view = evaluation_view(train)
        attention = method.unit_attention(view)
        member = method.bank_.membership(method.seen_texts_)
        labels = dataset_labels(view)
        mass[weight] = np.mean([(attention[g] * member[g][labels]).sum(1).mean() for g in attention
                                if member[g][labels].sum(1).all()])
    assert mass[5.0] > mass[0.0] + 0.15, mass  # seeds 0-3 gave gaps of 0.25-0.29


def test_resnet_backbone_with_multi_region_attention(data, tmp_path):
    split, _ = data
    make = default_dataset_factory("zsar-RN-T-64", FRAMES, seed=0)
    method = ASU(**{**TINY, "backbone": "zsar-RN-T-64"}).fit(make(split.train, "train"), split.seen_texts, tmp_path)
    assert method.module_.encoder.grid_size == (2, 2) and method.module_.mra is not None
    test = make(split.unseen_test, "unseen_test")
    scores = method.predict_scores(test, split.unseen_texts)
    assert scores.shape == (len(test), 6) and np.isfinite(scores).all()


def test_unit_selection_loss_and_top_k_against_hand_values():
    attention = torch.tensor([[0.5, 0.5, 0.2, 0.8], [0.1, 0.9, 0.6, 0.4]])
    membership = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    # group 1 (units 0-1): -log 0.5 and -log 1.0; group 2 (units 2-3): only clip 2 counts, -log 0.4
    expected = (-(math.log(0.5) + math.log(1.0)) / 2 - math.log(0.4)) / 2
    assert unit_selection_loss(attention, membership, (2, 2)).item() == pytest.approx(expected, rel=1e-5)
    assert unit_selection_loss(attention, torch.zeros_like(membership), (2, 2)).item() == 0.0
    torch.manual_seed(0)
    selection = UnitSelection(8, top_k=2)
    selected, weights = selection(torch.randn(2, 3, 5, 8), torch.randn(7, 8), (4, 0, 3))
    assert selected.shape == (2, 3, 3, 8) and weights.shape == (2, 3, 7)
    assert ((weights[..., :4] > 0).sum(-1) == 2).all() and ((weights[..., 4:] > 0).sum(-1) == 2).all()
    torch.testing.assert_close(weights[..., :4].sum(-1), torch.ones(2, 3))
    assert selected[:, :, 1].abs().max() == 0  # an empty group selects nothing


def test_params_round_trip_bad_values_and_unfitted():
    method = ASU(**TINY, unit_top_k=3, unit_space="minilm")
    assert ASU(**method.get_params()).get_params() == method.get_params()
    with pytest.raises(NotFittedError):
        method.video_embeddings([])
    for bad in (dict(unit_space="word2vec"), dict(inference_units="all"), dict(unit_top_k=0),
                dict(width=30, heads=4)):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=name):
            ASU(**{**TINY, **bad}).fit([], None, "/nonexistent-unused")


def test_a_finished_fit_resumes_to_the_same_model(data, tmp_path):
    split, make = data
    kwargs = {**TINY, "resume": True}
    first = ASU(**kwargs).fit(make(split.train, "train"), split.seen_texts, tmp_path)
    again = ASU(**kwargs).fit(make(split.train, "train"), split.seen_texts, tmp_path)
    test = make(split.unseen_test, "unseen_test")
    np.testing.assert_allclose(again.video_embeddings(test), first.video_embeddings(test), atol=1e-5)
    assert again.bank_ == first.bank_


def test_declared_attention_mass_by_hand():
    from zsar.methods.asu import declared_attention_mass

    attention = {"objects": np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), "scenes": np.zeros((2, 0))}
    units = {"objects": ("ball", "box", "cup"), "scenes": ()}
    declared = [{"objects": ("ball",)}, {"objects": ("box", "cup")}]
    mass, uniform = declared_attention_mass(attention, units, declared)
    assert mass == pytest.approx({"objects": (0.7 + 0.9) / 2}) and uniform == pytest.approx({"objects": (1 / 3 + 2 / 3) / 2})
    # a group without units, or whose clips declare none of its units, is left out
    assert declared_attention_mass({"objects": attention["objects"]}, units, [{}, {}]) == ({}, {})
