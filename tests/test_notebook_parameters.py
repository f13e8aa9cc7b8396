"""A bad parameter value fails in the first cells with a message naming it and the allowed values."""

from __future__ import annotations

import re

import papermill as pm
import pytest

from zsar.workbook import list_notebooks, parse_value, resolve_path_parameters

pytestmark = pytest.mark.notebook


def test_bad_parameter_fails_early_with_a_clear_message(tmp_path):
    nb = next(p for p in list_notebooks() if p.stem == "01_data_prep")
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters={"SPLIT_PROTOCOL": "bogus", "SMOKE": True, "OUTPUT_DIR": str(tmp_path),
                                        "FIGURES_DIR": str(tmp_path / "figures"), "DATA_ROOT": str(tmp_path / "data")})
    message = str(err.value)
    assert "SPLIT_PROTOCOL" in message and "random_50_50" in message
    assert not (tmp_path / "data").exists(), "nothing may be generated before the parameters are checked"


def test_every_notebook_declares_its_parameters_to_papermill():
    import nbformat

    for nb in list_notebooks():
        declared = pm.inspect_notebook(str(nb))
        for name in ("SEED", "SMOKE", "OUTPUT_DIR", "FIGURES_DIR"):
            assert name in declared, (nb.stem, name)
        # papermill silently skips a line it cannot parse (e.g. a comment with parentheses), which
        # would hide that parameter from `-p` and from the workbook runner
        cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        assigned = set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*=", cell.source, flags=re.M))
        assert assigned == set(declared), (nb.stem, assigned ^ set(declared))


def test_runner_parses_parameter_values_like_papermill():
    assert parse_value("3") == 3 and parse_value("True") is True and parse_value("[1, 2]") == [1, 2]
    assert parse_value("ViT-B-16") == "ViT-B-16"


def test_relative_folder_parameters_resolve_against_the_callers_directory(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"x")
    params = {"DATA_ROOT": "data/embedded_40", "TRAINING_DIR": "../runs/02", "OUTPUT_DIR": "/abs/out",
              "PRETRAINED": "ckpt.pt", "BACKBONE": "data/not_a_folder", "EPOCHS": 8, "CACHE_DIR": None}
    out = resolve_path_parameters(params, tmp_path)
    assert out["DATA_ROOT"] == str(tmp_path / "data" / "embedded_40")
    assert out["TRAINING_DIR"] == str((tmp_path / ".." / "runs" / "02").resolve())
    assert out["OUTPUT_DIR"] == "/abs/out" and out["PRETRAINED"] == str(tmp_path / "ckpt.pt")
    assert out["BACKBONE"] == "data/not_a_folder" and out["EPOCHS"] == 8 and out["CACHE_DIR"] is None
    # an open_clip tag is not a file: left alone
    assert resolve_path_parameters({"PRETRAINED": "laion2b_s34b_b88k"}, tmp_path)["PRETRAINED"] == "laion2b_s34b_b88k"
