"""FrameEncoder spatial tokens for the ModifiedResNet tower (zsar-RN-T-64); the ViT path is in test_models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zsar.models as zm

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return zm.create_model("zsar-RN-T-64", None).eval()


def test_resnet_tokens_are_the_last_feature_map_before_attention_pooling(resnet):
    torch.manual_seed(1)
    video = torch.randn(2, 3, 3, 64, 64)
    encoder = zm.FrameEncoder(resnet)
    assert encoder.grid_size == (2, 2) and encoder.token_dim == 16 * 32 and encoder.output_dim == 192
    feats, tokens = encoder(video, return_tokens=True)
    assert feats.shape == (2, 3, 192) and tokens.shape == (2, 3, 4, 512)
    visual = resnet.visual  # reference: run the stages by hand
    with torch.no_grad():
        x = video.flatten(0, 1)
        fmap = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(x)))))
        pooled = visual.attnpool(fmap)
    ref_tokens = fmap.permute(0, 2, 3, 1).reshape(2, 3, 4, 512)  # row-major cells, channels last
    torch.testing.assert_close(tokens.detach(), ref_tokens)
    torch.testing.assert_close(feats.detach(), pooled.reshape(2, 3, 192))
    torch.testing.assert_close(feats.detach(), zm.encode_video(resnet, video, normalize=False))
    chunked = zm.FrameEncoder(resnet, frames_per_batch=4)(video, return_tokens=True, normalize=True)
    torch.testing.assert_close(chunked[1], tokens)
    torch.testing.assert_close(chunked[0].norm(dim=-1), torch.ones(2, 3))
    (feats.sum() + tokens.sum()).backward()  # trainable: gradients reach the stem
    assert visual.conv1.weight.grad is not None and visual.conv1.weight.grad.abs().sum() > 0
    resnet.zero_grad(set_to_none=True)


def test_resnet_frames_go_in_channels_last_with_the_same_values_and_gradients(resnet):
    """encode_video lays frames out channels-last for a ModifiedResNet (faster convolutions)."""
    torch.manual_seed(2)
    video = torch.randn(2, 4, 3, 64, 64)
    seen = []
    hook = resnet.visual.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        feats = zm.encode_video(resnet, video, normalize=False)
    finally:
        hook.remove()
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    reference = resnet.visual(video.flatten(0, 1)).reshape(2, 4, -1)  # plain contiguous frames
    torch.testing.assert_close(feats, reference)
    feats.sum().backward()
    grad = resnet.visual.conv1.weight.grad.clone()
    resnet.zero_grad(set_to_none=True)
    reference.sum().backward()
    torch.testing.assert_close(grad, resnet.visual.conv1.weight.grad)
    resnet.zero_grad(set_to_none=True)


def test_tokens_of_an_unsupported_tower_raise():
    class Tower(nn.Module):
        output_dim = 8

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 4, 4)

        def forward(self, x):
            return self.conv1(x).mean((2, 3))

    encoder = zm.FrameEncoder(Tower())
    assert encoder.token_dim is None and encoder.grid_size is None
    assert encoder(torch.randn(1, 2, 3, 8, 8)).shape == (1, 2, 8)
    with pytest.raises(NotImplementedError, match="ModifiedResNet"):
        encoder(torch.randn(1, 2, 3, 8, 8), return_tokens=True)
