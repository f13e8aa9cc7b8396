"""Every notebook runs through papermill in smoke mode; its recorded metrics are asserted.

The executed notebooks are then re-run by nbval in lax mode (each cell must execute without
error in a fresh kernel; outputs are compared only where a cell opts in).

The smoke benchmark is generated once under ``<root>/data/embedded_smoke`` (or ``$ZSAR_DATA``)
and reused while its config is unchanged; runs and figures go to a temporary folder so the
committed ``figures/`` are never overwritten by a smoke run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from zsar.workbook import list_notebooks, run_notebook

pytestmark = pytest.mark.notebook

NOTEBOOKS = {nb.stem: nb for nb in list_notebooks()}


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """Run every notebook in order in smoke mode; return the runs folder."""
    runs = tmp_path_factory.mktemp("runs")
    figures = runs / "figures"
    failures = {}
    for stem, nb in NOTEBOOKS.items():
        try:
            run_notebook(nb, runs, figures, {"SMOKE": True, "SEED": 0})
        except Exception as exc:  # keep going: later notebooks' tests report their own state
            failures[stem] = exc
    return runs, figures, failures


def _metrics(smoke_runs, stem: str) -> dict:
    runs, _, failures = smoke_runs
    if stem in failures:
        raise failures[stem]
    return json.loads((runs / stem / "metrics.json").read_text())


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_every_notebook_has_one_parameters_cell_and_no_outputs():
    import nbformat

    assert NOTEBOOKS, "no notebooks found"
    for stem, nb_path in NOTEBOOKS.items():
        nb = nbformat.read(nb_path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, stem
        for name in ("SEED", "SMOKE", "OUTPUT_DIR", "FIGURES_DIR"):
            assert f"{name} =" in tagged[0].source, (stem, name)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
        assert nb.metadata["kernelspec"]["name"] == "python3"


def test_01_data_prep_metrics(smoke_runs):
    m = _metrics(smoke_runs, "01_data_prep")
    assert m["n_classes"] >= 48
    assert m["n_clips"] == m["n_classes"] * m["clips_per_class"]
    assert m["n_temporal_pairs"] >= 6
    assert m["min_unit_occurrence"] >= 2
    assert 0.8 <= m["unit_coverage_mean"] <= 1.0
    assert m["n_splits"] == 10 and m["split_overlap"] == 0
    assert m["n_seen"] + m["n_unseen"] == m["n_classes"]
    assert m["scan_bad"] == 0 and m["scan_ok"] == m["n_clips"]
    assert m["sample_video_shape"][0] == m["num_segments"]
    for space in ("minilm", "glove"):
        assert _finite(m[f"name_similarity_{space}_mean"])
    assert _finite(m["generation_clips_per_s"]) and m["generation_clips_per_s"] > 0
    _, figures, _ = smoke_runs
    for name in m["figures"]:
        assert (figures / name).stat().st_size > 10_000, name


@pytest.mark.parametrize("stem", sorted(NOTEBOOKS))
def test_nbval_lax_on_executed_notebook(smoke_runs, stem):
    runs, _, failures = smoke_runs
    if stem in failures:
        raise failures[stem]
    executed = runs / stem / f"{stem}.ipynb"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                           str(executed)], capture_output=True, text=True, cwd=executed.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
