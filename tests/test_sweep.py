"""The parameter sweep runs a notebook over a grid in worker processes and gathers its metrics.

A tiny notebook is written on the fly: it records metrics computed from its parameters A and B,
then raises for the one point A=3, B="yy". The 2x2 sweep with 2 workers runs once per module;
only the tests that use it start kernels (marked ``notebook``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import nbformat
import pandas as pd
import pytest

from zsar.workbook.notebook import load_metrics
from zsar.workbook.sweep import SweepSpecError, gather, main, make_points, parse_grid, point_name, split_values

PARAMETERS = '''A = 1  # first swept value
B = "x"  # second swept value
SEED = 0  # unused here
SMOKE = False  # recorded as a metric to show fixed values reach the notebook
OUTPUT_DIR = None  # run folder
FIGURES_DIR = None  # figure folder
'''
RECORD = '''from zsar.workbook.notebook import record_metrics, run_folder
RUN = run_folder("sweep_nb", OUTPUT_DIR)
record_metrics(RUN, {"score": 10 * A + len(B), "nested": {"half": A / 2, "flag": SMOKE}, "label": B,
                     "per_split": [A, A]})
'''
RAISE = '''if A == 3 and B == "yy":
    raise ValueError(f"bad combination A={A} B={B}")
'''
NAMES = ["A=1__B=x", "A=1__B=yy", "A=3__B=x", "A=3__B=yy"]


def write_notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(RECORD), nbformat.v4.new_code_cell(RAISE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def run_main(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The 2x2 sweep run once: (notebook, out folder, sweep folder, exit code, printed report)."""
    root = tmp_path_factory.mktemp("sweep")
    notebook = write_notebook(root / "sweep_nb.ipynb")
    out = root / "out"
    argv = [str(notebook), "--grid", "A=1,3", "--grid", "B=x,yy", "--fixed", "SMOKE=True", "--workers", "2",
            "--out", str(out)]
    code, report = run_main(argv)
    return notebook, argv, out / "sweep_nb", code, report


@pytest.mark.notebook
def test_every_point_runs_in_its_own_folder(swept):
    _, _, sweep_dir, _, _ = swept
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == NAMES
    for name in NAMES[:3]:
        info = json.loads((sweep_dir / name / "point.json").read_text())
        assert info["status"] == "ok" and info["parameters"]["SMOKE"] is True
        assert (sweep_dir / name / "sweep_nb" / "sweep_nb.ipynb").is_file()
    assert load_metrics(sweep_dir / "A=3__B=x" / "sweep_nb")["score"] == 31


@pytest.mark.notebook
def test_table_has_one_row_per_point_with_parameters_and_metrics(swept):
    _, _, sweep_dir, _, _ = swept
    frame = gather(sweep_dir)
    assert frame.A.tolist() == [1, 1, 3, 3] and frame.B.tolist() == ["x", "yy", "x", "yy"]
    assert frame.status.tolist() == ["ok", "ok", "ok", "failed"]
    assert frame.score.tolist()[:3] == [11, 12, 31] and math.isnan(frame.score.iloc[3])
    assert frame["nested.half"].tolist()[:3] == [0.5, 0.5, 1.5]
    # strings, booleans and lists are not numeric metric columns
    assert not {"label", "nested.flag", "per_split"} & set(frame.columns)
    assert list(frame.columns) == ["A", "B", "status", "nested.half", "score", "point"]
    on_disk = pd.read_csv(sweep_dir / "sweep.csv")
    assert on_disk.score.tolist()[:3] == [11, 12, 31] and on_disk.point.tolist() == NAMES
    rows = json.loads((sweep_dir / "sweep.json").read_text())
    assert [r["score"] for r in rows] == [11, 12, 31, None]
    md = (sweep_dir / "sweep.md").read_text().splitlines()
    assert "SMOKE=True" in md[0] and md[2].startswith("| A | B | status | nested.half | score |")
    assert "| 3 | x | ok | 1.5 | 31 | A=3__B=x |" in md


@pytest.mark.notebook
def test_failed_point_is_reported_and_others_kept(swept):
    _, _, sweep_dir, code, report = swept
    assert code == 1
    assert "point A=3__B=yy FAILED" in report and "{'A': 3, 'B': 'yy'}" in report
    assert "ValueError: bad combination A=3 B=yy" in report
    partial = sweep_dir / "A=3__B=yy" / "sweep_nb" / "sweep_nb.ipynb"
    assert f"executed notebook: {partial}" in report and partial.is_file()
    info = json.loads((sweep_dir / "A=3__B=yy" / "point.json").read_text())
    assert info["status"] == "failed" and info["error"].endswith("ValueError: bad combination A=3 B=yy")
    assert "1 of 4 run point(s) failed" in report


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path, capsys):
    notebook, out = write_notebook(tmp_path / "sweep_nb.ipynb"), tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main([str(notebook), "--grid", "A=1,2", "--grid", "C=1,2", "--out", str(out)])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert "does not declare ['C']" in message and "'SEED', 'SMOKE', 'OUTPUT_DIR', 'FIGURES_DIR'" in message
    refusals = {"set per point by the sweep": ["--fixed", "OUTPUT_DIR=x"],
                "both as --grid and --fixed": ["--fixed", "A=2"], "repeats a value": ["--grid", "B=x,x"],
                "contradicts": ["--smoke", "--fixed", "SMOKE=0"]}
    for reason, bad in refusals.items():
        with pytest.raises(SystemExit) as stop:
            main([str(notebook), "--grid", "A=1,2", *bad, "--out", str(out)])
        assert stop.value.code == 2 and reason in capsys.readouterr().err
    assert not out.exists(), "nothing may be written for a refused sweep"


@pytest.mark.notebook
def test_rerun_skips_complete_points_and_retries_the_failed_one(swept):
    notebook, argv, sweep_dir, _, _ = swept
    stamps = {n: (sweep_dir / n / "sweep_nb" / "metrics.json").stat().st_mtime_ns for n in NAMES[:3]}
    code, plan = run_main([*argv, "--dry-run"])
    assert code == 0 and "3 already complete (skipped), 1 to run" in plan
    assert "run   A=3__B=yy" in plan and "skip  A=1__B=x" in plan
    # a changed fixed value is a different point: nothing is skipped
    _, plan = run_main([*argv[:-4], "--fixed", "SEED=1", "--out", argv[-1], "--dry-run"])
    assert "0 already complete" in plan
    code, report = run_main(argv)
    assert code == 1 and "3 already complete (skipped), 1 to run" in report
    assert {n: (sweep_dir / n / "sweep_nb" / "metrics.json").stat().st_mtime_ns for n in NAMES[:3]} == stamps
    assert len(gather(sweep_dir)) == 4


def test_grid_values_parse_like_the_workbook_and_names_are_deterministic(tmp_path):
    grid = parse_grid(["K_GRID=[1],[3, 5]", "TAU=0.05,1e-1", "FLAG=True,None", "NAME=ViT-B-16,'a,b'"])
    assert grid == {"K_GRID": [[1], [3, 5]], "TAU": [0.05, 0.1], "FLAG": [True, None], "NAME": ["ViT-B-16", "a,b"]}
    assert split_values("[1,2],(3,4),'x,y',z") == ["[1,2]", "(3,4)", "'x,y'", "z"]
    points = make_points(grid, {"SEED": 1}, tmp_path)
    assert len(points) == 2 * 2 * 2 * 2 and points[0].params == {"SEED": 1, "K_GRID": [1], "TAU": 0.05,
                                                                 "FLAG": True, "NAME": "ViT-B-16"}
    assert points[0].name == "K_GRID=[1]__TAU=0.05__FLAG=True__NAME=ViT-B-16"
    assert len({p.name for p in points}) == len(points)
    unsafe = point_name({"TEXT": "name / description"})
    assert unsafe.startswith("TEXT=name___description~") and unsafe == point_name({"TEXT": "name / description"})
    assert unsafe != point_name({"TEXT": "name _ description"})
    for bad in (["K=0.1,0.10"], ["K=[1,2"], ["K"], ["K=1,,2"]):
        with pytest.raises(SweepSpecError):
            parse_grid(bad)


def test_gather_reads_a_finished_sweep_without_running_anything(tmp_path):
    for a, status in ((2, "ok"), (1, "ok"), (3, "running")):
        folder = tmp_path / f"A={a}"
        (folder / "nb").mkdir(parents=True)
        (folder / "point.json").write_text(json.dumps({"grid_names": ["A"], "grid": {"A": a}, "status": status,
                                                       "run_dir": "nb"}))
        (folder / "nb" / "metrics.json").write_text(json.dumps({"acc": a / 10, "A": a, "gone": None}))
    frame = gather(tmp_path)
    assert frame.A.tolist() == [1, 2, 3] and frame.acc.tolist()[:2] == [0.1, 0.2] and math.isnan(frame.acc[2])
    # a metric named like a parameter keeps its own column; an all-null metric is dropped
    assert frame["metrics.A"].tolist()[:2] == [1, 2] and "gone" not in frame.columns
    with pytest.raises(FileNotFoundError, match="no sweep point"):
        gather(tmp_path / "empty")
