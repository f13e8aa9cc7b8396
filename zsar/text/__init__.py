"""Text and semantic spaces: sentence vectors, word vectors, (later) the CLIP text tower."""

from zsar.text.semantic import (
    SEMANTIC_SPACES,
    GloVeSpace,
    MiniLMSpace,
    SemanticSpace,
    cosine_similarity_matrix,
    get_semantic_space,
)

__all__ = [
    "SEMANTIC_SPACES",
    "GloVeSpace",
    "MiniLMSpace",
    "SemanticSpace",
    "cosine_similarity_matrix",
    "get_semantic_space",
]
