"""Run a method on a zero-shot split (or many) and record its metrics.

Data of one split (:func:`build_split_data`):

* ``train`` — videos of the **seen** classes (the official *train* list when ``gzsl``, all of
  them otherwise), minus ``val``: a stratified ``val_fraction`` of them for model selection.
* ``unseen_test`` — every video of the unseen classes (the standard 50/50 protocol), labels
  ``0..U-1``; ``testlist_mask`` marks those also in the official *test* list.
* ``gzsl_test`` — test-list videos of the seen classes + ``unseen_test``, labels over
  seen + unseen (``0..S-1`` seen). Seen test videos never reach training.

The supervised ceiling (``is_zero_shot = False``) trains on the train list of **all** classes and
is tested on the test-list videos only; that fit does not depend on the split, so :func:`run_split`
trains it once in ``<split folder>/../all_splits_fit`` and every split reuses it. Unseen classes' texts are checked not to reach a zero-shot
method's training (:func:`~zsar.text.class_texts.check_no_leaks`; a leak raises).

Metrics (fractions; ``nan`` where undefined): ``top1``, ``top5``, ``mean_class_acc`` over the
unseen classes; ``top1_testlist`` (the same on test-list videos, comparable with the ceiling);
``gzsl_seen``, ``gzsl_unseen``, ``gzsl_harmonic``; ``pair_acc`` (2-way accuracy between the two
classes of each temporal pair whose both classes are unseen) and ``pair_videos``;
``train_time_s``, ``predict_time_s``, ``trainable_params``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zsar.data.protocols import ZeroShotSplit, random_class_splits, restrict_classes
from zsar.data.records import VideoList
from zsar.evaluation.metrics import accuracy_report, gzsl_accuracy
from zsar.io import atomic_write_json, link_or_copy
from zsar.methods import METHODS, ClassTexts, check_no_leaks, make_method

METRIC_KEYS = ("top1", "top5", "mean_class_acc", "top1_testlist", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic",
               "pair_acc", "pair_videos", "train_time_s", "predict_time_s", "trainable_params")
RESULT_NEUTRAL_PARAMS = ("resume", "progress", "num_workers")  # do not change what a run computes
REFERENCE_MARK = " †"  # appended to the table name of methods that are not zero-shot
DatasetFactory = Callable[[VideoList, str], Any]


@dataclass(frozen=True)
class DataSource:
    """Everything a split needs about a dataset.

    Attributes:
        videos: every video of every class (labels index ``texts``).
        test_ids: ``video_id`` s of the official test list (disjoint groups).
        texts: texts of all classes, in label order.
        pairs: ``(i, j)`` class indices of temporal pairs (time reversals of each other).
        name: for messages and tables.
    """

    videos: VideoList
    test_ids: frozenset[str]
    texts: ClassTexts
    pairs: tuple[tuple[int, int], ...] = ()
    name: str = ""


def load_embedded_source(data_root: str | os.PathLike, split: int = 1) -> DataSource:
    """A :class:`DataSource` of a generated embedded benchmark at ``data_root``."""
    from zsar.data.datasets import embedded
    from zsar.data.embedded import load_catalog, temporal_pairs

    catalog = load_catalog(data_root)
    videos = embedded(data_root, split=split, subset="all")
    if [c.name for c in catalog] != list(videos.class_names):
        raise ValueError(f"{data_root}: classes.json and classInd.txt list different classes")
    test_ids = frozenset(r.video_id for r in embedded(data_root, split=split, subset="test").records)
    return DataSource(videos, test_ids, ClassTexts.from_catalog(catalog), tuple(temporal_pairs(catalog)),
                      f"embedded:{Path(data_root).name}")


@dataclass
class SplitData:
    """Relabelled video lists of one split (see the module docstring)."""

    seen_texts: ClassTexts
    unseen_texts: ClassTexts
    train: VideoList
    val: VideoList | None
    unseen_test: VideoList
    gzsl_test: VideoList | None
    testlist_mask: np.ndarray
    pairs: list[tuple[int, int]]
    fit_texts: ClassTexts


def _holdout_mask(labels: Sequence[int], fraction: float, seed: int) -> np.ndarray:
    """Stratified hold-out: ``round(fraction * n_c)`` videos per class, at least one left to train."""
    labels = np.asarray(labels)
    held = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return held
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_out = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        if n_out > 0:
            held[rng.choice(members, size=n_out, replace=False)] = True
    return held


def _records(videos: VideoList, keep) -> VideoList:
    return VideoList([r for r in videos.records if keep(r)], videos.class_names, videos.root, videos.source,
                     videos.class_dirs)


def build_split_data(source: DataSource, split: ZeroShotSplit, zero_shot: bool = True, gzsl: bool = True,
                     val_fraction: float = 0.2, seed: int = 0) -> SplitData:
    """Partition ``source`` for one split; ``zero_shot=False`` builds the supervised ceiling's data.

    Raises:
        ValueError: GZSL or the ceiling asked of a source without test-list videos for the split.
    """
    seen, unseen = list(split.seen), list(split.unseen)
    seen_set, unseen_set = set(seen), set(unseen)
    fit_set = seen_set if zero_shot else seen_set | unseen_set
    in_test = lambda r: r.video_id in source.test_ids  # noqa: E731
    # GZSL keeps the seen test-list videos for testing; the ceiling must never train on test videos
    exclude_test = gzsl or not zero_shot
    pool = _records(source.videos, lambda r: r.label in fit_set and not (exclude_test and in_test(r)))
    # the ceiling's classes in canonical order: its training data (and so its fit) is the same for
    # every split, and run_split trains it once; scores are mapped to the split's classes by name
    fit_classes = seen if zero_shot else sorted(seen + unseen)
    pool = restrict_classes(pool, fit_classes)
    held = _holdout_mask(pool.labels, val_fraction, seed)
    train = VideoList([r for r, h in zip(pool.records, held) if not h], pool.class_names, pool.root, pool.source)
    val = VideoList([r for r, h in zip(pool.records, held) if h], pool.class_names, pool.root, pool.source)
    unseen_list = _records(source.videos, lambda r: r.label in unseen_set and (zero_shot or in_test(r)))
    unseen_test = restrict_classes(unseen_list, unseen)
    gzsl_test = None
    if gzsl:
        both = _records(source.videos, lambda r: (r.label in seen_set and in_test(r))
                        or (r.label in unseen_set and (zero_shot or in_test(r))))
        gzsl_test = restrict_classes(both, seen + unseen)
    if (gzsl and not set(gzsl_test.labels) & set(range(len(seen)))) or not len(unseen_test):
        raise ValueError(f"{source.name or 'source'}, {split.name or 'split'}: no test-list videos for "
                         f"{'GZSL' if zero_shot else 'the supervised ceiling'}; use gzsl=False or a source with "
                         "a test list")
    position = {c: i for i, c in enumerate(unseen)}
    pairs = [(position[a], position[b]) for a, b in source.pairs if a in position and b in position]
    mask = np.array([in_test(r) for r in unseen_test.records], dtype=bool)
    seen_texts, unseen_texts = source.texts.subset(seen), source.texts.subset(unseen)
    return SplitData(seen_texts, unseen_texts, train, val if len(val) else None, unseen_test, gzsl_test, mask,
                     pairs, seen_texts if zero_shot else source.texts.subset(fit_classes))


@dataclass(frozen=True)
class DefaultDatasetFactory:
    """``(video_list, role) -> Dataset`` read as the backbone asks (:func:`~zsar.models.video_pipeline`).

    ``role`` is ``"train"`` (random sampling and crops), ``"val"``, ``"unseen_test"`` or
    ``"gzsl_test"``. With a :class:`~zsar.data.frame_cache.FrameCache` the datasets read decoded
    frames from it (``CachedVideoDataset``, same sample dicts; missing entries are built).
    A picklable object (not a closure), so split runs can go to worker processes.
    """

    backbone: str
    frames: int
    seed: int
    pretrained: str | None = None
    frame_cache: Any = None

    def __call__(self, video_list: VideoList, role: str):
        from zsar.data.dataset import VideoDataset
        from zsar.data.frame_cache import CachedVideoDataset
        from zsar.models.preprocess import video_pipeline

        train = role == "train"
        pipeline = video_pipeline(self.backbone, self.pretrained, self.frames)
        if self.frame_cache is not None:
            return CachedVideoDataset(video_list, self.frame_cache, pipeline.sampler, pipeline.transform(train), train,
                                      self.seed, build_missing=True)
        return VideoDataset(video_list, pipeline.sampler, pipeline.transform(train), train=train, seed=self.seed)


def default_dataset_factory(backbone: str, frames: int, seed: int, pretrained: str | None = None,
                            frame_cache=None) -> DatasetFactory:
    """A :class:`DefaultDatasetFactory` (TSN sampling, CLIP transform, optional frame cache)."""
    return DefaultDatasetFactory(backbone, frames, seed, pretrained, frame_cache)


def temporal_pair_accuracy(scores: np.ndarray, labels: np.ndarray,
                           pairs: Sequence[tuple[int, int]]) -> tuple[float, int]:
    """2-way accuracy over the videos of each pair's two classes, between those two columns.

    Returns:
        ``(accuracy, number of videos)``; ``(nan, 0)`` without pairs.
    """
    correct, total = 0, 0
    for a, b in pairs:
        for cls, other in ((a, b), (b, a)):
            rows = labels == cls
            # ties go to the lower index, as argmax does
            wins = scores[rows, cls] > scores[rows, other] if cls > other else scores[rows, cls] >= scores[rows, other]
            correct, total = correct + int(wins.sum()), total + int(rows.sum())
    return (correct / total if total else math.nan), total


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


def _predict(method, data: SplitData, make: DatasetFactory, gzsl: bool) -> tuple[np.ndarray, np.ndarray | None]:
    unseen_scores = method.predict_scores(make(data.unseen_test, "unseen_test"), data.unseen_texts, data.seen_texts)
    gzsl_scores = None
    if gzsl and data.gzsl_test is not None:
        gzsl_scores = method.predict_scores(make(data.gzsl_test, "gzsl_test"), data.seen_texts + data.unseen_texts,
                                            data.seen_texts)
    return np.asarray(unseen_scores, dtype=np.float32), gzsl_scores


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
        run_dir: output folder: ``metrics.json``, ``scores.npz`` and the method's checkpoints.
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
    if done is not None:
        return done
    # the supervised ceiling's fit does not depend on the split: trained once, shared by every split
    fit_dir = run_dir if method.is_zero_shot else run_dir.parent / SHARED_FIT_DIR
    data, make = fit_on_split(method, source, split, fit_dir, seed, gzsl, val_fraction, dataset_factory)
    start = time.perf_counter()
    unseen_scores, gzsl_scores = _predict(method, data, make, gzsl)
    metrics = split_metrics(data, unseen_scores, gzsl_scores)
    train_time = method.train_time_s_ if method.is_zero_shot else shared_fit_time(fit_dir, method.get_params(), method.train_time_s_)
    metrics.update(train_time_s=float(train_time), predict_time_s=time.perf_counter() - start,
                   trainable_params=float(method.trainable_parameters()))
    result = {"method": method.display_name + ("" if method.is_zero_shot else REFERENCE_MARK),
              "method_name": method_name, "split": split.name or "split", "seed": seed,
              "zero_shot": method.is_zero_shot, "metrics": {k: float(metrics[k]) for k in METRIC_KEYS},
              "config": config}
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(run_dir / "scores.npz", unseen_scores=unseen_scores,
                        unseen_labels=np.asarray(data.unseen_test.labels),
                        unseen_video_ids=np.array([r.video_id for r in data.unseen_test.records]))
    atomic_write_json(run_dir / "metrics.json", result)
    return result


class _Children:
    """The split workers a :func:`map_splits` call started; all killed if the call is left early."""

    def __init__(self):
        import threading

        self.procs: set = set()
        self.closed = False
        self.lock = threading.Lock()

    def start(self, args: list[str], env: dict):
        import subprocess

        with self.lock:
            if self.closed:  # the call is being left: start nothing more
                raise RuntimeError("map_splits was stopped")
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            self.procs.add(proc)
        return proc

    def kill_all(self) -> None:
        with self.lock:
            self.closed = True
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()


def _run_in_subprocess(fn: Callable, job: tuple, folder: Path, threads: int, children: _Children) -> Any:
    """``fn(*job)`` in a fresh ``python -m zsar.experiments.split_worker``; its result, or a RuntimeError."""
    import pickle
    import sys

    job_file, result_file = folder / "job.pkl", folder / "result.pkl"
    folder.mkdir(parents=True)
    with open(job_file, "wb") as f:
        pickle.dump((fn, job), f)
    from zsar.experiments.split_worker import PARENT_ENV

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           PARENT_ENV: str(os.getpid())}
    proc = children.start([sys.executable, "-m", "zsar.experiments.split_worker", str(job_file), str(result_file),
                           str(threads)], env)
    _, stderr = proc.communicate()
    if proc.returncode != 0 or not result_file.is_file():
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"split job {folder.name} failed (exit code {proc.returncode}):\n{tail}")
    with open(result_file, "rb") as f:
        return pickle.load(f)


def map_splits(fn: Callable, jobs: Sequence[tuple], workers: int = 1, desc: str = "splits",
               progress: bool | None = None) -> list:
    """``[fn(*job) for job in jobs]``, in order; ``workers > 1`` runs that many jobs at once.

    Split runs are independent (their own folders, seeds and checkpoints), so they parallelise
    cleanly; on a GPU several small fits share the device and keep it busy. Each parallel job runs
    in a fresh interpreter (:mod:`zsar.experiments.split_worker`, not ``multiprocessing``, which
    inherits a notebook kernel's main module and state) with ``cpu_count // workers`` torch
    threads. ``fn`` and the jobs must be picklable (module-level functions, :class:`DataSource`,
    :class:`DefaultDatasetFactory`). Results equal a sequential run's: each job seeds itself from
    its arguments. When a job fails or the call is interrupted (a kernel interrupt), the other
    workers are killed at once rather than left running; a worker whose caller is killed outright
    stops by itself (:mod:`~zsar.experiments.split_worker` watches its parent). Finished splits
    keep their run folders, so the next call resumes from them.

    Raises:
        RuntimeError: a job failed; the message holds the end of its traceback.
    """
    import tempfile
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    if workers <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in tqdm(jobs, desc=desc, disable=progress is False)]
    bar = tqdm(total=len(jobs), desc=desc, disable=progress is False)
    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list = [None] * len(jobs)
    children = _Children()
    with tempfile.TemporaryDirectory(prefix="zsar_splits_") as tmp, ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(_run_in_subprocess, fn, job, Path(tmp) / f"job{i}", threads, children): i
                   for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        except BaseException:  # a failed job, or KeyboardInterrupt: stop the others now
            for future in futures:
                future.cancel()
            children.kill_all()
            raise
        finally:
            bar.close()
    return results


def named_splits(splits: Sequence[ZeroShotSplit]) -> list[ZeroShotSplit]:
    """``splits`` with ``split<i>`` names where they have none."""
    return [s if s.name else dataclasses.replace(s, name=f"split{i}") for i, s in enumerate(splits)]


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
