"""Workbook presets, the regime loop of the runner, the benchmark folder per size, and method recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.recipe_search import format_results, grid_points, parse_grid, seen_class_folds
from zsar.experiments.settings import (CLASS_TEXT, PRETRAINED_RECIPES, SCRATCH_RECIPES, TRAINED_METHODS,
                                       method_kwargs)
from zsar.methods import METHODS
from zsar.workbook.presets import PRESETS, REGIME_NOTEBOOKS, get_preset
from zsar.workbook.setup import benchmark_config, benchmark_root

STEMS = ["00_pretraining", "01_data_prep", "02_training", "03_semantic_transfer", "04_hubness", "05_embeddings",
         "06_methods", "07_paper_figures"]


@pytest.fixture
def fake_workbook(tmp_path, monkeypatch):
    """The runner with notebooks that only record their call and write notebook 06's table."""
    from zsar.workbook import runner

    sources = tmp_path / "notebooks"
    sources.mkdir()
    notebooks = [sources / f"{stem}.ipynb" for stem in STEMS]
    calls = []

    def run(nb, runs_dir, figures_dir, parameters, **kwargs):
        calls.append((nb.stem, runs_dir, figures_dir, dict(parameters)))
        (runs_dir / nb.stem).mkdir(parents=True, exist_ok=True)
        if nb.stem == "06_methods":
            (runs_dir / nb.stem / "results.md").write_text(f"| table of {parameters['REGIME']} |\n")

    monkeypatch.setenv("ZSAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "list_notebooks", lambda folder=None: notebooks)
    monkeypatch.setattr(runner, "run_notebook", run)
    return runner, tmp_path / "runs", tmp_path / "figures", calls


def test_paper_preset_runs_the_regime_notebooks_once_per_regime(fake_workbook, capsys):
    runner, runs, figures, calls = fake_workbook
    assert runner.main(["--preset", "paper", "--runs-dir", str(runs), "--figures-dir", str(figures), "--no-report"]) == 0
    first, second = calls[:len(STEMS)], calls[len(STEMS):]
    assert [c[0] for c in first] == STEMS and [c[0] for c in second] == list(REGIME_NOTEBOOKS)
    assert all(c[1] == runs and c[2] == figures and c[3]["REGIME"] == "open" for c in first)
    assert all(c[1] == runs / "disjoint" and c[2] == figures / "disjoint" and c[3]["REGIME"] == "disjoint"
               and c[3]["DATA_PREP_DIR"] == str(runs / "01_data_prep") for c in second)
    paper = get_preset("paper").parameters
    assert all(c[3][k] == v for c in calls for k, v in paper.items())
    table = (runs / "regimes.md").read_text()
    assert table.index("# Corpus regime `open`") < table.index("| table of open |") < table.index(
        "# Corpus regime `disjoint`") < table.index("| table of disjoint |")
    assert f"both regimes' tables: {runs / 'regimes.md'}" in capsys.readouterr().out


def test_quick_preset_and_an_explicit_regime_run_one_regime(fake_workbook):
    runner, runs, figures, calls = fake_workbook
    argv = ["--runs-dir", str(runs), "--figures-dir", str(figures), "--no-report"]
    assert runner.main(argv) == 0
    assert [c[0] for c in calls] == STEMS and {c[3]["REGIME"] for c in calls} == {"open"}
    assert "EPOCHS" not in calls[0][3]  # quick is the notebooks' own defaults
    calls.clear()
    assert runner.main(["--preset", "paper", "-p", "REGIME", "disjoint", *argv]) == 0
    assert [c[0] for c in calls] == STEMS and {c[3]["REGIME"] for c in calls} == {"disjoint"}
    assert calls[0][3]["EPOCHS"] == 15
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        get_preset("nope")
    assert set(PRESETS) == {"quick", "paper"}


def test_benchmark_folder_and_config_per_size(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSAR_DATA", str(tmp_path / "data"))
    from zsar import paths

    data = paths.data_dir()
    assert benchmark_root(None, False, 40) == data / "embedded_40"
    assert benchmark_root(None, False, None) == benchmark_root(None, False, 150) == data / "embedded"
    assert benchmark_root(None, True, 40) == data / "embedded_smoke"
    assert benchmark_root(str(tmp_path / "x"), False, 40) == tmp_path / "x"
    assert benchmark_config(False, 40, seed=3, size=64).clips_per_class == 40
    assert benchmark_config(False, 40, seed=3, size=64).seed == 3
    assert benchmark_config(True, 40).clips_per_class == benchmark_config(True, None).clips_per_class < 40


def test_recipes_layer_by_start_and_user_values_win():
    for name in TRAINED_METHODS:
        scratch, pretrained = method_kwargs(name), method_kwargs(name, common={"pretrained": "zsar-world-open"})
        assert scratch["lr"] == SCRATCH_RECIPES[name]["lr"] and pretrained["lr"] == PRETRAINED_RECIPES[name]["lr"]
        assert method_kwargs(name, common={"pretrained": "w"}, trained={"lr": 0.5, "epochs": 2})["lr"] == 0.5
        assert method_kwargs(name, common={"pretrained": "w"}, trained={"lr": None})["lr"] == PRETRAINED_RECIPES[name]["lr"]
        METHODS[name](**method_kwargs(name, common={"pretrained": "w"}))  # every recipe key is a constructor argument
    # from pretrained weights the language tower stays locked where the method has the switch
    assert method_kwargs("actionclip", common={"pretrained": "w"})["freeze_text"] is True
    assert method_kwargs("rest", pretrained=True)["train_text"] is False
    assert "freeze_text" not in method_kwargs("actionclip", pretrained=False)


def test_class_text_defaults_and_overrides():
    assert set(CLASS_TEXT) == set(METHODS)
    assert method_kwargs("rest")["text_kind"] == CLASS_TEXT["rest"]
    assert method_kwargs("rest", class_text="description")["text_kind"] == "description"
    mixed = {"rest": "units"}
    assert method_kwargs("rest", class_text=mixed)["text_kind"] == "units"
    assert method_kwargs("actionclip", class_text=mixed)["text_kind"] == CLASS_TEXT["actionclip"]
    assert method_kwargs("rest", class_text="description", common={"text_kind": "name"})["text_kind"] == "name"


def test_seen_class_folds_use_only_the_seen_classes():
    split = ZeroShotSplit([0, 2, 4, 6, 8, 10, 12], [1, 3, 5, 7, 9, 11, 13], 0, "s0", 14)
    folds = seen_class_folds(split, 3, seed=1)
    assert len(folds) == 3 and len({tuple(f.unseen) for f in folds}) > 1
    for fold in folds:
        assert set(fold.seen) | set(fold.unseen) == set(split.seen) and not set(fold.seen) & set(fold.unseen)
        assert len(fold.unseen) == 3 and fold.n_classes == 14 and fold.name.startswith("s0-seenfold")
    again = seen_class_folds(split, 3, seed=1)
    assert [f.unseen for f in again] == [f.unseen for f in folds]


def test_grid_parsing_and_the_results_table():
    grid = parse_grid(["lr=1e-5,1e-4", "freeze_text=True"])
    assert grid == {"lr": [1e-5, 1e-4], "freeze_text": [True]}
    assert parse_grid(["text_kind=name,name+description"]) == {"text_kind": ["name", "name+description"]}
    assert grid_points(grid) == [{"lr": 1e-5, "freeze_text": True}, {"lr": 1e-4, "freeze_text": True}]
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        parse_grid(["lr"])
    results = {"rest": {"points": [{"params": {"lr": 1e-4}, "top1": [0.1, 0.2], "mean": 0.15},
                                   {"params": {"lr": 1e-3}, "top1": [0.3, 0.1], "mean": 0.2}], "best": {"lr": 1e-3}}}
    text = format_results(results, "header")
    assert "| rest | lr=0.0001 | 10.00 / 20.00 | 15.00 |" in text and "| rest | lr=0.001 | 30.00 / 10.00 | **20.00** |" in text


def test_a_locked_text_tower_encodes_each_vocabulary_once():
    from zsar.models import ClipTextSpace, create_model, get_tokenizer

    torch.manual_seed(0)
    model = create_model("zsar-RN-T-64", None)
    calls = []
    original = model.encode_text
    model.encode_text = lambda *a, **k: calls.append(1) or original(*a, **k)
    for p in model.parameters():
        p.requires_grad_(False)
    space = ClipTextSpace(model, get_tokenizer("zsar-RN-T-64"), templates=["a video of {}.", "{}"])
    first = space.encode_torch(["run", "jump"])
    model.train()  # the memo is computed in eval mode and the modes are restored
    again = space.encode_torch(["run", "jump"])
    assert torch.equal(first, again) and len(calls) == 1 and model.training
    assert space.encoded_texts == ["run", "jump", "run", "jump"]  # every call is still recorded
    np.testing.assert_allclose(space.encode(["run", "jump"]), first.numpy(), atol=1e-6)
    assert len(calls) == 1
    model.token_embedding.weight.requires_grad_(True)  # unlocked: encoded each time again
    space.encode_torch(["run", "jump"])
    space.encode_torch(["run", "jump"])
    assert len(calls) == 3
