"""Rebuild a trained network from a checkpoint for evaluate, inference and export.

The spec's ``model`` section describes the network (as in TAO); the checkpoint's weights must fit it
exactly (TAO loads them with ``strict=True``). A checkpoint of ours also stores its config, which is
checked first so that a mismatch is a clear error naming the keys to set, not a wall of tensor
names. The label map is the spec's ``dataset.label_map``, else the one stored in the checkpoint.
TAO's checkpoints (no stored config or label map) load the same way.
"""
from __future__ import annotations

import logging
from typing import Any

from skillbank.runtime.config.action_recognition import ExperimentConfig
from skillbank.runtime.config.loading import ConfigError

from .checkpoint_io import checkpoint_label_map, checkpoint_model_config, model_state_dict, read_checkpoint
from .networks import ModelConfigError, build_model, model_streams
from .pretrained import StateMismatch, head_rows

log = logging.getLogger("skillbank.action_recognition")


def check_no_engine(section: str, engine: str) -> None:
    """Only .pth checkpoints load here: a ``<section>.trt_engine`` setting is an error naming the fix."""
    if engine:
        raise ConfigError(f"{section}.trt_engine={engine!r}: TensorRT engines are not supported by this runtime; "
                          f"set {section}.trt_engine='' and give {section}.checkpoint (a .pth)")


def architecture_keys(model_cfg: Any) -> list[str]:
    """The model.* keys that decide the network's weights."""
    keys = ["model_type", "backbone", "input_type"]
    streams = model_streams(model_cfg)
    if model_cfg.input_type == "2d":
        keys += [f"{s}_seq_length" for s in streams]
    if model_cfg.model_type == "joint":
        keys.append("num_fc")
    return keys


def check_architecture(model_cfg: Any, stored: dict[str, Any] | None, key: str, path: str) -> None:
    """Error when the checkpoint's stored model config builds a different network than the spec's."""
    if not stored:
        return
    differ = [(k, stored.get(k), getattr(model_cfg, k)) for k in architecture_keys(model_cfg)
              if k in stored and stored.get(k) != getattr(model_cfg, k)]
    if differ:
        sets = " ".join(f"model.{k}={v}" for k, v, _ in differ)
        found = ", ".join(f"model.{k}={mine!r} (checkpoint: {theirs!r})" for k, theirs, mine in differ)
        raise ModelConfigError(f"{key}={path!r} was trained with another network than the spec describes: "
                               f"{found}; set {sets}")
    for k in ("input_width", "input_height", "sample_strategy", "sample_rate", "rgb_seq_length", "of_seq_length"):
        if k in stored and k not in architecture_keys(model_cfg) and stored[k] != getattr(model_cfg, k):
            log.info("Note: model.%s=%r here, %r when %s was trained", k, getattr(model_cfg, k), stored[k], path)


def resolve_label_map(cfg: ExperimentConfig, checkpoint: dict[str, Any], key: str) -> dict[str, int]:
    label_map = cfg.dataset.label_map or checkpoint_label_map(checkpoint)
    if not label_map:
        raise ModelConfigError(f"dataset.label_map is not set and {key} stores none; set dataset.label_map "
                               "(class folder name -> index), e.g. dataset.label_map='{catch: 0, smile: 1}'")
    check_label_map(label_map)
    return dict(label_map)


def check_label_map(label_map: dict[str, int]) -> None:
    """Class indices must be 0..N-1 (they index the classifier's outputs)."""
    if sorted(label_map.values()) != list(range(len(label_map))):
        raise ModelConfigError(f"dataset.label_map={label_map}: indices must be 0..{len(label_map) - 1}, "
                               "each used once")


def load_exact(model, state: dict[str, Any], key: str, path: str) -> None:
    """``model.load_state_dict(state, strict=True)``, with a message naming the spec keys to check."""
    mismatch = StateMismatch.between(model.state_dict(), state)
    if mismatch:
        raise ModelConfigError(
            f"{key}={path!r} was trained with another network than the spec describes (check model.model_type, "
            f"model.backbone, model.input_type, model.*_seq_length and model.num_fc): {mismatch}"
        )
    model.load_state_dict(state, strict=True)


def load_trained_model(cfg: ExperimentConfig, path: str, key: str):
    """``(model in eval mode on the CPU, label_map)`` from the checkpoint at ``path``."""
    checkpoint = read_checkpoint(path, key, cfg.encryption_key)
    check_architecture(cfg.model, checkpoint_model_config(checkpoint), key, path)
    label_map = resolve_label_map(cfg, checkpoint, key)
    model = build_model(cfg.model, len(label_map))
    state = model_state_dict(checkpoint)
    rows = head_rows(state)
    if rows is not None and rows != len(label_map):
        raise ModelConfigError(f"{key}={path!r} classifies {rows} classes but dataset.label_map "
                               f"has {len(label_map)}: use the label map the model was trained with")
    load_exact(model, state, key, path)
    model.eval()
    return model, label_map
