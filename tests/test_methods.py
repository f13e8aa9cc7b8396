"""The zero-shot methods (zsar.methods): fit/predict shapes, order awareness, ESZSL, ClassTexts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.data.embedded import load_catalog
from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.sources import load_embedded_source
from zsar.experiments.split_data import build_split_data, default_dataset_factory
from zsar.methods import METHODS, ClassTexts, NotFittedError, eszsl_closed_form, make_method

torch.set_num_threads(1)  # the machine is shared; small models gain nothing from threads

# a tiny benchmark: 12 classes (6 temporal pairs), 4 clips each (3 train-list, 1 test-list), 64 px, 1 s
FRAMES = 4
SPLIT = ZeroShotSplit(seen=(0, 2, 4, 6, 8, 10), unseen=(1, 3, 5, 7, 9, 11), name="odd_unseen")
BACKBONE = "zsar-ViT-T-16-64"  # the tests were calibrated on it; the dataset factory below matches it
COMMON = dict(backbone=BACKBONE, frames=FRAMES, epochs=1, batch_size=6, progress=False, resume=False)
TINY_KWARGS = {
    "frame_average": {},
    "actionclip": dict(lr=1e-4),
    "devise": dict(map_epochs=20),
    "eszsl": {},
    "rest": dict(width=32, layers=1, heads=2, joint_dim=32, lr=1e-4, transfer_k=3),
    "supervised": dict(width=32, heads=2, lr=1e-4),
    "motion_prompts": dict(width=32, heads=2, prompt_hidden=16),
    "lss": dict(width=32, layers=1, heads=2, lr=1e-4, concept_templates="video"),
    "asu": dict(width=32, layers=1, heads=2, regions=2, lr=1e-4),
}


@pytest.fixture(scope="module")
def data(tiny_bench):
    source = load_embedded_source(tiny_bench)
    split_data = build_split_data(source, SPLIT, zero_shot=True, gzsl=True, val_fraction=0.2, seed=0)
    make = default_dataset_factory(BACKBONE, FRAMES, seed=0)
    return split_data, make


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """Every method fitted once on the seen classes (shared by the tests below)."""
    split_data, make = data
    train, val = make(split_data.train, "train"), make(split_data.val, "val")
    out = {}
    for name, kwargs in TINY_KWARGS.items():
        method = make_method(name, **COMMON, **kwargs)
        out[name] = method.fit(train, split_data.seen_texts, tmp_path_factory.mktemp(name), val_dataset=val)
    return out


def test_registry_lists_every_method():
    assert set(METHODS) == {"frame_average", "actionclip", "devise", "eszsl", "rest", "asu", "motion_prompts", "lss", "supervised"}
    with pytest.raises(ValueError, match="unknown method"):
        make_method("nope")


@pytest.mark.parametrize("name", sorted(TINY_KWARGS))
def test_fit_predict_shapes_and_finite_scores(fitted, data, name):
    split_data, make = data
    method = fitted[name]
    test = make(split_data.unseen_test, "unseen_test")
    # the ceiling only scores classes it was trained on; here it saw the seen classes
    targets = split_data.seen_texts if name == "supervised" else split_data.unseen_texts
    scores = method.predict_scores(test, targets, split_data.seen_texts)
    assert scores.shape == (len(test), len(targets))
    assert np.isfinite(scores).all()
    emb = method.video_embeddings(test)
    protos = method.class_prototypes(targets, split_data.seen_texts)
    assert emb.shape[0] == len(test) and protos.shape == (len(targets), emb.shape[1])
    assert np.isfinite(emb).all() and np.isfinite(protos).all()
    assert method.trainable_parameters() >= 0 and method.train_time_s_ > 0


@pytest.mark.parametrize("name", sorted(TINY_KWARGS))
def test_params_round_trip_and_unfitted_error(name):
    method = make_method(name, **COMMON, **TINY_KWARGS[name])
    clone = make_method(name, **method.get_params())
    assert clone.get_params() == method.get_params()
    with pytest.raises(NotFittedError):
        method.trainable_parameters()


def test_training_methods_report_trainable_parameters(fitted):
    assert fitted["frame_average"].trainable_parameters() == 0
    for name in ("actionclip", "rest", "supervised", "devise", "eszsl", "asu", "motion_prompts", "lss"):
        assert fitted[name].trainable_parameters() > 0, name


class _Reversed(torch.utils.data.Dataset):
    """The same samples with the frame order reversed."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        sample = dict(self.dataset[i])
        sample["video"] = sample["video"].flip(0)
        return sample


def test_rest_is_order_aware_frame_average_is_not(fitted, data):
    split_data, make = data
    test = make(split_data.unseen_test, "unseen_test")
    rest, avg = fitted["rest"], fitted["frame_average"]
    assert not np.allclose(rest.video_embeddings(test), rest.video_embeddings(_Reversed(test)), atol=1e-4)
    np.testing.assert_allclose(avg.video_embeddings(test), avg.video_embeddings(_Reversed(test)), atol=1e-5)


def test_rest_keeps_seen_prototypes_and_transfers_unseen(fitted, data):
    split_data, _ = data
    rest = fitted["rest"]
    both = split_data.seen_texts + split_data.unseen_texts
    protos = rest.class_prototypes(both)
    n_seen = len(split_data.seen_texts)
    np.testing.assert_allclose(protos[:n_seen], rest.seen_prototypes_, atol=1e-6)
    result = rest.explain_transfer(split_data.unseen_texts)
    np.testing.assert_allclose(result.weights.sum(1), 1.0, atol=1e-9)
    assert ((result.weights > 0).sum(1) == 3).all()
    np.testing.assert_allclose(protos[n_seen:], result.prototypes, atol=1e-6)


def test_rest_transfer_options(fitted, data):
    split_data, make = data
    rest = fitted["rest"]
    base = rest.class_prototypes(split_data.unseen_texts)
    try:
        rest.transfer_space, rest.transfer_alpha = "glove", 0.5
        other = rest.class_prototypes(split_data.unseen_texts)
    finally:
        rest.transfer_space, rest.transfer_alpha = "model", 1.0
    assert other.shape == base.shape and not np.allclose(other, base)
    np.testing.assert_allclose(np.linalg.norm(other, axis=1), 1.0, atol=1e-5)


def test_supervised_refuses_classes_it_never_saw(fitted, data):
    split_data, make = data
    with pytest.raises(KeyError, match="not trained on"):
        fitted["supervised"].predict_scores(make(split_data.val, "val"), split_data.unseen_texts)


def test_eszsl_closed_form_is_the_minimiser():
    rng = np.random.default_rng(0)
    x, s = rng.normal(size=(20, 6)), rng.normal(size=(4, 5))
    y = rng.integers(0, 4, size=20)
    gamma, lam = 0.3, 0.7
    v = eszsl_closed_form(x, y, s, gamma, lam)
    t = -np.ones((20, 4))
    t[np.arange(20), y] = 1
    # gradient of ||X V Sᵀ - Y||² + γ||V Sᵀ||² + λ||X V||² + γλ||V||² (Romera-Paredes & Torr, eq. 4)
    r = x @ v @ s.T - t
    grad = x.T @ r @ s + gamma * v @ s.T @ s + lam * x.T @ x @ v + gamma * lam * v
    np.testing.assert_allclose(grad, 0.0, atol=1e-9)


def test_class_texts(tiny_bench):
    catalog = load_catalog(tiny_bench)
    texts = ClassTexts.from_catalog(catalog, [3, 0])
    assert texts.names == (catalog[3].name, catalog[0].name)
    assert texts.texts("description")[0] == catalog[3].description
    assert texts.texts("name+description")[1].startswith(catalog[0].name + ": ")
    first_unit = next(u for group in catalog[3].units.values() for u in group)
    assert first_unit in texts.texts("units")[0]
    both = texts + ClassTexts.from_catalog(catalog, [5])
    assert len(both) == 3 and both.index_of([catalog[5].name, "zzz"]) == [2, None]
    assert both.subset([2]).names == (catalog[5].name,)
    assert ClassTexts.from_names(["a", "b"]).texts("description") == ["a", "b"]
    with pytest.raises(ValueError, match="unknown text kind"):
        texts.texts("title")
    with pytest.raises(ValueError, match="duplicate"):
        ClassTexts(("a", "a"))
    with pytest.raises(ValueError, match="descriptions"):
        ClassTexts(("a", "b"), ("only one",))


def test_resumed_rest_fit_keeps_the_same_seen_prototypes(data, tmp_path):
    """A finished fit restored from its checkpoint must rebuild identical class-mean prototypes
    (they are computed on deterministic evaluation views, not on the last epoch's random clips)."""
    split_data, make = data
    train = make(split_data.train, "train")
    kwargs = {**COMMON, **TINY_KWARGS["rest"], "epochs": 2, "resume": True}
    first = make_method("rest", **kwargs).fit(train, split_data.seen_texts, tmp_path)
    again = make_method("rest", **kwargs).fit(make(split_data.train, "train"), split_data.seen_texts, tmp_path)
    np.testing.assert_allclose(again.seen_prototypes_, first.seen_prototypes_, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TINY_KWARGS))
def test_features_encoded_once_score_any_vocabulary_and_any_rows(fitted, data, name):
    """Scores from one ``video_features`` pass equal a fresh ``predict_scores`` on the same videos,
    for the GZSL and the unseen vocabulary, and for a subset of the rows (as ``run_split`` uses them)."""
    split_data, make = data
    method = fitted[name]
    videos = make(split_data.gzsl_test, "gzsl_test")
    features = method.video_features(videos)
    assert set(features) >= {"embedding"} and all(len(v) == len(videos) for v in features.values())
    np.testing.assert_allclose(features["embedding"], method.video_embeddings(videos), atol=1e-5)
    seen = split_data.seen_texts
    vocabularies = [seen] if name == "supervised" else [seen + split_data.unseen_texts, split_data.unseen_texts]
    rows = np.flatnonzero(np.arange(len(videos)) % 2 == 0)
    subset = make(split_data.gzsl_test.__class__([split_data.gzsl_test.records[i] for i in rows],
                                                 split_data.gzsl_test.class_names, split_data.gzsl_test.root,
                                                 split_data.gzsl_test.source), "gzsl_test")
    for texts in vocabularies:
        whole = method.scores_from_features(features, texts, seen)
        np.testing.assert_allclose(whole, method.predict_scores(videos, texts, seen), rtol=1e-5, atol=1e-5)
        part = method.scores_from_features({k: v[rows] for k, v in features.items()}, texts, seen)
        np.testing.assert_allclose(part, method.predict_scores(subset, texts, seen), rtol=1e-5, atol=1e-5)


def test_motion_prompt_scores_from_features_equal_the_one_pass_forward(fitted, data):
    split_data, make = data
    method = fitted["motion_prompts"]
    videos = make(split_data.unseen_test, "unseen_test")
    one_pass = method._val_scores(method.module_, videos, split_data.unseen_texts)
    np.testing.assert_allclose(method.predict_scores(videos, split_data.unseen_texts), one_pass, rtol=1e-5, atol=1e-5)
