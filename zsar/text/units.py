"""Semantic units (body parts, objects, scenes, motions): extraction from text and the unit bank.

ASU (method B) represents an action by *semantic units* shared across classes. Two sources:

* **Declared units.** The embedded benchmark declares each class's units
  (``zsar/data/embedded/actions.json``, ``units``); :meth:`ClassTexts.from_catalog` carries them.
* **Extracted units** (real data, whose classes come with descriptions only, e.g. ER-ZSAR,
  GPT4Vis or OST files loaded with :func:`zsar.models.load_descriptions`). The rule, implemented
  by :func:`extract_units`:

  1. split each text into lower-case words (CamelCase and snake_case split, as class names);
  2. map each word to a lemma: the ``forms`` table of the vocabulary first (irregular forms such
     as ``feet -> foot``, aliases such as ``bike -> bicycle``, and words kept as they are because
     their stem is another unit: ``bowling`` is not ``bowl``); otherwise the word itself if it is
     a vocabulary word; otherwise the first of the suffix rules ``-ies -> y``, ``-ves -> f``,
     ``-es``, ``-s``, ``-ing`` (``+e``, undoubled: ``running -> run``), ``-ed`` (likewise) that
     yields a vocabulary word; otherwise the word unchanged;
  3. scan the lemmas left to right, taking the longest vocabulary unit (up to its word count)
     that starts at each position (``living room`` before ``room``);
  4. per group, rank the units found by (occurs in the class name, number of texts mentioning it,
     first occurrence) and keep the first ``max_per_group``.

  The vocabulary is bundled as ``unit_vocabulary.json`` beside this module (each unit in one group
  only). Extraction looks at one class's texts at a time, so a class's units never depend on
  another class's descriptions: extracting for all classes of a dataset up front is leak-free.

The :class:`UnitBank` is the vocabulary a model attends to: the units of a set of classes, per
group. **A bank built for training must be built from the seen classes' texts only** (pass the
seen :class:`~zsar.text.class_texts.ClassTexts` to :meth:`UnitBank.from_texts`): a unit of an
unseen class that no seen class shares must not reach training. :meth:`UnitBank.embed` encodes
the units through a semantic space, which records them in ``encoded_texts`` for the leakage guard.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from zsar.text.class_texts import UNIT_GROUPS, ClassTexts
from zsar.text.semantic import SemanticSpace, tokenize_words

VOCABULARY_PATH = Path(__file__).with_name("unit_vocabulary.json")
DEFAULT_MAX_PER_GROUP = 4
# (suffix, replacement) tried in order; only a result that is a vocabulary word is accepted
_SUFFIX_RULES = (("ies", "y"), ("ves", "f"), ("ves", "fe"), ("es", ""), ("s", ""),
                 ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("ied", "y"))


def unit_groups() -> tuple[str, ...]:
    """:data:`zsar.text.class_texts.UNIT_GROUPS`: the groups a class's units fall into."""
    return UNIT_GROUPS


class VocabularyError(ValueError):
    """A unit vocabulary file is malformed (missing group, unit in two groups, ...)."""


@dataclass(frozen=True)
class UnitVocabulary:
    """Canonical units per group and the surface-form table used to lemmatise words.

    Attributes:
        units: ``{group: (unit, ...)}`` for the four :data:`UNIT_GROUPS`.
        forms: ``{surface word: lemma}`` (irregular forms, aliases, words kept as they are).
    """

    units: Mapping[str, tuple[str, ...]]
    forms: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        words = set(self.forms.values()) | set(self.forms)
        for units in self.units.values():
            words.update(w for u in units for w in u.split())
        object.__setattr__(self, "_words", frozenset(words))
        index: dict[tuple[str, ...], tuple[str, str]] = {}
        for group in unit_groups():
            for unit in self.units.get(group, ()):
                key = tuple(self.lemma(w) for w in unit.split())
                if key in index:
                    raise VocabularyError(f"unit {unit!r} ({group}) duplicates {index[key][1]!r} ({index[key][0]})")
                index[key] = (group, unit)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_max_len", max((len(k) for k in index), default=1))

    def lemma(self, word: str) -> str:
        """The lemma of a lower-case ``word`` (see the module docstring, step 2)."""
        if word in self.forms:
            return self.forms[word]
        if word in self._words:
            return word
        for suffix, repl in _SUFFIX_RULES:
            if len(word) > len(suffix) + 1 and word.endswith(suffix):
                stem = word[: -len(suffix)]
                for cand in (stem + repl, stem[:-1] if repl == "" and stem[-1:] == stem[-2:-1] else None):
                    if cand and cand in self._words:
                        return self.forms.get(cand, cand)
        return word

    def find(self, text: str) -> list[tuple[str, str]]:
        """``(group, unit)`` of every unit in ``text``, in order of occurrence (longest match)."""
        lemmas = [self.lemma(w) for w in tokenize_words(text)]
        found, i = [], 0
        while i < len(lemmas):
            for n in range(min(self._max_len, len(lemmas) - i), 0, -1):
                hit = self._index.get(tuple(lemmas[i:i + n]))
                if hit is not None:
                    found.append(hit)
                    i += n
                    break
            else:
                i += 1
        return found


def load_unit_vocabulary(path: str | os.PathLike | None = None) -> UnitVocabulary:
    """Read a vocabulary JSON (default: the bundled ``unit_vocabulary.json``).

    Raises:
        FileNotFoundError: no file at ``path``.
        VocabularyError: a group is missing or not a list of strings, or a unit is in two groups.
    """
    return _load_vocabulary(str(Path(path) if path is not None else VOCABULARY_PATH))


@lru_cache(maxsize=4)
def _load_vocabulary(path: str) -> UnitVocabulary:
    if not Path(path).is_file():
        raise FileNotFoundError(f"unit vocabulary not found: {path}")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for group in unit_groups():
        values = data.get(group)
        if not isinstance(values, list) or not all(isinstance(u, str) and u.strip() for u in values):
            raise VocabularyError(f"{path}: group {group!r} must be a list of non-empty strings")
    forms = data.get("forms", {})
    if not isinstance(forms, dict):
        raise VocabularyError(f"{path}: 'forms' must be an object of word -> lemma")
    return UnitVocabulary({g: tuple(u.lower().strip() for u in data[g]) for g in unit_groups()},
                          {str(k).lower(): str(v).lower() for k, v in forms.items()})


def extract_units(texts: str | Sequence[str], name: str = "", vocabulary: UnitVocabulary | None = None,
                  max_per_group: int | None = DEFAULT_MAX_PER_GROUP) -> dict[str, tuple[str, ...]]:
    """Semantic units of one class from its name and description texts (module docstring rule).

    Args:
        texts: one description or several (e.g. 20 GPT4Vis sentences); each counts once per unit.
        name: the class name (``"ApplyEyeMakeup"`` works); its units rank first.
        vocabulary: default: the bundled one.
        max_per_group: keep at most this many units per group (``None``: all).

    Returns:
        ``{group: (unit, ...)}`` for every group of :data:`UNIT_GROUPS`, best-ranked first.
    """
    if max_per_group is not None and max_per_group < 1:
        raise ValueError(f"max_per_group must be >= 1 or None, got {max_per_group!r}")
    vocab = vocabulary or load_unit_vocabulary()
    texts = [texts] if isinstance(texts, str) else list(texts)
    in_name = set(vocab.find(name)) if name else set()
    counts: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], int] = {}
    for text in [name, *texts]:
        for hit in dict.fromkeys(vocab.find(str(text))):
            counts[hit] = counts.get(hit, 0) + 1
            first.setdefault(hit, len(first))
    ranked = sorted(counts, key=lambda h: (h not in in_name, -counts[h], first[h]))
    out = {}
    for group in unit_groups():
        units = [u for g, u in ranked if g == group]
        out[group] = tuple(units[:max_per_group] if max_per_group else units)
    return out


def with_extracted_units(texts: ClassTexts, extra_descriptions: Mapping[str, Sequence[str]] | None = None,
                         vocabulary: UnitVocabulary | None = None,
                         max_per_group: int | None = DEFAULT_MAX_PER_GROUP, overwrite: bool = False) -> ClassTexts:
    """``texts`` with units extracted from each class's name, description and extra texts.

    Args:
        texts: the classes (their ``descriptions`` are used; ``""`` is skipped).
        extra_descriptions: ``{class name: [text, ...]}``, e.g. from
            :func:`zsar.models.load_descriptions`; classes absent from it use their own texts only.
        vocabulary, max_per_group: as in :func:`extract_units`.
        overwrite: replace declared units too (by default a class that has units keeps them).

    Returns:
        A new :class:`ClassTexts` (same names and descriptions, in the same order).
    """
    extra = extra_descriptions or {}
    units = []
    for name, desc, declared in zip(texts.names, texts.descriptions, texts.units):
        if declared and any(declared.values()) and not overwrite:
            units.append(declared)
            continue
        sources = ([desc] if desc else []) + [str(t) for t in extra.get(name, ())]
        units.append(extract_units(sources, name=name, vocabulary=vocabulary, max_per_group=max_per_group))
    return ClassTexts(texts.names, texts.descriptions, tuple(units))


@dataclass(frozen=True)
class UnitBank:
    """The units a model attends to, per group (groups in :data:`UNIT_GROUPS` order).

    Attributes:
        units: ``{group: (unit, ...)}``; every group of :data:`UNIT_GROUPS` is present (maybe empty).
    """

    units: Mapping[str, tuple[str, ...]]

    def __post_init__(self):
        unknown = sorted(set(self.units) - set(unit_groups()))
        if unknown:
            raise ValueError(f"unknown unit groups {unknown}; choose from {unit_groups()}")
        object.__setattr__(self, "units", {g: tuple(dict.fromkeys(self.units.get(g, ()))) for g in unit_groups()})

    @classmethod
    def from_texts(cls, texts: ClassTexts) -> "UnitBank":
        """The units of ``texts``' classes, sorted per group (groups outside ``UNIT_GROUPS`` ignored).

        For training, pass the **seen** classes' texts only.
        """
        return cls({g: tuple(sorted({str(u) for c in texts.units for u in c.get(g, ())})) for g in unit_groups()})

    @property
    def groups(self) -> tuple[str, ...]:
        """:data:`UNIT_GROUPS`."""
        return unit_groups()

    @property
    def sizes(self) -> tuple[int, ...]:
        """``U_g`` per group."""
        return tuple(len(self.units[g]) for g in unit_groups())

    @property
    def all_units(self) -> list[str]:
        """The ``U = sum(U_g)`` unit strings, group after group."""
        return [u for g in unit_groups() for u in self.units[g]]

    @property
    def group_index(self) -> np.ndarray:
        """``(U,)`` int64: the group (position in :data:`UNIT_GROUPS`) of each unit of :attr:`all_units`."""
        return np.repeat(np.arange(len(unit_groups())), self.sizes).astype(np.int64)

    def slices(self) -> dict[str, slice]:
        """Where each group's units lie in :attr:`all_units`."""
        out, start = {}, 0
        for g, n in zip(unit_groups(), self.sizes):
            out[g] = slice(start, start + n)
            start += n
        return out

    def __len__(self) -> int:
        return sum(self.sizes)

    def union(self, other: "UnitBank") -> "UnitBank":
        """This bank's units (same positions) followed, per group, by ``other``'s new units."""
        return UnitBank({g: self.units[g] + tuple(u for u in other.units[g] if u not in self.units[g])
                         for g in unit_groups()})

    def membership(self, texts: ClassTexts) -> dict[str, np.ndarray]:
        """``{group: (C, U_g) float32}``: 1 where class ``c`` declares unit ``u`` of the group."""
        out = {}
        for g in unit_groups():
            where = {u: i for i, u in enumerate(self.units[g])}
            m = np.zeros((len(texts), len(where)), dtype=np.float32)
            for c, units in enumerate(texts.units):
                for u in units.get(g, ()):
                    if str(u) in where:
                        m[c, where[str(u)]] = 1.0
            out[g] = m
        return out

    def embed(self, space: SemanticSpace) -> np.ndarray:
        """``(U, D)`` float32 unit vectors of :attr:`all_units` from ``space`` (which records them)."""
        return space.encode(self.all_units)
