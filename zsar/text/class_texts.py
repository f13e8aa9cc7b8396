"""The texts of a class vocabulary (names, descriptions, semantic units) and the leakage audit.

A :class:`ClassTexts` is what a method is allowed to know about a set of classes. ``fit`` gets
the seen classes' texts only; ``predict_scores`` gets the target (unseen, or seen + unseen for
GZSL) classes' texts. :func:`find_leaks` checks a list of strings that reached a text encoder
during training against the unseen classes' texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

TEXT_KINDS = ("name", "description", "name+description", "units")
UNIT_GROUPS = ("body_parts", "objects", "scenes", "motions")


class LeakageError(RuntimeError):
    """Text of an unseen class reached training or model selection."""


def _units_text(units: Mapping[str, Sequence[str]]) -> str:
    """One string per class from its semantic units, grouped in a fixed order."""
    words = [u for g in UNIT_GROUPS for u in units.get(g, ())]
    words += [u for g, us in sorted(units.items()) if g not in UNIT_GROUPS for u in us]
    return ", ".join(words)


@dataclass(frozen=True)
class ClassTexts:
    """Names, descriptions and semantic units of ``C`` classes, in label order.

    Attributes:
        names: ``C`` natural names, e.g. ``"kick a ball"``.
        descriptions: ``C`` descriptions (``""`` when unknown).
        units: ``C`` dicts ``{group: (unit, ...)}`` (empty dicts when unknown).
    """

    names: tuple[str, ...]
    descriptions: tuple[str, ...] = ()
    units: tuple[dict, ...] = field(default=(), compare=False)

    def __post_init__(self):
        names = tuple(str(n) for n in self.names)
        if not names:
            raise ValueError("ClassTexts needs at least one class name")
        if len(set(names)) != len(names):
            dups = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate class names: {dups}")
        descriptions = tuple(str(d) for d in self.descriptions) or ("",) * len(names)
        units = tuple(dict(u) for u in self.units) or ({},) * len(names)
        for what, values in (("descriptions", descriptions), ("units", units)):
            if len(values) != len(names):
                raise ValueError(f"{len(values)} {what} for {len(names)} class names")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "descriptions", descriptions)
        object.__setattr__(self, "units", units)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_catalog(cls, catalog: Sequence, indices: Iterable[int] | None = None) -> "ClassTexts":
        """Texts of ``catalog[i]`` for ``i`` in ``indices`` (default: all), in that order.

        ``catalog`` items need ``name``, ``description`` and ``units`` attributes, e.g. the
        :class:`~zsar.data.embedded.ClassInfo` list of :func:`~zsar.data.embedded.load_catalog`.
        """
        items = list(catalog) if indices is None else [catalog[int(i)] for i in indices]
        return cls(tuple(c.name for c in items), tuple(c.description for c in items),
                   tuple({g: tuple(v) for g, v in c.units.items()} for c in items))

    @classmethod
    def from_names(cls, names: Sequence[str]) -> "ClassTexts":
        """Texts with names only (real datasets without descriptions)."""
        return cls(tuple(names))

    def texts(self, kind: str = "name") -> list[str]:
        """One string per class.

        Args:
            kind: ``"name"``; ``"description"`` (the name where none is known);
                ``"name+description"`` (``"name: description"``); ``"units"`` (the units
                joined by commas, the name where none are known).

        Raises:
            ValueError: unknown ``kind``.
        """
        if kind == "name":
            return list(self.names)
        if kind == "description":
            return [d or n for n, d in zip(self.names, self.descriptions)]
        if kind == "name+description":
            return [f"{n}: {d}" if d else n for n, d in zip(self.names, self.descriptions)]
        if kind == "units":
            return [_units_text(u) or n for n, u in zip(self.names, self.units)]
        raise ValueError(f"unknown text kind {kind!r}; choose from {TEXT_KINDS}")

    def subset(self, indices: Iterable[int]) -> "ClassTexts":
        """The classes at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        return ClassTexts(tuple(self.names[i] for i in idx), tuple(self.descriptions[i] for i in idx),
                          tuple(self.units[i] for i in idx))

    def __add__(self, other: "ClassTexts") -> "ClassTexts":
        """Concatenation (e.g. seen + unseen for GZSL); labels of ``other`` shift by ``len(self)``."""
        return ClassTexts(self.names + other.names, self.descriptions + other.descriptions,
                          self.units + other.units)

    def index_of(self, names: Iterable[str]) -> list[int | None]:
        """Position of each name in this vocabulary, ``None`` where absent."""
        where = {n: i for i, n in enumerate(self.names)}
        return [where.get(str(n)) for n in names]

    def all_strings(self) -> set[str]:
        """Every string that identifies these classes: names, descriptions, unit strings, units."""
        out = set(self.names) | {d for d in self.descriptions if d}
        for kind in ("name+description", "units"):
            out.update(self.texts(kind))
        out.update(u for units in self.units for us in units.values() for u in us)
        return out


def forbidden_strings(seen: ClassTexts, unseen: ClassTexts) -> set[str]:
    """Unseen classes' strings that do not occur inside any seen class's text.

    Semantic units are shared between classes by design (``"legs"``), and an unseen name may be
    a phrase of a seen description; such strings are seen knowledge, not a leak.
    """
    seen_strings = seen.all_strings()
    return {u for u in unseen.all_strings() if not any(u in s for s in seen_strings)}


def find_leaks(encoded_texts: Iterable[str], seen: ClassTexts, unseen: ClassTexts) -> list[str]:
    """The strings of ``encoded_texts`` that contain a :func:`forbidden_strings` item.

    Substring matching also catches templated prompts (``"a video of a person <name>."``).
    """
    forbidden = forbidden_strings(seen, unseen)
    return [t for t in dict.fromkeys(encoded_texts) if any(f in t for f in forbidden)]


def check_no_leaks(encoded_texts: Iterable[str], seen: ClassTexts, unseen: ClassTexts,
                   where: str = "training") -> None:
    """Raise :class:`LeakageError` naming the first leaked strings, if any.

    Raises:
        LeakageError: an unseen class's text is in ``encoded_texts``.
    """
    leaks = find_leaks(encoded_texts, seen, unseen)
    if leaks:
        raise LeakageError(f"{len(leaks)} text(s) of unseen classes reached {where}, e.g. {leaks[:5]}")
