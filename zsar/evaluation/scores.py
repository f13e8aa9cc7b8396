"""Score helpers: the one L2 normalisation and the one cosine score of the package.

Every zero-shot score that is a cosine (video embeddings against class prototypes, relatedness
of label embeddings, few-shot prototypes) goes through these two functions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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
