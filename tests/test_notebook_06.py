"""Notebook 06_methods in smoke mode: the comparison table, its metrics, figures and results files."""

from __future__ import annotations

import json
import math

import papermill as pm
import pytest

from zsar.experiments.settings import ABLATION_VARIANTS
from zsar.methods import METHODS
from zsar.text.units import unit_groups
from zsar.workbook import list_notebooks

pytestmark = pytest.mark.notebook

NOTEBOOKS = {nb.stem: nb for nb in list_notebooks()}
COLUMNS = ["top-1 %", "GZSL H %", "temporal pairs %", "S_N10", "2-shot top-1 %", "trainable params k", "train time s"]


@pytest.fixture(scope="module")
def smoke_06(smoke_runs):
    """06_methods of the session's smoke workbook (01..07 in one runs folder)."""
    runs, figures, failures = smoke_runs
    if "06_methods" in failures:
        raise failures["06_methods"]
    run = runs / "06_methods"
    return run, figures, json.loads((run / "metrics.json").read_text())


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_every_method_has_finite_metrics(smoke_06):
    _, _, m = smoke_06
    assert m["smoke"] is True and m["n_splits"] == 2 and m["frames"] == 2 and m["epochs"] == 1
    assert set(m["methods"]) == set(METHODS) and set(m["per_method"]) == set(METHODS)
    for name, p in m["per_method"].items():
        for key in ("top1_mean", "top1_std", "gzsl_harmonic_mean", "s_n10_mean", "trainable_params", "train_time_s"):
            assert _finite(p[key]), (name, key)
        assert "pair_acc_mean" in p and "pair_acc_std" in p, name
        assert 0 <= p["top1_mean"] <= 1 and 0 <= p["gzsl_harmonic_mean"] <= 1 and p["n_splits"] == 2
        assert p["trainable_params"] >= 0 and p["train_time_s"] > 0
        if METHODS[name].is_zero_shot:
            assert _finite(p["fewshot_k2_mean"]) and 0 <= p["fewshot_k2_mean"] <= 1, name
        else:  # the ceiling has seen the unseen classes: no few-shot number, and the reason is recorded
            assert p["fewshot_k2_mean"] is None and name in m["few_shot_skipped"]
    assert m["per_method"]["frame_average"]["trainable_params"] == 0
    # 02's smoke fits use 4 frames, 06's 2: another configuration, so none of them is taken over
    reused = m["reused_from_training"]
    assert reused["folder"].endswith("02_training") and reused["runs"] == {name: 0 for name in m["methods"]}
    assert m["per_method"]["actionclip"]["trainable_params"] > m["per_method"]["eszsl"]["trainable_params"] > 0


def test_paired_comparison_against_both_baselines(smoke_06):
    _, _, m = smoke_06
    assert m["baselines"] == ["actionclip", "frame_average"]
    for baseline, paired in m["paired_vs_baselines"].items():
        names = {m["per_method"][k]["display_name"] for k in METHODS if METHODS[k].is_zero_shot and k != baseline}
        assert set(paired) == names  # every other zero-shot method, not the ceiling, not the baseline
        for method, by_metric in paired.items():
            assert {"top1", "gzsl_harmonic", "pair_acc", "fewshot"} <= set(by_metric), method
            top1 = by_metric["top1"]
            assert top1["n"] == 2 and top1["n_higher"] + top1["n_lower"] <= 2
            assert top1["verdict"] == "no clear difference"  # 2 splits can never reach p < 0.05
            assert top1["delta_mean"] == pytest.approx(m["per_method"][_key(m, method)]["top1_mean"]
                                                       - m["per_method"][baseline]["top1_mean"], abs=1e-9)


def _key(m, display_name):
    return next(k for k, p in m["per_method"].items() if p["display_name"] == display_name)


def test_results_table_has_its_header_every_method_and_every_column(smoke_06):
    run, _, m = smoke_06
    text = (run / "results.md").read_text()
    comparison = text.split("## Ablations")[0]
    header = next(line for line in comparison.splitlines() if line.startswith("*Protocol:"))
    for field in ("Backbone: " + m["backbone"], "Frames: 2", "Splits: random0_seed0, random1_seed0", "Seeds: 0"):
        assert field in header
    table_head = next(line for line in comparison.splitlines() if line.startswith("| Method"))
    assert [c.strip() for c in table_head.strip("|").split("|")][1:] == COLUMNS
    rows = [line for line in comparison.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    assert [r.split("|")[1].strip() for r in rows] == [m["per_method"][k]["display_name"] for k in m["methods"]]
    assert all(len(r.strip("|").split("|")) == len(COLUMNS) + 1 for r in rows)
    assert "±" in rows[0]
    stored = json.loads((run / "results.json").read_text())
    assert len(stored["per_split"]) == 2 * len(METHODS)
    assert stored["methods"]["eszsl"]["top1_mean"] == pytest.approx(m["per_method"]["eszsl"]["top1_mean"])


def test_one_ablation_runs_in_smoke_mode(smoke_06):
    run, _, m = smoke_06
    assert len(m["ablations"]) == 1
    variant = m["ablations"][0]
    method = ABLATION_VARIANTS[variant][0]
    result = m["ablation_results"][variant]
    assert result["changed"] is True and _finite(result["top1_mean"]) and _finite(result["s_n10_mean"])
    # the full method's row is the comparison's run, resumed
    assert m["ablation_results"][method]["top1_mean"] == pytest.approx(m["per_method"][method]["top1_mean"])
    assert ABLATION_VARIANTS[variant][2] in (run / "results.md").read_text().split("## Ablations")[1]
    assert (run / "ablations" / variant / method).is_dir()


def test_unit_attention_and_figures(smoke_06):
    _, figures, m = smoke_06
    expected = {"06_methods_bar.png", "06_unit_attention.png", "06_ablations.png"}
    assert set(m["figures"]) == expected
    assert all((figures / f).stat().st_size > 10_000 for f in expected)
    att = m["unit_attention"]
    assert att["clips"] > 0 and att["declared_mass"] and set(att["declared_mass"]) <= set(unit_groups())
    for group, mass in att["declared_mass"].items():
        # with an untrained model the mass on a class's units sits near the uniform share
        assert 0 < mass <= 1 and 0 < att["uniform_mass"][group] <= 1


def test_a_bad_method_name_fails_in_the_first_cells(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOKS["06_methods"]), str(tmp_path / "out.ipynb"), kernel_name="python3",
                            progress_bar=False, parameters={"METHODS": ["eszsl", "nope"], "SMOKE": True,
                                                            "OUTPUT_DIR": str(tmp_path / "run"),
                                                            "FIGURES_DIR": str(tmp_path / "figures")})
    assert "METHODS item" in str(err.value) and "'nope'" in str(err.value) and "eszsl" in str(err.value)
    assert not (tmp_path / "run").exists(), "nothing may run before the parameters are checked"
