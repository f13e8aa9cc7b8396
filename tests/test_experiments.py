"""Experiments (zsar.experiments.runs): run_split metrics, determinism, resume, many splits."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from zsar.data.protocols import random_class_splits
from zsar.evaluation.metrics import temporal_pair_accuracy
from zsar.evaluation.tables import TableHeader, summarize, to_markdown
from zsar.experiments import METRIC_KEYS, REFERENCE_MARK, read_artifact, run_split, run_splits
from zsar.experiments.runs import ADOPTED_FILE
from zsar.methods import ResT, Supervised

torch.set_num_threads(1)

REST = dict(frames=4, epochs=1, batch_size=6, progress=False, width=32, layers=1, heads=2, joint_dim=32,
            lr=1e-4, transfer_k=3)
TIMING_KEYS = {"train_time_s", "predict_time_s"}


@pytest.fixture(scope="module")
def rest_run(source, split, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("rest_run")
    return run_dir, run_split("rest", REST, source, split, run_dir, seed=3, resume=False)


def test_run_split_writes_every_metric(rest_run, split):
    run_dir, result = rest_run
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert set(stored["metrics"]) == set(METRIC_KEYS)
    assert stored["metrics"] == pytest.approx(result["metrics"], nan_ok=True)
    m = result["metrics"]
    for key in ("top1", "top5", "mean_class_acc", "top1_testlist", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic",
                "pair_acc"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["pair_videos"] > 0 and m["trainable_params"] > 0 and m["train_time_s"] > 0
    assert result["zero_shot"] and result["split"] == "with_pair" and result["seed"] == 3
    assert not list(run_dir.glob(".*tmp*"))  # atomic writes leave no temp files
    run = read_artifact(run_dir, result["config"])
    assert run.unseen_scores.shape == (len(run.unseen_labels), len(split.unseen))
    header = TableHeader("embedded tiny, 6/6", "zsar-ViT-T-16-64 (random init)", 4, 1, 3)
    assert "ResT" in to_markdown([result], header, metrics=["top1", "gzsl_harmonic"])


def test_same_seed_gives_same_metrics(rest_run, source, split, tmp_path):
    _, first = rest_run
    again = run_split("rest", REST, source, split, tmp_path, seed=3, resume=False)
    for key in set(METRIC_KEYS) - TIMING_KEYS:
        assert again["metrics"][key] == pytest.approx(first["metrics"][key], nan_ok=True), key
    assert np.array_equal(read_artifact(tmp_path).unseen_scores, read_artifact(rest_run[0]).unseen_scores)


def test_resume_reuses_a_finished_run(rest_run, source, split, monkeypatch):
    run_dir, first = rest_run

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run must not be refitted")

    monkeypatch.setattr(ResT, "fit", refuse)
    assert run_split("rest", REST, source, split, run_dir, seed=3, resume=True) == json.loads(
        (run_dir / "metrics.json").read_text())
    with pytest.raises(AssertionError, match="refitted"):  # another config is recomputed
        run_split("rest", {**REST, "transfer_k": 2}, source, split, run_dir, seed=3, resume=True)


def test_run_splits_and_the_supervised_reference(source, split, tmp_path):
    results = run_splits("eszsl", dict(frames=4, progress=False), source, tmp_path, n_splits=2, seed=0,
                         progress=False)
    assert [r["split"] for r in results] == ["random0_seed0", "random1_seed0"]
    assert (tmp_path / "eszsl" / "random1_seed0" / "metrics.json").is_file()
    ceiling = run_split("supervised", dict(frames=4, epochs=1, batch_size=6, width=32, heads=2, progress=False),
                        source, split, tmp_path / "supervised", gzsl=True)
    assert ceiling["method"].endswith(REFERENCE_MARK) and not ceiling["zero_shot"]
    assert set(ceiling["metrics"]) == set(METRIC_KEYS)
    # the ceiling is tested on test-list clips only, so both top-1 numbers coincide
    assert ceiling["metrics"]["top1"] == ceiling["metrics"]["top1_testlist"]
    table = summarize(results + [ceiling], metrics=["top1"])
    assert table.loc["ESZSL (closed form)", "runs"] == 2 and len(table) == 2


def test_the_supervised_ceiling_is_trained_once_for_all_splits(source, tmp_path, monkeypatch):
    from zsar.training.loop import Trainer

    kwargs = dict(frames=4, epochs=1, batch_size=6, width=32, heads=2, progress=False)
    splits = random_class_splits(len(source.texts), 2, seed=0)
    fits = []
    original_fit = Supervised.fit
    monkeypatch.setattr(Supervised, "fit", lambda self, *a, **k: (fits.append(self), original_fit(self, *a, **k))[1])
    resumed = []
    original_resume = Trainer._resume_from
    monkeypatch.setattr(Trainer, "_resume_from", lambda self, path: (resumed.append(path), original_resume(self, path)))
    results = run_splits("supervised", kwargs, source, tmp_path, splits=splits, gzsl=True, progress=False)
    # one training, then the second split resumes the finished checkpoint of the shared folder
    assert len(fits) == 2 and len(resumed) == 1 and (tmp_path / "supervised" / "all_splits_fit").is_dir()
    assert all((tmp_path / "supervised" / s.name / "metrics.json").is_file() for s in splits)
    # the same model scores both splits: identical logits for a clip both splits test
    assert list(fits[0].classes_.names) == list(fits[1].classes_.names) == list(source.texts.names)
    assert [r["split"] for r in results] == [s.name for s in splits]
    # both rows report the one training's time; the second split's resumed fit counts the epochs
    # it restored (their recorded time), not only its loading time
    epochs_time = sum(row["time_s"] for row in fits[0].history_)
    assert fits[0].train_time_s_ > epochs_time > 0
    assert [row["time_s"] for row in fits[1].history_] == [row["time_s"] for row in fits[0].history_]
    assert fits[1].train_time_s_ > epochs_time
    assert [r["metrics"]["train_time_s"] for r in results] == [fits[0].train_time_s_] * 2


def test_without_gzsl_the_gzsl_metrics_are_nan(source, split, tmp_path):
    result = run_split("frame_average", dict(frames=4, progress=False), source, split, tmp_path, gzsl=False)
    assert all(math.isnan(result["metrics"][k]) for k in ("gzsl_seen", "gzsl_unseen", "gzsl_harmonic"))
    assert not math.isnan(result["metrics"]["top1"])


def test_temporal_pair_accuracy_by_hand():
    # classes 0 and 1 form a pair, class 2 is alone; the pair is judged between columns 0 and 1 only
    scores = np.array([[0.9, 0.1, 5.0],   # label 0: 0 beats 1 -> correct (column 2 is ignored)
                       [0.2, 0.8, 0.0],   # label 0: wrong
                       [0.5, 0.5, 0.0],   # label 1: tie goes to the lower index (0) -> wrong
                       [0.0, 1.0, 0.0],   # label 1: correct
                       [0.0, 0.0, 1.0]])  # label 2: not in a pair
    labels = np.array([0, 0, 1, 1, 2])
    assert temporal_pair_accuracy(scores, labels, [(0, 1)]) == (0.5, 4)
    acc, n = temporal_pair_accuracy(scores, labels, [])
    assert math.isnan(acc) and n == 0


def test_checkpoints_of_another_configuration_are_not_resumed(source, split, tmp_path, monkeypatch):
    from zsar.training.loop import Trainer

    resumed = []
    original = Trainer._resume_from
    monkeypatch.setattr(Trainer, "_resume_from", lambda self, path: (resumed.append(path), original(self, path)))
    kwargs = dict(frames=4, epochs=1, batch_size=6, width=32, heads=2, progress=False)
    run = tmp_path / "split"  # the ceiling's shared fit goes beside it, in tmp_path/all_splits_fit
    run_split("supervised", kwargs, source, split, run, gzsl=False)
    second = run_split("supervised", {**kwargs, "heads": 4}, source, split, run, gzsl=False)
    assert resumed == []  # same optimiser settings and tensor shapes, other model: must start over
    recorded = json.loads((tmp_path / "all_splits_fit" / "fit_time.json").read_text())
    assert recorded["params"]["heads"] == 4 and second["metrics"]["train_time_s"] == recorded["train_time_s"]
    (run / "metrics.json").unlink()
    run_split("supervised", {**kwargs, "heads": 4}, source, split, run, gzsl=False)
    assert len(resumed) == 1  # the same configuration resumes its finished checkpoint


def test_splits_in_worker_processes_give_the_sequential_results(source, tmp_path):
    """``workers=2`` runs the splits in two subprocesses; each split's metrics equal a one-at-a-time run's."""
    kwargs = dict(frames=4, epochs=1, batch_size=6, width=32, layers=1, heads=2, joint_dim=32, progress=False)
    splits = random_class_splits(len(source.texts), 2, seed=0)
    one = run_splits("rest", kwargs, source, tmp_path / "one", splits=splits, gzsl=True, progress=False)
    two = run_splits("rest", kwargs, source, tmp_path / "two", splits=splits, gzsl=True, progress=False, workers=2)
    assert [r["split"] for r in two] == [s.name for s in splits]
    for a, b in zip(one, two):
        for key in ("top1", "top5", "gzsl_harmonic", "pair_acc"):
            assert a["metrics"][key] == pytest.approx(b["metrics"][key], nan_ok=True, abs=1e-6), key
    scores = [read_artifact(tmp_path / d / "rest" / splits[1].name).unseen_scores for d in ("one", "two")]
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-5)


def test_parallel_runs_read_finished_and_adoptable_splits_without_a_subprocess(source, tmp_path, monkeypatch):
    from zsar.experiments import parallel

    kwargs = dict(frames=4, progress=False)
    splits = random_class_splits(len(source.texts), 4, seed=0)
    first = run_splits("frame_average", kwargs, source, tmp_path / "02", splits=splits[:2], gzsl=True, progress=False)
    spawned = []
    monkeypatch.setattr(parallel, "_run_in_subprocess", lambda fn, job, tmp, threads, children: (spawned.append(job[3].name), fn(*job))[1])
    both = run_splits("frame_average", kwargs, source, tmp_path / "06", splits=splits, gzsl=True, progress=False,
                      workers=2, reuse_root=tmp_path / "02")
    assert sorted(spawned) == [s.name for s in splits[2:]]  # two adopted here, only the new splits are fitted
    assert [r["split"] for r in both] == [s.name for s in splits]
    assert [r["metrics"]["top1"] for r in both[:2]] == [r["metrics"]["top1"] for r in first]
    assert all((tmp_path / "06" / "frame_average" / s.name / ADOPTED_FILE).is_file() for s in splits[:2])
    spawned.clear()
    again = run_splits("frame_average", kwargs, source, tmp_path / "06", splits=splits, gzsl=True, progress=False, workers=2)
    assert spawned == [] and again == both


def test_parallel_ceiling_trains_its_shared_fit_once(source, tmp_path, monkeypatch):
    from zsar.experiments import runs

    kwargs = dict(frames=4, epochs=1, batch_size=6, width=32, heads=2, progress=False)
    splits = random_class_splits(len(source.texts), 3, seed=0)
    calls, original = [], runs.map_splits
    monkeypatch.setattr(runs, "map_splits", lambda fn, jobs, workers, *a: (
        calls.append(([j[3].name for j in jobs], workers)), original(fn, jobs, workers, *a))[1])
    results = run_splits("supervised", kwargs, source, tmp_path, splits=splits, gzsl=True, progress=False, workers=2)
    # the first split trains the shared fit alone; the others only read it, two at a time
    assert calls == [([splits[0].name], 1), ([s.name for s in splits[1:]], 2)]
    histories = list((tmp_path / "supervised").glob("*/*/history.json"))
    assert [h.parent.parent.name for h in histories] == ["all_splits_fit"]  # no per-split training folder
    assert [r["split"] for r in results] == [s.name for s in splits]


def test_map_splits_runs_jobs_in_order_and_reports_a_failing_one():
    from zsar.experiments.parallel import map_splits

    assert map_splits(math.sqrt, [(9.0,), (4.0,), (1.0,)], workers=2, progress=False) == [3.0, 2.0, 1.0]
    with pytest.raises(RuntimeError, match="math domain error"):  # the job's own traceback comes back
        map_splits(math.sqrt, [(4.0,), (-1.0,)], workers=2, progress=False)


def _child_pids(parent: int) -> list[int]:
    """Live (not zombie) split workers whose parent is ``parent``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z" and b"zsar.experiments.split_worker" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_failing_job_kills_the_other_workers_at_once():
    """map_splits must not wait for (or leave behind) the other splits' workers when one fails."""
    from zsar.experiments.parallel import map_splits

    # time.sleep(-1) fails at once; without the kill the call would wait 10 min for the other job
    with pytest.raises(RuntimeError, match="must be non-negative"):
        map_splits(time.sleep, [(600,), (-1,)], workers=2, progress=False)
    assert _child_pids(os.getpid()) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_exit_when_their_caller_is_killed(tmp_path):
    """A worker whose parent (a notebook kernel, say) is SIGKILLed stops instead of running on."""
    code = ("import time; from zsar.experiments.parallel import map_splits; "
            "map_splits(time.sleep, [(600,), (600,)], workers=2, progress=False)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert _wait_for(lambda: len(_child_pids(parent.pid)) == 2, timeout=60), "the workers did not start"
        workers = _child_pids(parent.pid)
    finally:
        parent.kill()
        parent.wait()
    alive = lambda: [pid for pid in workers if Path(f"/proc/{pid}").exists()  # noqa: E731
                     and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert _wait_for(lambda: not alive(), timeout=30), f"orphaned workers still running: {alive()}"


def test_a_run_of_another_root_with_the_same_config_is_adopted_not_refitted(rest_run, source, split, tmp_path,
                                                                            monkeypatch):
    """``reuse_dir`` (notebook 06 reusing 02's fits): same config -> the folder is taken over, fit skipped."""
    run_dir, first = rest_run

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run of the same configuration must not be refitted")

    monkeypatch.setattr(ResT, "fit", refuse)
    adopted = run_split("rest", REST, source, split, tmp_path / "b", seed=3, reuse_dir=run_dir)
    assert adopted == first
    assert json.loads((tmp_path / "b" / "adopted_from.json").read_text()) == {"source": str(run_dir.resolve())}
    for name in ("metrics.json", "run.npz"):
        assert (tmp_path / "b" / name).read_bytes() == (run_dir / name).read_bytes()
    # the checkpoints come along, so a later resume (few-shot adaptation) finds the fitted model
    assert sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.pt")) == sorted(
        p.relative_to(run_dir) for p in run_dir.rglob("*.pt")) != []
    # another configuration in the reuse folder is ignored (fitted afresh), and the source is left as it was
    before = (run_dir / "metrics.json").read_bytes()
    with pytest.raises(AssertionError, match="refitted"):
        run_split("rest", {**REST, "transfer_k": 2}, source, split, tmp_path / "c", seed=3, reuse_dir=run_dir)
    assert not (tmp_path / "c" / "metrics.json").exists() and (run_dir / "metrics.json").read_bytes() == before
    with pytest.raises(AssertionError, match="refitted"):  # resume=False never adopts
        run_split("rest", REST, source, split, tmp_path / "d", seed=3, reuse_dir=run_dir, resume=False)


def test_run_splits_adopts_the_ceiling_and_its_shared_fit(source, tmp_path, monkeypatch):
    kwargs = dict(frames=4, epochs=1, batch_size=6, width=32, heads=2, progress=False)
    splits = random_class_splits(len(source.texts), 2, seed=0)
    first = run_splits("supervised", kwargs, source, tmp_path / "a", splits=splits, gzsl=False, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("refitted")

    monkeypatch.setattr(Supervised, "fit", refuse)
    again = run_splits("supervised", kwargs, source, tmp_path / "b", splits=splits, gzsl=False, progress=False,
                       reuse_root=tmp_path / "a", workers=2)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)  # NaN GZSL metrics compare as text
    assert (tmp_path / "b" / "supervised" / "all_splits_fit" / "train" / "history.json").is_file()
