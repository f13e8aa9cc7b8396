"""The data of one zero-shot split, and the datasets a method reads them through.

:func:`build_split_data` partitions a :class:`~zsar.experiments.sources.DataSource` for one split:

* ``train`` — videos of the **seen** classes (the official *train* list when ``gzsl``, all of
  them otherwise), minus ``val``: a stratified ``val_fraction`` of them for model selection.
* ``unseen_test`` — every video of the unseen classes (the standard 50/50 protocol), labels
  ``0..U-1``; ``testlist_mask`` marks those also in the official *test* list.
* ``gzsl_test`` — test-list videos of the seen classes + ``unseen_test``, labels over
  seen + unseen (``0..S-1`` seen). Seen test videos never reach training.

The supervised ceiling (``zero_shot=False``) trains on the train list of **all** classes and is
tested on the test-list videos only. :class:`DefaultDatasetFactory` turns a video list into the
dataset a method reads, with the sampler and transforms its backbone asks for
(:func:`~zsar.models.video_pipeline`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from zsar.data.protocols import ZeroShotSplit, restrict_classes
from zsar.data.records import VideoList
from zsar.experiments.sources import DataSource
from zsar.text.class_texts import ClassTexts

DatasetFactory = Callable[[VideoList, str], Any]


@dataclass
class SplitData:
    """Relabelled video lists of one split (see the module docstring)."""

    seen_texts: ClassTexts
    unseen_texts: ClassTexts
    train: VideoList
    val: VideoList | None
    unseen_test: VideoList
    gzsl_test: VideoList | None
    testlist_mask: np.ndarray
    pairs: list[tuple[int, int]]
    fit_texts: ClassTexts


def _holdout_mask(labels: Sequence[int], fraction: float, seed: int) -> np.ndarray:
    """Stratified hold-out: ``round(fraction * n_c)`` videos per class, at least one left to train."""
    labels = np.asarray(labels)
    held = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return held
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_out = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        if n_out > 0:
            held[rng.choice(members, size=n_out, replace=False)] = True
    return held


def _records(videos: VideoList, keep) -> VideoList:
    return VideoList([r for r in videos.records if keep(r)], videos.class_names, videos.root, videos.source,
                     videos.class_dirs)


def build_split_data(source: DataSource, split: ZeroShotSplit, zero_shot: bool = True, gzsl: bool = True,
                     val_fraction: float = 0.2, seed: int = 0) -> SplitData:
    """Partition ``source`` for one split; ``zero_shot=False`` builds the supervised ceiling's data.

    Raises:
        ValueError: GZSL or the ceiling asked of a source without test-list videos for the split.
    """
    seen, unseen = list(split.seen), list(split.unseen)
    seen_set, unseen_set = set(seen), set(unseen)
    fit_set = seen_set if zero_shot else seen_set | unseen_set
    in_test = lambda r: r.video_id in source.test_ids  # noqa: E731
    # GZSL keeps the seen test-list videos for testing; the ceiling must never train on test videos
    exclude_test = gzsl or not zero_shot
    pool = _records(source.videos, lambda r: r.label in fit_set and not (exclude_test and in_test(r)))
    # the ceiling's classes in canonical order: its training data (and so its fit) is the same for
    # every split, and run_split trains it once; scores are mapped to the split's classes by name
    fit_classes = seen if zero_shot else sorted(seen + unseen)
    pool = restrict_classes(pool, fit_classes)
    held = _holdout_mask(pool.labels, val_fraction, seed)
    train = VideoList([r for r, h in zip(pool.records, held) if not h], pool.class_names, pool.root, pool.source)
    val = VideoList([r for r, h in zip(pool.records, held) if h], pool.class_names, pool.root, pool.source)
    unseen_list = _records(source.videos, lambda r: r.label in unseen_set and (zero_shot or in_test(r)))
    unseen_test = restrict_classes(unseen_list, unseen)
    gzsl_test = None
    if gzsl:
        both = _records(source.videos, lambda r: (r.label in seen_set and in_test(r))
                        or (r.label in unseen_set and (zero_shot or in_test(r))))
        gzsl_test = restrict_classes(both, seen + unseen)
    if (gzsl and not set(gzsl_test.labels) & set(range(len(seen)))) or not len(unseen_test):
        raise ValueError(f"{source.name or 'source'}, {split.name or 'split'}: no test-list videos for "
                         f"{'GZSL' if zero_shot else 'the supervised ceiling'}; use gzsl=False or a source with "
                         "a test list")
    position = {c: i for i, c in enumerate(unseen)}
    pairs = [(position[a], position[b]) for a, b in source.pairs if a in position and b in position]
    mask = np.array([in_test(r) for r in unseen_test.records], dtype=bool)
    seen_texts, unseen_texts = source.texts.subset(seen), source.texts.subset(unseen)
    return SplitData(seen_texts, unseen_texts, train, val if len(val) else None, unseen_test, gzsl_test, mask,
                     pairs, seen_texts if zero_shot else source.texts.subset(fit_classes))


@dataclass(frozen=True)
class DefaultDatasetFactory:
    """``(video_list, role) -> Dataset`` read as the backbone asks (:func:`~zsar.models.video_pipeline`).

    ``role`` is ``"train"`` (random sampling and crops), ``"val"``, ``"unseen_test"`` or
    ``"gzsl_test"``. With a :class:`~zsar.data.frame_cache.FrameCache` the datasets read decoded
    frames from it (``CachedVideoDataset``, same sample dicts; missing entries are built).
    A picklable object (not a closure), so split runs can go to worker processes.
    """

    backbone: str
    frames: int
    seed: int
    pretrained: str | None = None
    frame_cache: Any = None

    def __call__(self, video_list: VideoList, role: str):
        from zsar.data.dataset import VideoDataset
        from zsar.data.frame_cache import CachedVideoDataset
        from zsar.models.preprocess import video_pipeline

        train = role == "train"
        pipeline = video_pipeline(self.backbone, self.pretrained, self.frames)
        if self.frame_cache is not None:
            return CachedVideoDataset(video_list, self.frame_cache, pipeline.sampler, pipeline.transform(train), train,
                                      self.seed, build_missing=True)
        return VideoDataset(video_list, pipeline.sampler, pipeline.transform(train), train=train, seed=self.seed)


def default_dataset_factory(backbone: str, frames: int, seed: int, pretrained: str | None = None,
                            frame_cache=None) -> DatasetFactory:
    """A :class:`DefaultDatasetFactory` (TSN sampling, CLIP transform, optional frame cache)."""
    return DefaultDatasetFactory(backbone, frames, seed, pretrained, frame_cache)


def named_splits(splits: Sequence[ZeroShotSplit]) -> list[ZeroShotSplit]:
    """``splits`` with ``split<i>`` names where they have none."""
    return [s if s.name else dataclasses.replace(s, name=f"split{i}") for i, s in enumerate(splits)]


def pick_clips(labels: Sequence[int], n: int, seed: int = 0) -> list[int]:
    """Indices of ``n`` clips of ``n`` different classes (fewer if there are fewer classes), seeded, sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))[:n]
    return sorted(int(rng.choice(np.flatnonzero(labels == c))) for c in classes)


def subset_list(videos: VideoList, indices: Sequence[int]) -> VideoList:
    """``videos`` restricted to ``indices`` (same labels and classes), for datasets of a few clips."""
    return VideoList([videos.records[i] for i in indices], videos.class_names, videos.root, videos.source,
                     videos.class_dirs)
