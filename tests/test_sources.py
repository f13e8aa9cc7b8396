"""Data sources (zsar.experiments.sources): UCF101 / HMDB51 loaders, descriptions, the dispatcher.

The embedded benchmark is written in the UCF101 layout, so reading it as UCF101 must give the
same videos, labels and test list as its own loader; the official split files (shared data, if
present) must parse into 101 / 51 classes; notebook 01 run on real-layout data writes a
``splits.json`` that notebook 02 runs on.
"""

from __future__ import annotations

import json
import math

import papermill as pm
import pytest

from zsar.data.annotations import read_class_index
from zsar.experiments.parameters import ParameterError
from zsar.experiments.sources import (
    SOURCE_DATASETS,
    check_source_parameters,
    class_descriptions,
    hmdb51_source,
    join_texts,
    load_embedded_source,
    load_source,
    source_spec,
    ucf101_source,
)
from zsar.models.prompts import readable_class_name
from zsar.text.class_texts import UNIT_GROUPS
from zsar.workbook import list_notebooks, run_notebook


def _records(source):
    return [(r.path, r.label, r.video_id) for r in source.videos.records]


@pytest.fixture(scope="module")
def embedded_and_ucf(tiny_bench):
    return load_embedded_source(tiny_bench), ucf101_source(tiny_bench / "videos", tiny_bench / "splits")


def test_ucf101_source_reads_the_embedded_benchmark_like_its_own_loader(tiny_bench, embedded_and_ucf):
    embedded, ucf = embedded_and_ucf
    assert _records(ucf) == _records(embedded) and len(ucf.videos) == 12 * 4
    assert ucf.test_ids == embedded.test_ids and 0 < len(ucf.test_ids) < len(ucf.videos)
    dirs = read_class_index(tiny_bench / "splits" / "classInd.txt")
    assert ucf.videos.class_dirs == dirs
    assert list(ucf.texts.names) == [readable_class_name(d) for d in dirs] == ucf.videos.class_names
    assert ucf.texts.names[0] == "walk forward" and ucf.pairs == () and ucf.name == "ucf101:split1"
    assert ucf.texts.descriptions == ("",) * 12  # no descriptions file: names only
    # units extracted from the names alone ("put" of "put down a box" is no vocabulary word)
    assert sum(any(u.values()) for u in ucf.texts.units) >= 10 and set(ucf.texts.units[0]) == set(UNIT_GROUPS)
    assert ucf.texts.units[0]["motions"] == ("walk", "forward")
    assert ucf.texts.units[ucf.texts.names.index("clap hands")]["body_parts"] == ("hand",)


def test_descriptions_land_on_their_class_in_every_layout(tiny_bench, tmp_path):
    names = ["walk forward", "walk backward", "run"]
    dirs = ["WalkForward", "WalkBackward", "Run"]
    gpt = tmp_path / "gpt4vis.json"  # keyed by folder name, several sentences
    gpt.write_text(json.dumps({"Run": ["A person runs on a track.", "Legs move fast."]}))
    ost = tmp_path / "ost.json"  # keyed by label index
    ost.write_text(json.dumps({"1": ["backwards steps", "looking over the shoulder"]}))
    er = tmp_path / "er.json"  # ER-ZSAR list, NOT in label order: matched by word, not position
    er.write_text(json.dumps([{"word": "run", "defn": "move fast on foot."},
                              {"word": "walk forward", "defn": "step ahead."},
                              {"word": "walk backward", "defn": "step back."}]))
    assert class_descriptions(gpt, names, dirs) == [[], [], ["A person runs on a track.", "Legs move fast."]]
    assert class_descriptions(ost, names, dirs) == [[], ["backwards steps", "looking over the shoulder"], []]
    assert class_descriptions(er, names, dirs) == [["step ahead."], ["step back."], ["move fast on foot."]]
    assert join_texts(["A person runs.", "bow", "arrow"]) == "A person runs. bow; arrow"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Swim": "in a pool"}))
    with pytest.raises(ValueError, match="Swim"):
        class_descriptions(bad, names, dirs)

    desc = tmp_path / "bench.json"
    desc.write_text(json.dumps({"Run": ["A person runs across a field holding a ball."]}))
    source = ucf101_source(tiny_bench / "videos", tiny_bench / "splits", descriptions=desc)
    run = source.texts.names.index("run")
    assert source.texts.descriptions[run] == "A person runs across a field holding a ball."
    assert "ball" in source.texts.units[run]["objects"]  # a unit only the description mentions
    assert sum(bool(d) for d in source.texts.descriptions) == 1 and source.name == "ucf101:split1:bench"


def test_load_source_dispatches_on_dataset_and_checks_the_classes(tiny_bench, embedded_and_ucf):
    embedded, ucf = embedded_and_ucf
    legacy = {"protocol": "random_50_50", "data_root": str(tiny_bench), "class_names": list(embedded.texts.names)}
    assert _records(load_source(legacy)) == _records(embedded)  # no "dataset": the embedded benchmark
    from_spec = load_source({**legacy, "dataset": "embedded"})
    assert from_spec.texts == embedded.texts and from_spec.pairs == embedded.pairs and len(from_spec.pairs) > 0

    spec = source_spec("ucf101", tiny_bench / "videos", tiny_bench / "splits")
    assert spec["dataset"] == "ucf101" and spec["official_split"] == 1 and spec["descriptions"] is None
    real = load_source({**spec, "class_names": list(ucf.texts.names)})
    assert _records(real) == _records(ucf) and real.texts == ucf.texts and real.test_ids == ucf.test_ids

    with pytest.raises(ValueError, match="kinetics.*embedded.*ucf101.*hmdb51"):
        load_source({**spec, "dataset": "kinetics"})
    with pytest.raises(ValueError, match="data_root"):
        load_source({"dataset": "ucf101", "split_dir": spec["split_dir"]})
    with pytest.raises(ValueError, match="class_names"):  # splits index classes: another order is an error
        load_source({**spec, "class_names": list(reversed(ucf.texts.names))})
    with pytest.raises(ValueError, match="official split 4"):
        ucf101_source(tiny_bench / "videos", tiny_bench / "splits", split=4)


def test_notebook_parameters_fail_naming_the_parameter(tiny_bench, tmp_path):
    videos, splits = str(tiny_bench / "videos"), str(tiny_bench / "splits")
    with pytest.raises(ParameterError, match=r"DATASET='ucf' .*\['embedded', 'ucf101', 'hmdb51'\]"):
        check_source_parameters("ucf", videos, splits, None)
    with pytest.raises(ParameterError, match="DATA_ROOT is required"):
        check_source_parameters("ucf101", None, splits, None)
    with pytest.raises(ParameterError, match="SPLIT_DIR is required.*testTrainMulti_7030_splits"):
        check_source_parameters("hmdb51", videos, None, None)
    with pytest.raises(ParameterError, match="SPLIT_DIR=.*not a folder"):
        check_source_parameters("ucf101", videos, str(tmp_path / "nope"), None)
    with pytest.raises(ParameterError, match="DESCRIPTIONS"):
        check_source_parameters("ucf101", videos, splits, str(tmp_path / "missing.json"))
    with pytest.raises(ParameterError, match="OFFICIAL_SPLIT"):
        check_source_parameters("ucf101", videos, splits, None, 4)
    with pytest.raises(ParameterError, match="SPLIT_DIR"):  # the embedded benchmark has its own split files
        check_source_parameters("embedded", None, splits, None)
    assert check_source_parameters("ucf101", videos, splits, None) is None
    assert check_source_parameters("embedded", None, None, None) is None
    assert SOURCE_DATASETS == ("embedded", "ucf101", "hmdb51")


def test_shared_official_split_files_parse_into_101_and_51_classes(shared_data, tmp_path):
    meta = shared_data / "meta"
    ucf = ucf101_source(tmp_path, meta / "ucf101/ucfTrainTestlist", check_files=False)
    assert len(ucf.texts) == 101 and len(ucf.videos) == 13320 and len(ucf.test_ids) == 3783
    assert ucf.texts.names[:2] == ("apply eye makeup", "apply lipstick")
    assert ucf.videos.class_dirs[0] == "ApplyEyeMakeup"
    assert len({r.label for r in ucf.videos.records}) == 101
    # ER-ZSAR's list swaps HammerThrow/Hammering relative to classInd.txt: matching by name fixes it
    er = ucf101_source(tmp_path, meta / "ucf101/ucfTrainTestlist", check_files=False,
                       descriptions=meta / "descriptions/er_zsar/ucf101_classes_label_defn.json")
    assert all(er.texts.descriptions) and "hammer" in er.texts.descriptions[er.texts.names.index("hammering")]
    hmdb = hmdb51_source(tmp_path, meta / "hmdb51/testTrainMulti_7030_splits", split=2, check_files=False,
                         descriptions=meta / "descriptions/ost/hmdb/spatio_descriptors/4_descriptors.json")
    assert len(hmdb.texts) == 51 and hmdb.texts.names[0] == "brush hair" and hmdb.name.startswith("hmdb51:split2")
    assert all(hmdb.texts.descriptions) and "soccer" in hmdb.texts.descriptions[hmdb.texts.names.index("kick ball")]


# ----------------------------------------------------------------------------- notebooks on real-layout data
NOTEBOOKS = {nb.stem: nb for nb in list_notebooks()}


@pytest.fixture(scope="module")
def ucf_runs(tiny_bench, tmp_path_factory):
    """01_data_prep with DATASET="ucf101" on the tiny benchmark's folders, then 02 with two methods."""
    runs = tmp_path_factory.mktemp("ucf_runs")
    figures = runs / "figures"
    run_notebook(NOTEBOOKS["01_data_prep"], runs, figures,
                 {"SMOKE": True, "SEED": 0, "DATASET": "ucf101", "DATA_ROOT": str(tiny_bench / "videos"),
                  "SPLIT_DIR": str(tiny_bench / "splits")})
    run_notebook(NOTEBOOKS["02_training"], runs, figures,
                 {"SMOKE": True, "SEED": 0, "METHODS": ["frame_average", "eszsl"]})
    return runs, figures


@pytest.mark.notebook
def test_notebook_01_on_ucf101_layout_writes_splits_for_the_real_source(ucf_runs, tiny_bench):
    runs, figures = ucf_runs
    prep = json.loads((runs / "01_data_prep" / "splits.json").read_text())
    assert prep["dataset"] == "ucf101" and len(prep["splits"]) == 10 and prep["official_split"] == 1
    assert prep["data_root"] == str((tiny_bench / "videos").resolve())
    assert prep["split_dir"] == str((tiny_bench / "splits").resolve()) and prep["descriptions"] is None
    assert prep["class_names"][0] == "walk forward" and len(prep["class_names"]) == 12
    assert all(len(s["seen"]) == len(s["unseen"]) == 6 for s in prep["splits"])
    m = json.loads((runs / "01_data_prep" / "metrics.json").read_text())
    assert m["dataset"] == "ucf101" and m["n_clips"] == 48 and m["n_classes"] == 12
    assert m["scan_bad"] == 0 and m["scan_ok"] == 12 and not m["scan_all_clips"]  # smoke: one clip per class
    assert m["figures"] == [] and not list(figures.glob("01_*.png"))  # embedded-only figures skipped
    assert m["n_classes_with_units"] >= 10 and m["n_temporal_pairs"] == 0


@pytest.mark.notebook
def test_notebook_02_runs_on_the_ucf101_splits(ucf_runs):
    runs, _ = ucf_runs
    m = json.loads((runs / "02_training" / "metrics.json").read_text())
    assert m["data"] == "ucf101:split1" and m["methods"] == ["frame_average", "eszsl"] and m["n_splits"] == 2
    assert m["n_seen"] == m["n_unseen"] == 6
    for name in ("frame_average", "eszsl"):
        mean = m["results"][name]["mean"]
        for key in ("top1", "top5", "mean_class_acc", "gzsl_harmonic"):
            assert math.isfinite(mean[key]) and 0 <= mean[key] <= 1, (name, key)
        assert mean["pair_acc"] is None  # no temporal pairs on real data: nan, stored as null


@pytest.mark.notebook
def test_notebook_01_without_data_root_fails_naming_it(tiny_bench, tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOKS["01_data_prep"]), str(tmp_path / "out.ipynb"), kernel_name="python3",
                            progress_bar=False,
                            parameters={"DATASET": "hmdb51", "SPLIT_DIR": str(tiny_bench / "splits"), "SMOKE": True,
                                        "OUTPUT_DIR": str(tmp_path), "FIGURES_DIR": str(tmp_path / "figures")})
    assert "DATA_ROOT is required" in str(err.value) and not (tmp_path / "splits.json").exists()
