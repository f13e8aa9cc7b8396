"""Classic embedding baselines: DeViSE (hinge-rank) and ESZSL (closed form) on video features.

Both map a fixed visual feature ``x`` (``D_v``) into a fixed semantic space of class texts
(GloVe word vectors by default, as in the pre-CLIP literature; MiniLM or the CLIP text tower
are selectable) and classify by the best-matching class vector.

Visual features (``visual``):

* ``"frozen"`` (default) — the CLIP image tower, frozen, frame-averaged: the cheap and common
  choice of recent re-implementations; with ``pretrained=None`` the features are random
  projections, so the baselines then measure what a linear map learns on top of them.
* ``"finetune"`` — first train the image tower + temporal head with a softmax classifier on
  the **seen** classes (``visual_epochs`` epochs, as DeViSE pre-trains its visual model), then
  use the pooled features before the classifier.

References: Frome et al., "DeViSE", NeurIPS 2013; Romera-Paredes & Torr, "An embarrassingly
simple approach to zero-shot learning", ICML 2015.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from zsar.methods.base import ZeroShotMethod, dataset_labels
from zsar.models import FrameEncoder, frame_average
from zsar.text.class_texts import ClassTexts

VISUAL_FEATURES = ("frozen", "finetune")
ESZSL_GRID = (1e-2, 1e-1, 1.0, 10.0)


class _SemanticEmbeddingMethod(ZeroShotMethod):
    """Shared parts: visual features, the semantic space, prototypes = class text vectors."""

    def __init__(self, semantic_space: str = "glove", visual: str = "frozen", visual_epochs: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.semantic_space, self.visual, self.visual_epochs = semantic_space, visual, visual_epochs

    def _fit_visual(self, train_dataset, seen_texts: ClassTexts, run_dir, val_dataset) -> int:
        """Build (and with ``visual="finetune"`` train) the visual encoder; return its trainable count."""
        if self.visual not in VISUAL_FEATURES:
            raise ValueError(f"visual={self.visual!r}; choose from {VISUAL_FEATURES}")
        if self.visual == "frozen":
            model, tokenizer = self._build_clip()
            self.visual_model_ = FrameEncoder(model).eval()
            self._space_model = (model, tokenizer)
            return 0
        from zsar.methods.supervised import build_classifier, classification_loss
        from zsar.models import count_parameters

        module = build_classifier(self, len(seen_texts), 256, 1, 4)
        eval_fn = self._seen_eval_fn(val_dataset, seen_texts,
                                     lambda m, ds, _t: self._extract(lambda b: m(b["video"]), ds))
        self._train(module, classification_loss, train_dataset, run_dir, eval_fn,
                    epochs=self.visual_epochs, subdir="visual")
        self.visual_model_ = module.eval()
        self._space_model = None
        return count_parameters(module, trainable_only=True)

    def _features(self, dataset) -> np.ndarray:
        """``(N, D_v)`` unit visual features."""
        if isinstance(self.visual_model_, FrameEncoder):
            return self._extract(lambda b: frame_average(self.visual_model_(b["video"], normalize=True)), dataset)
        return self._extract(lambda b: F.normalize(self.visual_model_.features(b["video"]), dim=-1), dataset)

    def _make_space(self):
        if self.semantic_space == "clip":
            if self._space_model is None:
                model, tokenizer = self._build_clip()
            else:
                model, tokenizer = self._space_model
            return self._text_space("clip", model, tokenizer)
        return self._text_space(self.semantic_space)

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D_s)`` unit semantic vectors of the target classes' texts."""
        self.check_is_fitted()
        return self.space_.encode(target_texts.texts(self.text_kind))


class DeViSE(_SemanticEmbeddingMethod):
    """DeViSE: a linear map ``M`` from visual features to class vectors, hinge-rank loss.

    ``loss(x, y) = Σ_{j≠y} max(0, margin − s_y·Mx + s_j·Mx)`` over the seen classes; a video
    scores class ``c`` by ``cos(Mx, s_c)``.

    Args:
        semantic_space: ``"glove"``, ``"minilm"`` or ``"clip"``.
        visual: ``"frozen"`` or ``"finetune"`` (see the module docstring).
        visual_epochs: epochs of the seen-class classifier with ``visual="finetune"``.
        map_epochs: epochs of the linear map on cached features.
        map_lr: Adam learning rate of the map.
        margin: hinge margin (DeViSE's 0.1).
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.
    """

    name = "devise"
    display_name = "DeViSE (hinge-rank, word vectors)"

    def __init__(self, map_epochs: int = 200, map_lr: float = 1e-2, margin: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.map_epochs, self.map_lr, self.margin = map_epochs, map_lr, margin

    def fit(self, train_dataset, seen_texts: ClassTexts, run_dir: str | os.PathLike, val_dataset=None) -> "DeViSE":
        """Extract (or learn) visual features, then fit the map, selecting the epoch on ``val_dataset``."""
        run_dir = self._start_fit(run_dir)
        visual_params = self._fit_visual(train_dataset, seen_texts, run_dir, val_dataset)
        self.space_ = self._make_space()
        semantic = torch.from_numpy(self.space_.encode(seen_texts.texts(self.text_kind)))
        x = torch.from_numpy(self._features(train_dataset))
        y = torch.from_numpy(dataset_labels(train_dataset))
        val = None
        if val_dataset is not None and len(val_dataset):
            val = (torch.from_numpy(self._features(val_dataset)), torch.from_numpy(dataset_labels(val_dataset)))
        self.map_ = self._fit_map(x, y, semantic, val)
        return self._finish_fit(visual_params + self.map_.numel())

    def _fit_map(self, x: torch.Tensor, y: torch.Tensor, semantic: torch.Tensor, val) -> torch.Tensor:
        """Full-batch Adam on the hinge-rank loss; returns ``M`` ``(D_s, D_v)`` of the best val epoch."""
        gen = torch.Generator().manual_seed(self.seed)
        weight = (torch.randn(semantic.shape[1], x.shape[1], generator=gen) * 0.01).requires_grad_(True)
        optim = torch.optim.Adam([weight], lr=self.map_lr)
        best, best_acc = weight.detach().clone(), -1.0
        for epoch in tqdm(range(self.map_epochs), desc="DeViSE map", leave=False,
                          disable=None if self.progress is None else not self.progress):
            scores = x @ weight.T @ semantic.T  # (N, S)
            true = scores.gather(1, y[:, None])
            hinge = (self.margin - true + scores).clamp_min(0)
            loss = hinge.scatter(1, y[:, None], 0.0).sum(1).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            if val is not None and (epoch % 10 == 9 or epoch == self.map_epochs - 1):
                with torch.no_grad():
                    acc = float(((val[0] @ weight.T @ semantic.T).argmax(1) == val[1]).float().mean())
                if acc > best_acc:
                    best, best_acc = weight.detach().clone(), acc
        return best if val is not None else weight.detach()

    def video_embeddings(self, dataset) -> np.ndarray:
        """``(N, D_s)`` mapped features ``Mx``."""
        self.check_is_fitted()
        return (torch.from_numpy(self._features(dataset)) @ self.map_.T).numpy()


def eszsl_closed_form(x: np.ndarray, y: np.ndarray, semantic: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """ESZSL's ``V = (XᵀX + γI)⁻¹ Xᵀ Y S (SᵀS + λI)⁻¹``.

    Args:
        x: ``(N, D_v)`` features.
        y: ``(N,)`` labels in ``0..S-1``; the target matrix is ``+1`` for the class, ``-1`` else.
        semantic: ``(S, D_s)`` class vectors of the seen classes.
        gamma, lam: ridge penalties on the visual and the semantic side.

    Returns:
        ``V`` ``(D_v, D_s)``; a video scores class ``c`` by ``x V s_cᵀ``.
    """
    x, s = np.asarray(x, dtype=np.float64), np.asarray(semantic, dtype=np.float64)
    targets = -np.ones((len(x), len(s)))
    targets[np.arange(len(x)), np.asarray(y)] = 1.0
    left = np.linalg.solve(x.T @ x + gamma * np.eye(x.shape[1]), x.T @ targets @ s)
    return np.linalg.solve((s.T @ s + lam * np.eye(s.shape[1])).T, left.T).T


class ESZSL(_SemanticEmbeddingMethod):
    """Embarrassingly simple ZSL (closed form bilinear compatibility).

    Args:
        gamma, lam: ridge penalties; ``None`` picks each from ``ESZSL_GRID`` by top-1 on the
            held-out seen videos (1.0 without a validation set).
        semantic_space, visual, visual_epochs: see :class:`DeViSE`.
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.
    """

    name = "eszsl"
    display_name = "ESZSL (closed form)"

    def __init__(self, gamma: float | None = None, lam: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.gamma, self.lam = gamma, lam

    def fit(self, train_dataset, seen_texts: ClassTexts, run_dir: str | os.PathLike, val_dataset=None) -> "ESZSL":
        """Extract features and solve for ``V`` (grid-searching ``gamma``/``lam`` on ``val_dataset``)."""
        run_dir = self._start_fit(run_dir)
        visual_params = self._fit_visual(train_dataset, seen_texts, run_dir, val_dataset)
        self.space_ = self._make_space()
        semantic = self.space_.encode(seen_texts.texts(self.text_kind))
        x, y = self._features(train_dataset), dataset_labels(train_dataset)
        has_val = val_dataset is not None and len(val_dataset) > 0
        gammas = [self.gamma] if self.gamma is not None else (ESZSL_GRID if has_val else [1.0])
        lams = [self.lam] if self.lam is not None else (ESZSL_GRID if has_val else [1.0])
        if has_val and len(gammas) * len(lams) > 1:
            xv, yv = self._features(val_dataset), dataset_labels(val_dataset)
            grid = [(g, l) for g in gammas for l in lams]
            accs = [float(((xv @ eszsl_closed_form(x, y, semantic, g, l) @ semantic.T).argmax(1) == yv).mean())
                    for g, l in grid]
            gammas, lams = [grid[int(np.argmax(accs))][0]], [grid[int(np.argmax(accs))][1]]
        self.gamma_, self.lam_ = gammas[0], lams[0]
        self.V_ = eszsl_closed_form(x, y, semantic, self.gamma_, self.lam_).astype(np.float32)
        return self._finish_fit(visual_params + self.V_.size)

    def video_embeddings(self, dataset) -> np.ndarray:
        """``(N, D_s)`` projected features ``xV``."""
        self.check_is_fitted()
        return self._features(dataset) @ self.V_

    def scores_from_embeddings(self, embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
        """``(N, C)`` compatibilities ``x V s_cᵀ`` (ESZSL's bilinear score, not a cosine)."""
        return embeddings @ prototypes.T

