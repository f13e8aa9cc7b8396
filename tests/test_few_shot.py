"""Few-shot evaluation (zsar.experiments.few_shot): support draws, adaptations, summary, a smoke run."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from zsar.data.protocols import ZeroShotSplit, random_class_splits
from zsar.data.records import VideoList, VideoRecord
from zsar.experiments import DataSource, build_split_data, load_embedded_source
from zsar.experiments.few_shot import (ADAPTATIONS, ZERO_SHOT_ROW, FewShotNotApplicable, adapted_scores,
                                       few_shot_episodes, few_shot_eval, few_shot_skip_reason, few_shot_table,
                                       run_few_shot_split, run_few_shot_splits, summarize_few_shot)
from zsar.methods import ClassTexts, FrameAverage, Supervised, cosine_scores

torch.set_num_threads(1)

N_CLASSES, CLIPS, TEST_CLIPS, DIM = 10, 24, 8, 32  # 16 train-list clips per class: K up to 16


@pytest.fixture(scope="module")
def synthetic_source():
    """A DataSource of fake records (never decoded): 10 classes x 24 clips, the first 8 in the test list."""
    names = [f"class {c}" for c in range(N_CLASSES)]
    records = [VideoRecord(Path(f"/nowhere/c{c}_{i}.mp4"), c, f"c{c}/v{i}") for c in range(N_CLASSES)
               for i in range(CLIPS)]
    test_ids = frozenset(f"c{c}/v{i}" for c in range(N_CLASSES) for i in range(TEST_CLIPS))
    videos = VideoList(records, names, Path("/nowhere"), "synthetic")
    return DataSource(videos, test_ids, ClassTexts.from_names(names), name="synthetic")


@pytest.fixture(scope="module")
def synthetic_splits():
    return random_class_splits(N_CLASSES, n_splits=2, seed=0)


def as_list(video_list, role):
    """Dataset factory of the stub: the VideoList itself (the stub reads its records)."""
    return video_list


class StubMethod:
    """Embeds a clip as its class centre + seeded noise; zero-shot prototypes are unrelated vectors."""

    display_name = "stub"

    def __init__(self, noise: float, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.centres = {f"class {c}": v for c, v in enumerate(rng.normal(size=(N_CLASSES, DIM)))}
        self.noise, self.embedded = noise, []

    def video_embeddings(self, dataset) -> np.ndarray:
        self.embedded.append([r.video_id for r in dataset.records])
        out = []
        for r in dataset.records:
            rng = np.random.default_rng(zlib.crc32(r.video_id.encode()))
            out.append(self.centres[dataset.class_names[r.label]] + self.noise * rng.normal(size=DIM))
        return np.array(out, dtype=np.float32)

    def class_prototypes(self, target_texts, seen_texts=None) -> np.ndarray:
        return np.random.default_rng(99).normal(size=(len(target_texts), DIM)).astype(np.float32)


def episodes_of(data, **kw):
    return {(e.k, e.draw): e.support for e in few_shot_episodes(data, **kw)}


def test_support_is_k_train_list_clips_per_unseen_class(tiny_bench):
    source = load_embedded_source(tiny_bench)
    split = random_class_splits(len(source.texts), n_splits=1, seed=0)[0]
    data = build_split_data(source, split, gzsl=False)
    unseen_names = {source.texts.names[c] for c in split.unseen}
    test = set(np.flatnonzero(data.testlist_mask).tolist())
    with pytest.warns(UserWarning, match="K=4"):  # tiny_bench: 3 train-list clips per class
        episodes = few_shot_episodes(data, k_values=(1, 2, 3, 4), draws=3, seed=0, split_name=split.name)
    assert sorted({e.k for e in episodes}) == [1, 2, 3] and len(episodes) == 9
    for ep in episodes:
        records = [data.unseen_test.records[i] for i in ep.support]
        assert not {r.video_id for r in records} & source.test_ids  # train list only
        assert not set(ep.support) & test  # never a scored clip
        assert {data.unseen_test.class_names[r.label] for r in records} == unseen_names
        assert Counter(r.label for r in records) == {c: ep.k for c in range(len(split.unseen))}


def test_draws_are_reproducible_and_differ_by_seed(synthetic_source, synthetic_splits):
    data = build_split_data(synthetic_source, synthetic_splits[0])
    kw = dict(k_values=(2, 8), draws=3, split_name="a")
    first, again = episodes_of(data, seed=0, **kw), episodes_of(data, seed=0, **kw)
    assert first == again and len(first) == 6
    assert len({first[(8, d)] for d in range(3)}) == 3  # draws differ
    assert episodes_of(data, seed=1, **kw)[(8, 0)] != first[(8, 0)]  # so do seeds
    assert episodes_of(data, seed=0, k_values=(2, 8), draws=3, split_name="b")[(8, 0)] != first[(8, 0)]


def test_fused_interpolates_between_zero_shot_and_prototype():
    rng = np.random.default_rng(0)
    support, labels = rng.normal(size=(6, 5)), np.repeat(np.arange(3), 2)
    test, zero_shot = rng.normal(size=(7, 5)), rng.normal(size=(3, 5))
    proto = adapted_scores("prototype", support, labels, test, zero_shot)
    assert np.allclose(adapted_scores("fused", support, labels, test, zero_shot, beta=0.0), proto, atol=1e-6)
    assert np.allclose(adapted_scores("fused", support, labels, test, zero_shot, beta=1.0),
                       cosine_scores(test, zero_shot), atol=1e-6)
    unit = support / np.linalg.norm(support, axis=1, keepdims=True)
    naive = np.stack([unit[labels == c].mean(0) for c in range(3)])
    assert np.allclose(proto, cosine_scores(test, naive), atol=1e-6)  # naive: mean of unit support rows
    probs = adapted_scores("linear", support, labels, test, zero_shot)
    assert probs.shape == (7, 3) and np.allclose(probs.sum(1), 1.0)
    with pytest.raises(ValueError, match="adaptation='knn'"):
        adapted_scores("knn", support, labels, test, zero_shot)


@pytest.fixture(scope="module")
def noisy_rows(synthetic_source, synthetic_splits):
    rows, stubs = [], []
    for split in synthetic_splits:
        stub = StubMethod(noise=1.6)
        data = build_split_data(synthetic_source, split)
        rows += few_shot_eval(stub, data, as_list, k_values=(1, 4, 16), draws=4, seed=0, split_name=split.name,
                              progress=False)
        stubs.append((stub, data))
    return rows, stubs


def test_every_clip_is_embedded_once(noisy_rows):
    for stub, data in noisy_rows[1]:
        assert stub.embedded == [[r.video_id for r in data.unseen_test.records]]


def test_accuracy_rises_with_k(noisy_rows):
    rows = noisy_rows[0]
    zero = np.mean([r["top1"] for r in rows if r["adaptation"] == ZERO_SHOT_ROW])
    for adaptation in ADAPTATIONS:
        acc = [np.mean([r["top1"] for r in rows if r["adaptation"] == adaptation and r["k"] == k]) for k in (1, 4, 16)]
        assert acc[0] + 0.05 < acc[1] < acc[2], (adaptation, acc)
        assert acc[2] > zero + 0.3, (adaptation, acc, zero)
    assert all(r["n_test"] == 5 * TEST_CLIPS and r["n_support"] == 5 * r["k"] for r in rows)


def test_prototype_is_perfect_when_classes_are_separated(synthetic_source, synthetic_splits):
    data = build_split_data(synthetic_source, synthetic_splits[0])
    rows = few_shot_eval(StubMethod(noise=0.05), data, as_list, k_values=(2, 16), draws=2, progress=False)
    for r in rows:
        if r["adaptation"] in ("prototype", "linear"):
            assert r["top1"] == 1.0 and r["mean_class_acc"] == 1.0, r


def test_summary_is_mean_and_std_over_splits_and_draws(noisy_rows):
    rows = noisy_rows[0]
    summary = summarize_few_shot(rows)
    assert len(summary) == 1 + 3 * len(ADAPTATIONS)  # zero-shot row + K x adaptation
    assert list(summary["adaptation"][:2]) == [ZERO_SHOT_ROW, "prototype"]
    pick = [r["top1"] for r in rows if r["adaptation"] == "linear" and r["k"] == 4]
    got = summary[(summary["adaptation"] == "linear") & (summary["k"] == 4)].iloc[0]
    assert got["top1_mean"] == pytest.approx(np.mean(pick)) and got["top1_std"] == pytest.approx(np.std(pick, ddof=1))
    assert got["runs"] == 2 * 4 and got["splits"] == 2
    with pytest.raises(ValueError, match="duplicate"):
        summarize_few_shot(rows + rows[:1])
    table = few_shot_table(summary)
    assert table.shape == (1 + len(ADAPTATIONS), 4) and list(table.columns) == [0, 1, 4, 16]
    assert table.loc[("stub", "linear"), 4] == f"{100 * np.mean(pick):.1f} ± {100 * np.std(pick, ddof=1):.1f}"
    assert table.loc[("stub", ZERO_SHOT_ROW), 4] == ""


def test_methods_without_a_zero_shot_embedding_are_skipped(synthetic_source, synthetic_splits, tmp_path):
    assert few_shot_skip_reason(FrameAverage) is None
    assert "not zero-shot" in few_shot_skip_reason(Supervised)
    with pytest.raises(FewShotNotApplicable, match="no video_embeddings"):
        few_shot_eval(object(), build_split_data(synthetic_source, synthetic_splits[0]), as_list)
    with pytest.warns(UserWarning, match="not zero-shot"):
        assert run_few_shot_split("supervised", {}, synthetic_source, synthetic_splits[0], tmp_path) == []
    with pytest.warns(UserWarning, match="not zero-shot"):  # no worker is started for it either
        assert run_few_shot_splits("supervised", {}, synthetic_source, tmp_path, synthetic_splits, workers=2) == []
    assert not list(tmp_path.iterdir())  # nothing was fitted


def test_frame_average_smoke_run_and_resume(tiny_bench, tmp_path, monkeypatch):
    source = load_embedded_source(tiny_bench)
    split = ZeroShotSplit(range(6), range(6, 12), name="half", n_classes=12)
    kw = dict(k_values=(1, 2), draws=2, seed=1)
    rows = run_few_shot_split("frame_average", dict(frames=2, progress=False), source, split, tmp_path, **kw)
    assert len(rows) == 1 + 2 * 2 * len(ADAPTATIONS)
    assert all(0.0 <= r["top1"] <= 1.0 and r["method_name"] == "frame_average" for r in rows)
    assert json.loads((tmp_path / "few_shot.json").read_text())["rows"] == rows

    def refuse(*args, **kwargs):
        raise AssertionError("a finished few-shot run must not be refitted")

    monkeypatch.setattr(FrameAverage, "fit", refuse)
    assert run_few_shot_split("frame_average", dict(frames=2, progress=False), source, split, tmp_path, **kw) == rows


def test_a_finished_run_gives_the_rows_from_its_artefact_without_a_fit(tiny_bench, tmp_path, monkeypatch):
    """The run's stored embeddings and prototypes are what the fitted method would compute again."""
    from zsar.experiments import read_artifact, run_split
    from zsar.experiments.few_shot import unseen_arrays

    source = load_embedded_source(tiny_bench)
    split = ZeroShotSplit(range(6), range(6, 12), name="half", n_classes=12)
    method_kwargs, kw = dict(frames=2, progress=False), dict(k_values=(1, 2), draws=2, seed=1)
    refitted = run_few_shot_split("frame_average", method_kwargs, source, split, tmp_path / "fit", **kw)
    run_split("frame_average", method_kwargs, source, split, tmp_path / "run", seed=1)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run must not be fitted again for its few-shot rows")

    monkeypatch.setattr(FrameAverage, "fit", refuse)
    from_run = run_few_shot_split("frame_average", method_kwargs, source, split, tmp_path / "run", **kw)
    assert [{k: v for k, v in r.items() if k != "top1" and k != "mean_class_acc"} for r in from_run] == \
        [{k: v for k, v in r.items() if k != "top1" and k != "mean_class_acc"} for r in refitted]
    assert [r["top1"] for r in from_run] == pytest.approx([r["top1"] for r in refitted], abs=1e-9)
    assert json.loads((tmp_path / "run" / "few_shot.json").read_text())["rows"] == from_run

    data = build_split_data(source, split, seed=1)
    embeddings, zero_shot = unseen_arrays(read_artifact(tmp_path / "run"), data)
    assert embeddings.shape[0] == len(data.unseen_test) and zero_shot.shape[0] == len(data.unseen_texts)
    other = build_split_data(source, ZeroShotSplit(range(6, 12), range(6), name="other", n_classes=12), seed=1)
    with pytest.raises(ValueError, match="does not cover this split's unseen set"):
        unseen_arrays(read_artifact(tmp_path / "run"), other)
    # another run configuration (here: another seed) is not read: it needs a fit, which is refused
    with pytest.raises(AssertionError, match="must not be fitted again"):
        run_few_shot_split("frame_average", method_kwargs, source, split, tmp_path / "run", **{**kw, "seed": 2})


def test_parallel_splits_match_sequential_and_finished_splits_stay_in_process(tiny_bench, tmp_path, monkeypatch):
    """workers=2 gives the rows of a sequential run; a second call reads them without a subprocess."""
    from zsar.experiments import few_shot as few_shot_module

    source = load_embedded_source(tiny_bench)
    splits = [ZeroShotSplit(range(6), range(6, 12), name="a", n_classes=12),
              ZeroShotSplit(range(6, 12), range(6), name="b", n_classes=12)]
    kw = dict(k_values=(1,), draws=1, seed=1)
    method_kwargs = dict(frames=2, progress=False)
    sequential = run_few_shot_splits("frame_average", method_kwargs, source, tmp_path / "seq", splits, **kw)
    parallel = run_few_shot_splits("frame_average", method_kwargs, source, tmp_path / "par", splits, workers=2, **kw)
    assert parallel == sequential and {r["split"] for r in parallel} == {"a", "b"}

    jobs_sent = []
    original = few_shot_module.map_splits
    monkeypatch.setattr(few_shot_module, "map_splits",
                        lambda fn, jobs, *a: (jobs_sent.append(list(jobs)), original(fn, jobs, *a))[1])
    (tmp_path / "par" / "frame_average" / "b" / "few_shot.json").unlink()  # split b must run again
    again = run_few_shot_splits("frame_average", method_kwargs, source, tmp_path / "par", splits, workers=2, **kw)
    assert again == sequential
    assert [[job[3].name for job in jobs] for jobs in jobs_sent] == [["b"]]
