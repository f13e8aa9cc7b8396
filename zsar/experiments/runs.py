"""Run a method on a zero-shot split (or many), record its metrics and its run artefact.

:func:`run_split` builds the split's data (:func:`~zsar.experiments.split_data.build_split_data`),
fits the method on the seen classes, encodes the test videos **once** and scores them for the
unseen classes and for GZSL, then writes ``metrics.json`` and the run artefact
(:mod:`zsar.experiments.artifact`). The supervised ceiling (``is_zero_shot = False``) trains on
all classes; that fit does not depend on the split, so :func:`run_split` trains it once in
``<split folder>/../all_splits_fit`` and every split reuses it. Unseen classes' texts are
checked not to reach a zero-shot method's training
(:func:`~zsar.text.class_texts.check_no_leaks`; a leak raises).

Metrics (fractions; ``nan`` where undefined): ``top1``, ``top5``, ``mean_class_acc`` over the
unseen classes; ``top1_testlist`` (the same on test-list videos, comparable with the ceiling);
``gzsl_seen``, ``gzsl_unseen``, ``gzsl_harmonic``; ``pair_acc`` (2-way accuracy between the two
classes of each temporal pair whose both classes are unseen) and ``pair_videos``;
``train_time_s``, ``predict_time_s``, ``trainable_params``.

:func:`run_splits` runs many splits (in parallel with ``workers > 1``, see
:func:`~zsar.experiments.parallel.map_splits`); a finished run of the same configuration in
another run root is adopted (:func:`adopt_run`) instead of fitted again.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from zsar.data.protocols import ZeroShotSplit, random_class_splits
from zsar.evaluation.metrics import accuracy_report, gzsl_accuracy, temporal_pair_accuracy
from zsar.experiments.artifact import RunArtifact
from zsar.experiments.parallel import map_splits
from zsar.experiments.sources import DataSource, load_embedded_source
from zsar.experiments.split_data import (
    DatasetFactory,
    SplitData,
    build_split_data,
    default_dataset_factory,
    named_splits,
)
from zsar.io import atomic_write_json, link_or_copy
from zsar.methods import METHODS, check_no_leaks, make_method
from zsar.progress import emit

METRIC_KEYS = ("top1", "top5", "mean_class_acc", "top1_testlist", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic",
               "pair_acc", "pair_videos", "train_time_s", "predict_time_s", "trainable_params")
RESULT_NEUTRAL_PARAMS = ("resume", "progress", "num_workers")  # do not change what a run computes
REFERENCE_MARK = " †"  # appended to the table name of methods that are not zero-shot


def split_metrics(data: SplitData, unseen_scores: np.ndarray, gzsl_scores: np.ndarray | None) -> dict[str, float]:
    """The accuracy part of ``METRIC_KEYS`` from the scores of one split."""
    labels = np.asarray(data.unseen_test.labels)
    report = accuracy_report(unseen_scores, labels, ks=(1, 5))
    metrics = {"top1": report["top1"], "top5": report.get("top5", math.nan),
               "mean_class_acc": report["mean_class_acc"]}
    mask = data.testlist_mask
    metrics["top1_testlist"] = (float((unseen_scores[mask].argmax(1) == labels[mask]).mean())
                                if mask.any() else math.nan)
    metrics["gzsl_seen"] = metrics["gzsl_unseen"] = metrics["gzsl_harmonic"] = math.nan
    if gzsl_scores is not None:
        g = gzsl_accuracy(gzsl_scores, np.asarray(data.gzsl_test.labels), range(len(data.seen_texts)))
        metrics.update(gzsl_seen=g["seen"], gzsl_unseen=g["unseen"], gzsl_harmonic=g["harmonic"])
    acc, n = temporal_pair_accuracy(unseen_scores, labels, data.pairs)
    metrics.update(pair_acc=acc, pair_videos=float(n))
    return metrics


def split_config(method_name: str, params: dict, split: ZeroShotSplit, seed: int, gzsl: bool, val_fraction: float,
            source: DataSource) -> dict:
    """What identifies a run: a stored ``metrics.json`` with another config is recomputed."""
    params = {k: v for k, v in params.items() if k not in RESULT_NEUTRAL_PARAMS}
    return {"method_name": method_name, "params": params, "seen": list(split.seen), "unseen": list(split.unseen),
            "seed": seed, "gzsl": gzsl, "val_fraction": val_fraction, "data": source.name}


def load_if_done(path: Path, config: dict) -> dict | None:
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if stored.get("config") == config else None


ADOPTED_FILE = "adopted_from.json"
"""Written by :func:`adopt_run` in a run folder taken over from another run root: ``{"source": path}``."""


def adopt_run(source_dir: str | os.PathLike, run_dir: str | os.PathLike, config: dict) -> dict | None:
    """Take over a finished run of the same ``config`` from another run root, or ``None``.

    When ``source_dir/metrics.json`` records exactly ``config``, the whole folder (metrics,
    scores, checkpoints, exports) is hard-linked (copied across file systems) into ``run_dir``, so
    later steps that resume from ``run_dir`` (few-shot adaptation, restoring the fitted model) find
    the fit there; for the supervised ceiling its shared ``all_splits_fit`` folder comes along.
    ``run_dir/adopted_from.json`` (:data:`ADOPTED_FILE`) records where it came from.
    Files are only ever replaced by rename, so a link never lets one run folder change the other.

    Returns:
        The stored result, or ``None`` (no finished run there, or another configuration).
    """
    source_dir, run_dir = Path(source_dir), Path(run_dir)
    stored = load_if_done(source_dir / "metrics.json", config)
    if stored is None:
        return None
    pairs = [(source_dir, run_dir)]
    shared = source_dir.parent / SHARED_FIT_DIR
    if not stored.get("zero_shot", True) and shared.is_dir() and not (run_dir.parent / SHARED_FIT_DIR).exists():
        pairs.append((shared, run_dir.parent / SHARED_FIT_DIR))
    for src, dst in pairs:
        shutil.copytree(src, dst, copy_function=link_or_copy, dirs_exist_ok=True)
    atomic_write_json(run_dir / ADOPTED_FILE, {"source": str(source_dir.resolve())})
    return stored


SHARED_FIT_DIR = "all_splits_fit"
"""Folder, beside the split folders, of a fit shared by every split (the supervised ceiling)."""


SHARED_FIT_TIME = "fit_time.json"
"""File in :data:`SHARED_FIT_DIR` with the shared fit's own training time."""


def shared_fit_time(fit_dir: str | os.PathLike, params: dict, measured_s: float) -> float:
    """Training time of the fit shared by every split, the same on each split's row.

    The first split fits and records ``measured_s`` with the method's ``params`` in
    ``fit_dir``/:data:`SHARED_FIT_TIME`; the others resume the finished fit (their ``measured_s``
    is the restored epochs' recorded time plus their own loading time) and report the recorded
    time instead, so every row shows the cost of the one model they all evaluate. A record of
    other ``params`` is stale (that fit was replaced).
    """
    path = Path(fit_dir) / SHARED_FIT_TIME
    params = json.loads(json.dumps(params, default=str))
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("params") == params:
            return float(record["train_time_s"])
    atomic_write_json(path, {"train_time_s": float(measured_s), "params": params})
    return float(measured_s)


def fit_on_split(method, source: DataSource, split: ZeroShotSplit, run_dir: str | os.PathLike, seed: int = 0,
                 gzsl: bool = True, val_fraction: float = 0.2,
                 dataset_factory: DatasetFactory | None = None) -> tuple[SplitData, DatasetFactory]:
    """Build ``split``'s data and fit ``method`` (an unfitted :class:`ZeroShotMethod`) on it in ``run_dir``.

    The fitting half of :func:`run_split`, shared with the few-shot runner. A zero-shot method's
    encoded texts are checked against the unseen classes afterwards.

    Returns:
        ``(data, make)``: the split data and the dataset factory used.

    Raises:
        LeakageError: the method encoded text of an unseen class while fitting.
    """
    data = build_split_data(source, split, method.is_zero_shot, gzsl, val_fraction, seed)
    make = dataset_factory or default_dataset_factory(method.backbone, method.frames, seed, method.pretrained)
    val = make(data.val, "val") if data.val is not None else None
    method.fit(make(data.train, "train"), data.fit_texts, run_dir, val_dataset=val)
    if method.is_zero_shot:
        check_no_leaks(method.encoded_texts(), data.seen_texts, data.unseen_texts, f"{method.name}.fit")
    return data, make


def _prepare_split(method_name: str, method_kwargs: dict | None, source: DataSource, split: ZeroShotSplit,
                   run_dir: Path, seed: int = 0, gzsl: bool = True, val_fraction: float = 0.2,
                   resume: bool = True, reuse_dir: str | os.PathLike | None = None):
    """``(method, config, result)``: the unfitted method, its run configuration and, where the run
    is already finished in ``run_dir`` (or adoptable from ``reuse_dir``), its result, else ``None``."""
    method = make_method(method_name, **{"seed": seed, "resume": resume, **(method_kwargs or {})})
    config = split_config(method_name, method.get_params(), split, seed, gzsl, val_fraction, source)
    done = load_if_done(run_dir / "metrics.json", config) if resume else None
    if done is None and resume and reuse_dir is not None:
        done = adopt_run(reuse_dir, run_dir, config)
    return method, config, done


def run_split(method_name: str, method_kwargs: dict | None, data_root: str | os.PathLike | DataSource,
              split: ZeroShotSplit, run_dir: str | os.PathLike, seed: int = 0, gzsl: bool = True,
              val_fraction: float = 0.2, dataset_factory: DatasetFactory | None = None,
              resume: bool = True, reuse_dir: str | os.PathLike | None = None) -> dict:
    """Fit ``method_name`` on the seen classes of ``split``, test on the unseen ones, save metrics.

    Args:
        method_name: a key of :data:`zsar.methods.METHODS`.
        method_kwargs: constructor arguments (``seed`` defaults to ``seed``).
        data_root: an embedded benchmark folder, or a :class:`DataSource`.
        split: seen/unseen classes (indices into the source's classes).
        run_dir: output folder: ``metrics.json``, the run artefact ``run.npz`` and the method's checkpoints.
        seed: seeds the method, the data draws and the validation hold-out.
        gzsl: also evaluate generalised ZSL (seen test-list videos are then held out of training).
        val_fraction: share of the training videos held out for model selection (seen classes).
        dataset_factory: ``(video_list, role) -> Dataset``; default :func:`default_dataset_factory`.
        resume: reuse a ``metrics.json`` of the same configuration (and the method's checkpoints).
        reuse_dir: a finished run of this method and split in another run root (e.g. notebook
            02's); with ``resume`` and the same configuration it is adopted (:func:`adopt_run`)
            instead of fitting again. Another configuration there is ignored.

    Returns:
        ``{"method", "method_name", "split", "seed", "zero_shot", "metrics", "config"}`` — the
        shape :mod:`zsar.evaluation.tables` expects (``method`` ends in ``†`` when not zero-shot).

    Raises:
        LeakageError: a zero-shot method encoded text of an unseen class while fitting.
    """
    run_dir = Path(run_dir)
    source = data_root if isinstance(data_root, DataSource) else load_embedded_source(data_root)
    method, config, done = _prepare_split(method_name, method_kwargs, source, split, run_dir, seed, gzsl,
                                          val_fraction, resume, reuse_dir)
    emit("split", method=method_name, split=split.name or "split", state="start")
    if done is not None:
        emit("split", method=method_name, split=split.name or "split", state="done")
        return done
    # the supervised ceiling's fit does not depend on the split: trained once, shared by every split
    fit_dir = run_dir if method.is_zero_shot else run_dir.parent / SHARED_FIT_DIR
    data, make = fit_on_split(method, source, split, fit_dir, seed, gzsl, val_fraction, dataset_factory)
    start = time.perf_counter()
    artifact = evaluate_split(method, data, make, config, split)
    metrics = split_metrics(data, artifact.unseen_scores, artifact.gzsl_scores)
    train_time = method.train_time_s_ if method.is_zero_shot else shared_fit_time(fit_dir, method.get_params(), method.train_time_s_)
    metrics.update(train_time_s=float(train_time), predict_time_s=time.perf_counter() - start,
                   trainable_params=float(method.trainable_parameters()))
    result = {"method": method.display_name + ("" if method.is_zero_shot else REFERENCE_MARK),
              "method_name": method_name, "split": split.name or "split", "seed": seed,
              "zero_shot": method.is_zero_shot, "metrics": {k: float(metrics[k]) for k in METRIC_KEYS},
              "config": config}
    artifact.write(run_dir)  # before metrics.json, which marks the run finished
    atomic_write_json(run_dir / "metrics.json", result)
    emit("split", method=method_name, split=split.name or "split", state="done")
    return result


def evaluate_split(method, data: SplitData, make: DatasetFactory, config: dict, split: ZeroShotSplit) -> RunArtifact:
    """Encode the split's test videos once with a fitted ``method`` and score them: the run artefact.

    The videos are the GZSL test set (it holds every unseen test video), or the unseen test
    videos alone without GZSL. The unseen scores are the method's scores of the unseen test
    videos over the unseen classes, from the same encoded features as the GZSL scores.
    """
    seen, classes = data.seen_texts, data.seen_texts + data.unseen_texts
    with_gzsl = data.gzsl_test is not None  # build_split_data makes it only for a GZSL run
    videos, role, offset = ((data.gzsl_test, "gzsl_test", 0) if with_gzsl
                            else (data.unseen_test, "unseen_test", len(seen)))
    features = method.video_features(make(videos, role))
    row = {r.video_id: i for i, r in enumerate(videos.records)}
    unseen_rows = np.array([row[r.video_id] for r in data.unseen_test.records], dtype=np.int64)
    unseen_scores = method.scores_from_features({k: v[unseen_rows] for k, v in features.items()},
                                                data.unseen_texts, seen)
    val = method.video_embeddings(make(data.val, "val")) if data.val is not None else None
    extras = method.analysis_arrays(seen, data.unseen_texts) if hasattr(method, "analysis_arrays") else {}
    # the seen videos of the GZSL test set are test-list videos by construction
    testlist = {r.video_id for r, m in zip(data.unseen_test.records, data.testlist_mask) if m}
    testlist |= {r.video_id for r in videos.records if offset == 0 and r.label < len(seen)}
    return RunArtifact(
        method_name=config["method_name"], split=split.name or "split", config=config,
        class_ids=np.array(list(split.seen) + list(split.unseen), dtype=np.int64), n_seen=len(seen),
        video_ids=np.array([r.video_id for r in videos.records]),
        labels=np.asarray(videos.labels, dtype=np.int64) + offset,
        testlist=np.array([r.video_id in testlist for r in videos.records], dtype=bool),
        embeddings=features["embedding"], prototypes=method.class_prototypes(classes, seen),
        unseen_scores=np.asarray(unseen_scores, dtype=np.float32),
        gzsl_scores=method.scores_from_features(features, classes, seen) if with_gzsl else None,
        val_embeddings=val, val_labels=None if val is None else np.asarray(data.val.labels, dtype=np.int64),
        pairs=tuple(map(tuple, data.pairs)), extras=extras)


def _reuse_dir(reuse_root: str | os.PathLike | None, run_dir: Path) -> Path | None:
    """The same ``<method>/<split>`` folder as ``run_dir`` under ``reuse_root`` (``None`` without one)."""
    return None if reuse_root is None else Path(reuse_root) / run_dir.parent.name / run_dir.name


def _run_split_reusing(*job, reuse_root: Path, **kwargs) -> dict:
    """``run_split(*job)`` with ``reuse_dir`` = :func:`_reuse_dir` of its run folder (picklable)."""
    return run_split(*job, reuse_dir=_reuse_dir(reuse_root, job[-1]), **kwargs)


def run_splits(method_name: str, method_kwargs: dict | None, data_root: str | os.PathLike | DataSource,
               run_root: str | os.PathLike, splits: Sequence[ZeroShotSplit] | None = None, n_splits: int = 10,
               seed: int = 0, progress: bool | None = None, workers: int = 1,
               reuse_root: str | os.PathLike | None = None, **kwargs) -> list[dict]:
    """:func:`run_split` over ``splits`` (default: ``random_class_splits(C, n_splits, seed=seed)``).

    Each split runs in ``run_root/<method_name>/<split name>``; ``kwargs`` go to :func:`run_split`.
    ``workers > 1`` runs that many splits at once in fresh subprocesses (:func:`map_splits`); a
    method that is not zero-shot (the ceiling, one fit shared by every split) runs its first
    split alone, so its shared fit is trained once and then only read. ``reuse_root``: another
    run root (same layout) whose finished runs of the same configuration are adopted, not refitted
    (``run_split``'s ``reuse_dir``).

    Returns:
        One result per split, ready for :func:`zsar.evaluation.tables.to_markdown`.
    """
    source = data_root if isinstance(data_root, DataSource) else load_embedded_source(data_root)
    if splits is None:
        splits = random_class_splits(len(source.texts), n_splits, seed=seed)
    jobs = [(method_name, method_kwargs, source, split, Path(run_root) / method_name / split.name)
            for split in named_splits(splits)]
    emit("splits", method=method_name, total=len(jobs))
    fn = (functools.partial(run_split, seed=seed, **kwargs) if reuse_root is None
          else functools.partial(_run_split_reusing, reuse_root=Path(reuse_root), seed=seed, **kwargs))
    desc = f"{method_name} splits"
    if workers <= 1:
        return map_splits(fn, jobs, workers, desc, progress)
    # finished or adoptable runs are read here: a subprocess (a fresh interpreter) only for real fits
    done = [_finished_job(job, seed, reuse_root, kwargs) for job in jobs]
    todo = [job for job, result in zip(jobs, done) if result is None]
    if len(todo) > 1 and not getattr(METHODS.get(method_name), "is_zero_shot", True):
        fitted = map_splits(fn, todo[:1], 1, desc, progress) + map_splits(fn, todo[1:], workers, desc, progress)
    else:
        fitted = map_splits(fn, todo, workers, desc, progress)
    fitted_iter = iter(fitted)
    return [result if result is not None else next(fitted_iter) for result in done]


def _finished_job(job: tuple, seed: int, reuse_root: str | os.PathLike | None, kwargs: dict) -> dict | None:
    """The result of a ``run_splits`` job that needs no fit (finished or adoptable), else ``None``."""
    options = {k: kwargs[k] for k in ("gzsl", "val_fraction", "resume") if k in kwargs}
    return _prepare_split(*job, seed=seed, reuse_dir=_reuse_dir(reuse_root, job[-1]), **options)[2]
