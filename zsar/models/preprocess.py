"""The preprocessing a model needs, read from the model: transforms, sampler, frame cache.

open_clip keeps an image model's preprocessing beside it (the config's ``preprocess_cfg``, a
pretrained tag's mean/std/interpolation, and on a built model ``model.visual.preprocess_cfg``).
This module turns that into the data layer's :class:`~zsar.data.transforms.ClipPreprocessConfig`
and, through :func:`video_pipeline`, into everything a method needs to read clips: its frame
sampler, its training and evaluation transforms and the frame cache that fits them.

Example::

    pipeline = video_pipeline("zsar-RN-T-64", pretrained=None, frames=8)
    dataset = VideoDataset(videos, pipeline.sampler, pipeline.eval_transform)
    cache = pipeline.frame_cache()          # decoded frames at the model's input size
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import open_clip
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from zsar.data.frame_cache import FrameCache
from zsar.data.sampling import FrameSampler, make_sampler
from zsar.data.transforms import INTERPOLATIONS, RESIZE_MODES, ClipPreprocessConfig, ClipVideoTransform
from zsar.models.pretrained import pretrained_tag
from zsar.models.registry import UnknownModelError, create_model, get_model_config

EVAL_SAMPLER = "tsn"
"""Frame sampling of every method: ``frames`` TSN segments (random in training, centred in evaluation)."""


def _preprocess_from(model_name: str, size, merged: dict) -> ClipPreprocessConfig:
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise ValueError(f"{model_name}: non-square image_size {size} is not supported")
        size = size[0]
    cfg = ClipPreprocessConfig(
        size=int(size),
        mean=tuple(merged.get("mean") or OPENAI_DATASET_MEAN),
        std=tuple(merged.get("std") or OPENAI_DATASET_STD),
        interpolation=merged.get("interpolation") or "bicubic",
        resize_mode=merged.get("resize_mode") or "shortest",
    )
    if cfg.interpolation not in INTERPOLATIONS or cfg.resize_mode not in RESIZE_MODES:
        raise ValueError(f"{model_name}: interpolation {cfg.interpolation!r} / resize_mode "
                         f"{cfg.resize_mode!r} not supported ({'|'.join(INTERPOLATIONS)}, {'|'.join(RESIZE_MODES)})")
    return cfg


def clip_preprocess_config(model_name: str, pretrained: str | os.PathLike | None = None) -> ClipPreprocessConfig:
    """Preprocessing of an open_clip architecture (and, if given, its pretrained tag), without building it.

    Order of precedence, as in open_clip: OpenAI defaults < the model JSON's ``preprocess_cfg``
    < the pretrained tag's mean/std/interpolation/resize_mode. A checkpoint path carries no
    preprocessing of its own: the architecture's is used.

    Raises:
        ValueError: ``model_name`` is not registered, a non-square input size or an unsupported interpolation / resize mode.
    """
    try:
        model_cfg = get_model_config(model_name)
    except UnknownModelError:
        raise ValueError(f"unknown open_clip model {model_name!r}; see zsar.models.list_models()") from None
    merged = dict(model_cfg.get("preprocess_cfg", {}))
    tag = pretrained_tag(pretrained)
    if tag:
        merged.update(open_clip.get_pretrained_cfg(model_name, tag) or {})
    return _preprocess_from(model_name, model_cfg["vision_cfg"]["image_size"], merged)


def preprocess_config_of(model) -> ClipPreprocessConfig:
    """The preprocessing of a built open_clip model, read from ``model.visual.preprocess_cfg``.

    :func:`zsar.models.create_model` merges a pretrained tag's settings into it, so this equals
    :func:`clip_preprocess_config` of the name and tag the model was built from.
    """
    cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    if "size" not in cfg:
        raise ValueError(f"{type(model).__name__}.visual has no preprocess_cfg with a size")
    return _preprocess_from(type(model).__name__, cfg["size"], cfg)


def clip_transform(model_name: str, pretrained: str | os.PathLike | None = None, train: bool = False,
                   **kwargs) -> ClipVideoTransform:
    """``ClipVideoTransform(clip_preprocess_config(model_name, pretrained), train, **kwargs)``."""
    return ClipVideoTransform(clip_preprocess_config(model_name, pretrained), train=train, **kwargs)


def create_model_and_transforms(model_name: str, pretrained: str | os.PathLike | None = None,
                                device: str | torch.device = "cpu", precision: str = "fp32",
                                image_size: int | None = None, cache_dir: str | os.PathLike | None = None,
                                train_scale: tuple[float, float] = (0.9, 1.0), hflip: float = 0.0,
                                **model_kwargs):
    """:func:`~zsar.models.create_model` plus the video transforms its preprocessing asks for.

    Args:
        model_name, pretrained, device, precision, image_size, cache_dir, model_kwargs:
            as in :func:`~zsar.models.create_model` (``image_size`` must be square here).
        train_scale: area range of the training transform's random resized crop.
        hflip: horizontal-flip probability of the training transform.

    Returns:
        ``(model, train_transform, eval_transform)``; the transforms map ``(T, H, W, 3)`` uint8
        frames to ``(T, 3, S, S)`` float32 normalised as :func:`preprocess_config_of` the model says.
    """
    if image_size is not None and not isinstance(image_size, int):
        raise ValueError(f"image_size must be one int for video transforms, got {image_size!r}")
    model = create_model(model_name, pretrained, device=device, precision=precision,
                         image_size=image_size, cache_dir=cache_dir, **model_kwargs)
    cfg = preprocess_config_of(model)
    train = ClipVideoTransform(cfg, train=True, scale=train_scale, hflip=hflip)
    return model, train, ClipVideoTransform(cfg, train=False)


@dataclass(frozen=True)
class VideoPipeline:
    """How a method reads clips: sampler, transforms and the frame cache that fits them.

    Attributes:
        preprocess: the model's image preprocessing.
        sampler: ``frames`` TSN segments (random offsets in training, centred in evaluation).
        train_transform: random resized crop, then normalisation: ``(T, H, W, 3)`` uint8 ->
            ``(T, 3, S, S)`` float32.
        eval_transform: resize + centre crop, then normalisation (same shapes).
    """

    preprocess: ClipPreprocessConfig
    sampler: FrameSampler
    train_transform: ClipVideoTransform
    eval_transform: ClipVideoTransform

    def transform(self, train: bool) -> ClipVideoTransform:
        """The training or the evaluation transform."""
        return self.train_transform if train else self.eval_transform

    def frame_cache(self, root: str | os.PathLike | None = None, **kwargs) -> FrameCache:
        """The frame cache whose stored frames these transforms read (the model's size and resize mode)."""
        return FrameCache.for_transform(self.preprocess, root, **kwargs)


def video_pipeline(backbone: str, pretrained: str | os.PathLike | None = None, frames: int = 8) -> VideoPipeline:
    """The :class:`VideoPipeline` of a method on ``backbone`` (with ``pretrained`` weights) at ``frames`` frames."""
    cfg = clip_preprocess_config(backbone, pretrained)
    return VideoPipeline(cfg, make_sampler(EVAL_SAMPLER, num_segments=frames),
                         ClipVideoTransform(cfg, train=True), ClipVideoTransform(cfg, train=False))
