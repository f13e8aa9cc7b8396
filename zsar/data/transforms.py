"""CLIP image preprocessing for whole clips.

open_clip preprocesses one PIL image at a time; a video clip is ``T`` frames, so this module
applies the same steps to a ``(T, H, W, 3)`` uint8 batch in one tensor call: resize the shorter
side (bicubic, antialiased, on uint8 like PIL) + centre crop, or in training a random resized
crop (one crop for the whole clip, so motion is not distorted) and an optional flip; then
scale to [0, 1] and normalise with the model's mean/std. ``tests/test_dataset.py`` checks the
result against ``open_clip.image_transform`` on real frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torchvision.transforms import InterpolationMode

INTERPOLATIONS = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}
RESIZE_MODES = ("shortest", "squash")


@dataclass(frozen=True)
class ClipPreprocessConfig:
    """Image preprocessing of one open_clip model.

    Attributes:
        size: square input side ``S`` in pixels (``vision_cfg.image_size``).
        mean, std: per-channel RGB normalisation.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        resize_mode: ``"shortest"`` (resize shorter side, centre crop) or ``"squash"``.
    """

    size: int
    mean: tuple[float, float, float] = tuple(OPENAI_DATASET_MEAN)
    std: tuple[float, float, float] = tuple(OPENAI_DATASET_STD)
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"


class ClipVideoTransform:
    """``(T, H, W, 3)`` uint8 frames -> ``(T, 3, S, S)`` float32 CLIP input.

    Args:
        cfg: a :class:`ClipPreprocessConfig` (a model's: :func:`zsar.models.preprocess.clip_preprocess_config`).
        train: random resized crop (+ optional flip) instead of resize + centre crop.
        scale: area range of the random crop (open_clip's training default ``(0.9, 1.0)``).
        ratio: aspect-ratio range of the random crop.
        hflip: probability of a horizontal flip in training (open_clip uses none).
        crops: evaluation crops: 1 (centre) or 3 (mmaction's ``ThreeCrop``: after the resize,
            squares at offsets ``0, step, 2 * step`` along the longer side, ``step = (L - S) // 2``);
            with 3 the output is ``(3 * T, 3, S, S)``, crop-major.
        short_side: evaluation with one crop: resize the shorter side to this (default ``S``),
            then take the centre ``S x S`` (e.g. 256 then 224, mmaction's test pipeline).

    Call as ``transform(frames, rng=None)``; ``rng`` (``numpy.random.Generator``) drives the
    training randomness, so a dataset can make each sample reproducible.
    """

    def __init__(self, cfg: ClipPreprocessConfig, train: bool = False,
                 scale: tuple[float, float] = (0.9, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 hflip: float = 0.0, crops: int = 1, short_side: int | None = None):
        if crops not in (1, 3) or (crops == 3 and (train or cfg.resize_mode != "shortest")):
            raise ValueError(f"crops={crops}: 1, or 3 in evaluation with resize_mode 'shortest'")
        self.cfg, self.train, self.scale, self.ratio, self.hflip = cfg, train, scale, ratio, hflip
        self.crops = crops
        self.short_side = short_side
        self._mean = torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(cfg.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._interp = INTERPOLATIONS[cfg.interpolation]

    def __call__(self, frames, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Transform one clip.

        Args:
            frames: ``(T, H, W, 3)`` uint8, numpy array or tensor.
            rng: randomness for training; a fresh unseeded Generator if omitted.

        Returns:
            ``(T, 3, S, S)`` float32, normalised (``(3 * T, 3, S, S)`` with three crops).
        """
        x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {tuple(x.shape)} {x.dtype}")
        x = x.permute(0, 3, 1, 2)  # (T, 3, H, W); resize kernels want channels first
        s = self.cfg.size
        if self.train:
            rng = rng if rng is not None else np.random.default_rng()
            top, left, h, w = random_resized_crop_params(x.shape[-2], x.shape[-1], self.scale, self.ratio, rng)
            x = TF.resized_crop(x, top, left, h, w, [s, s], self._interp, antialias=True)
            if self.hflip and rng.random() < self.hflip:
                x = x.flip(-1)
        elif self.cfg.resize_mode == "squash":
            x = TF.resize(x, [s, s], self._interp, antialias=True)
        elif self.crops == 3:
            x = three_crop(TF.resize(x, s, self._interp, antialias=True), s)
        else:
            # uint8 in, uint8 out: rounds and clamps like PIL, and is ~10x faster than float
            x = TF.center_crop(TF.resize(x, self.short_side or s, self._interp, antialias=True), [s, s])
        return (x.float() - self._mean) / self._std

    def __repr__(self) -> str:
        crops = f", crops={self.crops}" if self.crops != 1 else ""
        short = f", short_side={self.short_side}" if self.short_side else ""
        return f"ClipVideoTransform({self.cfg}, train={self.train}{crops}{short})"


def three_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(T, C, H, W)`` -> ``(3 * T, C, size, size)``: mmaction's ``ThreeCrop`` positions, crop-major.

    Along the longer side the crops start at ``0, step, 2 * step`` with ``step = (L - size) // 2``
    (the shorter side must equal ``size``, centred otherwise).
    """
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    if w >= h:
        boxes = [(top, i * left) for i in range(3)]
    else:
        boxes = [(i * top, left) for i in range(3)]
    return torch.cat([x[..., t:t + size, l_:l_ + size] for t, l_ in boxes])


def random_resized_crop_params(height: int, width: int, scale: tuple[float, float],
                               ratio: tuple[float, float], rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop, torchvision's algorithm with a numpy Generator.

    Ten tries at a random area fraction in ``scale`` and log-uniform aspect ratio in ``ratio``;
    if none fits, the largest centred crop within ``ratio``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
