"""Action-recognition networks, TAO's architectures: ``build_model(model_cfg, num_classes)``.

The networks are TAO's (tao_pytorch_backend ``cv/action_recognition/model``): the same modules,
state_dict keys, shapes and order, the same function. A TAO checkpoint's ``state_dict`` minus its
``model.`` prefix loads with ``strict=True``; our checkpoints load in TAO.

Input layout per sample (the data pipeline produces exactly these; TAO's and DeepStream's layout):

- input_type 2d: rgb ``[3*T, H, W]`` channel-major (channel ``c*T + t``: R0..R(T-1), G0.., B0..),
  of ``[2*T, H, W]`` (U0..U(T-1), V0..V(T-1))
- input_type 3d: rgb ``[3, T, H, W]``, of ``[2, T, H, W]``

with T = ``model.rgb_seq_length`` / ``model.of_seq_length``. A built model has ``input_names``
("rgb",), ("of",) or ("rgb", "of") and is called as ``model(*[inputs[name] for name in
model.input_names])``, returning logits ``[B, num_classes]``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .joint import JointModel
from .registry import BACKBONES, ModelConfigError, build_classifier

STREAM_CHANNELS = {"rgb": 3, "of": 2}
MODEL_STREAMS = {"rgb": ("rgb",), "of": ("of",), "joint": ("rgb", "of")}

__all__ = ["BACKBONES", "JointModel", "ModelConfigError", "build_model", "build_stream", "input_shapes",
           "model_streams"]


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


def build_stream(model_cfg: Any, stream: str, num_classes: int) -> nn.Module:
    """The single-stream classifier of ``stream`` ("rgb" or "of") with ``num_classes`` logits."""
    channels = STREAM_CHANNELS[stream]
    in_channels = channels * seq_length(model_cfg, stream) if model_cfg.input_type == "2d" else channels
    net = build_classifier(model_cfg.backbone, model_cfg.input_type, in_channels, num_classes,
                           float(model_cfg.dropout_ratio))
    net.input_names = (stream,)
    return net


def build_model(model_cfg: Any, num_classes: int) -> nn.Module:
    """The network described by a ``ModelConfig`` with ``num_classes`` outputs (fresh weights)."""
    if num_classes < 1:
        raise ModelConfigError(f"the label map must hold at least one class, got {num_classes}")
    streams = model_streams(model_cfg)
    if len(streams) == 1:
        return build_stream(model_cfg, streams[0], num_classes)
    joint = JointModel(build_stream(model_cfg, "rgb", num_classes), build_stream(model_cfg, "of", num_classes),
                       num_classes, model_cfg.num_fc)
    joint.input_names = ("rgb", "of")
    return joint
