"""A bad parameter value fails in the first cells with a message naming it and the allowed values."""

from __future__ import annotations

import re

import papermill as pm
import pytest

from zsar.workbook import parse_value, list_notebooks

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
