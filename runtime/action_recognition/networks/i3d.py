"""I3D (Inflated Inception-V1, Carreira & Zisserman 2017) backbone over clips ``[B, C, T, H, W]``.

Layer names and widths follow the paper (Conv3d_1a_7x7 ... Mixed_5c). Pools use "same"-like static
padding instead of TensorFlow's dynamic padding, so the graph exports to ONNX and every size stays
>= 1 on short clips and tiny frames. Output: ``[B, 1024]`` after global average pooling.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .weight_init import init_weights


def _same(kernel: Sequence[int]) -> tuple[int, ...]:
    return tuple(k // 2 for k in kernel)


class Unit3d(nn.Module):
    """Conv3d + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=_same(kernel), bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv3d(x)))


class InceptionBlock3d(nn.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->3x3; pool->1x1) concatenated on channels."""

    def __init__(self, in_channels: int, widths: Sequence[int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.b0 = Unit3d(in_channels, b0)
        self.b1 = nn.Sequential(Unit3d(in_channels, b1a), Unit3d(b1a, b1b, (3, 3, 3)))
        self.b2 = nn.Sequential(Unit3d(in_channels, b2a), Unit3d(b2a, b2b, (3, 3, 3)))
        self.b3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), Unit3d(in_channels, b3))
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x)], dim=1)


# (name, in_channels, widths b0, b1a, b1b, b2a, b2b, b3) of each Inception block, as in the paper.
MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", None, ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", None, ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class I3d(nn.Module):
    """Inception-3D feature extractor."""

    def __init__(self, in_channels: int):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = [
            ("Conv3d_1a_7x7", Unit3d(in_channels, 64, (7, 7, 7), (2, 2, 2))),
            ("MaxPool3d_2a_3x3", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))),
            ("Conv3d_2b_1x1", Unit3d(64, 64)),
            ("Conv3d_2c_3x3", Unit3d(64, 192, (3, 3, 3))),
            ("MaxPool3d_3a_3x3", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))),
        ]
        for name, block_in, spec in MIXED:
            if block_in is None:
                kernel, stride = spec
                layers.append((name, nn.MaxPool3d(kernel, stride=stride, padding=_same(kernel))))
            else:
                layers.append((name, InceptionBlock3d(block_in, spec)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.feature_dim = 1024
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)


def i3d(name: str, in_channels: int) -> I3d:
    """The I3D backbone (``name`` is always "i3d"; kept for the registry's uniform signature)."""
    return I3d(in_channels)
