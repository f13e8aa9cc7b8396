"""Plain CLIP zero-shot: frame-averaged image features against text prototypes, no training.

The classic baseline (the "frozen CLIP, frame average" row of the reference table). With a
randomly initialised backbone (``pretrained=None``, as in the offline tests) it is at chance
level: a sanity row showing what the architecture alone gives.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from zsar.methods.base import ZeroShotMethod
from zsar.models import FrameEncoder, count_parameters, frame_average
from zsar.text.class_texts import ClassTexts


class FrameAverage(ZeroShotMethod):
    """CLIP image features averaged over frames vs. CLIP text prototypes (order-blind).

    Takes the :class:`~zsar.methods.base.ZeroShotMethod` arguments; ``epochs`` etc. are unused.

    Attributes (after ``fit``):
        model_: the open_clip model.
        encoder_: its :class:`~zsar.models.FrameEncoder`.
        text_space_: the :class:`~zsar.models.ClipTextSpace` used for prototypes.
    """

    name = "frame_average"
    display_name = "CLIP frame average"

    def __init__(self, epochs: int = 0, **kwargs):
        super().__init__(epochs=epochs, **kwargs)

    def fit(self, train_dataset, seen_texts: ClassTexts, run_dir: str | os.PathLike,
            val_dataset=None) -> "FrameAverage":
        """Build the model; nothing is learned (the seen data are not even read)."""
        self._start_fit(run_dir)
        self.model_, tokenizer = self._build_clip()
        self.model_.eval()
        self.encoder_ = FrameEncoder(self.model_)
        self.text_space_ = self._text_space("clip", self.model_, tokenizer)
        return self._finish_fit(0)

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, D)`` unit vectors: the mean over frames of the normalised frame embeddings."""
        return frame_average(self.encoder_(batch["video"], normalize=True))

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` CLIP text embeddings of the target classes' texts (templated names)."""
        self.check_is_fitted()
        return self.text_space_.encode(target_texts.texts(self.text_kind))

    def scores_from_embeddings(self, embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
        """CLIP logits: ``logit_scale * cos(video, class)``, ``(N, C)``."""
        return super().scores_from_embeddings(embeddings, prototypes) * float(self.model_.logit_scale.detach().exp())

    def total_parameters(self) -> int:
        """Parameters of the whole CLIP model (all frozen here)."""
        self.check_is_fitted()
        return count_parameters(self.model_)
