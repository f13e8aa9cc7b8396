"""Zero-shot classification: class prompts -> a ``(D, C)`` classifier -> logits.

Mirrors ``open_clip.build_zero_shot_classifier``: each class's prompts are embedded, L2-normalised,
averaged and renormalised, and the class vectors are the columns of a ``(D, C)`` matrix. Here a
class may also carry descriptions (a ragged number of prompts), and the text side may be any
:class:`~zsar.text.semantic.SemanticSpace` (so the leakage guard sees every class name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zsar.models.prompts import Template, build_prompts
from zsar.models.text_encoder import encode_text_tokens
from zsar.text.semantic import SemanticSpace


def _embed_prompts(model_or_space, tokenizer, prompts: list[str], batch_size: int) -> torch.Tensor:
    """``(P, D)`` unit embeddings of ``P`` prompt strings, float32 on the model's device (or CPU)."""
    if isinstance(model_or_space, SemanticSpace):
        return torch.from_numpy(np.asarray(model_or_space.encode(prompts), dtype=np.float32))
    if tokenizer is None:
        raise ValueError(f"a tokenizer is required to encode text with {type(model_or_space).__name__}")
    with torch.no_grad():
        feats = [encode_text_tokens(model_or_space, tokenizer(prompts[i:i + batch_size]), normalize=True)
                 for i in range(0, len(prompts), batch_size)]
    return torch.cat(feats).float()


def build_zero_shot_classifier(model_or_space, tokenizer, classnames: Sequence[str],
                               templates: Sequence[Template] | str,
                               descriptions: Mapping[str, str | Sequence[str]] | None = None,
                               batch_size: int = 256) -> torch.Tensor:
    """Class weight matrix for zero-shot classification.

    Args:
        model_or_space: an open_clip model (``encode_text``) or a ``SemanticSpace`` such as
            :class:`~zsar.models.text_encoder.ClipTextSpace` (then ``tokenizer`` is unused and
            the space records the filled prompts; give a space that has its own templates
            ``templates="identity"`` to avoid templating twice).
        tokenizer: ``tokenizer(texts) -> (N, L)``; may be ``None`` with a space.
        classnames: ``C`` class names, in label order.
        templates: format strings with one ``{}``, callables, or a bundled set name.
        descriptions: optional ``{class name: text or [texts]}`` added as extra prompts
            (see :func:`zsar.models.prompts.build_prompts`).
        batch_size: prompts per forward pass.

    Returns:
        ``(D, C)`` float32 tensor with unit-norm columns (on the model's device; CPU for a space).
    """
    return prompt_classifier(model_or_space, tokenizer, build_prompts(classnames, templates, descriptions), batch_size)


def prompt_classifier(model_or_space, tokenizer, per_class: Sequence[Sequence[str]], batch_size: int = 256) -> torch.Tensor:
    """``(D, C)`` unit-norm class vectors from ``C`` lists of prompt strings (ragged allowed).

    Each prompt is embedded and L2-normalised; a class's vector is the renormalised mean of its
    prompts' (CLIP's prompt ensembling). See :func:`build_zero_shot_classifier` for the arguments.
    """
    if not len(per_class) or any(not len(p) for p in per_class):
        raise ValueError("every class needs at least one prompt")
    flat = [p for prompts in per_class for p in prompts]
    feats = _embed_prompts(model_or_space, tokenizer, flat, batch_size)
    counts = torch.tensor([len(p) for p in per_class], device=feats.device)
    owner = torch.repeat_interleave(torch.arange(len(per_class), device=feats.device), counts)
    # segment mean over each class's prompts (ragged when descriptions differ in number)
    sums = torch.zeros(len(per_class), feats.shape[1], device=feats.device).index_add_(0, owner, feats)
    means = sums / counts.unsqueeze(1).to(feats.dtype)
    return F.normalize(means, dim=-1).T.contiguous()


def zero_shot_logits(video_features: torch.Tensor, classifier: torch.Tensor,
                     logit_scale: float | torch.Tensor = 100.0) -> torch.Tensor:
    """Scaled cosine similarities between videos and classes.

    Args:
        video_features: ``(N, D)`` video embeddings (normalised here).
        classifier: ``(D, C)`` from :func:`build_zero_shot_classifier`.
        logit_scale: the multiplier, i.e. ``model.logit_scale.exp()`` (CLIP's is 100).

    Returns:
        ``(N, C)`` logits.
    """
    if video_features.ndim != 2 or classifier.ndim != 2 or video_features.shape[1] != classifier.shape[0]:
        raise ValueError(f"expected video_features (N, D) and classifier (D, C), got "
                         f"{tuple(video_features.shape)} and {tuple(classifier.shape)}")
    feats = F.normalize(video_features.to(classifier.dtype), dim=-1)
    return logit_scale * feats @ classifier
