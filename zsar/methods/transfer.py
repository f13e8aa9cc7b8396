"""Semantic transfer: visual prototypes of unseen classes composed from seen ones (ResT, method A).

ResT builds each unseen class's visual prototype "as a combination of the seen classes' visual
prototypes, weighted by the semantic relatedness of the unseen label to the seen labels". The
paper's exact formula is not available; this module implements the design in ``REFERENCE.md``:

.. math::

    w_{us} = \\frac{\\exp(r_{us} / \\tau)}{\\sum_{s' \\in \\mathrm{top}_k(u)} \\exp(r_{us'} / \\tau)}
    \\quad (s \\in \\mathrm{top}_k(u), \\text{ else } 0), \\qquad
    \\hat P_u = \\sum_s w_{us} P_s,

    P_u = \\mathrm{normalize}\\big(\\alpha\\, \\mathrm{normalize}(\\hat P_u) + (1 - \\alpha)\\, T_u\\big)

with ``r`` the cosine relatedness of labels in some text space, ``P_s`` the seen visual
prototypes and ``T_u`` an optional text prototype in the same joint space. ``tau -> 0`` puts all
weight on the most related seen class (nearest-class transfer); ``alpha = 0`` ignores the visual
prototypes (pure text zero-shot). Everything here is NumPy and side-effect free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsar.evaluation.scores import l2_normalize


@dataclass(frozen=True)
class TransferResult:
    """Output of :func:`semantic_transfer`.

    Attributes:
        prototypes: ``(U, D)`` prototypes of the target classes (unit rows if normalised).
        weights: ``(U, S)`` transfer weights; each row sums to 1 and is zero outside its top-k.
        topk: ``(U, k)`` indices of the seen classes used, most related first.
        relatedness: ``(U, S)`` the relatedness matrix the weights came from.
    """

    prototypes: np.ndarray
    weights: np.ndarray
    topk: np.ndarray
    relatedness: np.ndarray


def relatedness_matrix(target_embeddings: np.ndarray, seen_embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity ``(U, S)`` between target ``(U, E)`` and seen ``(S, E)`` label embeddings."""
    a = l2_normalize(np.asarray(target_embeddings, dtype=np.float64))
    b = l2_normalize(np.asarray(seen_embeddings, dtype=np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (U, E) and (S, E) embeddings, got {a.shape} and {b.shape}")
    return a @ b.T


def topk_indices(relatedness: np.ndarray, k: int) -> np.ndarray:
    """``(U, k)`` column indices of the ``k`` largest entries per row, largest first.

    Ties go to the lower seen index (stable sort), so the result is deterministic.
    """
    relatedness = np.asarray(relatedness)
    if relatedness.ndim != 2:
        raise ValueError(f"relatedness must be (U, S), got shape {relatedness.shape}")
    if not 1 <= k <= relatedness.shape[1]:
        raise ValueError(f"k={k} must lie in [1, S={relatedness.shape[1]}]")
    return np.argsort(-relatedness, axis=1, kind="stable")[:, :k]


def transfer_weights(relatedness: np.ndarray, k: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of ``relatedness / temperature`` over each row's top-k, zero elsewhere.

    Args:
        relatedness: ``(U, S)`` similarities of target labels to seen labels.
        k: number of seen classes each target class draws on (``1..S``).
        temperature: softmax temperature ``> 0``; ``0`` gives the one-hot limit (all weight on
            the most related seen class).

    Returns:
        ``(weights (U, S), topk (U, k))``; each weight row sums to 1.

    Raises:
        ValueError: ``temperature < 0`` or ``k`` out of range.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    relatedness = np.asarray(relatedness, dtype=np.float64)
    top = topk_indices(relatedness, k)
    rows = np.arange(len(relatedness))[:, None]
    weights = np.zeros_like(relatedness)
    if temperature == 0:
        weights[rows[:, 0], top[:, 0]] = 1.0
        return weights, top
    logits = relatedness[rows, top] / temperature
    # subtracting the row max keeps exp() finite for tiny temperatures (same softmax)
    expo = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights[rows, top] = expo / expo.sum(axis=1, keepdims=True)
    return weights, top


def semantic_transfer(seen_prototypes: np.ndarray, relatedness: np.ndarray, k: int = 5,
                      temperature: float = 0.1, text_prototypes: np.ndarray | None = None,
                      alpha: float = 1.0, normalize: bool = True) -> TransferResult:
    """Compose target-class prototypes from seen visual prototypes (see the module docstring).

    Args:
        seen_prototypes: ``(S, D)`` visual prototypes ``P_s`` of the seen classes.
        relatedness: ``(U, S)`` relatedness of each target label to each seen label, e.g.
            :func:`relatedness_matrix` of their text embeddings.
        k: seen classes per target class (clipped to ``S``).
        temperature: softmax temperature (``0``: one-hot on the most related seen class).
        text_prototypes: ``(U, D)`` text prototypes ``T_u`` in the same space; needed when
            ``alpha < 1``.
        alpha: weight of the transferred visual prototype in ``[0, 1]``.
        normalize: L2-normalise the transferred prototype before fusing and the result after.

    Returns:
        A :class:`TransferResult`.

    Raises:
        ValueError: shapes that do not match, ``alpha`` outside ``[0, 1]``, or ``alpha < 1``
            without ``text_prototypes``.
    """
    seen_prototypes = np.asarray(seen_prototypes, dtype=np.float64)
    relatedness = np.asarray(relatedness, dtype=np.float64)
    if seen_prototypes.ndim != 2 or relatedness.ndim != 2 or relatedness.shape[1] != len(seen_prototypes):
        raise ValueError(f"expected seen_prototypes (S, D) and relatedness (U, S), got "
                         f"{seen_prototypes.shape} and {relatedness.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    weights, top = transfer_weights(relatedness, min(k, relatedness.shape[1]), temperature)
    transferred = weights @ seen_prototypes
    if normalize:
        transferred = l2_normalize(transferred)
    if alpha < 1.0:
        if text_prototypes is None:
            raise ValueError(f"alpha={alpha} < 1 needs text_prototypes")
        text = np.asarray(text_prototypes, dtype=np.float64)
        if text.shape != transferred.shape:
            raise ValueError(f"text_prototypes {text.shape} must match (U, D) = {transferred.shape}")
        transferred = alpha * transferred + (1.0 - alpha) * (l2_normalize(text) if normalize else text)
    if normalize:
        transferred = l2_normalize(transferred)
    return TransferResult(transferred.astype(np.float32), weights, top, relatedness)


def describe_weights(result: TransferResult, target_names, seen_names, min_weight: float = 0.01) -> dict:
    """``{target name: [(seen name, weight), ...]}`` with weights ``>= min_weight``, largest first.

    What notebook 03 prints to show which seen classes compose each unseen prototype.
    """
    out = {}
    for u, name in enumerate(target_names):
        parts = [(str(seen_names[s]), float(result.weights[u, s])) for s in result.topk[u]
                 if result.weights[u, s] >= min_weight]
        out[str(name)] = parts
    return out
