"""The run artefact (zsar.experiments.artifact): written once by run_split, read by one reader.

run_split encodes the GZSL test videos once, scores them for the unseen classes and for GZSL
from those same features, and writes embeddings, prototypes, scores and (ResT) transfer inputs;
the metrics it records are computed from exactly the stored scores. The S_N10 of a run is one
definition: the hubness of the scores the method predicts with.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zsar.evaluation.metrics import gzsl_accuracy, top1_accuracy
from zsar.evaluation.scores import cosine_scores, unseen_hubness
from zsar.experiments import build_split_data, run_split
from zsar.experiments.artifact import ARTIFACT_FILE, ARTIFACT_VERSION, ArtifactError, RunArtifact, read_artifact
from zsar.experiments.compare import comparison_results
from zsar.methods import ESZSL, ResT, relatedness_matrix, semantic_transfer

torch.set_num_threads(1)

REST = dict(frames=4, epochs=1, batch_size=6, progress=False, width=32, layers=1, heads=2, joint_dim=32,
            lr=1e-4, transfer_k=3)


def _count_feature_calls(monkeypatch, cls):
    """Record the number of videos of every ``video_features`` / ``video_embeddings`` call of ``cls``."""
    calls = {"video_features": [], "video_embeddings": []}
    for name in calls:
        original = getattr(cls, name)

        def wrapped(self, dataset, _original=original, _name=name):
            calls[_name].append(len(dataset))
            return _original(self, dataset)

        monkeypatch.setattr(cls, name, wrapped)
    return calls


@pytest.fixture(scope="module")
def rest_run(source, split, tmp_path_factory):
    """A finished ResT run, and how often it encoded videos after fitting."""
    mp = pytest.MonkeyPatch()
    calls = _count_feature_calls(mp, ResT)
    run_dir = tmp_path_factory.mktemp("rest_run") / "rest" / split.name
    try:
        result = run_split("rest", REST, source, split, run_dir, seed=3, resume=False)
    finally:
        mp.undo()
    return run_dir, result, calls


def test_the_test_videos_are_encoded_once(rest_run, source, split):
    run_dir, result, calls = rest_run
    data = build_split_data(source, split, True, gzsl=True, seed=3)
    # one pass over the GZSL test set (the unseen test videos are part of it); the validation
    # videos once more for the artefact's query bank; the training videos only inside fit
    assert calls["video_features"] == [len(data.gzsl_test)]
    # (the first embedding call is the one inside video_features)
    assert calls["video_embeddings"] == [len(data.gzsl_test), len(data.val)]


def test_artifact_holds_the_split_and_the_recorded_metrics_come_from_it(rest_run, source, split):
    run_dir, result, _ = rest_run
    run = read_artifact(run_dir, result["config"])
    data = build_split_data(source, split, True, gzsl=True, seed=3)
    S, U = len(split.seen), len(split.unseen)
    assert run.method_name == "rest" and run.split == split.name and run.config == result["config"]
    assert list(run.class_ids) == list(split.seen) + list(split.unseen) and run.n_seen == S and run.n_unseen == U
    assert list(run.video_ids) == [r.video_id for r in data.gzsl_test.records]
    assert list(run.labels) == list(data.gzsl_test.labels)
    assert run.testlist[~run.unseen_mask].all() and run.testlist[run.unseen_mask].tolist() == data.testlist_mask.tolist()
    assert run.embeddings.shape == (len(data.gzsl_test), REST["joint_dim"]) and run.embeddings.dtype == np.float32
    assert run.prototypes.shape == (S + U, REST["joint_dim"])
    assert run.unseen_scores.shape == (len(data.unseen_test), U) and run.gzsl_scores.shape == (len(data.gzsl_test), S + U)
    assert list(run.video_ids[run.unseen_mask]) == [r.video_id for r in data.unseen_test.records]
    assert run.val_embeddings.shape == (len(data.val), REST["joint_dim"]) and list(run.val_labels) == list(data.val.labels)
    assert run.pairs == tuple(map(tuple, data.pairs)) and (0, 1) in run.pairs
    m = result["metrics"]
    assert m["top1"] == top1_accuracy(run.unseen_scores, run.unseen_labels)
    assert m["gzsl_harmonic"] == pytest.approx(gzsl_accuracy(run.gzsl_scores, run.labels, range(S))["harmonic"])
    # the unseen scores are the GZSL scores' unseen block (ResT scores each class on its own)
    np.testing.assert_allclose(run.unseen_scores, run.gzsl_scores[run.unseen_mask][:, S:], atol=1e-6)
    np.testing.assert_allclose(run.unseen_scores, run.cosine_unseen_scores(), atol=1e-5)


def test_rest_transfer_inputs_are_its_own_transfer(rest_run):
    run_dir, _, _ = rest_run
    run = read_artifact(run_dir)
    S, w, text = run.n_seen, run.extras["transfer_weights"], run.extras["text_prototypes"]
    assert w.shape == run.extras["relatedness"].shape == (run.n_unseen, S)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    assert ((w > 0).sum(1) == REST["transfer_k"]).all()
    # the joint label space is ResT's default transfer space: relatedness of the text prototypes
    np.testing.assert_allclose(run.extras["relatedness"], relatedness_matrix(text[S:], text[:S]), atol=1e-5)
    again = semantic_transfer(run.prototypes[:S], run.extras["relatedness"], REST["transfer_k"], 0.1)
    np.testing.assert_allclose(run.prototypes[S:], again.prototypes, atol=1e-5)
    for space in ("model", "clip"):
        for kind in ("name", "description"):
            assert run.extras[f"labels_{space}_{kind}"].shape[0] == S + run.n_unseen
    np.testing.assert_array_equal(run.extras["labels_model_name"], text)


def test_reader_refuses_a_missing_file_another_version_or_configuration(rest_run, tmp_path):
    run_dir, result, _ = rest_run
    with pytest.raises(ArtifactError, match="not a finished run"):
        read_artifact(tmp_path)
    with pytest.raises(ArtifactError, match="another configuration"):
        read_artifact(run_dir, {**result["config"], "seed": 4})
    with np.load(run_dir / ARTIFACT_FILE) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(tmp_path / ARTIFACT_FILE, **{**arrays, "version": np.array(ARTIFACT_VERSION + 1)})
    with pytest.raises(ArtifactError, match="format version"):
        read_artifact(tmp_path)


def test_write_read_round_trip_without_gzsl_or_validation(tmp_path):
    rng = np.random.default_rng(0)
    run = RunArtifact(method_name="m", split="s", config={"a": [1, 2]}, class_ids=np.array([4, 2, 7]), n_seen=1,
                      video_ids=np.array(["x/1.mp4", "y/2.mp4"]), labels=np.array([1, 2]),
                      testlist=np.array([True, False]), embeddings=rng.normal(size=(2, 3)),
                      prototypes=rng.normal(size=(3, 3)), unseen_scores=rng.normal(size=(2, 2)), gzsl_scores=None)
    back = read_artifact(run.write(tmp_path).parent, {"a": [1, 2]})
    assert back.gzsl_scores is None and back.val_embeddings is None and back.extras == {} and back.pairs == ()
    assert list(back.video_ids) == ["x/1.mp4", "y/2.mp4"] and back.unseen_labels.tolist() == [0, 1]
    np.testing.assert_allclose(back.unseen_scores, run.unseen_scores.astype(np.float32))
    assert json.loads(json.dumps(back.config)) == {"a": [1, 2]}


def test_s_n10_is_one_definition_on_the_scores_the_method_predicts_with(source, split, tmp_path):
    """ESZSL scores with a bilinear form, not a cosine: the S_N10 of the comparison, of the artefact
    and of notebook 04's raw row (``unseen_hubness`` of the artefact's unseen scores) are one number,
    and it is computed on the method's scores, not on a cosine of its embeddings."""
    result = run_split("eszsl", dict(frames=4, progress=False), source, split, tmp_path / "eszsl" / split.name)
    run = read_artifact(tmp_path / "eszsl" / split.name)
    np.testing.assert_allclose(run.unseen_scores, run.unseen_embeddings @ run.prototypes[run.n_seen:].T, rtol=1e-5)
    assert not np.allclose(run.unseen_scores, cosine_scores(run.unseen_embeddings, run.prototypes[run.n_seen:]))
    row = comparison_results([result], tmp_path)[0]
    assert row["metrics"]["s_n10"] == run.unseen_hubness() == unseen_hubness(run.unseen_scores)
    assert ESZSL.scores_from_embeddings is not ResT.scores_from_embeddings
