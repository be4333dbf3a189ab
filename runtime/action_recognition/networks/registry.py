"""The named classifiers, per input type. A read-only table: nothing registers itself at import time."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from torch import nn

from skillbank.runtime.errors import SkillbankError

from .i3d import i3d
from .resnet import resnet2d, resnet3d

ClassifierBuilder = Callable[[str, int, int, float], nn.Module]
"""``builder(name, in_channels, num_classes, dropout_ratio) -> module`` returning logits ``[B, num_classes]``."""

RESNETS = ("resnet_18", "resnet_34", "resnet_50", "resnet_101", "resnet_152")

BACKBONES: Mapping[str, Mapping[str, ClassifierBuilder]] = MappingProxyType({
    "2d": MappingProxyType(dict.fromkeys(RESNETS, resnet2d)),
    "3d": MappingProxyType({**dict.fromkeys(RESNETS, resnet3d), "i3d": i3d}),
})


class ModelConfigError(SkillbankError, ValueError):
    """A model setting that cannot be built; the message names the key, the value and what is allowed."""

    exit_code = 2  # the spec cannot run as written


def build_classifier(name: str, input_type: str, in_channels: int, num_classes: int,
                     dropout_ratio: float) -> nn.Module:
    """The single-stream classifier ``name`` for ``input_type`` ("2d": C*T stacked channels, "3d": C x T x H x W)."""
    if input_type not in BACKBONES:
        raise ModelConfigError(f"model.input_type={input_type!r} is not supported; allowed: {sorted(BACKBONES)}")
    table = BACKBONES[input_type]
    if name not in table:
        hint = " (I3D is a 3D network: set model.input_type=3d)" if name == "i3d" else ""
        raise ModelConfigError(
            f"model.backbone={name!r} is not available with model.input_type={input_type!r}{hint}; "
            f"allowed: {', '.join(table)}"
        )
    return table[name](name, in_channels, num_classes, dropout_ratio)
