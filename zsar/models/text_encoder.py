"""The CLIP text tower as a semantic space, and its torch-side encoder for joint training.

:class:`ClipTextSpace` behaves like the other spaces of :mod:`zsar.text.semantic` (``encode``
returns L2-normalised ``float32`` numpy ``(N, D)`` and records every input string in
``encoded_texts`` for the leakage audit) and adds :meth:`ClipTextSpace.encode_torch`, which keeps
the autograd graph when the space is ``trainable``, so the text tower can be fine-tuned jointly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsar.models.prompts import Template, _check_templates, apply_template, get_templates
from zsar.text.semantic import SemanticSpace


def text_embed_dim(model: nn.Module) -> int:
    """Joint embedding size ``D`` produced by ``model.encode_text``."""
    proj = getattr(model, "text_projection", None)
    if isinstance(proj, nn.Linear):
        return proj.out_features
    if isinstance(proj, torch.Tensor):
        return proj.shape[-1]
    text = getattr(model, "text", None)
    if getattr(text, "output_dim", None):
        return int(text.output_dim)
    return int(model.visual.output_dim)


def text_tower_locked(model: nn.Module) -> bool:
    """Whether no parameter of ``model``'s text side (all but ``visual.*`` and the logit scale/bias)
    requires a gradient."""
    return not any(p.requires_grad for name, p in model.named_parameters()
                   if not name.startswith("visual.") and name not in ("logit_scale", "logit_bias"))


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode_text_tokens(model: nn.Module, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Text embeddings ``(N, D)`` of tokenised prompts ``(N, L)``; differentiable.

    A thin wrapper of ``model.encode_text`` that moves the tokens to the model's device, so the
    training loop and the zero-shot code share one entry point.
    """
    if tokens.ndim != 2:
        raise ValueError(f"expected tokens of shape (N, L), got {tuple(tokens.shape)}")
    return model.encode_text(tokens.to(_model_device(model)), normalize=normalize)


class ClipTextSpace(SemanticSpace):
    """Semantic space of an open_clip text tower.

    Args:
        model: open_clip model; built with :func:`zsar.models.create_model` from
            ``model_name`` / ``pretrained`` if omitted.
        tokenizer: ``tokenizer(texts) -> (N, L)`` tokens; open_clip's tokenizer of
            ``model_name`` (or a ``SimpleTokenizer`` with the model's context length) if omitted.
        templates: optional prompt templates (strings with one ``{}`` / callables / a bundled set
            name); each text is then embedded as the renormalised mean over its templated prompts.
        trainable: if ``True``, :meth:`encode_torch` keeps gradients (the tower's parameters are
            not touched: freeze or optimise them in the training loop).
        model_name, pretrained, device: used only to build a missing model / tokenizer.
        batch_size: prompts per forward pass in the no-grad :meth:`encode`.

    A space that is not ``trainable`` over a *locked* text tower (no text parameter requires a
    gradient) embeds each distinct list of texts once, in eval mode (no dropout), and serves it from
    memory afterwards: a training loop that re-encodes the class vocabulary every step then pays
    for the text tower once (LiT-style locked-text fine-tuning). ``encoded_texts`` still records
    every call.

    Attributes:
        dim: embedding size ``D``.
        encoded_texts: every text passed to :meth:`encode` or :meth:`encode_torch` (before
            templating), in order.
    """

    name = "clip"

    def __init__(self, model: nn.Module | None = None, tokenizer=None,
                 templates: Sequence[Template] | str | None = None, trainable: bool = False,
                 model_name: str | None = None, pretrained: str | os.PathLike | None = None,
                 device: str | torch.device | None = None, batch_size: int = 256) -> None:
        super().__init__()
        if model is None:
            if model_name is None:
                raise ValueError("ClipTextSpace needs a model or a model_name to build one")
            from zsar.models.registry import create_model

            model = create_model(model_name, pretrained, device=device or "cpu")
        elif device is not None:
            model = model.to(device)
        if tokenizer is None:
            tokenizer = _default_tokenizer(model, model_name)
        if isinstance(templates, str):
            templates = get_templates(templates)
        if templates is not None:
            _check_templates(templates)
        self.model, self.tokenizer, self.trainable = model, tokenizer, trainable
        self.templates = list(templates) if templates is not None else None
        self.batch_size = batch_size
        self.dim = text_embed_dim(model)
        self._memo: dict[tuple, torch.Tensor] = {}

    def encode_torch(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed ``texts`` as a torch tensor ``(N, D)`` of unit vectors on the model's device.

        Differentiable when ``trainable`` (and grad mode is on); otherwise run under no_grad.
        """
        texts = [str(t) for t in texts]
        self.encoded_texts.extend(texts)
        if not self.trainable:
            return self._frozen_embed(texts)
        return self._embed(texts, batch_size=None)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._frozen_embed(texts).float().cpu().numpy()

    def _frozen_embed(self, texts: list[str]) -> torch.Tensor:
        """``(N, D)`` no-grad embeddings; memoised (eval mode) while the text tower is locked."""
        if not text_tower_locked(self.model):
            self._memo.clear()
            with torch.no_grad():
                return self._embed(texts, batch_size=self.batch_size)
        key = (tuple(texts), str(_model_device(self.model)))
        if key not in self._memo:
            modes = {m: m.training for m in self.model.modules()}
            self.model.eval()
            try:
                with torch.no_grad():
                    self._memo[key] = self._embed(texts, batch_size=self.batch_size)
            finally:
                for m, mode in modes.items():
                    m.training = mode
        return self._memo[key]

    def _embed(self, texts: list[str], batch_size: int | None) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, self.dim, device=_model_device(self.model))
        templates = self.templates or ["{}"]
        prompts = [apply_template(t, text) for text in texts for t in templates]
        step = batch_size or len(prompts)
        feats = torch.cat([encode_text_tokens(self.model, self.tokenizer(prompts[i:i + step]))
                           for i in range(0, len(prompts), step)])
        feats = feats.reshape(len(texts), len(templates), -1).mean(dim=1)
        return F.normalize(feats, dim=-1)

    def __repr__(self) -> str:
        n = len(self.templates) if self.templates else 0
        return f"ClipTextSpace(dim={self.dim}, templates={n}, trainable={self.trainable})"


def _default_tokenizer(model: nn.Module, model_name: str | None):
    if model_name is not None:
        from zsar.models.registry import get_tokenizer

        return get_tokenizer(model_name)
    from open_clip.tokenizer import SimpleTokenizer

    # without a name only the context length is known; CLIP-BPE is right for open_clip's own
    # text towers, but HF-text-tower models need their tokenizer passed explicitly
    return SimpleTokenizer(context_length=getattr(model, "context_length", 77))
