"""zsar.experiments.transfer_grid: the no-refit transfer evaluation of notebook 03."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.experiments.transfer_grid import TransferEvaluator, seen_class_folds
from zsar.methods import cosine_scores, relatedness_matrix, semantic_transfer


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    S, U, D, E = 8, 4, 6, 5
    val_labels = np.repeat(np.arange(S), 3)
    unseen_labels = np.repeat(np.arange(U), 5)
    return {"S": S, "U": U, "seen_P": rng.normal(size=(S, D)),
            "labels_glove_name": rng.normal(size=(S + U, E)), "labels_model_name": rng.normal(size=(S + U, D)),
            "labels_minilm_name": rng.normal(size=(S + U, E)),
            "val_emb": rng.normal(size=(len(val_labels), D)), "val_labels": val_labels,
            "unseen_emb": rng.normal(size=(len(unseen_labels), D)), "unseen_labels": unseen_labels}


def test_folds_halve_the_seen_classes_and_keep_only_pseudo_unseen_videos(inputs):
    folds = seen_class_folds(inputs, split_pos=1, n_folds=3, seed=0)
    assert len(folds) == 3
    for seen, unseen, mask, labels in folds:
        assert sorted(np.concatenate([seen, unseen])) == list(range(inputs["S"])) and len(unseen) == inputs["S"] // 2
        assert set(inputs["val_labels"][mask]) == set(unseen)
        np.testing.assert_array_equal(unseen[labels], inputs["val_labels"][mask])  # labels index the targets
    again = seen_class_folds(inputs, split_pos=1, n_folds=3, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, seen_class_folds(inputs, 2, 3, 0)))


def test_scores_equal_a_direct_semantic_transfer(inputs):
    ev = TransferEvaluator("glove", "name", "name")
    seen, unseen = np.arange(8), np.arange(8, 12)
    for space in (None, "minilm"):
        labels = inputs[f"labels_{space or 'glove'}_name"]
        direct = semantic_transfer(inputs["seen_P"], relatedness_matrix(labels[unseen], labels[seen]), 3, 0.1,
                                   inputs["labels_model_name"][unseen], 0.5)
        np.testing.assert_allclose(ev.test_scores(inputs, 3, 0.1, 0.5, space=space),
                                   cosine_scores(inputs["unseen_emb"], direct.prototypes))


def test_val_top1_is_the_mean_over_folds_of_pseudo_unseen_accuracy(inputs):
    ev = TransferEvaluator("glove", "name", "name")
    folds = seen_class_folds(inputs, 0, 4, seed=3)
    expected = []
    for ps, pu, mask, labels in folds:
        protos = ev.compose(inputs, ps, pu, 2, 0.3, 1.0).prototypes
        expected.append(np.mean(cosine_scores(inputs["val_emb"][mask], protos).argmax(1) == labels))
    assert ev.val_top1(inputs, folds, 2, 0.3, 1.0) == pytest.approx(np.mean(expected))
