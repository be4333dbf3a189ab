"""TAO's I3D classifier (Inflated Inception-V1, Carreira & Zisserman 2017) over clips ``[B, C, T, H, W]``.

Module names, shapes and order are TAO's (``model/i3d.py``, after piergiaj/pytorch-i3d): every
convolution is a :class:`Unit3d` with TensorFlow-style dynamic "same" padding (the extra pixel goes
after), keys ``<Endpoint>.conv3d.weight`` / ``<Endpoint>.bn.*``, inception branches ``b0, b1a, b1b,
b2a, b2b, b3b`` (``b3a`` is a max pool), and the classifier ``logits`` (a 1x1x1 convolution with
bias) registered first, so it comes first in the state_dict as in a TAO checkpoint.

Head: average pool (2, 7, 7) stride 1, dropout, ``logits``, mean over the remaining positions.
TAO's fixed pool accepts only T >= 9 and 193 <= H, W <= 224; inside that range this network computes
exactly TAO's function. Outside it (short clips, small or large frames) the pool kernel shrinks to
the feature map and the logits are averaged over every remaining position, so it keeps working.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

HEAD_POOL = (2, 7, 7)


def same_padding(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    """``F.pad`` amounts (last axis first) for TF "same" padding of a [.., T, H, W] input.

    Sizes are read as plain ints: traced for ONNX, the padding is a constant of the exported graph
    (only the batch axis is dynamic).
    """
    pads: list[int] = []
    for s, k, st in zip(reversed([int(d) for d in size]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - (st if s % st == 0 else s % st), 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class MaxPool3dSame(nn.MaxPool3d):
    """Max pool after zero "same" padding (zeros, as TAO pads before pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, same_padding(x.shape[2:], self.kernel_size, self.stride)))


class Unit3d(nn.Module):
    """"Same"-padded Conv3d, optional BatchNorm (eps 0.001, momentum 0.01) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Sequence[int] = (1, 1, 1),
                 stride: Sequence[int] = (1, 1, 1), batch_norm: bool = True, relu: bool = True, bias: bool = False):
        super().__init__()
        self.conv3d = nn.Conv3d(in_channels, out_channels, tuple(kernel), stride=tuple(stride), padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None
        self.activation = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.conv3d.kernel_size, self.conv3d.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->3x3; pool->1x1) concatenated on channels."""

    def __init__(self, in_channels: int, widths: Sequence[int]):
        super().__init__()
        self.b0 = Unit3d(in_channels, widths[0])
        self.b1a = Unit3d(in_channels, widths[1])
        self.b1b = Unit3d(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3d(in_channels, widths[3])
        self.b2b = Unit3d(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3d(in_channels, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# The trunk in TAO's order: (endpoint, (in_channels, widths)) for an inception module,
# or (endpoint, (kernel, stride)) for a max pool.
ENDPOINTS: tuple[tuple[str, str, tuple], ...] = (
    ("Conv3d_1a_7x7", "unit", (None, 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, 64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "unit", (64, 192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", "mixed", (256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", "mixed", (512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", "mixed", (512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", "mixed", (512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", "mixed", (528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", "mixed", (832, (384, 192, 384, 48, 128, 128))),
)
FEATURES = 1024


class I3d(nn.Module):
    """TAO's InceptionI3d with ``num_classes`` logits."""

    def __init__(self, in_channels: int, num_classes: int, dropout_ratio: float = 0.0):
        super().__init__()
        self.feature_dim = FEATURES
        self.dropout = nn.Dropout(dropout_ratio)  # TAO passes dropout_ratio as "keep prob" but uses it as p
        self.logits = Unit3d(FEATURES, num_classes, batch_norm=False, relu=False, bias=True)
        self.endpoints: list[str] = []
        for name, kind, spec in ENDPOINTS:
            if kind == "unit":
                cin, cout, kernel, stride = spec
                module: nn.Module = Unit3d(in_channels if cin is None else cin, cout, kernel, stride)
            elif kind == "pool":
                module = MaxPool3dSame(kernel_size=spec[0], stride=spec[1])
            else:
                module = InceptionModule(*spec)
            self.add_module(name, module)
            self.endpoints.append(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.endpoints:
            x = getattr(self, name)(x)
        kernel = tuple(min(k, int(s)) for k, s in zip(HEAD_POOL, x.shape[2:], strict=True))
        x = self.logits(self.dropout(F.avg_pool3d(x, kernel, stride=1)))
        return x.mean(dim=(2, 3, 4))


def i3d(name: str, in_channels: int, num_classes: int, dropout_ratio: float = 0.0) -> I3d:
    """The I3D classifier (``name`` is always "i3d"; kept for the registry's uniform signature)."""
    return I3d(in_channels, num_classes, dropout_ratio)
