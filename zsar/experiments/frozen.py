"""Frozen zero-shot evaluation of a pretrained model on many splits, every video encoded once.

Nothing is fitted: each video's frame-averaged embedding and each class text's embedding come
from the pretrained model as it is, so they are the same on every split. :func:`frozen_zero_shot`
encodes every video of the source once and every class text once per text kind, then scores each
split's unseen test videos against its unseen classes (the 50/50 protocol of
:func:`~zsar.experiments.split_data.build_split_data`: all videos of the unseen classes).
"""

from __future__ import annotations

import tempfile
from typing import Sequence

import numpy as np

from zsar.data.protocols import ZeroShotSplit
from zsar.evaluation.metrics import top1_accuracy
from zsar.evaluation.scores import cosine_scores
from zsar.experiments.sources import DataSource
from zsar.experiments.split_data import default_dataset_factory
from zsar.methods import FrameAverage


def frozen_zero_shot(backbone: str, pretrained: str | None, source: DataSource, splits: Sequence[ZeroShotSplit],
                     frames: int = 8, text_kinds: Sequence[str] = ("name", "description"), frame_cache=None,
                     device=None, progress: bool | None = None) -> list[dict]:
    """Unseen top-1 of the frozen model on every split and text kind.

    Args:
        backbone, pretrained: the model (e.g. ``"zsar-ViT-T-16-64-minilm"``, ``"zsar-world-open"``).
        source: the videos and class texts; ``splits`` index its classes.
        frames: frames per clip (TSN, centred); ``text_kinds``: class texts compared (names are
            filled into the CLIP video templates, descriptions used as they are).

    Returns:
        One row per (split, text kind): ``{"split", "text_kind", "top1", "top1_testlist", "chance",
        "n_videos"}``; ``top1_testlist`` counts only the unseen classes' test-list videos, the
        videos the supervised ceiling is tested on.
    """
    make = default_dataset_factory(backbone, frames, 0, pretrained, frame_cache=frame_cache)
    rows, embeddings, labels = [], None, np.asarray(source.videos.labels)
    in_test = np.array([r.video_id in source.test_ids for r in source.videos.records], dtype=bool)
    with tempfile.TemporaryDirectory(prefix="zsar_frozen_") as work:
        for kind in text_kinds:
            method = FrameAverage(backbone=backbone, pretrained=pretrained, frames=frames, text_kind=kind,
                                  device=device, progress=progress, resume=False)
            method.fit(None, source.texts, work)  # builds the model; nothing is learned, no text is read
            if embeddings is None:  # one frozen image tower for every kind: encode the videos once
                embeddings = method.video_embeddings(make(source.videos, "unseen_test"))
            prototypes = method.class_prototypes(source.texts)  # (C, D): every class once per kind
            rows += [_split_row(split, kind, embeddings, labels, prototypes, in_test) for split in splits]
    return rows


def _split_row(split: ZeroShotSplit, kind: str, embeddings: np.ndarray, labels: np.ndarray,
               prototypes: np.ndarray, in_test: np.ndarray) -> dict:
    """Top-1 of one split: the videos of its unseen classes against its unseen classes' prototypes
    (``in_test``: ``(N,)`` bool, the videos of the official test list)."""
    unseen = np.asarray(split.unseen)
    mask = np.isin(labels, unseen)
    position = {int(c): i for i, c in enumerate(unseen)}
    truth = np.array([position[int(c)] for c in labels[mask]])
    scores = cosine_scores(embeddings[mask], prototypes[unseen])
    test = in_test[mask]
    top1_test = top1_accuracy(scores[test], truth[test]) if test.any() else float("nan")
    return {"split": split.name, "text_kind": kind, "top1": top1_accuracy(scores, truth), "top1_testlist": top1_test,
            "chance": 1.0 / len(unseen), "n_videos": int(mask.sum())}
