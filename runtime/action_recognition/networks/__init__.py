"""Action-recognition networks: backbones (2D/3D ResNet, I3D), heads, and ``build_model(model_cfg, n)``.

Input layout per sample (the data pipeline produces exactly these):

- input_type 2d: rgb ``[3*rgb_seq_length, H, W]`` (frame-major), of ``[2*of_seq_length, H, W]``
- input_type 3d: rgb ``[3, rgb_seq_length, H, W]``, of ``[2, of_seq_length, H, W]``

A built model has ``input_names`` ("rgb",), ("of",) or ("rgb", "of") and is called as
``model(*[inputs[name] for name in model.input_names])`` returning logits ``[B, num_classes]``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .heads import JointStreamNet, SingleStreamNet
from .registry import BACKBONES, ModelConfigError, build_backbone

STREAM_CHANNELS = {"rgb": 3, "of": 2}
MODEL_STREAMS = {"rgb": ("rgb",), "of": ("of",), "joint": ("rgb", "of")}

__all__ = [
    "BACKBONES", "JointStreamNet", "ModelConfigError", "SingleStreamNet", "build_model", "input_shapes",
    "model_streams",
]


def model_streams(model_cfg: Any) -> tuple[str, ...]:
    """The input streams of ``model.model_type``."""
    if model_cfg.model_type not in MODEL_STREAMS:
        raise ModelConfigError(
            f"model.model_type={model_cfg.model_type!r} is not supported; allowed: {', '.join(MODEL_STREAMS)}"
        )
    return MODEL_STREAMS[model_cfg.model_type]


def seq_length(model_cfg: Any, stream: str) -> int:
    return model_cfg.rgb_seq_length if stream == "rgb" else model_cfg.of_seq_length


def input_shapes(model_cfg: Any) -> dict[str, tuple[int, ...]]:
    """Per-sample input shape of each stream (no batch axis), keyed by stream name."""
    shapes = {}
    for stream in model_streams(model_cfg):
        channels, frames = STREAM_CHANNELS[stream], seq_length(model_cfg, stream)
        hw = (model_cfg.input_height, model_cfg.input_width)
        shapes[stream] = (channels * frames, *hw) if model_cfg.input_type == "2d" else (channels, frames, *hw)
    return shapes


def _stream_net(model_cfg: Any, stream: str, num_outputs: int) -> SingleStreamNet:
    channels = STREAM_CHANNELS[stream]
    in_channels = channels * seq_length(model_cfg, stream) if model_cfg.input_type == "2d" else channels
    backbone = build_backbone(model_cfg.backbone, model_cfg.input_type, in_channels)
    return SingleStreamNet(backbone, num_outputs, model_cfg.dropout_ratio, stream)


def build_model(model_cfg: Any, num_classes: int) -> nn.Module:
    """The network described by a ``ModelConfig`` with ``num_classes`` outputs (random weights)."""
    if num_classes < 1:
        raise ModelConfigError(f"the label map must hold at least one class, got {num_classes}")
    streams = model_streams(model_cfg)
    if len(streams) == 1:
        return _stream_net(model_cfg, streams[0], num_classes)
    return JointStreamNet(
        _stream_net(model_cfg, "rgb", model_cfg.num_fc),
        _stream_net(model_cfg, "of", model_cfg.num_fc),
        model_cfg.num_fc,
        num_classes,
        model_cfg.dropout_ratio,
    )
