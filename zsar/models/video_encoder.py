"""Frame-level video features from a CLIP image tower.

A clip ``(B, T, 3, H, W)`` is encoded as ``B * T`` independent images (the frozen-CLIP
baseline); temporal heads then work on the ``(B, T, D)`` features. :class:`FrameEncoder` also
returns spatial tokens ``(B, T, N, W)`` for methods that need region features (ASU's multi-region
attention, motion prompts): the last block's patch tokens of a ViT tower, or the final feature
map (before attention pooling) of a ModifiedResNet tower, one token per cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def image_tower(model: nn.Module) -> nn.Module:
    """The image tower of an open_clip model (``model.visual``), or ``model`` if it is one."""
    return getattr(model, "visual", model)


def _input_dtype(tower: nn.Module) -> torch.dtype:
    # fp16/bf16 open_clip models keep LayerNorms in fp32; the patch conv shows the compute dtype
    conv = getattr(tower, "conv1", None)
    if conv is not None:
        return conv.weight.dtype
    return next(tower.parameters()).dtype


def _is_modified_resnet(tower: nn.Module) -> bool:
    from open_clip.modified_resnet import ModifiedResNet

    return isinstance(tower, ModifiedResNet)


def _check_video(video: torch.Tensor) -> None:
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected video of shape (B, T, 3, H, W), got {tuple(video.shape)}")


def _frames(video: torch.Tensor, tower: nn.Module) -> torch.Tensor:
    """``(B, T, 3, H, W)`` -> ``(B * T, 3, H, W)`` in the tower's dtype.

    For a ModifiedResNet tower the frames are laid out channels-last: its convolutions then run
    in oneDNN's/cuDNN's channels-last kernels: the same values up to rounding
    (``tests/test_video_encoder_tokens.py``; identical on the 2-core CPU) and ~1.4x faster forward
    + backward there (``benchmarks/bench_channels_last.py``).
    """
    _check_video(video)
    b, t = video.shape[:2]
    frames = video.reshape(b * t, *video.shape[2:]).to(_input_dtype(tower))
    if _is_modified_resnet(tower):
        frames = frames.contiguous(memory_format=torch.channels_last)
    return frames


def encode_video(model: nn.Module, video: torch.Tensor, normalize: bool = True,
                 frames_per_batch: int | None = None) -> torch.Tensor:
    """Per-frame embeddings of a batch of clips through the image tower.

    Gradients flow if enabled; wrap in ``torch.no_grad()`` for frozen inference.

    Args:
        model: an open_clip model (its ``visual`` tower is used) or an image tower.
        video: ``(B, T, 3, H, W)`` float, preprocessed as the model expects.
        normalize: L2-normalise each frame embedding (CLIP's zero-shot convention).
        frames_per_batch: run the tower on at most this many frames at once (memory cap).

    Returns:
        ``(B, T, D)`` frame embeddings, ``D`` the joint embedding size.
    """
    tower = image_tower(model)
    b, t = video.shape[:2]
    frames = _frames(video, tower)
    step = frames_per_batch or b * t
    feats = torch.cat([tower(frames[i:i + step]) for i in range(0, b * t, step)])
    if normalize:
        feats = F.normalize(feats, dim=-1)
    return feats.reshape(b, t, -1)


def frame_average(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over time of frame features, L2-normalised.

    Args:
        features: ``(B, T, D)`` frame features.
        mask: optional ``(B, T)`` bool, ``True`` for real frames (padding excluded).

    Returns:
        ``(B, D)`` unit vectors.
    """
    if features.ndim != 3:
        raise ValueError(f"expected features of shape (B, T, D), got {tuple(features.shape)}")
    if mask is None:
        pooled = features.mean(dim=1)
    else:
        weights = mask.to(features.dtype).unsqueeze(-1)
        pooled = (features * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
    return F.normalize(pooled, dim=-1)


class FrameEncoder(nn.Module):
    """Trainable wrapper of a CLIP image tower applied frame by frame.

    Args:
        model: open_clip model (its ``visual`` is wrapped, and shared, not copied) or an image tower.
        frames_per_batch: cap on frames per tower call (memory).

    Attributes:
        visual: the wrapped image tower.
        output_dim: ``D``, the joint embedding size.
        token_dim: ``W``, the width of the tokens: the transformer width of a ViT tower, the
            channels of the last stage (``32 * width``) of a ModifiedResNet; else ``None``.
        grid_size: token grid: ``(H/p, W/p)`` patches of a ViT, ``(H/32, W/32)`` cells of a
            ModifiedResNet; else ``None``.
    """

    def __init__(self, model: nn.Module, frames_per_batch: int | None = None):
        super().__init__()
        self.visual = image_tower(model)
        self.frames_per_batch = frames_per_batch
        self.output_dim = getattr(self.visual, "output_dim", None)
        self.token_dim = getattr(getattr(self.visual, "transformer", None), "width", None)
        self.grid_size = getattr(self.visual, "grid_size", None)
        if _is_modified_resnet(self.visual):
            self.token_dim = self.visual.attnpool.k_proj.in_features
            side = self.visual.image_size // 32
            self.grid_size = (side, side)

    def forward(self, video: torch.Tensor, return_tokens: bool = False, normalize: bool = False):
        """Encode ``video`` ``(B, T, 3, H, W)``.

        Args:
            return_tokens: also return spatial tokens. ViT: the patch tokens of the last block
                after the final LayerNorm, unprojected (apply ``self.visual.proj`` to map them
                into ``D``). ModifiedResNet: the last stage's feature map, the input of the
                attention pool, flattened row by row (not in ``D``: the pool's value and output
                projections would map them there).
            normalize: L2-normalise the frame embeddings (not the tokens).

        Returns:
            ``(B, T, D)`` frame embeddings, or ``((B, T, D), (B, T, N, W))`` with tokens, where
            ``N`` is the number of patches (fewer under patch dropout in training) or
            ``(H/32) * (W/32)`` feature-map cells.

        Raises:
            NotImplementedError: ``return_tokens`` with a tower that is neither open_clip's
                plain ViT nor its ModifiedResNet.
        """
        if not return_tokens:
            return encode_video(self.visual, video, normalize, self.frames_per_batch)
        b, t = video.shape[:2]
        frames = _frames(video, self.visual)
        step = self.frames_per_batch or b * t
        pieces = [self._features_and_tokens(frames[i:i + step]) for i in range(0, b * t, step)]
        feats = torch.cat([p[0] for p in pieces])
        tokens = torch.cat([p[1] for p in pieces])
        if normalize:
            feats = F.normalize(feats, dim=-1)
        return feats.reshape(b, t, -1), tokens.reshape(b, t, *tokens.shape[1:])

    def _features_and_tokens(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from open_clip.transformer import VisionTransformer

        if _is_modified_resnet(self.visual):
            # indices=1: the output of the last stage (layer4), which the attention pool reads
            out = self.visual.forward_intermediates(frames, indices=1)
            fmap = out["image_intermediates"][-1]
            return out["image_features"], fmap.flatten(2).transpose(1, 2)
        if not isinstance(self.visual, VisionTransformer) or self.visual.attn_pool is not None:
            raise NotImplementedError("return_tokens needs open_clip's plain VisionTransformer or its "
                                      f"ModifiedResNet tower, got {type(self.visual).__name__}")
        # forward_intermediates is open_clip's public way to get tokens without rebuilding the
        # tower with output_tokens=True; normalize_intermediates applies ln_post like forward()
        out = self.visual.forward_intermediates(frames, indices=1, normalize_intermediates=True, output_fmt="NLC")
        return out["image_features"], out["image_intermediates"][-1]
