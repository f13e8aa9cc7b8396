"""The method comparison (zsar.experiments.compare, .settings): settings, hubness column, runs, ablations, restore."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import skew

from zsar.data.protocols import random_class_splits
from zsar.evaluation.scores import unseen_hubness as split_hubness
from zsar.experiments.artifact import read_artifact
from zsar.experiments.compare import (
    COMPARISON_METRICS,
    as_table_units,
    comparison_summary,
    few_shot_by_split,
    per_method_metrics,
    run_ablations,
    run_comparison,
)
from zsar.experiments.restore import restore_fitted
from zsar.experiments.settings import (
    ABLATION_VARIANTS,
    DEFAULT_METHOD_KWARGS,
    SCRATCH_RECIPES,
    SMOKE_METHOD_KWARGS,
    ablation_kwargs,
    default_backbone,
    method_kwargs,
)
from zsar.experiments.split_data import default_dataset_factory, pick_clips, subset_list
from zsar.methods import METHODS
from zsar.workbook.notebook import save_results

torch.set_num_threads(1)

FRAMES = 2
COMMON = dict(frames=FRAMES, batch_size=6, progress=False)
TRAINED = dict(epochs=1, lr=1e-4)


@pytest.fixture(scope="module")
def splits(source):
    return random_class_splits(len(source.texts), n_splits=2, seed=0)


@pytest.fixture(scope="module")
def make(tiny_bench):
    return default_dataset_factory(default_backbone(), FRAMES, seed=0)


@pytest.fixture(scope="module")
def comparison(source, splits, make, tmp_path_factory):
    """frame_average, eszsl and the ceiling on 2 splits of the tiny benchmark (K=2, 3 draws)."""
    root = tmp_path_factory.mktemp("compare")
    names = ["frame_average", "eszsl", "supervised"]
    kwargs = {m: method_kwargs(m, smoke=True, common=COMMON, trained=TRAINED) for m in names}
    return root, kwargs, run_comparison(names, kwargs, source, root, splits, seed=0, dataset_factory=make,
                                        k_shot=2, draws=3, progress=False)


def test_every_method_has_settings_and_the_layers_apply_in_order():
    assert set(DEFAULT_METHOD_KWARGS) == set(METHODS) and set(SMOKE_METHOD_KWARGS) <= set(METHODS)
    assert isinstance(default_backbone(), str) and default_backbone()
    rest = method_kwargs("rest", smoke=True, common={"frames": 4, "batch_size": None},
                         trained={"epochs": 3, "lr": None})
    # smoke overrides the default width; common and trained win; None keeps the recipe's value
    # (random init here: SCRATCH_RECIPES) or else the method's own default
    assert rest["width"] == SMOKE_METHOD_KWARGS["rest"]["width"] != DEFAULT_METHOD_KWARGS["rest"]["width"]
    assert rest["frames"] == 4 and rest["epochs"] == 3 and rest["lr"] == SCRATCH_RECIPES["rest"]["lr"]
    assert "batch_size" not in rest
    # methods without a training loop do not get epochs / lr
    assert "epochs" not in method_kwargs("eszsl", trained={"epochs": 3, "lr": 1e-3})
    assert method_kwargs("rest")["width"] == DEFAULT_METHOD_KWARGS["rest"]["width"]
    for name in METHODS:  # the settings build a method
        assert METHODS[name](**method_kwargs(name, smoke=True)).get_params()
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        method_kwargs("nope")


def test_ablation_kwargs_set_the_switches_and_report_no_ops():
    for variant, (method, switches, label) in ABLATION_VARIANTS.items():
        name, kwargs, changed = ablation_kwargs(variant, method_kwargs(method))
        assert name == method and changed and label
        assert all(kwargs[k] == v for k, v in switches.items())
        assert METHODS[method](**kwargs).get_params()[next(iter(switches))] == next(iter(switches.values()))
    # the smoke motion prompts are already static: that ablation changes nothing there
    assert not ablation_kwargs("motion_prompts-static_prompts", method_kwargs("motion_prompts", smoke=True))[2]
    with pytest.raises(ValueError, match="unknown ablation 'asu-nothing'"):
        ablation_kwargs("asu-nothing", {})


def naive_sn(scores: np.ndarray, k: int) -> float:
    """k-occurrence by a full argsort per row, then scipy's (biased) skewness."""
    counts = np.zeros(scores.shape[1])
    for row in scores:
        counts[np.argsort(-row, kind="stable")[:k]] += 1
    return float(skew(counts))


def test_split_hubness_matches_a_naive_reference_and_sees_hubs():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 12)).astype(np.float32)
    assert split_hubness(scores, k=3) == pytest.approx(naive_sn(scores, 3), abs=1e-9)
    # k is capped at U - 1
    assert split_hubness(scores[:, :5], k=10) == pytest.approx(naive_sn(scores[:, :5], 4), abs=1e-9)
    hubby = scores.copy()
    hubby[:, 0] += 3.0  # prototype 0 is everybody's neighbour
    assert split_hubness(hubby, k=3) > split_hubness(scores, k=3) + 0.5
    with pytest.raises(ValueError, match="shape"):
        split_hubness(np.zeros((4, 1)))


def test_few_shot_by_split_averages_draws_of_one_k_and_adaptation():
    rows = [{"split": s, "k": k, "adaptation": a, "top1": v}
            for s, base in (("a", 0.2), ("b", 0.6)) for k in (2, 4) for a in ("prototype", "fused")
            for v in (base, base + 0.1 * k)]
    assert few_shot_by_split(rows, 2) == pytest.approx({"a": 0.3, "b": 0.7})
    assert few_shot_by_split(rows, 4, "fused") == pytest.approx({"a": 0.4, "b": 0.8})
    assert few_shot_by_split(rows, 8) == {}


def test_save_results_writes_nan_as_null(tmp_path):
    md, js = save_results(tmp_path, "| a |\n", {"x": np.float32(0.5), "y": [float("nan"), np.int64(3)], "p": tmp_path})
    assert md.read_text() == "| a |\n"
    assert json.loads(js.read_text()) == {"x": 0.5, "y": [None, 3], "p": str(tmp_path)}
    assert "NaN" not in js.read_text()


def test_pick_clips_takes_distinct_classes_reproducibly():
    labels = [0, 0, 1, 1, 1, 2, 3, 3]
    picked = pick_clips(labels, 3, seed=5)
    assert len(picked) == 3 and len({labels[i] for i in picked}) == 3 and picked == sorted(picked)
    assert picked == pick_clips(labels, 3, seed=5)
    assert len(pick_clips(labels, 10)) == 4


def test_run_comparison_collects_every_column(comparison, splits):
    root, _, comp = comparison
    assert [(r["method_name"], r["split"]) for r in comp.results] == [
        (m, s.name) for m in ("frame_average", "eszsl", "supervised") for s in splits]
    for r in comp.results:
        m = r["metrics"]
        assert list(m) == list(COMPARISON_METRICS)
        # S_N10 is the hubness of the unseen scores in the run artefact
        assert m["s_n10"] == pytest.approx(split_hubness(read_artifact(root / r["method_name"] / r["split"]).unseen_scores))
        assert 0 <= m["top1"] <= 1 and np.isfinite(m["gzsl_harmonic"]) and np.isfinite(m["s_n10"])
    # few-shot: the mean over the 3 draws of the K=2 prototype rows; the ceiling has none
    assert "supervised" in comp.few_shot_skipped and "not zero-shot" in comp.few_shot_skipped["supervised"]
    for r in comp.results:
        rows = [f["top1"] for f in comp.few_shot_rows if f["method_name"] == r["method_name"]
                and f["split"] == r["split"] and f["k"] == 2 and f["adaptation"] == "prototype"]
        if r["method_name"] == "supervised":
            assert not rows and np.isnan(r["metrics"]["fewshot"])
        else:
            assert len(rows) == 3 and r["metrics"]["fewshot"] == pytest.approx(np.mean(rows))
    assert comp.results[-1]["method"].endswith("†") and comp.results[-1]["metrics"]["trainable_params"] > 0


def test_summary_metrics_and_table_units(comparison):
    _, _, comp = comparison
    summary = comparison_summary(comp.results)
    names = {r["method_name"]: r["method"] for r in comp.results}
    per = per_method_metrics(summary, names, k_shot=2)
    eszsl = [r["metrics"] for r in comp.results if r["method_name"] == "eszsl"]
    assert per["eszsl"]["top1_mean"] == pytest.approx(np.mean([m["top1"] for m in eszsl]))
    assert per["eszsl"]["top1_std"] == pytest.approx(np.std([m["top1"] for m in eszsl], ddof=1))
    assert per["eszsl"]["fewshot_k2_mean"] == pytest.approx(np.mean([m["fewshot"] for m in eszsl]))
    assert per["eszsl"]["n_splits"] == 2 and np.isnan(per["supervised"]["fewshot_k2_mean"])
    json.dumps(per)  # plain floats
    shown = as_table_units(comp.results[0])["metrics"]
    raw = comp.results[0]["metrics"]
    assert shown["top1"] == pytest.approx(100 * raw["top1"])
    assert shown["trainable_params"] == pytest.approx(raw["trainable_params"] / 1e3)
    assert shown["s_n10"] == raw["s_n10"]


def test_a_rerun_resumes_and_gives_the_same_table(comparison, source, splits, make, monkeypatch):
    root, kwargs, comp = comparison
    from zsar.methods import ESZSL

    monkeypatch.setattr(ESZSL, "fit", lambda *a, **k: pytest.fail("a finished run was fitted again"))
    again = run_comparison(["eszsl"], kwargs, source, root, splits, dataset_factory=make, k_shot=2, draws=3,
                           progress=False)
    assert again.results == [r for r in comp.results if r["method_name"] == "eszsl"]


def test_ablation_restore_and_unit_attention(source, splits, make, tmp_path):
    """ASU and its no-MRA ablation on one split; the restored ASU scores as the run did."""
    base = {"asu": method_kwargs("asu", smoke=True, common=COMMON, trained=TRAINED)}
    comp = run_comparison(["asu"], base, source, tmp_path, splits[:1], dataset_factory=make, k_shot=0, progress=False)
    results, changed = run_ablations(["asu-no_mra"], base, source, tmp_path, splits[:1], dataset_factory=make,
                                     progress=False)
    # the full method first (resumed from the comparison's folder: same numbers), then the variant
    assert [r["method"] for r in results] == [comp.results[0]["method"], ABLATION_VARIANTS["asu-no_mra"][2]]
    assert [r["variant"] for r in results] == [None, "asu-no_mra"]
    assert results[0]["metrics"]["top1"] == comp.results[0]["metrics"]["top1"] and changed == {"asu-no_mra": True}
    assert (tmp_path / "ablations" / "asu-no_mra" / "asu" / splits[0].name / "metrics.json").is_file()
    assert results[1]["metrics"]["trainable_params"] < results[0]["metrics"]["trainable_params"]
    with pytest.raises(ValueError, match="needs the kwargs of 'lss'"):
        run_ablations(["lss-no_alignment"], base, source, tmp_path, splits[:1])

    run_dir = tmp_path / "asu" / splits[0].name
    method, data = restore_fitted(run_dir, source, splits[0], make, progress=False)
    scores = method.predict_scores(make(data.unseen_test, "unseen_test"), data.unseen_texts, data.seen_texts)
    np.testing.assert_allclose(scores, read_artifact(run_dir).unseen_scores, atol=1e-5)
    picked = pick_clips(data.unseen_test.labels, 3, seed=0)
    attention = method.unit_attention(make(subset_list(data.unseen_test, picked), "unseen_test"))
    for group, weights in attention.items():
        assert weights.shape == (3, len(method.bank_.units[group]))
        if weights.shape[1]:
            np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-4)


def _result(name, split, top1, zero_shot=True, fewshot=float("nan")):
    return {"method": name.upper(), "method_name": name, "split": split, "zero_shot": zero_shot,
            "metrics": {"top1": top1, "fewshot": fewshot}}


def test_paired_against_a_baseline_by_hand():
    from zsar.experiments.compare import paired_against

    splits = [f"s{i}" for i in range(10)]
    base = [0.05 + 0.01 * i for i in range(10)]
    results = ([_result("actionclip", s, b, fewshot=0.1) for s, b in zip(splits, base)]
               + [_result("better", s, b + 0.02, fewshot=0.1 + 0.01 * (i % 2)) for i, (s, b) in enumerate(zip(splits, base))]
               + [_result("same", s, b) for s, b in zip(splits, base)]
               + [_result("fewer", s, b - 0.01) for s, b in zip(splits[:4], base[:4])]
               + [_result("supervised", s, 0.8, zero_shot=False) for s in splits])
    table = paired_against(results, "actionclip", metrics=("top1", "fewshot")).set_index(["method", "metric"])
    assert "SUPERVISED" not in table.index.get_level_values(0) and "ACTIONCLIP" not in table.index.get_level_values(0)
    row = table.loc[("BETTER", "top1")]
    assert row.delta_mean == pytest.approx(0.02) and row.n == 10 and row.n_higher == 10
    assert row.wilcoxon_p == pytest.approx(2 / 2 ** 10) and row.verdict == "higher"
    # 5 of 10 few-shot differences are 0 and dropped: 5 positive ones give p = 2/2^5, not below 0.05
    few = table.loc[("BETTER", "fewshot")]
    assert few.n_higher == 5 and few.n_lower == 0 and few.wilcoxon_p == pytest.approx(2 / 2 ** 5)
    assert few.verdict == "no clear difference"
    same = table.loc[("SAME", "top1")]
    assert np.isnan(same.wilcoxon_p) and same.verdict == "no clear difference" and same.delta_mean == 0
    assert ("SAME", "fewshot") not in table.index  # nan few-shot values: no pair
    fewer = table.loc[("FEWER", "top1")]  # only the 4 splits it ran
    assert fewer.n == 4 and fewer.n_lower == 4 and fewer.delta_mean == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="baseline 'lss'"):
        paired_against(results, "lss")
