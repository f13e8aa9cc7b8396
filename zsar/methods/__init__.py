"""Zero-shot action recognition methods behind one API (:class:`ZeroShotMethod`).

Registry (``METHODS``; build with :func:`make_method`):

* ``frame_average`` — plain CLIP, frame-averaged, no training (sanity row).
* ``actionclip``    — both CLIP towers fine-tuned on seen classes (ActionCLIP / ViFi-CLIP style).
* ``devise``        — linear map to word vectors with a hinge-rank loss (DeViSE).
* ``eszsl``         — closed-form bilinear compatibility (ESZSL).
* ``rest``          — cross-modal transformer + semantic transfer (method A, ResT).
* ``asu``           — multi-region attention + attentive semantic-unit selection + cross-modal decoder (method B, ASU).
* ``motion_prompts`` — motion block + motion-aware dynamic prompts + communication (method C).
* ``lss``           — action concept space: EMA-teacher concept distillation + alignment (method D, LSS).
* ``supervised``    — the same backbone trained on all classes: a ceiling, not zero-shot.

Example::

    from zsar.methods import ClassTexts, make_method
    method = make_method("rest", epochs=5, seed=0).fit(train_set, seen_texts, run_dir, val_set)
    scores = method.predict_scores(test_set, unseen_texts)      # (N, C)
"""

from __future__ import annotations

from zsar.evaluation.scores import cosine_scores
from zsar.methods.actionclip import ActionCLIP
from zsar.methods.asu import ASU
from zsar.methods.base import NotFittedError, ZeroShotMethod
from zsar.methods.devise import ESZSL, DeViSE, eszsl_closed_form
from zsar.methods.frame_average import FrameAverage
from zsar.methods.lss import LSS
from zsar.methods.motion_prompts import MotionPrompts
from zsar.methods.rest import ResT, TemporalTransformer
from zsar.methods.supervised import Supervised, VideoClassifier
from zsar.methods.transfer import (
    TransferResult,
    describe_weights,
    relatedness_matrix,
    semantic_transfer,
    transfer_weights,
)
from zsar.text.class_texts import TEXT_KINDS, ClassTexts, LeakageError, check_no_leaks, find_leaks, forbidden_strings

METHODS: dict[str, type[ZeroShotMethod]] = {
    cls.name: cls for cls in (FrameAverage, ActionCLIP, DeViSE, ESZSL, ResT, ASU, MotionPrompts, LSS, Supervised)
}
"""Method name -> class."""


def make_method(name: str, **kwargs) -> ZeroShotMethod:
    """A new, unfitted method by registry name; ``kwargs`` go to its constructor.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones).
        TypeError: a keyword the method does not take.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name](**kwargs)


__all__ = [
    "ASU", "LSS", "METHODS", "TEXT_KINDS", "ActionCLIP", "ClassTexts", "DeViSE", "ESZSL", "FrameAverage", "LeakageError",
    "MotionPrompts", "NotFittedError", "ResT", "Supervised", "TemporalTransformer", "TransferResult", "VideoClassifier",
    "ZeroShotMethod", "check_no_leaks", "cosine_scores", "describe_weights", "eszsl_closed_form",
    "find_leaks", "forbidden_strings", "make_method", "relatedness_matrix", "semantic_transfer",
    "transfer_weights",
]
