"""Semantic units (zsar.text.units): the bundled vocabulary, the extraction rule, the unit bank."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zsar.data.embedded import load_catalog
from zsar.text.class_texts import UNIT_GROUPS, ClassTexts
from zsar.text.semantic import SemanticSpace
from zsar.text.units import (UnitBank, VocabularyError, extract_units, load_unit_vocabulary, unit_groups,
                             with_extracted_units)

# ER-ZSAR's definition of UCF101 "apply eye makeup" (data/meta/descriptions/er_zsar), verbatim
ER_ZSAR_EYE_MAKEUP = ("put or spread (a substance) on a surface. each of a pair of globular organs of sight in the "
                      "head of humans and vertebrate animals. cosmetics such as lipstick or powder applied to the "
                      "face, used to enhance or alter the appearance.")


class LetterCounts(SemanticSpace):
    """A deterministic toy space: counts of the letters a..z (records what it encodes)."""

    name, dim = "letters", 26

    def _encode(self, texts):
        return np.array([[t.count(chr(97 + i)) + 1e-3 for i in range(26)] for t in texts], dtype=np.float32)


def test_unit_groups_are_the_class_texts_groups():
    assert unit_groups() == UNIT_GROUPS == ("body_parts", "objects", "scenes", "motions")


def test_bundled_vocabulary_has_every_group_and_lemmatises_words():
    vocab = load_unit_vocabulary()
    assert all(len(vocab.units[g]) >= 50 for g in UNIT_GROUPS)
    lemmas = {w: vocab.lemma(w) for w in ("running", "feet", "knees", "boxes", "knives", "dribbling", "skis",
                                          "threw", "bike", "bowling", "tying", "stepped")}
    assert lemmas == {"running": "run", "feet": "foot", "knees": "knee", "boxes": "box", "knives": "knife",
                      "dribbling": "dribble", "skis": "ski", "threw": "throw", "bike": "bicycle",
                      "bowling": "bowling", "tying": "tie", "stepped": "step"}
    assert vocab.lemma("zebracorn") == "zebracorn"  # unknown words stay as they are


def test_find_takes_the_longest_unit_in_order():
    vocab = load_unit_vocabulary()
    found = vocab.find("She sits in the living room and rolls a bowling ball with both feet; ApplyEyeMakeup")
    assert found == [("motions", "sit"), ("scenes", "living room"), ("motions", "roll"),
                     ("objects", "bowling ball"), ("body_parts", "foot"), ("motions", "apply"),
                     ("body_parts", "eye"), ("objects", "makeup")]


def test_extract_units_ranks_name_units_then_counts_and_caps_each_group():
    texts = ["They kick the ball with the foot.", "The foot swings and the ball flies.", "A hand waves."]
    units = extract_units(texts, name="SoccerJuggling", max_per_group=1)
    assert set(units) == set(UNIT_GROUPS)
    assert units["body_parts"] == ("foot",)  # 2 texts mention the foot, 1 the hand
    assert units["motions"] == ("juggle",)   # in the name: ranked before the more frequent kick
    assert units["objects"] == ("ball",) and units["scenes"] == ()
    everything = extract_units(texts, name="SoccerJuggling", max_per_group=None)
    assert everything["body_parts"] == ("foot", "hand")
    assert everything["motions"][:2] == ("juggle", "kick")
    with pytest.raises(ValueError, match="max_per_group"):
        extract_units(texts, max_per_group=0)


def test_extract_units_from_an_er_zsar_definition():
    units = extract_units(ER_ZSAR_EYE_MAKEUP, name="ApplyEyeMakeup", max_per_group=None)
    assert units["body_parts"][0] == "eye" and {"head", "face"} <= set(units["body_parts"])
    assert units["objects"][0] == "makeup" and "lipstick" in units["objects"]
    assert units["motions"] == ("apply",)


def test_with_extracted_units_keeps_declared_units_and_is_per_class(tiny_bench):
    catalog = load_catalog(tiny_bench)
    declared = ClassTexts.from_catalog(catalog, [0, 1])
    names_only = ClassTexts(("Basketball", "ApplyEyeMakeup"), ("", ER_ZSAR_EYE_MAKEUP))
    extra = {"Basketball": ["A player dribbles the ball on the court.", "He shoots at the hoop."]}
    filled = with_extracted_units(declared + names_only, extra)
    assert filled.units[:2] == declared.units
    assert filled.units[2]["objects"][:2] == ("basketball", "ball") and filled.units[2]["scenes"] == ("court",)
    assert filled.units[3]["body_parts"][0] == "eye"
    # a class's units depend on its own texts only (extracting all classes up front is leak-free)
    alone = with_extracted_units(names_only.subset([1]))
    assert alone.units[0] == filled.units[3]
    assert with_extracted_units(declared, overwrite=True).units[0] != declared.units[0]


def test_unit_bank_holds_the_given_classes_units_only(tiny_bench):
    catalog = load_catalog(tiny_bench)
    seen, unseen = ClassTexts.from_catalog(catalog, [0, 2, 4]), ClassTexts.from_catalog(catalog, [1, 3, 5])
    bank = UnitBank.from_texts(seen)
    for g in UNIT_GROUPS:
        expected = sorted({u for c in seen.units for u in c[g]})
        assert list(bank.units[g]) == expected
    assert len(bank) == sum(bank.sizes) == len(bank.all_units)
    assert bank.group_index.tolist() == [i for i, n in enumerate(bank.sizes) for _ in range(n)]
    both = bank.union(UnitBank.from_texts(unseen))
    for g, s in bank.slices().items():
        assert both.units[g][: len(bank.units[g])] == bank.units[g]  # positions of the seen units kept
        assert set(both.units[g]) == set(bank.units[g]) | {u for c in unseen.units for u in c[g]}
        assert bank.all_units[s] == list(bank.units[g])
    member = bank.membership(seen)
    for g in UNIT_GROUPS:
        assert member[g].shape == (3, bank.sizes[UNIT_GROUPS.index(g)])
        for c in range(3):  # naive reference
            assert [bank.units[g][j] for j in np.flatnonzero(member[g][c])] == sorted(seen.units[c][g])
    space = LetterCounts()
    emb = bank.embed(space)
    assert emb.shape == (len(bank), 26) and space.encoded_texts == bank.all_units
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown unit groups"):
        UnitBank({"colours": ("red",)})


def test_bad_vocabulary_files_are_rejected_by_name(tmp_path):
    good = {g: ["a" + g] for g in UNIT_GROUPS}
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({k: v for k, v in good.items() if k != "scenes"}))
    with pytest.raises(VocabularyError, match="scenes"):
        load_unit_vocabulary(missing)
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({**good, "objects": ["rope"], "motions": ["Rope"]}))
    with pytest.raises(VocabularyError, match="rope"):
        load_unit_vocabulary(twice)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_unit_vocabulary(tmp_path / "nowhere.json")


@pytest.mark.shared_data
def test_units_extracted_from_gpt4vis_ucf101_descriptions(shared_data):
    from zsar.models import load_descriptions

    descriptions = load_descriptions(shared_data / "meta/descriptions/gpt4vis/ucf101_20_prompts.json")
    assert len(descriptions) == 101
    units = {name: extract_units(texts, name=name) for name, texts in descriptions.items()}
    assert sum(bool(u["motions"]) for u in units.values()) >= 95
    assert sum(bool(u["objects"]) or bool(u["body_parts"]) for u in units.values()) >= 95
    assert units["ApplyEyeMakeup"]["body_parts"][0] == "eye"
    assert {"basketball", "hoop"} <= set(units["Basketball"]["objects"])
    assert units["Biking"]["objects"][0] == "bicycle" and units["Biking"]["motions"][0] == "ride"
