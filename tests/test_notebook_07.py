"""Notebook 07_paper_figures in smoke mode: tables, paper figures and the figure index from 01-06's runs.

The notebooks before 07 run once in smoke mode into a temporary runs folder (module fixture);
07 then renders them. Notebooks 05/06 are optional: when absent, 07 must skip their tables and
say so, which is asserted too.
"""

from __future__ import annotations

import csv
import json
import math

import papermill as pm
import pytest

from zsar.workbook.notebook import ParameterError  # noqa: F401  (the error type the validation cell raises)
from zsar.workbook import list_notebooks
from zsar.workbook.presets import get_preset

pytestmark = pytest.mark.notebook

NOTEBOOKS = {nb.stem: nb for nb in list_notebooks()}
STEM = "07_paper_figures"
EXPECTED_FIGURES = {"07_main_results", "07_transfer_sweeps", "07_hubness"}
ACCURACY = ["top1", "top5", "mean_class_acc", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic", "pair_acc"]
EXPECTED_TABLES = {  # name -> (rows, columns)
    "07_main_results": (None, ACCURACY),
    "07_main_costs": (None, ["trainable_params", "train_time_s"]),
    "07_transfer_prototypes": (["text prototype", "transferred", "fused (chosen)"],
                               ["top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic"]),
    "07_transfer_relatedness": (["model", "clip", "minilm", "glove"], ["name", "description"]),
    "07_hubness": (None, ["sn_raw", "sn_best", "top1_raw", "top1_best"]),
}


@pytest.fixture(scope="module")
def paper_run(smoke_runs):
    """07 of the session's smoke workbook, rendered from 01..06; return (runs, figures, metrics of 07).

    01-04 must succeed; 05 and 06 are optional inputs of 07 (their own tests report their
    failures), so a failure there only leaves 07 to skip them.
    """
    runs, figures, failures = smoke_runs
    for stem in ("01_data_prep", "02_training", "03_semantic_transfer", "04_hubness", STEM):
        if stem in failures:
            raise failures[stem]
    return runs, figures, json.loads((runs / STEM / "metrics.json").read_text())


def _read_csv(path):
    with open(path, newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


def test_07_writes_every_expected_figure_as_png_and_pdf(paper_run):
    runs, figures, m = paper_run
    expected = set(EXPECTED_FIGURES)
    expected |= {f"07_{s[3:]}_results" for s in NOTEBOOKS if s[:2] in ("05", "06") and s[:2] not in m["skipped"]}
    assert {name.removesuffix(".png") for name in m["figures"]} == expected
    assert m["n_figures"] == len(expected)
    for stem in expected:
        assert (figures / f"{stem}.png").stat().st_size > 10_000, stem
        assert (figures / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem


def test_07_tables_have_the_expected_rows_columns_and_finite_numbers(paper_run):
    runs, _, m = paper_run
    m02 = json.loads((runs / "02_training" / "metrics.json").read_text())
    methods = [m02["results"][k]["display_name"] for k in m02["methods"]]
    assert set(EXPECTED_TABLES) <= set(m["tables"]) and m["n_tables"] == len(m["tables"])
    for name, (rows, columns) in EXPECTED_TABLES.items():
        t = m["tables"][name]
        assert t["columns"] == columns, name
        if name == "07_hubness":
            assert [r.split(" / ")[0] for r in t["rows"]] == methods
        else:
            assert t["rows"] == (rows or methods), name
        assert t["means_finite"], name
        table = _read_csv(t["csv"])
        assert [r[next(iter(r))] for r in table] == t["rows"]
        for row in table:
            for col in columns:
                assert math.isfinite(float(row[f"{col}_mean"])), (name, row, col)
        tex = open(t["tex"]).read()
        assert r"\toprule" in tex and r"\bottomrule" in tex and "Backbone:" in tex and "Seeds: 0" in tex
        assert "\\pm" in tex or name == "07_hubness"  # 04 records means only
        assert "\\mathbf{" in tex and "**" in open(t["md"]).read()
    main_md = open(m["tables"]["07_main_results"]["md"]).read()
    assert main_md.startswith("*Protocol:") and f"Frames: {m02['frames']}" in main_md


def test_07_tables_of_a_comparison_run_when_06_ran(paper_run):
    runs, _, m = paper_run
    stem = next((s for s in NOTEBOOKS if s.startswith("06")), None)
    if stem is None or "06" in m["skipped"]:
        pytest.skip(f"06 absent or skipped: {m['skipped'].get('06', 'no notebook 06')}")
    per_split = json.loads((runs / stem / "results.json").read_text())["per_split"]
    names = list(dict.fromkeys(r["method"] for r in per_split))
    t = m["tables"][f"07_{stem[3:]}_results"]
    assert t["rows"] == names and {"top1", "gzsl_harmonic", "s_n10"} <= set(t["columns"])
    # only a method without few-shot (the supervised ceiling, a reference row) may leave a cell empty
    assert all(row in t["reference_rows"] and col == "fewshot" for row, col in t["missing_cells"])
    assert f"07_{stem[3:]}_costs" in m["tables"]


def test_07_figure_index_covers_every_png_with_its_notebook_and_parameters(paper_run):
    runs, figures, m = paper_run
    pngs = sorted(p.name for p in figures.glob("*.png"))
    assert sorted(m["index"]) == pngs and m["n_index_entries"] == len(pngs) >= 17
    # the smoke workbook runs the paper preset's parameters (tests/conftest.py): each figure lists
    # those its notebook declares, folder parameters left out
    passed = {**get_preset("paper").parameters, "SEED": 0, "SMOKE": True}
    for name, entry in m["index"].items():
        stem = next(s for s in NOTEBOOKS if s[:2] == name[:2])
        declared = set(pm.inspect_notebook(str(NOTEBOOKS[stem])))
        assert entry["notebook"] == stem, name
        assert entry["parameters"] == {k: v for k, v in passed.items() if k in declared}, name
        assert {"SEED", "SMOKE"} <= set(entry["parameters"]), name
    assert m["unindexed_figures"] == []
    index = open(runs / STEM / "figure_index.md").read()
    assert all(f"`{p}`" in index for p in pngs) and "`notebooks/02_training.ipynb`" in index
    # the smoke figures are not the project's figures/: docs/figure_index.md must be left alone
    assert m["index_files"] == [str(runs / STEM / "figure_index.md")]


def test_07_skips_absent_notebooks_with_a_message(paper_run):
    _, _, m = paper_run
    for prefix in ("05", "06"):
        if not any(s.startswith(prefix) for s in NOTEBOOKS):
            assert "no run folder" in m["skipped"][prefix] and "left out" in m["skipped"][prefix]
    assert not {"02", "03", "04"} & set(m["skipped"])


def test_07_bad_parameter_fails_in_the_first_cells(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOKS[STEM]), str(tmp_path / "out.ipynb"), kernel_name="python3",
                            progress_bar=False, parameters={"FORMATS": ["png", "jpeg"], "OUTPUT_DIR": str(tmp_path),
                                                            "FIGURES_DIR": str(tmp_path / "figures")})
    assert "FORMATS" in str(err.value) and "'pdf'" in str(err.value)
    assert not (tmp_path / "figures").exists()
