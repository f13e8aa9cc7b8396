"""Score helpers: the one L2 normalisation, the one cosine score and the one S_Nk of the package.

Every zero-shot score that is a cosine (video embeddings against class prototypes, relatedness
of label embeddings, few-shot prototypes) goes through :func:`cosine_scores`. The hubness of a
run (the ``S_N10`` column of every table) is :func:`unseen_hubness` of the scores the method
predicts the unseen classes with (cosine for most methods, ESZSL's bilinear score, a ceiling's
logits, motion prompts' per-video prompted scores).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from zsar.hubness import SQUARE_ONLY, hub_occurrence, hubness_from_scores, make_reducer

HUBNESS_K = 10
"""Neighbourhood size of the ``S_N10`` column (capped at the number of unseen classes minus 1)."""


def l2_normalize(x: np.ndarray, dtype=None, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` ``(..., D)`` scaled to unit length (zero rows stay zero).

    Computed in ``dtype`` when given, else in ``x``'s float dtype (integer input: float32).
    """
    x = np.asarray(x, dtype=dtype)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine_scores(video_embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """``(N, C)`` float32 cosine similarities of ``(N, D)`` embeddings and ``(C, D)`` prototypes."""
    v = torch.as_tensor(np.asarray(video_embeddings, dtype=np.float32))
    p = torch.as_tensor(np.asarray(prototypes, dtype=np.float32))
    if v.ndim != 2 or p.ndim != 2 or v.shape[1] != p.shape[1]:
        raise ValueError(f"expected (N, D) embeddings and (C, D) prototypes, got {tuple(v.shape)}, {tuple(p.shape)}")
    return (F.normalize(v, dim=-1) @ F.normalize(p, dim=-1).T).numpy()


def unseen_hubness(scores: np.ndarray, k: int = HUBNESS_K) -> float:
    """``S_Nk`` of ``(N, U)`` unseen scores: skewness of how often each class is among a video's k best.

    ``k`` is capped at ``U - 1``; higher scores mean nearer.

    Raises:
        ValueError: fewer than two classes.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"need (N, U) scores with U >= 2 classes, got shape {scores.shape}")
    return float(hubness_from_scores(scores, k=min(k, scores.shape[1] - 1)).skewness)


def hubness_measures(scores: np.ndarray, k: int, hub_size: float = 2.0) -> dict:
    """Hubness of ``(N, C)`` scores: ``S_Nk``, hub and antihub occurrence, Robin Hood, and the ``(C,)`` ``N_k``.

    Hub occurrence counts targets with ``N_k >= hub_size * mean N_k`` (the mean is ``kN/C``, so the
    threshold holds for any number of videos per class).
    """
    rep = hubness_from_scores(scores, k=k, hub_size=hub_size)
    return {"S_Nk": rep.skewness, "hub occ": hub_occurrence(rep.k_occurrence, rep.k_occurrence.mean(), hub_size),
            "antihub occ": rep.antihub_occurrence, "Robin Hood": rep.robinhood, "k_occurrence": rep.k_occurrence}


REFERENCES = ("inductive", "transductive")
"""Where a hubness reducer takes its reference queries: held-out seen-class videos, or the test videos."""


def reduced_scores(reducer: str, reference: str, queries: np.ndarray, targets: np.ndarray,
                   val_bank: np.ndarray | None = None) -> np.ndarray | None:
    """``(N, C)`` cosine scores of ``queries`` ``(N, D)`` against ``targets`` ``(C, D)`` after a hubness reducer.

    The reducer is fitted on reference similarities: ``"inductive"``, the held-out ``val_bank``
    ``(V, D)`` against the targets (targets against themselves without a bank, and always for the
    square-only reducers); ``"transductive"``, the test ``queries`` themselves.

    Returns:
        The reduced scores; ``None`` for a square-only reducer asked for a transductive fit.
    """
    raw = cosine_scores(queries, targets)
    if reference not in REFERENCES:
        raise ValueError(f"reference={reference!r}; choose from {REFERENCES}")
    if reducer in SQUARE_ONLY or (reference == "inductive" and (val_bank is None or not len(val_bank))):
        if reference != "inductive":
            return None
        ref, exclude_self = cosine_scores(targets, targets), True
    elif reference == "inductive":
        ref, exclude_self = cosine_scores(val_bank, targets), False
    else:
        ref, exclude_self = cosine_scores(queries, targets), False
    return make_reducer(reducer).fit(ref, exclude_self=exclude_self).transform(raw)

