"""The captioned pretraining corpus (zsar.data.embedded.corpus): the two regimes' rules, determinism, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zsar.data.decoding import probe
from zsar.data.embedded.actions import action_classes
from zsar.data.embedded.config import BenchmarkConfig
from zsar.data.embedded.corpus import (
    PRIMITIVES,
    CorpusConfig,
    benchmark_texts,
    caption_leaks,
    clip_program,
    generate_corpus,
    load_corpus,
    plan_corpus,
)

SMALL = BenchmarkConfig(size=32, duration=1.0, fps=8)


@pytest.fixture(scope="module")
def plans():
    return {regime: plan_corpus(CorpusConfig(regime=regime, n_clips=400, render=SMALL)) for regime in ("open", "disjoint")}


def test_caption_leaks_matches_whole_words_after_normalisation():
    assert caption_leaks("Someone, running fast", ["run"]) == []
    assert caption_leaks("they RUN across the gym", ["run"]) == ["run"]
    assert caption_leaks("a person will Jump in place now", ["jump in place"]) == ["jump in place"]
    assert caption_leaks("jump, then place", ["jump in place"]) == []


@pytest.mark.parametrize("regime", ["open", "disjoint"])
def test_no_caption_contains_a_benchmark_class_name_or_description(plans, regime):
    texts = benchmark_texts()
    assert len(texts) == 2 * len(action_classes())
    for clip in plans[regime]:
        assert len(clip.captions) == 3 and len(set(clip.captions)) == 3, clip
        for caption in clip.captions:
            assert caption_leaks(caption, texts) == [], (clip.clip_id, caption)


def test_disjoint_renders_no_benchmark_program_only_compositions(plans):
    benchmark = [c.program for c in action_classes()]
    for clip in plans["disjoint"]:
        assert clip.source == "composed" and clip.program is not None
        program, reverse = clip_program(clip)
        assert not reverse
        # a composition of two different primitive moves, in sequence, at once or in turn
        first, second, relation = clip.moves
        assert first != second and {first, second} <= {p.name for p in PRIMITIVES}
        assert relation in ("then", "while", "repeat") and program.cyclic == (relation == "repeat")
        for other in benchmark:
            assert not (program.view == other.view and program.values.shape == other.values.shape
                        and np.allclose(program.values, other.values)), clip.clip_id


def test_open_also_plays_every_benchmark_program_with_other_captions(plans):
    sources = [c.source for c in plans["open"]]
    assert {f"benchmark:{c.name}" for c in action_classes()} <= set(sources)
    assert 0.4 < sources.count("composed") / len(sources) < 0.6
    by_name = {c.name: c for c in action_classes()}
    for clip in plans["open"]:
        if clip.source != "composed":
            cls = by_name[clip.source.split(":", 1)[1]]
            assert clip.program is None and clip_program(clip) == (cls.program, cls.reversed)
            # the captions speak of the class's units and of the scene the clip is set in
            assert any(part in " ".join(clip.captions) for part in cls.units["body_parts"])


def test_plan_is_deterministic_and_named_by_its_config():
    config = CorpusConfig(regime="disjoint", n_clips=30, render=SMALL)
    assert plan_corpus(config) == plan_corpus(config)
    assert config.fingerprint() != CorpusConfig(regime="open", n_clips=30, render=SMALL).fingerprint()
    assert config.fingerprint() != CorpusConfig(regime="disjoint", n_clips=30, seed=1, render=SMALL).fingerprint()
    assert CorpusConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="regime"):
        CorpusConfig(regime="web")
    # every primitive shows up, speeds and scenes vary
    plan = plan_corpus(CorpusConfig(regime="disjoint", n_clips=300, render=SMALL))
    words = " ".join(c for clip in plan for c in clip.captions)
    assert all(any(p in words for p in prim.phrases) for prim in PRIMITIVES)
    assert len({c.scene for c in plan}) == 6 and {"slowly", "quickly"} <= set(words.split())


def test_generate_writes_real_videos_and_is_cached(tmp_path):
    config = CorpusConfig(regime="open", n_clips=6, render=SMALL)
    root = generate_corpus(tmp_path / "corpus", config, workers=1, progress=False)
    clips = load_corpus(root)
    assert [c["clip_id"] for c in clips] == [c.clip_id for c in plan_corpus(config)]
    for clip in clips:
        info = probe(clip["video"])
        assert info.num_frames == SMALL.n_frames and len(clip["captions"]) == 3
        with np.load(root / "meta" / f"{clip['clip_id']}.npz") as meta:
            assert meta["joints"].shape[0] == SMALL.n_frames and list(meta["captions"]) == clip["captions"]
            assert json.loads(str(meta["units"])) == clip["units"] and str(meta["source"]) == clip["source"]
    stamp = (root / "corpus.json").stat().st_mtime_ns
    generate_corpus(root, config, workers=1, progress=False)  # the same config: nothing is written
    assert (root / "corpus.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="no complete corpus"):
        load_corpus(tmp_path / "nothing")
