"""TAO's 2D and 3D ResNet classifiers, one set of blocks for both, in the spirit of torchvision's resnet.py.

The module names, tensor shapes and parameter order are TAO's (``model/resnet.py`` and
``model/resnet3d.py`` of tao_pytorch_backend), so a TAO checkpoint loads with ``strict=True`` and
ours loads in TAO:

- 2D: frames stacked on the channel axis, input ``[B, C*T, H, W]`` (channel-major, see
  ``networks/__init__.py``); stem 7x7 stride 2, max pool 3/2, stages stride 1/2/2/2.
- 3D (after Hara et al.'s 3D-ResNets): clips ``[B, C, T, H, W]``; stem (5, 7, 7) stride 2 in time
  and space, max pool (1, 3, 3) stride 2, stage convolutions stride (1, s, s).

Both end in global average pooling, dropout (when the ratio is > 0), and the ``fc_cls`` classifier.
Keys: ``conv1, bn1, layer1.0.conv1, ..., layer4.1.bn2, fc_cls``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Dims:
    """What differs between TAO's 2D and 3D ResNet: layer types, stem and pool geometry, block strides."""

    conv: type[nn.Module]
    norm: type[nn.Module]
    max_pool: type[nn.Module]
    avg_pool: type[nn.Module]
    stem_kernel: int | tuple[int, ...]
    stem_padding: int | tuple[int, ...]
    pool_kernel: int | tuple[int, ...]
    pool_padding: int | tuple[int, ...]
    spatial_only_strides: bool  # 3D blocks stride (1, s, s): time is reduced by the stem and pool only

    def stride(self, s: int) -> int | tuple[int, ...]:
        return (1, s, s) if self.spatial_only_strides else s


DIMS_2D = Dims(nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d,
               stem_kernel=7, stem_padding=3, pool_kernel=3, pool_padding=1, spatial_only_strides=False)
DIMS_3D = Dims(nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d,
               stem_kernel=(5, 7, 7), stem_padding=(2, 3, 3), pool_kernel=(1, 3, 3), pool_padding=(0, 1, 1),
               spatial_only_strides=True)


def conv3x3(dims: Dims, in_planes: int, out_planes: int, stride: int = 1) -> nn.Module:
    """3x3 (or 3x3x3) convolution, size-preserving at stride 1."""
    return dims.conv(in_planes, out_planes, kernel_size=3, stride=dims.stride(stride), padding=1, bias=False)


def conv1x1(dims: Dims, in_planes: int, out_planes: int, stride: int = 1) -> nn.Module:
    """1x1 (or 1x1x1) convolution."""
    return dims.conv(in_planes, out_planes, kernel_size=1, stride=dims.stride(stride), bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, dims: Dims, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(dims, inplanes, planes, stride)
        self.bn1 = dims.norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(dims, planes, planes)
        self.bn2 = dims.norm(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand, with a residual connection (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, dims: Dims, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(dims, inplanes, planes)
        self.bn1 = dims.norm(planes)
        self.conv2 = conv3x3(dims, planes, planes, stride)
        self.bn2 = dims.norm(planes)
        self.conv3 = conv1x1(dims, planes, planes * self.expansion)
        self.bn3 = dims.norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet classifier over ``in_channels`` input channels with ``num_classes`` logits (2D or 3D)."""

    def __init__(self, dims: Dims, block: type[BasicBlock | Bottleneck], layers: Sequence[int],
                 in_channels: int, num_classes: int, dropout_ratio: float = 0.0):
        super().__init__()
        self.inplanes = 64
        self.conv1 = dims.conv(in_channels, 64, kernel_size=dims.stem_kernel, stride=2, padding=dims.stem_padding,
                               bias=False)
        self.bn1 = dims.norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = dims.max_pool(kernel_size=dims.pool_kernel, stride=2, padding=dims.pool_padding)
        self.layer1 = self._make_layer(dims, block, 64, layers[0])
        self.layer2 = self._make_layer(dims, block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(dims, block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(dims, block, 512, layers[3], stride=2)
        self.avgpool = dims.avg_pool(1)
        self.feature_dim = 512 * block.expansion
        self.fc_cls = nn.Linear(self.feature_dim, num_classes)
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        _init_like_tao(self)

    def _make_layer(self, dims: Dims, block: type[BasicBlock | Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(dims, self.inplanes, planes * block.expansion, stride), dims.norm(planes * block.expansion)
            )
        modules = [block(dims, self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        modules += [block(dims, self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.avgpool(x))
        return self.fc_cls(torch.flatten(x, 1))


def _init_like_tao(model: nn.Module) -> None:
    """He-normal (fan-out) convolutions and unit/zero BatchNorm, as TAO's ResNets; fc_cls keeps torch's default."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


DEPTHS = {
    "resnet_18": (BasicBlock, (2, 2, 2, 2)),
    "resnet_34": (BasicBlock, (3, 4, 6, 3)),
    "resnet_50": (Bottleneck, (3, 4, 6, 3)),
    "resnet_101": (Bottleneck, (3, 4, 23, 3)),
    "resnet_152": (Bottleneck, (3, 8, 36, 3)),
}


def resnet2d(name: str, in_channels: int, num_classes: int, dropout_ratio: float = 0.0) -> ResNet:
    """TAO's 2D ResNet ``name`` (resnet_18 ... resnet_152) over ``in_channels`` stacked channels (C*T)."""
    block, layers = DEPTHS[name]
    return ResNet(DIMS_2D, block, layers, in_channels, num_classes, dropout_ratio)


def resnet3d(name: str, in_channels: int, num_classes: int, dropout_ratio: float = 0.0) -> ResNet:
    """TAO's 3D ResNet ``name`` (resnet_18 ... resnet_152) over clips of ``in_channels`` channels."""
    block, layers = DEPTHS[name]
    return ResNet(DIMS_3D, block, layers, in_channels, num_classes, dropout_ratio)
