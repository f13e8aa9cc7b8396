"""Notebook 05_embeddings in smoke mode: figures, recorded metrics, read from the run artefact.

01 and 02 come from the smoke workbook; 05 then runs twice on ResT (the same artefact gives the
same analysis) and once on ESZSL (a method without semantic transfer).
"""

from __future__ import annotations

import json
import math

import papermill as pm
import pytest

from zsar.evaluation.metrics import top1_accuracy
from zsar.experiments.artifact import ARTIFACT_FILE, read_artifact
from zsar.workbook import list_notebooks, run_notebook
from zsar.experiments.settings import SMOKE_METHOD_KWARGS

pytestmark = pytest.mark.notebook

NOTEBOOKS = {nb.stem: nb for nb in list_notebooks()}
FIGURES = {"05_umap.png", "05_tsne.png", "05_relatedness.png", "05_confusion.png", "05_acc_vs_hubness.png"}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _fraction(x) -> bool:
    return _finite(x) and 0.0 <= x <= 1.0


@pytest.fixture(scope="module")
def runs(smoke_runs, tmp_path_factory):
    """``(runs folder, figures folder, [metrics of the first and second ResT run, metrics of the ESZSL run])``.

    01 and 02 come from the session's smoke workbook; 05 runs three more times here.
    """
    base, _, failures = smoke_runs
    for stem in ("01_data_prep", "02_training"):
        if stem in failures:
            raise failures[stem]
    runs = tmp_path_factory.mktemp("runs05")
    figures = runs / "figures"
    metrics = []
    for method in ("rest", "rest", "eszsl"):
        out = runs / f"05_{len(metrics)}"
        out.mkdir()
        run_notebook(NOTEBOOKS["05_embeddings"], out, figures / f"run{len(metrics)}",
                     {"SMOKE": True, "SEED": 0, "METHOD": method,
                      "DATA_PREP_DIR": str(base / "01_data_prep"), "TRAINING_DIR": str(base / "02_training")})
        metrics.append(json.loads((out / "05_embeddings" / "metrics.json").read_text()))
    return runs, figures, metrics


def test_the_analysis_reads_the_run_artefact_and_repeats_exactly(runs, smoke_runs):
    _, _, (first, second, _) = runs
    base, _, _ = smoke_runs
    run = read_artifact(base / "02_training" / "rest" / first["split"])
    assert first["artifact"] == str(base / "02_training" / "rest" / first["split"] / ARTIFACT_FILE)
    assert first["top1"] == top1_accuracy(run.unseen_scores, run.unseen_labels) == first["recorded_top1"]
    assert first["n_videos"] == len(run.labels) and first["dim"] == run.embeddings.shape[1]
    # the same artefact gives the same analysis
    for key in ("top1", "hubness", "transfer", "pair_acc", "prototype_to_class_mean", "n_videos_mapped"):
        assert second[key] == first[key], key
    for kind, value in first["silhouette"].items():
        assert second["silhouette"][kind] == pytest.approx(value, abs=1e-6), kind


def test_rest_metrics_and_figures(runs):
    _, figures, (m, _, _) = runs
    assert m["method"] == "rest" and m["split"] == "random0_seed0" and m["smoke"] is True
    assert m["n_seen"] + m["n_unseen"] >= 48 and m["chance_top1"] == 1 / m["n_unseen"]
    assert _fraction(m["top1"]) and m["top1_abs_diff_recorded"] <= 0.01  # what 02 recorded
    assert m["n_unseen_videos"] < m["n_videos"]  # seen test-list videos are in the maps too
    assert m["n_videos_mapped"] <= 2 * (m["n_seen"] + m["n_unseen"])  # smoke: 2 videos per class
    assert m["projections"]["umap"]["n_neighbors"] == 5 and m["projections"]["tsne"]["perplexity"] == 5.0
    assert all(-1.0 <= v <= 1.0 for v in m["silhouette"].values()) and set(m["silhouette"]) == {
        "joint space", "umap", "tsne"}
    k = SMOKE_METHOD_KWARGS["rest"]["transfer_k"]  # 02 builds ResT with the smoke settings of every comparison
    assert m["has_transfer"] and m["transfer"]["k"] == k
    assert 0.0 <= m["transfer"]["mean_weight_entropy"] <= math.log(k) + 1e-9
    assert set(m["hubness"]) == set(m["prototype_to_class_mean"]) == {"transferred prototype", "text prototype"}
    for kind, stats in m["hubness"].items():
        assert _finite(stats["skewness"]) and 0 <= stats["n_hubs"] <= m["n_unseen"] and _fraction(stats["top1"])
        assert _fraction(m["prototype_to_class_mean"][kind]["own_is_nearest"])
    assert m["hubness"]["transferred prototype"]["top1"] == m["top1"]
    assert m["n_unseen_pairs"] >= 0 and (m["n_unseen_pairs"] == 0 or _fraction(m["pair_acc"]))
    assert set(m["figures"]) == FIGURES
    for name in FIGURES:
        assert (figures / "run0" / name).stat().st_size > 10_000, name


def test_a_method_without_transfer_skips_the_transfer_figure(runs):
    _, figures, (_, _, m) = runs
    assert m["method"] == "eszsl" and not m["has_transfer"] and m["transfer"] is None
    assert _fraction(m["top1"]) and m["top1_abs_diff_recorded"] == 0.0
    assert set(m["hubness"]) == {"prototype"}
    assert set(m["figures"]) == FIGURES - {"05_relatedness.png"}
    assert not (figures / "run2" / "05_relatedness.png").exists()


def test_a_method_02_did_not_run_fails_early_naming_the_parameter(smoke_runs, tmp_path):
    root, _, _ = smoke_runs
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOKS["05_embeddings"]), str(tmp_path / "out.ipynb"), kernel_name="python3",
                            progress_bar=False,
                            parameters={"SMOKE": True, "METHOD": "lss", "OUTPUT_DIR": str(tmp_path / "run"),
                                        "FIGURES_DIR": str(tmp_path / "figures"),
                                        "DATA_PREP_DIR": str(root / "01_data_prep"),
                                        "TRAINING_DIR": str(root / "02_training")})
    assert "METHOD" in str(err.value) and "'rest'" in str(err.value)
    assert not (tmp_path / "figures").exists() or not any((tmp_path / "figures").iterdir())
