"""Class texts and semantic spaces: what a class is called and described as, and the offline text encoders.

* :mod:`zsar.text.class_texts` — :class:`ClassTexts` (names, descriptions, semantic units) and the leakage audit.
* :mod:`zsar.text.semantic` — sentence vectors (MiniLM) and word vectors (GloVe) behind one API.
* :mod:`zsar.text.units` — semantic units extracted from descriptions.

The CLIP text tower is a space of a model (:class:`zsar.models.ClipTextSpace`); this layer imports no model.
"""

from zsar.text.class_texts import (TEXT_KINDS, UNIT_GROUPS, ClassTexts, LeakageError, check_no_leaks, find_leaks,
                                   forbidden_strings)
from zsar.text.semantic import (SEMANTIC_SPACES, GloVeSpace, MiniLMSpace, SemanticSpace, cosine_similarity_matrix,
                                get_semantic_space)

__all__ = [
    "SEMANTIC_SPACES",
    "TEXT_KINDS",
    "UNIT_GROUPS",
    "ClassTexts",
    "GloVeSpace",
    "LeakageError",
    "MiniLMSpace",
    "SemanticSpace",
    "check_no_leaks",
    "cosine_similarity_matrix",
    "find_leaks",
    "forbidden_strings",
    "get_semantic_space",
]
