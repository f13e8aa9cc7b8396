"""ActionCLIP / ViFi-CLIP-style fine-tuning: both CLIP towers trained on the seen classes.

A video is the mean of its frame embeddings (ViFi-CLIP's point: plain frame averaging with both
towers fine-tuned is a strong video adapter); a class is the CLIP text embedding of its
(templated) name. Training minimises the cross-entropy of ``exp(s) * cos(video, class)`` over
the seen vocabulary with CLIP's learnable logit scale ``s`` (ActionCLIP's symmetric KL over a
batch reduces to this when each batch holds the whole class vocabulary, as here).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from zsar.evaluation.scores import cosine_scores
from zsar.methods.base import ZeroShotMethod, cross_entropy_and_accuracy
from zsar.models import FrameEncoder, frame_average
from zsar.text.class_texts import ClassTexts

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp


class VideoTextCLIP(nn.Module):
    """CLIP with a frame-averaging video branch; ``forward`` gives logits over class texts.

    Args:
        model: open_clip model (both towers are trained).
        text_space: a trainable :class:`~zsar.models.ClipTextSpace` over the same ``model``
            (so every class text it embeds is recorded for the leakage audit).
    """

    def __init__(self, model: nn.Module, text_space):
        super().__init__()
        self.model = model
        self.encoder = FrameEncoder(model)
        self.text_space = text_space  # not a Module: its tower is self.model's

    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` -> ``(B, D)`` unit vectors."""
        return frame_average(self.encoder(video, normalize=True))

    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, video: torch.Tensor, class_texts: Sequence[str]) -> torch.Tensor:
        """``(B, C)`` logits of ``video`` over ``class_texts`` (differentiable in both towers)."""
        text = self.text_space.encode_torch(list(class_texts)).to(torch.float32)
        video_emb = self.embed_video(video).to(torch.float32)
        return self.logit_scale() * video_emb @ text.T


class ActionCLIP(ZeroShotMethod):
    """Fine-tune CLIP's image and text towers on seen classes; zero-shot by text prototypes.

    Args:
        lr: default ``1e-5`` (CLIP fine-tuning); with random weights, as in the offline tests,
            a larger value (``1e-4``) learns faster.
        freeze_text: keep the text tower fixed (image-only fine-tuning; the logit scale still learns).
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.
    """

    name = "actionclip"
    display_name = "ActionCLIP (frame avg., fine-tuned)"

    def __init__(self, lr: float = 1e-5, freeze_text: bool = False, **kwargs):
        super().__init__(lr=lr, **kwargs)
        self.freeze_text = freeze_text

    def _build_module(self, seen_texts: ClassTexts) -> VideoTextCLIP:
        model, tokenizer = self._build_clip()
        if self.freeze_text:
            for name, p in model.named_parameters():
                if not (name.startswith("visual.") or name == "logit_scale"):
                    p.requires_grad_(False)
        space = self._text_space("clip", model, tokenizer, trainable=not self.freeze_text)
        return VideoTextCLIP(model, space)

    def _loss_fn(self, seen_texts: ClassTexts):
        train_texts = seen_texts.texts(self.text_kind)

        def loss_fn(module: nn.Module, batch: dict):
            return cross_entropy_and_accuracy(module(batch["video"], train_texts), batch["label"])
        return loss_fn

    def _val_scores(self, module: VideoTextCLIP, dataset, texts: ClassTexts) -> np.ndarray:
        feats = self._extract(lambda b: module.embed_video(b["video"]), dataset)
        return cosine_scores(feats, module.text_space.encode(texts.texts(self.text_kind)))

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, D)`` frame-averaged unit embeddings of the fine-tuned image tower."""
        return self.module_.embed_video(batch["video"])

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` fine-tuned text embeddings of the target classes."""
        self.check_is_fitted()
        return self.module_.text_space.encode(target_texts.texts(self.text_kind))

    def scores_from_embeddings(self, embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
        """``(N, C)`` logits ``exp(s) * cos(video, class)``."""
        return super().scores_from_embeddings(embeddings, prototypes) * float(self.module_.logit_scale().detach())
