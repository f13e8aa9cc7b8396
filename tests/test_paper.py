"""zsar.report.paper: tables from run folders against a naive reference, LaTeX/Markdown content, figures, index."""

from __future__ import annotations

import json
import math
import re
import shutil

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest

from zsar.evaluation.tables import TableHeader
from zsar.report.paper import (MissingRunError, PaperTable, find_run, hubness_table, load_run, results_summary,
                               results_tables, run_results, table_latex, table_markdown, transfer_tables, write_table)
from zsar.report.paper_figures import hubness_figure, results_bars, transfer_sweep_figure
from zsar.workbook.figure_index import figure_index, figure_index_markdown, write_figure_index

METHODS = {"frame_average": ("CLIP frame average", True), "rest": ("ResT", True), "supervised": ("Supervised †", False)}
SPLITS = ["random0_seed0", "random1_seed0", "random2_seed0"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def per_split_value(method: str, split: int, metric: str) -> float:
    """Deterministic per-split numbers: ResT is best, the ceiling is above all."""
    base = {"frame_average": 0.10, "rest": 0.30, "supervised": 0.80}[method]
    return base + 0.01 * split + 0.001 * len(metric)


@pytest.fixture
def training_run(tmp_path):
    """A 02_training-shaped run folder: metrics.json plus one run_split metrics.json per method and split."""
    run = tmp_path / "runs" / "02_training"
    keys = ["top1", "top5", "mean_class_acc", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic", "pair_acc",
            "trainable_params", "train_time_s"]
    run_dirs = {}
    for name, (display, zero_shot) in METHODS.items():
        for i, split in enumerate(SPLITS):
            folder = run / name / split
            folder.mkdir(parents=True)
            metrics = {k: per_split_value(name, i, k) for k in keys}
            (folder / "metrics.json").write_text(json.dumps(
                {"method": display, "split": split, "seed": 0, "zero_shot": zero_shot, "metrics": metrics}))
            run_dirs.setdefault(name, {})[split] = str(folder)
    recorded = {name: {"display_name": d, "zero_shot": z, "n_splits": 3, "mean": {"top1": -1.0}, "std": {"top1": -1.0}}
                for name, (d, z) in METHODS.items()}
    metrics = {"protocol": "random 50/50", "data": "embedded", "backbone": "zsar-RN-T-64", "pretrained": None,
               "frames": 4, "splits": SPLITS, "seed": 0, "n_seen": 30, "n_unseen": 31, "chance_top1": 1 / 31,
               "results": recorded, "run_dirs": run_dirs}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run, metrics


def test_run_results_read_per_split_files_in_table_order_and_match_a_naive_mean_std(training_run):
    run, metrics = training_run
    results = run_results(run, {**metrics, "methods": ["rest", "supervised", "frame_average"]})
    assert [(r["method"], r["split"]) for r in results][:4] == [("ResT", s) for s in SPLITS] + [("Supervised †", SPLITS[0])]
    summary = results_summary(results)
    assert list(summary.index) == ["ResT", "Supervised †", "CLIP frame average"]
    for name, (display, _) in METHODS.items():
        values = [per_split_value(name, i, "top1") for i in range(3)]
        mean = sum(values) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
        assert summary.at[display, "top1_mean"] == pytest.approx(mean)  # not the recorded -1
        assert summary.at[display, "top1_std"] == pytest.approx(std)
    assert summary["zero_shot"].tolist() == [True, False, True]


def test_run_results_survive_a_moved_runs_folder_and_name_what_is_missing(training_run, tmp_path):
    run, metrics = training_run
    moved = tmp_path / "elsewhere" / "02_training"
    shutil.copytree(run, moved)
    shutil.rmtree(run)  # the recorded run_dirs now point nowhere; the folder's own layout still holds
    assert len(run_results(moved, metrics)) == 9
    (moved / "rest" / SPLITS[1] / "metrics.json").unlink()
    with pytest.raises(MissingRunError, match=f"rest/{SPLITS[1]}/metrics.json"):
        run_results(moved, metrics)
    with pytest.raises(KeyError, match="per-split results"):
        run_results(moved, {"n_splits": 2})


def test_main_tables_bold_the_best_zero_shot_row_never_the_ceiling(training_run, tmp_path):
    run, metrics = training_run
    main, costs = results_tables(run_results(run, metrics), metrics)
    files = write_table(main, tmp_path / "tables")
    tex = files["tex"].read_text()
    for needed in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{Protocol: random 50/50 seen/unseen 30/31",
                   "Backbone: zsar-RN-T-64 (random init)", "Frames: 4", "Splits: random0", "Seeds: 0"):
        assert needed in tex, needed
    rest_row = next(line for line in tex.splitlines() if line.startswith("ResT &"))
    ceiling_row = next(line for line in tex.splitlines() if line.startswith(r"Supervised $^\dagger$"))
    # 7 accuracy columns, each `$a \pm b$`; ResT has the best mean of the zero-shot rows everywhere
    assert len(re.findall(r"\$\\mathbf\{\d+\.\d \\pm \d+\.\d\}\$", rest_row)) == 7
    assert r"\mathbf" not in ceiling_row and len(re.findall(r"\$\d+\.\d \\pm \d+\.\d\$", ceiling_row)) == 7
    assert rest_row.startswith(r"ResT & $\mathbf{31.4 \pm 1.0}$ &")  # 100 * (0.304 + 0.01 * [0, 1, 2])
    md = files["md"].read_text()
    assert md.startswith("*Protocol:") and "| ResT | **31.4 ± 1.0** |" in md
    assert files["csv"].read_text().startswith("# Protocol:")
    # costs: lower is better; parameters in thousands round to 0.0 for all rows (a tie: all zero-shot rows bold)
    cost_md = table_markdown(costs)
    assert "| CLIP frame average | **0.0 ± 0.0** | **0.1 ± 0.0** |" in cost_md
    assert "| ResT | **0.0 ± 0.0** | 0.3 ± 0.0 |" in cost_md and "| Supervised † | 0.0 ± 0.0 | 0.8 ± 0.0 |" in cost_md


def test_paper_table_names_a_missing_metric_column():
    header = TableHeader("p", "b", 4, 2, 0)
    import pandas as pd

    frame = pd.DataFrame({"top1_mean": [0.5]}, index=["a"])
    with pytest.raises(KeyError, match="top5"):
        PaperTable("t", frame, header, {"top5": "top-5"})
    table = PaperTable("t", frame, header, {"top1": "top-1"}, {"top1": 100.0})
    assert "$\\mathbf{50.0}$" in table_latex(table)  # one run: the mean alone, still bold


TRANSFER = {"chance_top1": 1 / 31, "chosen": {"k": 3, "tau": 0.1, "alpha": 0.5, "val_top1": 0.4},
            "transfer_only": {"k": 5, "tau": 0.03, "alpha": 1.0},
            "sweeps": {"k": {"1": {"mean": 0.2, "std": 0.01}, "3": {"mean": 0.25, "std": 0.02},
                             "5": {"mean": 0.22, "std": 0.01}},
                       "tau": {"0": {"mean": 0.2, "std": 0.0}, "0.03": {"mean": 0.21, "std": 0.01},
                               "0.1": {"mean": 0.19, "std": 0.02}},
                       "alpha": {"0": {"mean": 0.1, "std": 0.01}, "0.5": {"mean": 0.3, "std": 0.02},
                                 "1": {"mean": 0.25, "std": 0.01}}},
            "relatedness": {f"{s} · {t}": {"mean": 0.1 + 0.01 * i, "std": 0.01}
                            for i, (s, t) in enumerate([(s, t) for s in ("model", "glove") for t in ("name", "description")])},
            "prototype_kinds": {kind: {m: {"mean": v, "std": 0.01} for m in ("top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic")}
                                for kind, v in (("text prototype", 0.1), ("transferred", 0.2), ("fused (chosen)", 0.3))}}


def test_transfer_tables_rows_columns_and_best():
    header = TableHeader("p", "b", 4, 2, 0)
    kinds, related = transfer_tables(TRANSFER, header)
    assert list(kinds.summary.index) == ["text prototype", "transferred", "fused (chosen)"]
    assert "| fused (chosen) | **30.0 ± 1.0** | **30.0 ± 1.0** |" in table_markdown(kinds)
    assert list(related.summary.index) == ["model", "glove"] and list(related.columns) == ["name", "description"]
    assert np.isfinite(related.display_frame().to_numpy()).all()
    assert "| glove | **12.0 ± 1.0** | **13.0 ± 1.0** |" in table_markdown(related)


HUBNESS = {"k": 10, "per_method": {
    "rest": {"display_name": "ResT", "zero_shot": True, "sn_before": 2.0, "best_reducer_sn": 0.5,
             "top1_before": 0.2, "best_reducer_top1": 0.25, "best_reducer": "csls"},
    "supervised": {"display_name": "Supervised †", "zero_shot": False, "sn_before": 0.1, "best_reducer_sn": 0.05,
                   "top1_before": 0.9, "best_reducer_top1": 0.9, "best_reducer": "ls"}},
    "transfer_vs_text": {"sn": {"text": {"mean": 2.0, "std": 0.2}, "transferred": {"mean": 1.0, "std": 0.1},
                                "fused (ResT default)": {"mean": 1.5, "std": 0.1}}}}


def test_hubness_table_lower_skewness_is_best_and_the_ceiling_is_a_reference():
    table = hubness_table(HUBNESS, TableHeader("p", "b", 4, 2, 0))
    md = table_markdown(table)
    assert "| ResT / csls | **2.00** | **0.50** | **20.00** | **25.00** |" in md
    assert "| Supervised † / ls | 0.10 | 0.05 | 90.00 | 90.00 |" in md
    assert "S\\_N10 raw" in table_latex(table)


def test_figures_have_labelled_axes(training_run):
    run, metrics = training_run
    fig = results_bars(results_summary(run_results(run, metrics)), chance=1 / 31)
    ax = fig.axes[0]
    assert "%" in ax.get_ylabel() and len(ax.patches) == 3 * 4 and ax.get_legend() is not None
    fig = transfer_sweep_figure(TRANSFER)
    assert [a.get_xlabel().split(",")[0] for a in fig.axes] == ["k", "τ", "α"] and "%" in fig.axes[0].get_ylabel()
    # the chosen value is marked on each curve: k=5, tau=0.03 (pure transfer), alpha=0.5 (full choice)
    assert [[line.get_xdata()[0] for line in a.lines if line.get_linestyle() == ":"] for a in fig.axes] == [[2], [1], [1]]
    fig = hubness_figure(HUBNESS)
    a, b, c = fig.axes
    assert "S_{N_{10}}" in a.get_xlabel() and "%" in b.get_xlabel() and "S_{N_{10}}" in c.get_ylabel()
    assert [t.get_text() for t in a.get_yticklabels()] == ["ResT", "Supervised †"]
    assert [p.get_width() for p in a.patches] == [2.0, 0.1, 0.5, 0.05]  # raw bars, then reduced bars
    assert [p.get_height() for p in c.patches] == [2.0, 1.0, 1.5]  # text, transferred, fused


def write_executed(path, parameters):
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": parameters, "start_time": "t"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_figure_index_maps_prefix_to_notebook_and_papermill_parameters(tmp_path):
    figures, runs = tmp_path / "figures", tmp_path / "runs"
    figures.mkdir()
    for name in ("02_results_bars.png", "02_results_bars.pdf", "01_grid.png", "99_stray.png", "07_main.png"):
        (figures / name).write_bytes(b"x")
    write_executed(runs / "02_training" / "02_training.ipynb",
                   {"SEED": 0, "SMOKE": True, "OUTPUT_DIR": "/x", "FIGURES_DIR": "/y", "INDEX_FILE": "auto"})
    entries = figure_index(figures, runs, notebooks=["01_data_prep", "02_training", "07_paper_figures"])
    assert [e.figure for e in entries] == ["01_grid.png", "02_results_bars.png", "07_main.png", "99_stray.png"]
    by_name = {e.figure: e for e in entries}
    assert by_name["02_results_bars.png"].notebook == "02_training"
    assert by_name["02_results_bars.png"].parameters == {"SEED": 0, "SMOKE": True}  # no folders or files
    assert by_name["02_results_bars.png"].formats == ("png", "pdf")
    assert by_name["01_grid.png"].parameters is None and by_name["99_stray.png"].notebook is None
    md = figure_index_markdown(entries)
    assert "| `02_results_bars.png` | png, pdf | `notebooks/02_training.ipynb` | `SEED=0`, `SMOKE=True` |" in md
    assert md.count("\n| `") == 4
    assert write_figure_index(tmp_path / "docs" / "index.md", entries).read_text() == md


def test_find_and_load_run_report_an_absent_notebook(training_run):
    run, _ = training_run
    assert find_run(run.parent, "02") == run and find_run(run.parent, "06") is None
    folder, metrics = load_run(run.parent, "02")
    assert folder == run and metrics["n_unseen"] == 31
    with pytest.raises(MissingRunError, match="06_"):
        load_run(run.parent, "06")


def test_comparison_results_json_gives_hubness_and_few_shot_columns(tmp_path):
    """06 writes results.json with per-split results; null (NaN) few-shot shows as a dash, never bold."""
    run = tmp_path / "06_methods"
    run.mkdir()
    per_split = [{"method": name, "method_name": key, "split": f"s{i}", "seed": 0, "zero_shot": key != "supervised",
                  "metrics": {"top1": top1 + 0.01 * i, "gzsl_harmonic": 0.1, "s_n10": sn + 0.1 * i,
                              "fewshot": None if key == "supervised" else top1 + 0.1,
                              "trainable_params": 5e3, "train_time_s": 2.0}}
                 for key, name, top1, sn in (("eszsl", "ESZSL", 0.2, 1.5), ("asu", "ASU", 0.3, 0.5),
                                             ("supervised", "Supervised †", 0.9, 0.1)) for i in range(2)]
    (run / "results.json").write_text(json.dumps({"per_split": per_split, "ablation_per_split": per_split[:4]}))
    metrics = {"protocol": "random_50_50", "data": "embedded", "backbone": "zsar-RN-T-64", "frames": 2,
               "splits": ["s0", "s1"], "seed": 0, "n_unseen": 30, "chance_top1": 1 / 30, "k_shot": 2}
    main, costs = results_tables(run_results(run, metrics), metrics, prefix="07_methods")
    assert list(main.columns) == ["top1", "gzsl_harmonic", "fewshot", "s_n10"]
    assert main.columns["fewshot"] == "2-shot top-1 %" and "Backbone: zsar-RN-T-64;" in main.header.line()
    md = table_markdown(main)
    assert "| ASU | **30.5 ± 0.7** | **10.0 ± 0.0** | **40.0 ± 0.0** | **0.55 ± 0.07** |" in md
    assert "| Supervised † | 90.5 ± 0.7 | 10.0 ± 0.0 | – | 0.15 ± 0.07 |" in md
    assert "& -- &" in table_latex(main)
    ablations = results_summary(run_results(run, metrics, key="ablation_per_split"))
    assert list(ablations.index) == ["ESZSL", "ASU"]


def test_results_bars_keep_nine_methods_apart_and_drop_empty_metrics():
    import pandas as pd

    rows = {f"m{i}": {"top1_mean": 0.1 * i, "top1_std": 0.01, "fewshot_mean": math.nan, "fewshot_std": math.nan}
            for i in range(9)}
    fig = results_bars(pd.DataFrame(rows).T, chance=0.05)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["top-1"]  # the all-NaN few-shot group is left out
    hatches = [bars[0].get_hatch() for bars in ax.containers if isinstance(bars, matplotlib.container.BarContainer)]
    assert hatches == [None] * 8 + ["///"]  # the 9th method repeats colour 1, hatched
    assert [h.get_hatch() for h in ax.get_legend().legend_handles][-1] == "///"
