"""Score ResT's semantic transfer at any ``(k, τ, α, relatedness space)`` without refitting.

:func:`transfer_inputs` turns one ResT run artefact (:mod:`zsar.experiments.artifact`) into its
*transfer inputs*: a dict ``a`` with ``S`` / ``U`` (seen / unseen class counts), ``seen_P``
``(S, D)`` visual prototypes of the seen classes, label embeddings ``labels_<space>_<text kind>``
``(S + U, E)`` (seen classes first), ``val_emb`` ``(V, D)`` / ``val_labels`` ``(V,)`` held-out
seen-class videos, ``unseen_emb`` ``(N, D)`` / ``unseen_labels`` ``(N,)`` unseen test videos and
``gzsl_emb`` / ``gzsl_labels`` the GZSL test videos. Everything else here is numpy on that dict.

Validation never touches unseen classes: :func:`seen_class_folds` halves the *seen* classes at
random (pseudo-seen sources, pseudo-unseen targets) and scores the held-out validation videos of
the pseudo-unseen half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from zsar.data.protocols import seen_halving
from zsar.evaluation.metrics import top1_accuracy
from zsar.evaluation.scores import cosine_scores
from zsar.experiments.artifact import RunArtifact
from zsar.methods.transfer import TransferResult, relatedness_matrix, semantic_transfer
from zsar.text.class_texts import ClassTexts
from zsar.text.semantic import SemanticSpace

Fold = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""``(pseudo_seen, pseudo_unseen, mask, labels)``: class indices of both halves, the ``(V,)`` mask of
validation videos of the pseudo-unseen classes, and their labels ``0..len(pseudo_unseen)-1``."""


def transfer_inputs(run: RunArtifact, texts: ClassTexts | None, spaces: Mapping[str, SemanticSpace] | None = None,
                    kinds: Sequence[str] = ("name", "description")) -> dict:
    """The transfer inputs of one ResT run artefact (see the module docstring).

    The fitted model's label embeddings (``model`` and ``clip`` spaces) come from the artefact;
    the offline ``spaces`` (e.g. ``{"minilm": ..., "glove": ...}``) embed ``texts`` here.

    Args:
        run: a ResT run artefact with validation videos.
        texts: texts of the run's classes in ``run.class_ids`` order (seen classes first); only
            needed with ``spaces``.
        spaces: offline text spaces by name; ``kinds``: the class texts they embed.

    Raises:
        ValueError: the artefact has no transfer inputs (not a ResT run) or no validation videos.
    """
    if "labels_model_name" not in run.extras or run.val_embeddings is None:
        raise ValueError(f"{run.method_name} run {run.split}: no ResT transfer inputs or validation videos in its artefact")
    if spaces and (texts is None or len(texts) != len(run.class_ids)):
        raise ValueError(f"offline spaces need the texts of the {len(run.class_ids)} classes of run {run.split}")
    s = run.n_seen
    a = {"S": s, "U": run.n_unseen, "seen_P": run.prototypes[:s], "val_emb": run.val_embeddings,
         "val_labels": run.val_labels, "unseen_emb": run.unseen_embeddings, "unseen_labels": run.unseen_labels,
         "gzsl_emb": run.embeddings, "gzsl_labels": run.labels}
    a.update({k: v for k, v in run.extras.items() if k.startswith("labels_")})
    for name, space in (spaces or {}).items():
        a.update({f"labels_{name}_{kind}": space.encode(texts.texts(kind)) for kind in kinds})
    return a


def seen_class_folds(a: Mapping[str, np.ndarray], split_pos: int, n_folds: int, seed: int) -> list[Fold]:
    """``n_folds`` random halvings of the seen classes, seeded by ``(seed, split_pos, fold)``."""
    n_seen = int(a["S"])
    folds = []
    for f in range(n_folds):
        pseudo_seen, pseudo_unseen = seen_halving(n_seen, (seed, split_pos, f))
        position = np.full(n_seen, -1)
        position[pseudo_unseen] = np.arange(len(pseudo_unseen))
        mask = position[a["val_labels"]] >= 0
        folds.append((pseudo_seen, pseudo_unseen, mask, position[a["val_labels"][mask]]))
    return folds


@dataclass(frozen=True)
class TransferEvaluator:
    """Transfer settings shared by every call: the default relatedness ``space`` and text ``kind``,
    and the ``text_kind`` of the joint label embeddings that are the text prototypes (``α < 1``).

    ``space`` / ``kind`` arguments of the methods override the defaults (``None`` keeps them).
    """

    space: str
    kind: str
    text_kind: str

    def compose(self, a: Mapping[str, np.ndarray], sources, targets, k: int, tau: float, alpha: float,
                space: str | None = None, kind: str | None = None) -> TransferResult:
        """Prototypes of class indices ``targets`` composed from the visual prototypes of ``sources``."""
        labels = a[f"labels_{space or self.space}_{kind or self.kind}"]
        rel = relatedness_matrix(labels[targets], labels[sources])
        return semantic_transfer(a["seen_P"][sources], rel, k, tau, a[f"labels_model_{self.text_kind}"][targets], alpha)

    def val_top1(self, a: Mapping[str, np.ndarray], folds: list[Fold], k: int, tau: float, alpha: float,
                 space: str | None = None, kind: str | None = None) -> float:
        """Mean over ``folds`` of the pseudo-unseen top-1 of held-out seen-class videos."""
        return float(np.mean([top1_accuracy(cosine_scores(a["val_emb"][mask], self.compose(
            a, ps, pu, k, tau, alpha, space, kind).prototypes), labels) for ps, pu, mask, labels in folds]))

    def test_scores(self, a: Mapping[str, np.ndarray], k: int, tau: float, alpha: float,
                    space: str | None = None, kind: str | None = None) -> np.ndarray:
        """``(N, U)`` cosine scores of the unseen test videos against the composed unseen prototypes."""
        seen, unseen = np.arange(a["S"]), np.arange(a["S"], a["S"] + a["U"])
        return cosine_scores(a["unseen_emb"], self.compose(a, seen, unseen, k, tau, alpha, space, kind).prototypes)
