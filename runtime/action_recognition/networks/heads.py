"""Classifier heads: one stream (backbone -> dropout -> fc) and the joint two-stream fusion."""
from __future__ import annotations

import torch
from torch import nn


class SingleStreamNet(nn.Module):
    """A backbone over one stream ("rgb" or "of") and a linear classifier after dropout."""

    def __init__(self, backbone: nn.Module, num_outputs: int, dropout_ratio: float, stream: str):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout_ratio)
        self.fc = nn.Linear(backbone.feature_dim, num_outputs)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)
        self.input_names: tuple[str, ...] = (stream,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.backbone(x)))


class JointStreamNet(nn.Module):
    """Two streams (rgb, of), each projected to ``num_fc`` hidden units, concatenated, then classified.

    Each stream is a :class:`SingleStreamNet` whose classifier outputs ``num_fc`` units, so weights of a
    single-stream checkpoint load into ``rgb``/``of`` (TAO's joint model is built the same way).
    """

    def __init__(self, rgb: SingleStreamNet, of: SingleStreamNet, num_fc: int, num_classes: int,
                 dropout_ratio: float):
        super().__init__()
        self.rgb = rgb
        self.of = of
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout_ratio)
        self.fc = nn.Linear(2 * num_fc, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)
        self.input_names: tuple[str, ...] = ("rgb", "of")

    def forward(self, rgb: torch.Tensor, of: torch.Tensor) -> torch.Tensor:
        fused = torch.cat([self.rgb(rgb), self.of(of)], dim=1)
        return self.fc(self.dropout(self.relu(fused)))
