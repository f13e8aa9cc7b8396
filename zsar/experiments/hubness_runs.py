"""Hubness of finished runs, read from their run artefacts: raw, and after each hubness reducer.

The raw row of a run is the hubness of the scores the method predicts with (its run artefact's
``unseen_scores``; the same ``S_N10`` as the comparison table). Reducers work on similarities and
their reference similarities in one space, so they are applied to the cosine of the run's video
embeddings and class prototypes (:func:`~zsar.evaluation.scores.reduced_scores`), fitted on
held-out seen-class videos (inductive) or on the test videos themselves (transductive).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zsar.evaluation.metrics import gzsl_accuracy, per_class_accuracy, top1_accuracy
from zsar.evaluation.scores import hubness_measures, reduced_scores
from zsar.experiments.artifact import RunArtifact


def _row(scores: np.ndarray, gzsl_scores: np.ndarray | None, run: RunArtifact, k: int, hub_size: float) -> dict:
    measures = hubness_measures(scores, k, hub_size)
    gzsl_h = (gzsl_accuracy(gzsl_scores, run.labels, range(run.n_seen))["harmonic"]
              if gzsl_scores is not None else np.nan)
    return {**measures, "top1": top1_accuracy(scores, run.unseen_labels), "GZSL H": gzsl_h}


def run_hubness_rows(run: RunArtifact, reducers: Sequence[str], k: int = 10, hub_size: float = 2.0) -> list[dict]:
    """One row per (reducer, reference) of one run: ``S_Nk``, hub / antihub occurrence, Robin Hood,
    unseen top-1, GZSL H and the ``(U,)`` ``k_occurrence``; reducer ``"none"`` (reference ``"raw"``)
    is the method's own scores. ``k`` is capped at ``U - 1``."""
    k = min(k, run.n_unseen - 1)
    rows = [{"reducer": "none", "reference": "raw", "k": k,
             **_row(run.unseen_scores, run.gzsl_scores, run, k, hub_size)}]
    queries, targets, val = run.unseen_embeddings, run.prototypes[run.n_seen:], run.val_embeddings
    for name in reducers:
        for reference in ("inductive", "transductive"):
            scores = reduced_scores(name, reference, queries, targets, val)
            if scores is None:
                continue
            gzsl = (reduced_scores(name, reference, run.embeddings, run.prototypes, val)
                    if run.gzsl_scores is not None else None)
            rows.append({"reducer": name, "reference": reference, "k": k, **_row(scores, gzsl, run, k, hub_size)})
    return rows


def per_class_hubness(run: RunArtifact, k_occurrence: np.ndarray, class_names: Sequence[str] | None = None,
                      hub_size: float = 2.0) -> list[dict]:
    """Per unseen class of a run's raw scores: ``N_k``, ``N_k`` over its mean, hub or not, and top-1."""
    accuracy = per_class_accuracy(run.unseen_scores.argmax(1), run.unseen_labels, range(run.n_unseen))
    mean_nk = k_occurrence.mean()
    rows = []
    for c in range(run.n_unseen):
        cid = int(run.class_ids[run.n_seen + c])
        rows.append({"class": class_names[cid] if class_names else str(cid), "N_k": int(k_occurrence[c]),
                     "N_k / mean": k_occurrence[c] / mean_nk, "hub": bool(k_occurrence[c] >= hub_size * mean_nk),
                     "accuracy": accuracy[c]})
    return rows
