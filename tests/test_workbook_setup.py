"""The one setup call of every notebook (zsar.workbook.setup): checks, device, folders, splits."""

from __future__ import annotations

import json

import pytest
import torch

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.parameters import ParameterError
from zsar.workbook.setup import check_list, load_splits, resolve_device, select_splits, start_notebook


def test_check_list_names_the_parameter_and_the_allowed_values():
    assert check_list("METHODS", ("a", "b"), ["b", "a", "c"]) == ["a", "b"]
    with pytest.raises(ParameterError, match=r"METHODS=\['a', 'a'\] must be a non-empty list without repeats of \['a', 'b'\]"):
        check_list("METHODS", ["a", "a"], ["a", "b"])
    with pytest.raises(ParameterError, match=r"parameter METHODS item='z' is not allowed"):
        check_list("METHODS", ["z"], ["a"])
    with pytest.raises(ParameterError, match="non-empty"):
        check_list("GRID", [])
    assert check_list("ABLATIONS", [], ["x"], empty_ok=True) == []
    with pytest.raises(ParameterError, match="GRID=5"):
        check_list("GRID", 5)


def test_device_and_amp_resolve_like_the_methods_expect():
    device, amp, on_cuda = resolve_device("cpu", "auto")
    assert (device, amp, on_cuda) == ("cpu", "none", False)
    assert resolve_device("auto", "bf16")[:2] == (None, "bf16")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="DEVICE='cuda'"):
            resolve_device("cuda", "auto")
        with pytest.raises(ParameterError, match="AMP='fp16'"):
            resolve_device("cpu", "fp16")


def test_start_notebook_makes_folders_and_upstream_names_the_notebook_to_run(tmp_path):
    nb = start_notebook("02_training", 0, True, tmp_path / "runs" / "02_training", tmp_path / "figs", device="cpu",
                        amp="auto", threads=True, cpu_threads=None, style=False)
    assert nb.run.is_dir() and nb.figures.is_dir() and nb.device == "cpu" and nb.amp == "none"
    assert torch.get_num_threads() == 1  # a smoke run keeps one CPU thread
    with pytest.raises(FileNotFoundError, match="run notebook 01_data_prep first or set DATA_PREP_DIR"):
        nb.upstream("DATA_PREP_DIR", None, "01_data_prep", "splits.json")
    prep = tmp_path / "runs" / "01_data_prep"
    prep.mkdir()
    (prep / "splits.json").write_text(json.dumps({"class_names": list("abcd"), "splits": [
        {"seen": [0, 1], "unseen": [2, 3], "seed": 0, "name": "s0"},
        {"seen": [2, 3], "unseen": [0, 1], "seed": 1, "name": "s1"},
        {"seen": [0, 2], "unseen": [1, 3], "seed": 2, "name": "s2"}]}))
    assert nb.upstream("DATA_PREP_DIR", None, "01_data_prep", "splits.json") == prep
    _, splits = load_splits(prep)
    assert splits[1] == ZeroShotSplit((2, 3), (0, 1), 1, "s1", 4)
    assert [s.name for s in select_splits(splits, 10)] == ["s0", "s1", "s2"]
    assert [s.name for s in select_splits(splits, 10, smoke=True)] == ["s0", "s1"]
    assert [s.name for s in select_splits(splits, 1, indices=[2, 0])] == ["s2", "s0"]
    with pytest.raises(ParameterError, match="repeats a split"):
        select_splits(splits, 3, [1, 1])
    with pytest.raises(ParameterError, match="SPLIT_INDICES item=7"):
        select_splits(splits, 3, [7])
    with pytest.raises(ParameterError, match="SEED"):
        start_notebook("x", -1, False, tmp_path / "x", tmp_path / "f")


def test_pretrained_world_resolves_to_the_regime_and_size():
    from zsar.workbook.setup import resolve_pretrained

    assert resolve_pretrained("world") == "zsar-world-open"
    assert resolve_pretrained("world", "disjoint", smoke=True) == "zsar-world-disjoint-smoke"
    assert resolve_pretrained(None, "disjoint") is None  # random init
    assert resolve_pretrained("/abs/ckpt.pt") == "/abs/ckpt.pt" and resolve_pretrained("openai") == "openai"
    with pytest.raises(ParameterError, match="REGIME"):
        resolve_pretrained("world", "closed")
    with pytest.raises(ParameterError, match="PRETRAINED"):
        resolve_pretrained(3)
