"""TAO's joint (two-stream) model: an rgb and an optical-flow classifier fused by two linear layers.

Each stream is a full single-stream classifier ending in its own ``num_classes`` logits
(``model_rgb.*``, ``model_of.*``); the two logit vectors are concatenated (rgb first), then
``fc1`` (2 * num_classes -> num_fc), ReLU, ``fc2`` (num_fc -> num_classes). The forward takes the
two tensors as positional arguments, as TAO's export variant (JointModel_ONNX) does; the weights
and keys are those of TAO's JointModel, so one checkpoint serves both.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class JointModel(nn.Module):
    """Late fusion of two single-stream classifiers."""

    def __init__(self, model_rgb: nn.Module, model_of: nn.Module, num_classes: int, num_fc: int):
        super().__init__()
        self.model_rgb = model_rgb
        self.model_of = model_of
        self.fc1 = nn.Linear(2 * num_classes, num_fc)
        self.fc2 = nn.Linear(num_fc, num_classes)

    def forward(self, x_rgb: torch.Tensor, x_of: torch.Tensor) -> torch.Tensor:
        fused = torch.cat((self.model_rgb(x_rgb), self.model_of(x_of)), dim=1)
        return self.fc2(F.relu(self.fc1(fused)))
