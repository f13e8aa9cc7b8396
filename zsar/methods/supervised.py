"""The supervised ceiling: the same backbone + temporal head trained on *all* classes.

Not a zero-shot method (``is_zero_shot = False``; tables mark it): it is trained on the training
videos of every class, including the classes that are unseen for the zero-shot methods, and
tested on held-out videos (UCF101-style test list, disjoint groups) of the unseen classes. It
shows how far the zero-shot methods are from what the same architecture reaches with labels.
:class:`VideoClassifier` is also the visual encoder DeViSE/ESZSL can fine-tune on seen classes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zsar.evaluation.scores import cosine_scores
from zsar.methods.base import ZeroShotMethod, cross_entropy_and_accuracy
from zsar.methods.rest import TemporalTransformer
from zsar.models import FrameEncoder
from zsar.text.class_texts import ClassTexts


class VideoClassifier(nn.Module):
    """CLIP image tower per frame, an order-aware temporal transformer, and a linear head.

    Args:
        model: open_clip model (only its image tower is used and trained).
        num_classes: output classes.
        width, layers, heads, max_frames: temporal transformer size.
    """

    def __init__(self, model: nn.Module, num_classes: int, width: int = 256, layers: int = 1,
                 heads: int = 4, max_frames: int = 32):
        super().__init__()
        self.encoder = FrameEncoder(model)
        dim = self.encoder.output_dim
        self.temporal = TemporalTransformer(dim, width, layers, heads, max_frames, dim)
        self.head = nn.Linear(dim, num_classes)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` -> ``(B, D)`` pooled video features (before the head)."""
        return self.temporal(self.encoder(video, normalize=True)).float()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, num_classes)`` logits."""
        return self.head(self.features(video))


def classification_loss(module: nn.Module, batch: dict):
    """Cross-entropy ``loss_fn`` for :class:`VideoClassifier` (with a training accuracy log)."""
    return cross_entropy_and_accuracy(module(batch["video"]), batch["label"])


def build_classifier(method: ZeroShotMethod, num_classes: int, width: int, layers: int,
                     heads: int) -> VideoClassifier:
    """A :class:`VideoClassifier` on a fresh backbone of ``method`` (text tower dropped)."""
    from zsar.models import create_model

    model = create_model(method.backbone, method.pretrained, device=method.device_)
    return VideoClassifier(model.visual, num_classes, width, layers, heads, method.frames)


class Supervised(ZeroShotMethod):
    """Supervised ceiling (reference row, not zero-shot).

    ``fit`` takes videos of **all** classes with ``seen_texts`` naming all of them;
    ``predict_scores`` returns the logits of the target classes (which must be among them).

    Args:
        width, layers, heads: temporal head size.
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.
    """

    name = "supervised"
    display_name = "Supervised ceiling (all classes)"
    is_zero_shot = False

    def __init__(self, width: int = 256, layers: int = 1, heads: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.width, self.layers, self.heads = width, layers, heads

    def _build_module(self, seen_texts: ClassTexts) -> VideoClassifier:
        """Backbone + temporal head + linear classifier over the fitted classes."""
        self.classes_ = seen_texts
        return build_classifier(self, len(seen_texts), self.width, self.layers, self.heads)

    def _loss_fn(self, seen_texts: ClassTexts):
        return classification_loss

    def _val_scores(self, module: VideoClassifier, dataset, texts: ClassTexts | None = None) -> np.ndarray:
        return self._extract(lambda b: module(b["video"]), dataset)

    def _target_columns(self, target_texts: ClassTexts) -> list[int]:
        cols = self.classes_.index_of(target_texts.names)
        missing = [n for n, c in zip(target_texts.names, cols) if c is None]
        if missing:
            raise KeyError(f"the supervised model was not trained on classes {missing}")
        return cols

    def scores_from_features(self, features: dict[str, np.ndarray], target_texts: ClassTexts,
                             seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(N, C)`` logits of the target classes (a subset of the trained ones): the head on the features."""
        self.check_is_fitted()
        head = self.module_.head
        with torch.no_grad():
            feats = torch.as_tensor(features["embedding"]).to(head.weight.device)
            logits = head(feats.to(head.weight.dtype)).float().cpu().numpy()
        return logits[:, self._target_columns(target_texts)]

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, D)`` pooled features before the linear head."""
        return self.module_.features(batch["video"])

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` rows of the linear head for the target classes."""
        self.check_is_fitted()
        return self.module_.head.weight.detach().float().cpu().numpy()[self._target_columns(target_texts)]

    def cosine_scores(self, dataset, target_texts: ClassTexts) -> np.ndarray:
        """Cosine of features and head rows (for hubness analyses comparable to other methods)."""
        return cosine_scores(self.video_embeddings(dataset), self.class_prototypes(target_texts))
