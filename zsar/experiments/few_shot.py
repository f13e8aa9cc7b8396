"""Few-shot evaluation: adapt a fitted zero-shot method with K clips of each unseen class.

Protocol (K in ``{2, 4, 8, 16}``): fit on the seen classes of a split exactly as
:func:`~zsar.experiments.runs.run_split` does, then for each K and each draw pick K
**support** clips per unseen class from the unseen classes' official *train* list and score the
unseen classes' *test* list (``SplitData.testlist_mask``), the same clips for every K and draw.
Support and test clips are disjoint by construction; a draw is seeded by ``(seed, split, K, draw)``
(:func:`episode_seed`), and K larger than the train clips of a class is skipped with a warning.

Adaptations, through the public API of any fitted method (``video_embeddings`` ``(N, D)``,
``class_prototypes`` ``(C, D)``), all scored by cosine (``linear`` by probability):

* ``prototype`` — class prototype = normalised mean of its K normalised support embeddings.
* ``fused`` — normalised ``beta * zero-shot prototype + (1 - beta) * support prototype``.
* ``linear`` — a scikit-learn logistic regression (L2, inverse strength ``probe_c``) on the
  ``K * C`` normalised support embeddings.

Every unseen clip is embedded once per fitted method and split; episodes only index the cache.
A finished run (``run_split``'s artefact) already holds those embeddings and the zero-shot
prototypes, so :func:`artifact_few_shot` adapts it without the model.
A ``k = 0`` row (adaptation ``zero_shot``) scores the cached test embeddings against the zero-shot
prototypes by cosine, the reference the curves start from (ESZSL's own score is a dot product, so
its ``zero_shot`` row can differ from its ``run_split`` top-1). Methods that are not zero-shot
(the supervised ceiling has seen the unseen classes) or lack a video embedding are skipped
(:func:`few_shot_skip_reason`).

Entry points: :func:`run_few_shot_splits` (adapt over splits, in ``run_splits``' folders: from
the finished runs' artefacts, else fitting), :func:`few_shot_eval` (one fitted method, one split),
:func:`artifact_few_shot` (one finished run), :func:`summarize_few_shot` (mean ± std per
method, K, adaptation) and :func:`few_shot_table` (``"mean ± std"`` strings, K as columns).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from zsar.data.errors import SplitError
from zsar.data.protocols import ZeroShotSplit, kshot_indices, random_class_splits
from zsar.evaluation.metrics import accuracy_report, mean_std
from zsar.evaluation.scores import cosine_scores, l2_normalize
from zsar.experiments.artifact import ArtifactError, RunArtifact, read_artifact
from zsar.experiments.parallel import map_splits
from zsar.experiments.runs import fit_on_split, load_if_done, split_config
from zsar.experiments.sources import DataSource, load_embedded_source
from zsar.experiments.split_data import DatasetFactory, SplitData, build_split_data, named_splits
from zsar.io import atomic_write_json
from zsar.methods import METHODS, ZeroShotMethod, make_method

ADAPTATIONS = ("prototype", "fused", "linear")
ZERO_SHOT_ROW = "zero_shot"
DEFAULT_K_VALUES = (2, 4, 8, 16)
FEW_SHOT_FILE = "few_shot.json"
ROW_METRICS = ("top1", "mean_class_acc")


class FewShotNotApplicable(ValueError):
    """The method cannot be adapted with support clips (see :func:`few_shot_skip_reason`)."""


def few_shot_skip_reason(method) -> str | None:
    """Why ``method`` (a class or an instance) has no few-shot evaluation, or ``None`` if it has one."""
    cls = method if isinstance(method, type) else type(method)
    name = getattr(cls, "name", cls.__name__)
    if not getattr(cls, "is_zero_shot", True):
        return f"{name}: not zero-shot (trained on the unseen classes too), so K-shot adaptation is meaningless"
    # video embeddings come from an own video_embeddings() or from the base one over _embed_batch()
    for attr, ways in (("video_embeddings", ("video_embeddings", "_embed_batch")), ("class_prototypes", ("class_prototypes",))):
        if all(getattr(cls, way, None) in (None, getattr(ZeroShotMethod, way)) for way in ways):
            return f"{name}: has no {attr}() to adapt"
    return None


@dataclass(frozen=True)
class FewShotEpisode:
    """One K-shot draw: ``support`` indexes ``SplitData.unseen_test`` (K per unseen class, sorted)."""

    k: int
    draw: int
    seed: int
    support: tuple[int, ...]


def episode_seed(seed: int, split_name: str, k: int, draw: int) -> int:
    """The support-draw seed of ``(seed, split, K, draw)``: stable across runs and machines."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(split_name.encode("utf-8")), int(k), int(draw)])
    return int(state.generate_state(1)[0])


def few_shot_episodes(data: SplitData, k_values: Sequence[int] = DEFAULT_K_VALUES, draws: int = 5,
                      seed: int = 0, split_name: str = "split") -> list[FewShotEpisode]:
    """Support draws from the unseen classes' train-list clips, for each K and draw.

    Returns:
        Episodes ordered by K then draw; a K some class has too few train clips for is left out
        with a :class:`UserWarning` naming the classes and their counts.

    Raises:
        ValueError: ``draws < 1``, a ``K < 1``, or no train-list / test-list clip of the unseen classes.
    """
    if draws < 1 or any(int(k) < 1 for k in k_values):
        raise ValueError(f"draws={draws}, k_values={tuple(k_values)}: need draws >= 1 and every K >= 1")
    labels, test_mask = np.asarray(data.unseen_test.labels), np.asarray(data.testlist_mask, dtype=bool)
    pool = np.flatnonzero(~test_mask)  # train-list clips: the only ones support may come from
    if not len(pool) or not test_mask.any():
        raise ValueError(f"{data.unseen_test.source}: few-shot needs train-list and test-list clips of the unseen "
                         f"classes, got {len(pool)} train and {int(test_mask.sum())} test")
    episodes = []
    for k in sorted({int(k) for k in k_values}):
        for draw in range(draws):
            s = episode_seed(seed, split_name, k, draw)
            try:
                picked = kshot_indices(labels[pool], range(len(data.unseen_texts)), k, s).support
            except SplitError as err:
                warnings.warn(f"{split_name}: skipping K={k}: {err}", stacklevel=2)
                break
            episodes.append(FewShotEpisode(k, draw, s, tuple(int(i) for i in pool[list(picked)])))
    return episodes


def support_prototypes(support: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(C, D)`` normalised means of the normalised ``(K*C, D)`` support embeddings per class."""
    labels = np.asarray(labels)
    missing = sorted(set(range(n_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no support clip")
    unit = l2_normalize(support, np.float64)
    return l2_normalize(np.stack([unit[labels == c].mean(0) for c in range(n_classes)]))


def fused_prototypes(zero_shot: np.ndarray, support_protos: np.ndarray, beta: float) -> np.ndarray:
    """``(C, D)`` normalised ``beta * unit(zero_shot) + (1 - beta) * unit(support_protos)``."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta={beta}; must lie in [0, 1]")
    return l2_normalize(beta * l2_normalize(zero_shot, np.float64) + (1.0 - beta) * l2_normalize(support_protos, np.float64))


def linear_probe_scores(support: np.ndarray, labels: np.ndarray, test: np.ndarray, n_classes: int,
                        probe_c: float = 1.0, seed: int = 0) -> np.ndarray:
    """``(N, C)`` class probabilities of a logistic regression fitted on the normalised support."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    if sorted(set(labels.tolist())) != list(range(n_classes)):
        raise ValueError(f"the linear probe needs support of every class 0..{n_classes - 1}, got {sorted(set(labels))}")
    probe = LogisticRegression(C=probe_c, max_iter=1000, random_state=seed)
    probe.fit(l2_normalize(support, np.float64), labels)
    return probe.predict_proba(l2_normalize(test, np.float64))


def adapted_scores(adaptation: str, support: np.ndarray, labels: np.ndarray, test: np.ndarray,
                   zero_shot: np.ndarray, beta: float = 0.5, probe_c: float = 1.0, seed: int = 0) -> np.ndarray:
    """``(N, C)`` scores of ``(N, D)`` test embeddings after ``adaptation`` with ``(K*C, D)`` support.

    Raises:
        ValueError: unknown ``adaptation`` (the message lists :data:`ADAPTATIONS`).
    """
    n_classes = len(zero_shot)
    if adaptation == "prototype":
        return cosine_scores(test, support_prototypes(support, labels, n_classes))
    if adaptation == "fused":
        return cosine_scores(test, fused_prototypes(zero_shot, support_prototypes(support, labels, n_classes), beta))
    if adaptation == "linear":
        return linear_probe_scores(support, labels, test, n_classes, probe_c, seed)
    raise ValueError(f"adaptation={adaptation!r}; choose from {ADAPTATIONS}")


def _check_adaptations(adaptations: Sequence[str]) -> tuple[str, ...]:
    bad = [a for a in adaptations if a not in ADAPTATIONS]
    if bad or not adaptations:
        raise ValueError(f"adaptations={tuple(adaptations)}; choose one or more of {ADAPTATIONS}")
    return tuple(dict.fromkeys(adaptations))


def few_shot_eval(method, data: SplitData, dataset_factory: DatasetFactory, k_values: Sequence[int] = DEFAULT_K_VALUES,
                  draws: int = 5, adaptations: Sequence[str] = ADAPTATIONS, beta: float = 0.5, probe_c: float = 1.0,
                  seed: int = 0, split_name: str = "split", method_label: str | None = None,
                  include_zero_shot: bool = True, progress: bool | None = None) -> list[dict]:
    """K-shot accuracies of a **fitted** method on one split's unseen classes.

    Args:
        method: a fitted method (or any object with ``video_embeddings(dataset) -> (N, D)`` and
            ``class_prototypes(target_texts, seen_texts) -> (C, D)``).
        data: the split's data (:func:`~zsar.experiments.split_data.build_split_data`).
        dataset_factory: ``(video_list, role) -> Dataset``; called once, on ``data.unseen_test``.
        k_values, draws, seed, split_name: the support draws (:func:`few_shot_episodes`).
        adaptations: some of :data:`ADAPTATIONS`; ``beta`` (``fused``), ``probe_c`` (``linear``).
        method_label: the rows' ``method`` (default: the method's ``display_name``).
        include_zero_shot: add the ``k = 0`` ``zero_shot`` row.
        progress: tqdm bar over episodes (``None``: only on a terminal).

    Returns:
        Rows ``{method, split, seed, k, draw, adaptation, top1, mean_class_acc, n_support, n_test, draw_seed}``.

    Raises:
        FewShotNotApplicable: see :func:`few_shot_skip_reason`.
    """
    reason = few_shot_skip_reason(method)
    if reason is not None:
        raise FewShotNotApplicable(reason)
    adaptations = _check_adaptations(adaptations)
    episodes = few_shot_episodes(data, k_values, draws, seed, split_name)
    embeddings = np.asarray(method.video_embeddings(dataset_factory(data.unseen_test, "unseen_test")), np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(data.unseen_test):
        raise ValueError(f"video_embeddings gave shape {embeddings.shape}, expected ({len(data.unseen_test)}, D)")
    zero_shot = np.asarray(method.class_prototypes(data.unseen_texts, data.seen_texts), np.float32)
    label = method_label or getattr(method, "display_name", type(method).__name__)
    return few_shot_rows(embeddings, zero_shot, data, episodes, adaptations, beta, probe_c,
                         {"method": label, "split": split_name, "seed": seed}, include_zero_shot, progress)


def artifact_few_shot(artifact: RunArtifact, data: SplitData, k_values: Sequence[int] = DEFAULT_K_VALUES,
                      draws: int = 5, adaptations: Sequence[str] = ADAPTATIONS, beta: float = 0.5,
                      probe_c: float = 1.0, seed: int = 0, split_name: str = "split",
                      method_label: str | None = None, include_zero_shot: bool = True,
                      progress: bool | None = None) -> list[dict]:
    """:func:`few_shot_eval`'s rows from a finished run's artefact: nothing is fitted or embedded.

    The artefact holds the embedding of every unseen video of the split (``embeddings``, the
    GZSL test set) and the zero-shot prototypes of the unseen classes (``prototypes[n_seen:]``),
    the arrays :func:`few_shot_eval` would compute again with the fitted method.

    Args:
        artifact: the split's :class:`~zsar.experiments.artifact.RunArtifact`.
        data: the same split's data; its ``unseen_test`` videos are looked up in the artefact.
        method_label: the rows' ``method`` (default: the artefact's method name).
        other arguments: as :func:`few_shot_eval`.

    Raises:
        ArtifactError: the artefact lacks videos or classes of ``data``'s unseen set.
    """
    adaptations = _check_adaptations(adaptations)
    embeddings, zero_shot = unseen_arrays(artifact, data)
    episodes = few_shot_episodes(data, k_values, draws, seed, split_name)
    return few_shot_rows(embeddings, zero_shot, data, episodes, adaptations, beta, probe_c,
                         {"method": method_label or artifact.method_name, "split": split_name, "seed": seed},
                         include_zero_shot, progress)


def unseen_arrays(artifact: RunArtifact, data: SplitData) -> tuple[np.ndarray, np.ndarray]:
    """``(N_u, D)`` embeddings of ``data.unseen_test`` (in its order) and ``(U, D)`` unseen prototypes.

    Raises:
        ArtifactError: a video of ``data.unseen_test`` is not in the artefact, or the artefact's
            unseen classes are not ``data``'s.
    """
    row = {str(v): i for i, v in enumerate(artifact.video_ids)}
    missing = [r.video_id for r in data.unseen_test.records if r.video_id not in row]
    n_unseen = len(artifact.prototypes) - artifact.n_seen
    if missing or n_unseen != len(data.unseen_texts):
        raise ArtifactError(f"the run artefact of {artifact.method_name}/{artifact.split} does not cover this "
                            f"split's unseen set: {len(missing)} videos missing (e.g. {missing[:2]}), "
                            f"{n_unseen} unseen classes against {len(data.unseen_texts)}")
    rows = np.array([row[r.video_id] for r in data.unseen_test.records], dtype=np.int64)
    return (np.asarray(artifact.embeddings[rows], np.float32),
            np.asarray(artifact.prototypes[artifact.n_seen:], np.float32))


def few_shot_rows(embeddings: np.ndarray, zero_shot: np.ndarray, data: SplitData, episodes: Sequence[FewShotEpisode],
                  adaptations: Sequence[str], beta: float, probe_c: float, base: dict,
                  include_zero_shot: bool = True, progress: bool | None = None) -> list[dict]:
    """Score every episode's adaptations on the test-list clips of the unseen classes.

    Args:
        embeddings: ``(N_u, D)`` embeddings of ``data.unseen_test``, in its order.
        zero_shot: ``(U, D)`` zero-shot prototypes of ``data.unseen_texts``.
        episodes: from :func:`few_shot_episodes` on ``data``.
        base: the fields every row starts with (``method``, ``split``, ``seed``).
    """
    from tqdm.auto import tqdm

    labels, test = np.asarray(data.unseen_test.labels), np.flatnonzero(data.testlist_mask)
    base = {**base, "n_test": len(test)}

    def row(k: int, draw: int, adaptation: str, scores: np.ndarray, n_support: int, draw_seed: int) -> dict:
        report = accuracy_report(scores, labels[test], ks=(1,))
        return {**base, "k": k, "draw": draw, "adaptation": adaptation, "top1": report["top1"],
                "mean_class_acc": report["mean_class_acc"], "n_support": n_support, "draw_seed": draw_seed}

    rows = [row(0, 0, ZERO_SHOT_ROW, cosine_scores(embeddings[test], zero_shot), 0, -1)] if include_zero_shot else []
    for ep in tqdm(episodes, desc=f"{base['method']} few-shot {base['split']}", disable=progress is False):
        support = list(ep.support)
        for adaptation in adaptations:
            scores = adapted_scores(adaptation, embeddings[support], labels[support], embeddings[test], zero_shot,
                                    beta, probe_c, ep.seed)
            rows.append(row(ep.k, ep.draw, adaptation, scores, len(support), ep.seed))
    return rows


def summarize_few_shot(rows: Sequence[dict], metrics: Sequence[str] = ROW_METRICS, ddof: int = 1) -> pd.DataFrame:
    """Mean and std of ``metrics`` over splits and draws per ``(method, k, adaptation)``.

    Returns:
        One row per group (first-seen method order, then adaptation, then K) with columns
        ``method, k, adaptation, <metric>_mean, <metric>_std, runs, splits`` (``runs`` = splits x draws).

    Raises:
        ValueError: no rows, or the same (method, split, seed, k, draw, adaptation) twice (e.g. two betas).
    """
    if not rows:
        raise ValueError("no few-shot rows to summarise")
    frame = pd.DataFrame(list(rows))
    key = ["method", "split", "seed", "k", "draw", "adaptation"]
    dups = frame[frame.duplicated(key, keep=False)]
    if len(dups):
        raise ValueError(f"duplicate few-shot rows for {dups[key].drop_duplicates().to_dict('records')[:3]}")
    order = {a: i for i, a in enumerate((ZERO_SHOT_ROW,) + ADAPTATIONS)}
    out = []
    for (method, k, adaptation), group in frame.groupby(["method", "k", "adaptation"], sort=False):
        summary = {"method": method, "k": int(k), "adaptation": adaptation}
        for name in metrics:
            summary[f"{name}_mean"], summary[f"{name}_std"] = mean_std(group[name], ddof)
        summary.update(runs=len(group), splits=group["split"].nunique())
        out.append(summary)
    methods = list(dict.fromkeys(frame["method"]))
    out.sort(key=lambda r: (methods.index(r["method"]), order.get(r["adaptation"], len(order)), r["k"]))
    return pd.DataFrame(out)


def few_shot_table(summary: pd.DataFrame, metric: str = "top1", scale: float = 100.0, digits: int = 1) -> pd.DataFrame:
    """``"mean ± std"`` strings of ``metric`` (times ``scale``): rows ``(method, adaptation)``, columns K.

    ``summary`` is :func:`summarize_few_shot`'s output; a missing std (one run) shows the mean alone.
    """
    if f"{metric}_mean" not in summary:
        raise KeyError(f"metric {metric!r} not in the summary columns {list(summary.columns)}")

    def cell(row) -> str:
        mean, std = row[f"{metric}_mean"] * scale, row[f"{metric}_std"] * scale
        return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    cells = summary.assign(cell=summary.apply(cell, axis=1))
    table = cells.pivot(index=["method", "adaptation"], columns="k", values="cell")
    order = list(dict.fromkeys(zip(summary["method"], summary["adaptation"])))
    return table.reindex(pd.MultiIndex.from_tuples(order, names=["method", "adaptation"])).fillna("")


def few_shot_config(method_name: str, method_kwargs: dict | None, source: DataSource, split: ZeroShotSplit,
                    k_values: Sequence[int] = DEFAULT_K_VALUES, draws: int = 5,
                    adaptations: Sequence[str] = ADAPTATIONS, beta: float = 0.5, probe_c: float = 1.0,
                    seed: int = 0, gzsl: bool = True, val_fraction: float = 0.2, resume: bool = True) -> dict:
    """What ``run_dir/few_shot.json`` must record for :func:`run_few_shot_split` to reuse it."""
    params = make_method(method_name, **{"seed": seed, "resume": resume, **(method_kwargs or {})}).get_params()
    return {**split_config(method_name, params, split, seed, gzsl, val_fraction, source),
            "k_values": sorted({int(k) for k in k_values}), "draws": int(draws),
            "adaptations": list(_check_adaptations(adaptations)), "beta": float(beta), "probe_c": float(probe_c)}


def _finished_few_shot(job: tuple, seed: int, kwargs: dict) -> list[dict] | None:
    """The rows of ``job`` where they need no fit (see :func:`run_few_shot_split`), else ``None``."""
    return _few_shot_split(*job, seed=seed, fit=False, **kwargs)


def run_few_shot_split(method_name: str, method_kwargs: dict | None, data_root: str | os.PathLike | DataSource,
                       split: ZeroShotSplit, run_dir: str | os.PathLike, k_values: Sequence[int] = DEFAULT_K_VALUES,
                       draws: int = 5, adaptations: Sequence[str] = ADAPTATIONS, beta: float = 0.5,
                       probe_c: float = 1.0, seed: int = 0, gzsl: bool = True, val_fraction: float = 0.2,
                       dataset_factory: DatasetFactory | None = None, resume: bool = True) -> list[dict]:
    """Few-shot rows of ``method_name`` on ``split``, from its ``run_split`` folder ``run_dir``.

    With ``resume``, the first of these that exists gives the rows: ``run_dir/few_shot.json`` of
    the same configuration; the run's artefact of the same run configuration
    (:func:`artifact_few_shot`: nothing is fitted or embedded). Otherwise the method is fitted as
    ``run_split`` does (its checkpoints resumed, not retrained) and :func:`few_shot_eval` embeds
    the unseen videos. The rows (with ``method_name``) go to ``run_dir/few_shot.json``. A method
    :func:`few_shot_skip_reason` refuses returns ``[]`` with a warning.
    """
    return _few_shot_split(method_name, method_kwargs, data_root, split, run_dir, k_values, draws, adaptations,
                           beta, probe_c, seed, gzsl, val_fraction, dataset_factory, resume, fit=True)


def _few_shot_split(method_name, method_kwargs, data_root, split, run_dir, k_values=DEFAULT_K_VALUES, draws=5,
                    adaptations=ADAPTATIONS, beta=0.5, probe_c=1.0, seed=0, gzsl=True, val_fraction=0.2,
                    dataset_factory=None, resume=True, fit=True) -> list[dict] | None:
    """:func:`run_few_shot_split`; with ``fit=False``, ``None`` where the rows would need a fit."""
    reason = few_shot_skip_reason(METHODS[method_name]) if method_name in METHODS else None
    if reason is not None:
        warnings.warn(f"few-shot skipped: {reason}", stacklevel=2)
        return []
    run_dir = Path(run_dir)
    source = data_root if isinstance(data_root, DataSource) else load_embedded_source(data_root)
    config = few_shot_config(method_name, method_kwargs, source, split, k_values, draws, adaptations, beta,
                             probe_c, seed, gzsl, val_fraction, resume)
    done = load_if_done(run_dir / FEW_SHOT_FILE, config) if resume else None
    if done is not None:
        return done["rows"]
    method = make_method(method_name, **{"seed": seed, "resume": resume, **(method_kwargs or {})})
    options = dict(k_values=k_values, draws=draws, adaptations=adaptations, beta=beta, probe_c=probe_c,
                   seed=seed, split_name=split.name or "split", method_label=method.display_name,
                   progress=getattr(method, "progress", None))
    artifact = _finished_artifact(run_dir, split_config(method_name, method.get_params(), split, seed, gzsl,
                                                        val_fraction, source)) if resume else None
    if artifact is not None:
        rows = artifact_few_shot(artifact, build_split_data(source, split, True, gzsl, val_fraction, seed), **options)
    elif not fit:
        return None
    else:
        data, make = fit_on_split(method, source, split, run_dir, seed, gzsl, val_fraction, dataset_factory)
        rows = few_shot_eval(method, data, make, **options)
    rows = [{**r, "method_name": method_name} for r in rows]
    atomic_write_json(run_dir / FEW_SHOT_FILE, {"config": config, "rows": rows})
    return rows


def _finished_artifact(run_dir: Path, run_config: dict) -> RunArtifact | None:
    """The artefact of the finished run in ``run_dir`` made with ``run_config``, else ``None``."""
    if load_if_done(run_dir / "metrics.json", run_config) is None:
        return None
    try:
        return read_artifact(run_dir, run_config)
    except ArtifactError:
        return None


def run_few_shot_splits(method_name: str, method_kwargs: dict | None, data_root: str | os.PathLike | DataSource,
                        run_root: str | os.PathLike, splits: Sequence[ZeroShotSplit] | None = None,
                        n_splits: int = 10, seed: int = 0, progress: bool | None = None, workers: int = 1,
                        **kwargs) -> list[dict]:
    """:func:`run_few_shot_split` over ``splits`` in ``run_root/<method_name>/<split name>``.

    The folders are those of :func:`~zsar.experiments.runs.run_splits`, so a method already
    run there is not retrained; ``kwargs`` go to :func:`run_few_shot_split`; ``workers > 1``
    runs that many splits at once (:func:`~zsar.experiments.parallel.map_splits`), reading
    splits whose ``few_shot.json`` is finished in this process rather than in a subprocess.
    """
    reason = few_shot_skip_reason(METHODS[method_name]) if method_name in METHODS else None
    if reason is not None:
        warnings.warn(f"few-shot skipped: {reason}", stacklevel=2)
        return []
    source = data_root if isinstance(data_root, DataSource) else load_embedded_source(data_root)
    if splits is None:
        splits = random_class_splits(len(source.texts), n_splits, seed=seed)
    jobs = [(method_name, method_kwargs, source, split, Path(run_root) / method_name / split.name)
            for split in named_splits(splits)]
    fn = functools.partial(run_few_shot_split, seed=seed, **kwargs)
    desc = f"{method_name} few-shot splits"
    if workers <= 1:
        per_split = map_splits(fn, jobs, workers, desc, progress)
    else:  # finished splits are read here: a subprocess only for a split that still has work
        done = [_finished_few_shot(job, seed, kwargs) for job in jobs]
        fresh = iter(map_splits(fn, [job for job, rows in zip(jobs, done) if rows is None], workers, desc, progress))
        per_split = [rows if rows is not None else next(fresh) for rows in done]
    return [row for rows in per_split for row in rows]
