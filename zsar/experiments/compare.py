"""Compare methods on the same zero-shot splits: one table of accuracy, hubness, few-shot and cost.

For every method, :func:`run_comparison` runs :func:`~zsar.experiments.zero_shot.run_splits`
(its run folders make a re-run resume), adds the hubness of each split's unseen scores
(:func:`split_hubness`: skewness ``S_Nk`` of the k-occurrence of the unseen test videos over the
unseen class prototypes, ``k = 10``) and a K-shot accuracy
(:func:`~zsar.experiments.few_shot.run_few_shot_splits` in the same folders, so nothing is
retrained), and returns per-split results in the shape :mod:`zsar.evaluation.tables` reads.

Method settings come from one place, shared by notebooks and benchmarks:
:data:`DEFAULT_METHOD_KWARGS` (full runs), :data:`SMOKE_METHOD_KWARGS` (CI-sized overrides) and
:func:`method_kwargs`, which layers the user's settings on top. :data:`ABLATION_VARIANTS` names
the switches of the methods that have them (ASU, motion prompts, LSS); :func:`run_ablations`
runs them in their own folders beside the full methods.

Example::

    kwargs = {m: method_kwargs(m, smoke=True, common={"frames": 4}) for m in ("eszsl", "asu")}
    comparison = run_comparison(list(kwargs), kwargs, source, "runs/06_methods", splits)
    summary = comparison_summary(comparison.results)          # mean/std per method
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from zsar.data.protocols import ZeroShotSplit
from zsar.data.records import VideoList
from zsar.evaluation.tables import summarize
from zsar.experiments.few_shot import few_shot_skip_reason, run_few_shot_splits
from zsar.experiments.zero_shot import DataSource, DatasetFactory, build_split_data, run_splits
from zsar.hubness import hubness_from_scores
from zsar.io import atomic_write_json, atomic_write_text
from zsar.methods import METHODS, ZeroShotMethod, make_method

HUBNESS_K = 10
"""Neighbourhood size of the ``S_N10`` column (capped at the number of unseen classes minus 1)."""

TRAINED_METHODS = ("actionclip", "rest", "asu", "motion_prompts", "lss", "supervised")
"""Methods with an iterative training loop: they take the shared ``epochs`` and ``lr``."""

DEFAULT_METHOD_KWARGS: dict[str, dict[str, Any]] = {
    "frame_average": {},
    "actionclip": {},
    "devise": dict(semantic_space="glove"),
    "eszsl": dict(semantic_space="glove"),
    "rest": dict(width=256, layers=2, heads=4, joint_dim=256),
    "asu": dict(width=256, layers=2, heads=4, regions=4),
    "motion_prompts": dict(width=256, heads=4, prompt_hidden=64),
    "lss": dict(width=256, layers=1, heads=4),
    "supervised": dict(width=256, layers=1, heads=4),
}
"""Per-method settings of a full comparison (widths etc.; the rest are the methods' defaults)."""

SMOKE_METHOD_KWARGS: dict[str, dict[str, Any]] = {
    "devise": dict(map_epochs=20),
    "rest": dict(width=32, layers=1, heads=2, joint_dim=32, transfer_k=3),
    "asu": dict(width=32, layers=1, heads=2, regions=2),
    # dynamic prompts encode every class text once per video (B x C text passes): ~10x the time
    # of the static ones on a CPU; the smoke run keeps the rest of the method
    "motion_prompts": dict(width=32, heads=2, prompt_hidden=16, dynamic_prompts=False),
    "lss": dict(width=32, layers=1, heads=2, concept_templates="video"),
    "supervised": dict(width=32, layers=1, heads=2),
}
"""Overrides of :data:`DEFAULT_METHOD_KWARGS` for CI-sized smoke runs (tiny heads, few epochs)."""

ABLATION_VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "asu-no_mra": ("asu", dict(use_mra=False), "ASU w/o multi-region attention"),
    "asu-no_unit_selection": ("asu", dict(use_unit_selection=False), "ASU w/o unit selection"),
    "motion_prompts-no_motion_stream": ("motion_prompts", dict(use_motion_stream=False),
                                        "Motion prompts w/o motion stream"),
    "motion_prompts-static_prompts": ("motion_prompts", dict(dynamic_prompts=False), "Motion prompts, static prompts"),
    "motion_prompts-no_communication": ("motion_prompts", dict(use_communication=False),
                                        "Motion prompts w/o communication"),
    "lss-no_distillation": ("lss", dict(use_distillation=False), "LSS w/o concept distillation"),
    "lss-no_alignment": ("lss", dict(use_alignment=False), "LSS w/o alignment"),
}
"""Ablation name -> ``(method, switches, table label)``."""

COMPARISON_METRICS = ("top1", "gzsl_harmonic", "s_n10", "fewshot", "trainable_params", "train_time_s")
"""Per-split metrics of a comparison result, in table order (``fewshot`` is the K-shot top-1)."""


def default_backbone() -> str:
    """The backbone the methods use when none is given (:class:`ZeroShotMethod`'s default)."""
    return inspect.signature(ZeroShotMethod.__init__).parameters["backbone"].default


def method_kwargs(name: str, smoke: bool = False, common: Mapping[str, Any] | None = None,
                  trained: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Constructor arguments of ``name`` in a comparison.

    Layers, later winning: :data:`DEFAULT_METHOD_KWARGS`, :data:`SMOKE_METHOD_KWARGS` (if
    ``smoke``), ``common`` (every method: backbone, frames, batch size, device, ...) and ``trained``
    (only :data:`TRAINED_METHODS`: epochs, lr). ``None`` values are dropped, so a parameter left at
    ``None`` keeps the method's own default (e.g. each method's learning rate).

    Raises:
        ValueError: unknown ``name`` (the message lists :data:`zsar.methods.METHODS`).
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    layers = [DEFAULT_METHOD_KWARGS.get(name, {}), SMOKE_METHOD_KWARGS.get(name, {}) if smoke else {},
              common or {}, (trained or {}) if name in TRAINED_METHODS else {}]
    return {k: v for layer in layers for k, v in layer.items() if v is not None}


def ablation_kwargs(variant: str, base: Mapping[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """``(method, kwargs, changed)`` of ``variant``: ``base`` (the full method's kwargs) with its switches.

    ``changed`` is ``False`` when ``base`` already sets the switches that way (e.g. the smoke
    motion prompts are static), so the variant equals the full method.

    Raises:
        ValueError: unknown ``variant`` (the message lists :data:`ABLATION_VARIANTS`).
    """
    if variant not in ABLATION_VARIANTS:
        raise ValueError(f"unknown ablation {variant!r}; choose from {sorted(ABLATION_VARIANTS)}")
    method, switches, _ = ABLATION_VARIANTS[variant]
    changed = any(base.get(k, _init_default(method, k)) != v for k, v in switches.items())
    return method, {**base, **switches}, changed


def _init_default(method: str, param: str) -> Any:
    return inspect.signature(METHODS[method].__init__).parameters[param].default


def split_hubness(scores: np.ndarray, k: int = HUBNESS_K) -> float:
    """``S_Nk`` of ``(N, U)`` unseen scores: skewness of how often each prototype is among a video's k best.

    ``k`` is capped at ``U - 1``; the scores are the method's own (cosine for most, ESZSL's
    bilinear score, the ceiling's logits), higher meaning nearer.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"need (N, U) scores with U >= 2 classes, got shape {scores.shape}")
    return float(hubness_from_scores(scores, k=min(k, scores.shape[1] - 1)).skewness)


def read_split_scores(run_dir: str | Path) -> np.ndarray:
    """``(N, U)`` unseen-class scores that ``run_split`` saved in ``run_dir/scores.npz``."""
    path = Path(run_dir) / "scores.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scores of a finished run_split")
    with np.load(path) as stored:
        return stored["unseen_scores"]


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
        scores = read_split_scores(Path(run_root) / run["method_name"] / str(run["split"]))
        metrics = {"top1": m["top1"], "gzsl_harmonic": m["gzsl_harmonic"], "s_n10": split_hubness(scores, k),
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
            included, so the few-shot column adapts those fits (see ``run_split``'s ``reuse_dir``).

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
                     "s_n10_mean": row["s_n10_mean"], "s_n10_std": row["s_n10_std"],
                     f"fewshot_k{k_shot}_mean": row["fewshot_mean"], f"fewshot_k{k_shot}_std": row["fewshot_std"],
                     "trainable_params": row["trainable_params_mean"], "train_time_s": row["train_time_s_mean"],
                     "n_splits": int(row["runs"])}
    return {m: {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in d.items()}
            for m, d in out.items()}


def as_table_units(result: Mapping[str, Any]) -> dict:
    """A result with accuracies in percent and parameters in thousands (``scale=1`` tables)."""
    m = result["metrics"]
    shown = {k: 100 * m[k] for k in ("top1", "gzsl_harmonic", "fewshot") if k in m}
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
        workers: splits run at once (see :func:`~zsar.experiments.zero_shot.map_splits`).

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


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values, paths as strings and NaN/inf as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value) if isinstance(value, Path) else value


def save_results(run_dir: str | Path, markdown: str, payload: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``run_dir/results.md`` and ``run_dir/results.json`` (NaN as ``null``) atomically."""
    run_dir = Path(run_dir)
    return (atomic_write_text(run_dir / "results.md", markdown),
            atomic_write_json(run_dir / "results.json", jsonable(payload)))


def restore_fitted(result: Mapping[str, Any], source: DataSource, split: ZeroShotSplit, run_dir: str | Path,
                   dataset_factory: DatasetFactory, **overrides: Any):
    """The fitted zero-shot method of a finished ``run_split`` (its checkpoints resumed, not retrained).

    Args:
        result: the ``run_split`` result (its ``config`` holds the method, params and seed).
        overrides: constructor arguments that do not change the result (``progress``, ``num_workers``).

    Returns:
        ``(method, data)``: the fitted method and the split's :class:`SplitData`.

    Raises:
        ValueError: the method is not zero-shot (the ceiling's fit lives in a shared folder).
    """
    config = result["config"]
    method = make_method(config["method_name"], **{**config["params"], "resume": True, **overrides})
    if not method.is_zero_shot:
        raise ValueError(f"{config['method_name']}: only zero-shot methods are restored from their split folder")
    data = build_split_data(source, split, True, config["gzsl"], config["val_fraction"], config["seed"])
    val = dataset_factory(data.val, "val") if data.val is not None else None
    method.fit(dataset_factory(data.train, "train"), data.fit_texts, run_dir, val_dataset=val)
    return method, data


def pick_clips(labels: Sequence[int], n: int, seed: int = 0) -> list[int]:
    """Indices of ``n`` clips of ``n`` different classes (fewer if there are fewer classes), seeded, sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))[:n]
    return sorted(int(rng.choice(np.flatnonzero(labels == c))) for c in classes)


def subset_list(videos: VideoList, indices: Sequence[int]) -> VideoList:
    """``videos`` restricted to ``indices`` (same labels and classes), for datasets of a few clips."""
    return VideoList([videos.records[i] for i in indices], videos.class_names, videos.root, videos.source,
                     videos.class_dirs)
