"""Compare methods on the same zero-shot splits: one table of accuracy, hubness, few-shot and cost.

For every method, :func:`run_comparison` runs :func:`~zsar.experiments.runs.run_splits` (its run
folders make a re-run resume), reads each split's S_N10 from its run artefact
(:meth:`~zsar.experiments.artifact.RunArtifact.unseen_hubness`: skewness of the k-occurrence of
the unseen test videos over the unseen classes, on the scores the method predicts with, ``k = 10``)
and adds a K-shot accuracy (:func:`~zsar.experiments.few_shot.run_few_shot_splits` in the same
folders, so nothing is retrained); it returns per-split results in the shape
:mod:`zsar.evaluation.tables` reads. :func:`paired_against` tests each method against a baseline,
split by split. Method settings come from :mod:`zsar.experiments.settings`.

Example::

    kwargs = {m: method_kwargs(m, smoke=True, common={"frames": 4}) for m in ("eszsl", "asu")}
    comparison = run_comparison(list(kwargs), kwargs, source, "runs/06_methods", splits)
    summary = comparison_summary(comparison.results)          # mean/std per method
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from zsar.data.protocols import ZeroShotSplit
from zsar.evaluation.scores import HUBNESS_K
from zsar.evaluation.tables import summarize
from zsar.experiments.artifact import read_artifact
from zsar.experiments.few_shot import few_shot_skip_reason, run_few_shot_splits
from zsar.experiments.runs import run_splits
from zsar.experiments.settings import ABLATION_VARIANTS, ablation_kwargs
from zsar.experiments.sources import DataSource
from zsar.experiments.split_data import DatasetFactory
from zsar.methods import METHODS

COMPARISON_METRICS = ("top1", "gzsl_harmonic", "pair_acc", "s_n10", "fewshot", "trainable_params", "train_time_s")
"""Per-split metrics of a comparison result, in table order (``fewshot`` is the K-shot top-1)."""


def few_shot_by_split(rows: Sequence[Mapping[str, Any]], k: int, adaptation: str = "prototype") -> dict[str, float]:
    """``{split: top-1}`` of the ``k``-shot ``adaptation`` rows, averaged over draws."""
    picked = pd.DataFrame([r for r in rows if r["k"] == k and r["adaptation"] == adaptation])
    if picked.empty:
        return {}
    return {str(s): float(v) for s, v in picked.groupby("split", sort=False)["top1"].mean().items()}


@dataclass
class Comparison:
    """What :func:`run_comparison` returns.

    Attributes:
        results: one dict per (method, split) with ``method`` (table name), ``method_name``,
            ``split``, ``seed``, ``zero_shot`` and ``metrics`` (:data:`COMPARISON_METRICS`, fractions;
            ``fewshot`` is ``nan`` where a method has none).
        few_shot_rows: every few-shot row (see :func:`~zsar.experiments.few_shot.few_shot_eval`).
        runs: ``{method: [run_split result, ...]}`` as ``run_splits`` returned them.
        few_shot_skipped: ``{method: reason}`` of methods without a few-shot evaluation.
        wall_time_s: ``{method: seconds}`` spent here (resumed runs are fast).
    """

    results: list[dict] = field(default_factory=list)
    few_shot_rows: list[dict] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)
    few_shot_skipped: dict[str, str] = field(default_factory=dict)
    wall_time_s: dict[str, float] = field(default_factory=dict)


def comparison_results(runs: Sequence[Mapping[str, Any]], run_root: str | Path,
                       few_shot: Mapping[str, float] | None = None, k: int = HUBNESS_K,
                       label: str | None = None) -> list[dict]:
    """:data:`COMPARISON_METRICS` results of one method's ``run_splits`` output.

    Args:
        runs: ``run_splits`` results of one method (its folders are ``run_root/<method_name>/<split>``).
        few_shot: ``{split: K-shot top-1}``; missing splits get ``nan``.
        label: the table name (default: the runs' ``method``).
    """
    out = []
    for run in runs:
        m = run["metrics"]
        artifact = read_artifact(Path(run_root) / run["method_name"] / str(run["split"]))
        metrics = {"top1": m["top1"], "gzsl_harmonic": m["gzsl_harmonic"], "pair_acc": m.get("pair_acc", math.nan),
                   "s_n10": artifact.unseen_hubness(k),
                   "fewshot": (few_shot or {}).get(str(run["split"]), math.nan),
                   "trainable_params": m["trainable_params"], "train_time_s": m["train_time_s"]}
        out.append({"method": label or run["method"], "method_name": run["method_name"], "split": run["split"],
                    "seed": run["seed"], "zero_shot": run["zero_shot"], "metrics": metrics})
    return out


def run_comparison(methods: Sequence[str], kwargs: Mapping[str, Mapping[str, Any]], source: DataSource,
                   run_root: str | Path, splits: Sequence[ZeroShotSplit], seed: int = 0,
                   dataset_factory: DatasetFactory | None = None, k_shot: int = 2, draws: int = 5,
                   adaptation: str = "prototype", progress: bool | None = None, workers: int = 1,
                   reuse_root: str | Path | None = None) -> Comparison:
    """Run every method of ``methods`` on ``splits`` and collect :data:`COMPARISON_METRICS`.

    Args:
        methods: registry names, in table order.
        kwargs: ``{method: constructor kwargs}`` (e.g. from :func:`method_kwargs`).
        source: the dataset; ``splits`` name their classes by index into it.
        run_root: runs go to ``run_root/<method>/<split>`` (re-runs resume there).
        k_shot, draws, adaptation: the few-shot column (``k_shot`` support clips per unseen class,
            averaged over ``draws`` seeded draws); ``k_shot=0`` skips it.
        reuse_root: another run root with the same layout (notebook 02's run folder): its finished
            runs of the same configuration are adopted instead of fitted again, checkpoints
            included (see ``run_split``'s ``reuse_dir``); the few-shot column is read from the
            runs' artefacts (:func:`~zsar.experiments.few_shot.artifact_few_shot`).

    Raises:
        ValueError: unknown method, or a method without ``kwargs``.
    """
    unknown = [m for m in methods if m not in METHODS or m not in kwargs]
    if unknown:
        raise ValueError(f"methods {unknown} are unknown or have no kwargs; known: {sorted(METHODS)}")
    out = Comparison()
    for name in methods:
        start = time.perf_counter()
        runs = run_splits(name, dict(kwargs[name]), source, run_root, splits=splits, seed=seed,
                          dataset_factory=dataset_factory, progress=progress, workers=workers,
                          reuse_root=reuse_root)
        reason = few_shot_skip_reason(METHODS[name]) if k_shot else "few-shot not asked for (k_shot=0)"
        rows = []
        if reason is None:
            rows = run_few_shot_splits(name, dict(kwargs[name]), source, run_root, splits=splits, seed=seed,
                                       progress=progress, k_values=(k_shot,), draws=draws, adaptations=(adaptation,),
                                       dataset_factory=dataset_factory, workers=workers)
        else:
            out.few_shot_skipped[name] = reason
        out.runs[name], out.few_shot_rows = runs, out.few_shot_rows + rows
        out.results += comparison_results(runs, run_root, few_shot_by_split(rows, k_shot, adaptation))
        out.wall_time_s[name] = time.perf_counter() - start
    return out


def comparison_summary(results: Sequence[Mapping[str, Any]], ddof: int = 1) -> pd.DataFrame:
    """Mean and std over splits of :data:`COMPARISON_METRICS` per method (``summarize``'s frame)."""
    return summarize(results, list(COMPARISON_METRICS), ddof)


def paired_against(results: Sequence[Mapping[str, Any]], baseline: str,
                   metrics: Sequence[str] = ("top1", "gzsl_harmonic")) -> pd.DataFrame:
    """Each zero-shot method against ``baseline``, paired over the splits both ran.

    "Which idea helps, by how much": per split, the method's value minus the baseline's on the
    same split, summarised by :func:`~zsar.evaluation.metrics.paired_comparison` (mean ± std of the
    differences, splits higher / lower, two-sided Wilcoxon signed-rank p, verdict at p < 0.05).
    Not-zero-shot rows (the ceiling) and the baseline itself are left out; ``nan`` values (e.g. a
    few-shot column a method has no value for) drop that split for that method and metric.

    Args:
        results: per-split results (``method``, ``method_name``, ``split``, ``zero_shot``,
            ``metrics``), e.g. :attr:`Comparison.results`.
        baseline: the ``method_name`` compared against.
        metrics: keys of each result's ``metrics``.

    Returns:
        One row per method and metric: ``method``, ``metric``, ``delta_mean``, ``delta_std``,
        ``n``, ``n_higher``, ``n_lower``, ``wilcoxon_p``, ``verdict`` (differences in the metric's
        own unit: fractions for accuracies).

    Raises:
        ValueError: ``baseline`` has no result.
    """
    from zsar.evaluation.metrics import paired_comparison

    base = {r["split"]: r["metrics"] for r in results if r["method_name"] == baseline}
    if not base:
        raise ValueError(f"no result of the baseline {baseline!r}; have {sorted({r['method_name'] for r in results})}")
    rows = []
    for name in dict.fromkeys(r["method_name"] for r in results if r["zero_shot"] and r["method_name"] != baseline):
        runs = [r for r in results if r["method_name"] == name and r["split"] in base]
        for metric in metrics:
            pairs = [(r["metrics"][metric], base[r["split"]][metric]) for r in runs
                     if np.isfinite(r["metrics"].get(metric, np.nan)) and np.isfinite(base[r["split"]].get(metric, np.nan))]
            if pairs:
                test = paired_comparison([a for a, _ in pairs], [b for _, b in pairs])
                rows.append({"method": runs[0]["method"], "metric": metric, **test})
    columns = ["method", "metric", "delta_mean", "delta_std", "n", "n_higher", "n_lower", "wilcoxon_p", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def per_method_metrics(summary: pd.DataFrame, names: Mapping[str, str], k_shot: int = 2) -> dict[str, dict]:
    """``{method: {top1_mean, top1_std, gzsl_harmonic_mean, s_n10_mean, fewshot_k<K>_mean, ...}}``.

    Args:
        summary: :func:`comparison_summary` output.
        names: ``{method registry name: table name}`` (the summary's index).
    """
    out = {}
    for name, label in names.items():
        row = summary.loc[label]
        out[name] = {"display_name": label, "top1_mean": row["top1_mean"], "top1_std": row["top1_std"],
                     "gzsl_harmonic_mean": row["gzsl_harmonic_mean"], "gzsl_harmonic_std": row["gzsl_harmonic_std"],
                     "pair_acc_mean": row["pair_acc_mean"], "pair_acc_std": row["pair_acc_std"],
                     "s_n10_mean": row["s_n10_mean"], "s_n10_std": row["s_n10_std"],
                     f"fewshot_k{k_shot}_mean": row["fewshot_mean"], f"fewshot_k{k_shot}_std": row["fewshot_std"],
                     "trainable_params": row["trainable_params_mean"], "train_time_s": row["train_time_s_mean"],
                     "n_splits": int(row["runs"])}
    return {m: {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in d.items()}
            for m, d in out.items()}


def as_table_units(result: Mapping[str, Any]) -> dict:
    """A result with accuracies in percent and parameters in thousands (``scale=1`` tables)."""
    m = result["metrics"]
    shown = {k: 100 * m[k] for k in ("top1", "gzsl_harmonic", "pair_acc", "fewshot") if k in m}
    shown.update({k: m[k] for k in ("s_n10", "train_time_s") if k in m})
    if "trainable_params" in m:
        shown["trainable_params"] = m["trainable_params"] / 1e3
    return {**result, "metrics": shown}


def run_ablations(variants: Sequence[str], base_kwargs: Mapping[str, Mapping[str, Any]], source: DataSource,
                  run_root: str | Path, splits: Sequence[ZeroShotSplit], seed: int = 0,
                  dataset_factory: DatasetFactory | None = None,
                  progress: bool | None = None, workers: int = 1) -> tuple[list[dict], dict[str, bool]]:
    """Run each ablation ``variant`` and the full method it ablates, on the same splits.

    The full method runs in ``run_root/<method>/`` (resumed where :func:`run_comparison` ran it
    with the same kwargs), each variant in ``run_root/ablations/<variant>/<method>/``.

    Args:
        base_kwargs: ``{method: kwargs of the full method}``; every variant's method must be in it.
        workers: splits run at once (see :func:`~zsar.experiments.parallel.map_splits`).

    Returns:
        ``(results, changed)``: :data:`COMPARISON_METRICS` results (``fewshot`` is ``nan``), per
        ablated method first the full method (its table name, ``variant`` ``None``) then its
        variants (their labels, ``variant`` = the variant's name); ``{variant: changed}`` (see
        :func:`ablation_kwargs`).

    Raises:
        ValueError: unknown variant, or its method missing from ``base_kwargs``.
    """
    plan: dict[str, list[str]] = {}
    for variant in variants:
        method = ABLATION_VARIANTS.get(variant, (None,))[0]
        if method is None:
            raise ValueError(f"unknown ablation {variant!r}; choose from {sorted(ABLATION_VARIANTS)}")
        if method not in base_kwargs:
            raise ValueError(f"ablation {variant!r} needs the kwargs of {method!r}; got {sorted(base_kwargs)}")
        plan.setdefault(method, []).append(variant)
    results, changed = [], {}
    for method, method_variants in plan.items():
        runs = run_splits(method, dict(base_kwargs[method]), source, run_root, splits=splits, seed=seed,
                          dataset_factory=dataset_factory, progress=progress, workers=workers)
        results += [{**r, "variant": None} for r in comparison_results(runs, run_root)]
        for variant in method_variants:
            _, kwargs, changed[variant] = ablation_kwargs(variant, base_kwargs[method])
            root = Path(run_root) / "ablations" / variant
            runs = run_splits(method, kwargs, source, root, splits=splits, seed=seed,
                              dataset_factory=dataset_factory, progress=progress, workers=workers)
            results += [{**r, "variant": variant}
                        for r in comparison_results(runs, root, label=ABLATION_VARIANTS[variant][2])]
    return results, changed
