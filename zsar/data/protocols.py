"""Zero-shot evaluation protocols as code: every split is a frozen dataclass of class indices.

Protocols (see ``REFERENCE.md``): 50/50 x N random class splits, cross-dataset transfer
(train on A, test on B minus the classes B shares with A), the Kinetics-600 3 x 160 splits,
K-shot sampling, and generalised ZSL (seen + unseen at test, harmonic mean).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from zsar.data.annotations import check_unique_class_names, normalize_class_name, read_id_name_csv
from zsar.data.errors import SplitError
from zsar.data.records import VideoList, VideoRecord


def _as_index_tuple(values, what: str) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    dups = sorted(v for v, n in Counter(out).items() if n > 1)
    if dups:
        raise SplitError(f"{what}: duplicate class indices {dups}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class ZeroShotSplit:
    """Seen (training) and unseen (test) classes of one dataset; indices are sorted tuples.

    Raises:
        SplitError: duplicates, seen ∩ unseen ≠ ∅, an empty side, or an index outside
            ``0..n_classes-1`` (when ``n_classes`` is given).
    """

    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    seed: int | None = None
    name: str = ""
    n_classes: int | None = None

    def __post_init__(self):
        label = self.name or "split"
        object.__setattr__(self, "seen", _as_index_tuple(self.seen, f"{label} seen"))
        object.__setattr__(self, "unseen", _as_index_tuple(self.unseen, f"{label} unseen"))
        both = sorted(set(self.seen) & set(self.unseen))
        if both:
            raise SplitError(f"{label}: classes both seen and unseen: {both}")
        if not self.seen or not self.unseen:
            raise SplitError(f"{label}: seen ({len(self.seen)}) and unseen ({len(self.unseen)}) must be non-empty")
        top = math.inf if self.n_classes is None else self.n_classes
        bad = [i for i in self.seen + self.unseen if not 0 <= i < top]
        if bad:
            raise SplitError(f"{label}: class indices out of range 0..{top - 1}: {sorted(bad)}")


def random_class_splits(n_classes: int, n_splits: int = 10, seen_fraction: float = 0.5,
                        seed: int = 0) -> tuple[ZeroShotSplit, ...]:
    """``n_splits`` seeded random seen/unseen class splits (the 50/50 x 10 protocol).

    Unseen gets ``floor(n_classes * (1 - seen_fraction))`` classes, so with an odd count the
    extra class is seen (UCF101: 51 seen / 50 unseen). Split ``i`` draws from
    ``SeedSequence([seed, i])``: the same (seed, i) always gives the same split.
    """
    if not 0 < seen_fraction < 1:
        raise ValueError(f"seen_fraction={seen_fraction}; must be in (0, 1)")
    n_unseen = math.floor(n_classes * (1 - seen_fraction) + 1e-9)
    if n_unseen < 1 or n_unseen >= n_classes:
        raise SplitError(f"n_classes={n_classes}, seen_fraction={seen_fraction}: a side would be empty")
    splits = []
    for i in range(n_splits):
        perm = np.random.default_rng(np.random.SeedSequence([seed, i])).permutation(n_classes)
        splits.append(ZeroShotSplit(perm[n_unseen:].tolist(), perm[:n_unseen].tolist(), seed,
                                    f"random{i}_seed{seed}", n_classes))
    return tuple(splits)


@dataclass(frozen=True)
class CrossDatasetSplit:
    """Target classes kept for cross-dataset testing, and those dropped as overlapping the source.

    Attributes:
        kept: target class indices to test on.
        dropped: ``(target index, source index)`` pairs whose names match.
        target_names / source_names: the vocabularies, for reports.
    """

    kept: tuple[int, ...]
    dropped: tuple[tuple[int, int], ...]
    target_names: tuple[str, ...] = field(repr=False, default=())
    source_names: tuple[str, ...] = field(repr=False, default=())
    name: str = ""

    def dropped_names(self) -> list[tuple[str, str]]:
        """``(target name, source name)`` of every dropped class."""
        return [(self.target_names[t], self.source_names[s]) for t, s in self.dropped]


def seen_halving(n_seen: int, key: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """One random halving of ``n_seen`` seen classes for validation on seen classes only.

    Returns ``(pseudo_seen, pseudo_unseen)``: sorted positions ``0..n_seen-1``; the pseudo-unseen
    half has ``n_seen // 2`` of them. ``key`` seeds ``numpy.random.default_rng``.
    """
    order = np.random.default_rng(list(key)).permutation(n_seen)
    return np.sort(order[n_seen // 2:]), np.sort(order[: n_seen // 2])


def cross_dataset_split(source_class_names: Sequence[str], target_class_names: Sequence[str],
                        synonyms: Mapping[str, str] | None = None, compact: bool = True,
                        name: str = "") -> CrossDatasetSplit:
    """Train on A (source), test on B (target) minus B's classes whose name matches one of A's.

    Names match after :func:`normalize_class_name` (lower case, CamelCase split, punctuation and
    underscores removed; with ``compact`` also spaces, so ``SkateBoarding`` ~ ``skateboarding``).
    ``synonyms`` maps a name to a canonical one (keys and values normalised the same way), e.g.
    ``{"PushUps": "push up"}``, for overlaps that differ in wording.
    """
    check_unique_class_names(source_class_names, "source classes")
    check_unique_class_names(target_class_names, "target classes")

    def key(n: str) -> str:
        return normalize_class_name(n, compact)

    canon = {key(k): key(v) for k, v in (synonyms or {}).items()}
    source_keys: dict[str, int] = {}
    for i, n in enumerate(source_class_names):
        source_keys.setdefault(canon.get(key(n), key(n)), i)
    kept, dropped = [], []
    for t, n in enumerate(target_class_names):
        s = source_keys.get(canon.get(key(n), key(n)))
        if s is None:
            kept.append(t)
        else:
            dropped.append((t, s))
    return CrossDatasetSplit(tuple(kept), tuple(dropped), tuple(target_class_names),
                             tuple(source_class_names), name)


@dataclass(frozen=True)
class ClassSubset:
    """A named list of classes of a larger vocabulary (e.g. one K600 zero-shot split)."""

    name: str
    class_names: tuple[str, ...]
    indices: tuple[int, ...]  # into the full vocabulary (e.g. the 600 Kinetics-600 classes)


def kinetics600_zeroshot_splits(split_dir: str | Path, k600_class_names: Sequence[str] | None = None,
                                source_class_names: Sequence[str] | None = None) -> tuple[ClassSubset, ...]:
    """The 3 x 160-class K600 zero-shot splits (``ZS_split{1,2,3}_K600.csv``, ``id,name``).

    Args:
        split_dir: folder of the csvs.
        k600_class_names: the 600-class label map; each split's names must be in it (indices
            then point into it). Default: ``kinetics_600_labels.csv`` of ``split_dir``.
        source_class_names: the training vocabulary (Kinetics-400); a split that shares a class
            with it is refused.
    """
    split_dir = Path(split_dir)
    if k600_class_names is None:
        k600_class_names = read_id_name_csv(split_dir / "kinetics_600_labels.csv")
    index = {n: i for i, n in enumerate(k600_class_names)}
    source = set(source_class_names or ())
    out = []
    for n in (1, 2, 3):
        path = split_dir / f"ZS_split{n}_K600.csv"
        names = read_id_name_csv(path)
        unknown = [x for x in names if x not in index]
        if unknown:
            raise SplitError(f"{path}: classes not in the Kinetics-600 label map: {unknown}")
        overlap = sorted(set(names) & source)
        if overlap:
            raise SplitError(f"{path}: classes also in the source vocabulary: {overlap}")
        out.append(ClassSubset(f"k600_zs_split{n}", tuple(names), tuple(index[x] for x in names)))
    return tuple(out)


@dataclass(frozen=True)
class KShotSplit:
    """Indices (into the label array) of K support videos per class and the query rest."""

    support: tuple[int, ...]
    query: tuple[int, ...]
    k: int
    seed: int


def kshot_indices(labels: Sequence[int], classes: Sequence[int], k: int, seed: int = 0) -> KShotSplit:
    """Pick ``k`` videos of each class in ``classes``; the other videos of those classes are queries.

    Deterministic in ``seed``; videos of classes not in ``classes`` are in neither part.

    Raises:
        SplitError: naming every class with fewer than ``k`` videos (and its count).
    """
    if k < 1:
        raise ValueError(f"k={k}; must be >= 1")
    labels = np.asarray(labels)
    classes = _as_index_tuple(classes, "kshot classes")
    members = {c: np.flatnonzero(labels == c) for c in classes}
    short = {c: len(m) for c, m in members.items() if len(m) < k}
    if short:
        raise SplitError(f"{k}-shot: classes with fewer than {k} videos (class: count): {short}")
    rng = np.random.default_rng(seed)
    support = np.concatenate([rng.choice(members[c], size=k, replace=False) for c in classes])
    chosen = np.zeros(len(labels), dtype=bool)
    chosen[support] = True
    query = np.concatenate([members[c][~chosen[members[c]]] for c in classes])
    return KShotSplit(tuple(sorted(support.tolist())), tuple(sorted(query.tolist())), k, seed)


def _subset_records(video_list: VideoList, records: list[VideoRecord], note: str) -> VideoList:
    return VideoList(records, video_list.class_names, video_list.root,
                     f"{video_list.source} [{note}]", video_list.class_dirs)


def split_video_list(video_list: VideoList, split: ZeroShotSplit) -> tuple[VideoList, VideoList]:
    """(train videos of the seen classes, test videos of the unseen classes); labels unchanged.

    Raises:
        SplitError: a split index outside the list's classes, or (a bug) an unseen video in train.
    """
    n = len(video_list.class_names)
    bad = [i for i in split.seen + split.unseen if i >= n]
    if bad:
        raise SplitError(f"{split.name or 'split'}: class indices {bad} beyond the {n} classes"
                         f" of {video_list.source}")
    seen, unseen = set(split.seen), set(split.unseen)
    train = _subset_records(video_list, [r for r in video_list.records if r.label in seen], "seen")
    test = _subset_records(video_list, [r for r in video_list.records if r.label in unseen], "unseen")
    leaked = [r.video_id for r in train.records if r.label in unseen]
    if leaked:
        raise SplitError(f"unseen-class videos in train: {leaked[:10]}")
    return train, test


@dataclass(frozen=True)
class GZSLPartition:
    """Generalised ZSL: train on ``seen_train``; test on ``seen_test`` + ``unseen_test``.

    ``seen_test`` holds videos of seen classes that are NOT in ``seen_train``, so seen
    accuracy is measured on unseen videos of seen classes.
    """

    seen_train: VideoList
    seen_test: VideoList
    unseen_test: VideoList
    split: ZeroShotSplit


def gzsl_partition(video_list: VideoList, split: ZeroShotSplit, seen_test_fraction: float = 0.2,
                   heldout_ids: set[str] | VideoList | None = None, seed: int = 0) -> GZSLPartition:
    """Partition ``video_list`` for GZSL.

    Args:
        video_list: every video of every class (e.g. ``all_videos("ucf101", ...)``).
        split: the seen/unseen classes.
        seen_test_fraction: share of each seen class's videos held out for testing (at least one
            per class, at least one kept for training); ignored when ``heldout_ids`` is given.
        heldout_ids: video ids (or a :class:`VideoList`, e.g. the official test list) whose
            seen-class videos form ``seen_test``.
        seed: seed of the per-class hold-out draw.
    """
    train, unseen_test = split_video_list(video_list, split)
    if heldout_ids is not None:
        ids = {r.video_id for r in heldout_ids.records} if isinstance(heldout_ids, VideoList) else set(heldout_ids)
        held = np.array([r.video_id in ids for r in train.records], dtype=bool)
    else:
        if not 0 < seen_test_fraction < 1:
            raise ValueError(f"seen_test_fraction={seen_test_fraction}; must be in (0, 1)")
        held = _stratified_holdout(train.labels, seen_test_fraction, seed)
    seen_train = _subset_records(video_list, [r for r, h in zip(train.records, held) if not h], "seen train")
    seen_test = _subset_records(video_list, [r for r, h in zip(train.records, held) if h], "seen test")
    if not seen_test.records:
        raise SplitError(f"GZSL: no seen-class test videos in {video_list.source}")
    return GZSLPartition(seen_train, seen_test, unseen_test, split)


def _stratified_holdout(labels: Sequence[int], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask holding out ``round(fraction * n_c)`` (clipped to 1..n_c-1) videos per class."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            raise SplitError(f"GZSL: seen class {int(c)} has {len(members)} video(s); need 2 to hold one out")
        n_out = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        held[rng.choice(members, size=n_out, replace=False)] = True
    return held


def harmonic_mean(seen_acc: float, unseen_acc: float) -> float:
    """GZSL harmonic mean ``2 s u / (s + u)`` (0 when both are 0)."""
    if seen_acc < 0 or unseen_acc < 0:
        raise ValueError(f"accuracies must be >= 0, got seen={seen_acc}, unseen={unseen_acc}")
    total = seen_acc + unseen_acc
    return 0.0 if total == 0 else 2.0 * seen_acc * unseen_acc / total


def restrict_classes(video_list: VideoList, classes: Sequence[int]) -> VideoList:
    """Videos of ``classes`` relabelled ``0..len(classes)-1`` in the given order.

    For evaluating on unseen classes only: the classifier then scores just those names.
    """
    classes = list(classes)
    if len(set(classes)) != len(classes):
        raise SplitError(f"restrict_classes: duplicate classes {classes}")
    new = {c: i for i, c in enumerate(classes)}
    records = [VideoRecord(r.path, new[r.label], r.video_id) for r in video_list.records if r.label in new]
    dirs = [video_list.class_dirs[c] for c in classes] if video_list.class_dirs else []
    return VideoList(records, [video_list.class_names[c] for c in classes], video_list.root,
                     f"{video_list.source} [{len(classes)} classes]", dirs)
