"""ResNet backbones, one set of blocks for 2D and 3D, in the spirit of torchvision's resnet.py.

- 2D (``resnet2d``): frames stacked on the channel axis, input ``[B, C_in, H, W]`` with
  ``C_in = channels_per_frame * seq_length``.
- 3D (``resnet3d``, after Hara et al.'s 3D-ResNets, as TAO uses): clips ``[B, C, T, H, W]``; every
  convolution is 3D and stages 2-4 stride by 2 in time and space. Padding keeps every size >= 1, so
  short clips (T=3) and tiny frames work.

Both return ``[B, feature_dim]`` after global average pooling; no classifier (heads live in heads.py).
The blocks take their layer types from a :class:`Layers` table, so 2D and 3D nets share code and have
the same state_dict keys (conv1, bn1, layer1.0.conv1, ...).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .weight_init import init_weights


@dataclass(frozen=True)
class Layers:
    """The layer types of one dimensionality, and the stem's stride."""

    conv: type[nn.Module]
    norm: type[nn.Module]
    max_pool: type[nn.Module]
    avg_pool: type[nn.Module]
    stem_stride: int | tuple[int, ...]


LAYERS_2D = Layers(nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, stem_stride=2)
# Stride 1 in time for the 3D stem: action clips are short (TAO's default is 3 frames).
LAYERS_3D = Layers(nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d, stem_stride=(1, 2, 2))


def conv3(ops: Layers, in_planes: int, out_planes: int, stride: int = 1) -> nn.Module:
    """3x3 (or 3x3x3) convolution, size-preserving at stride 1."""
    return ops.conv(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1(ops: Layers, in_planes: int, out_planes: int, stride: int = 1) -> nn.Module:
    """1x1 (or 1x1x1) convolution."""
    return ops.conv(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, ops: Layers, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3(ops, inplanes, planes, stride)
        self.bn1 = ops.norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3(ops, planes, planes)
        self.bn2 = ops.norm(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand, with a residual connection (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, ops: Layers, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1(ops, inplanes, planes)
        self.bn1 = ops.norm(planes)
        self.conv2 = conv3(ops, planes, planes, stride)
        self.bn2 = ops.norm(planes)
        self.conv3 = conv1(ops, planes, planes * self.expansion)
        self.bn3 = ops.norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet feature extractor built from the layer types ``ops`` (2D or 3D)."""

    def __init__(self, ops: Layers, block: type[BasicBlock | Bottleneck], layers: Sequence[int],
                 in_channels: int):
        super().__init__()
        self.inplanes = 64
        self.conv1 = ops.conv(in_channels, 64, kernel_size=7, stride=ops.stem_stride, padding=3, bias=False)
        self.bn1 = ops.norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = ops.max_pool(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(ops, block, 64, layers[0])
        self.layer2 = self._make_layer(ops, block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(ops, block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(ops, block, 512, layers[3], stride=2)
        self.avgpool = ops.avg_pool(1)
        self.feature_dim = 512 * block.expansion
        init_weights(self)

    def _make_layer(self, ops: Layers, block: type[BasicBlock | Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1(ops, self.inplanes, planes * block.expansion, stride), ops.norm(planes * block.expansion)
            )
        modules = [block(ops, self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        modules += [block(ops, self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


DEPTHS = {
    "resnet_18": (BasicBlock, (2, 2, 2, 2)),
    "resnet_34": (BasicBlock, (3, 4, 6, 3)),
    "resnet_50": (Bottleneck, (3, 4, 6, 3)),
    "resnet_101": (Bottleneck, (3, 4, 23, 3)),
    "resnet_152": (Bottleneck, (3, 8, 36, 3)),
}


def resnet2d(name: str, in_channels: int) -> ResNet:
    """The 2D ResNet called ``name`` (resnet_18 ... resnet_152) over ``in_channels`` stacked channels."""
    block, layers = DEPTHS[name]
    return ResNet(LAYERS_2D, block, layers, in_channels)


def resnet3d(name: str, in_channels: int) -> ResNet:
    """The 3D ResNet called ``name`` (resnet_18 ... resnet_152) over ``in_channels`` channels per frame."""
    block, layers = DEPTHS[name]
    return ResNet(LAYERS_3D, block, layers, in_channels)
