"""Start training from weights of this project's checkpoints (model.*_pretrained_model_path).

The classifier (``fc``) is re-initialised when its shape differs from the file's (another class count,
or a single-stream checkpoint loaded into a joint model's stream whose ``fc`` has ``num_fc`` outputs).
Any other mismatch is an error naming the key, the file and the first differing tensors.
ImageNet weights are never downloaded: ``model.imagenet_pretrained: true`` without a checkpoint is an error.
"""
from __future__ import annotations

import logging
from typing import Any

from torch import nn

from .checkpoint_io import model_state_dict as checkpoint_weights
from .checkpoint_io import read_checkpoint
from .networks import ModelConfigError, model_streams

log = logging.getLogger("skillbank.action_recognition")


def _stream_subset(state: dict[str, Any], stream: str) -> dict[str, Any]:
    """A joint checkpoint's ``rgb.*``/``of.*`` weights as a single-stream state dict; others unchanged."""
    prefix = f"{stream}."
    if any(k.startswith(prefix) for k in state) and not any(k.startswith("backbone.") for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_weights(module: nn.Module, state: dict[str, Any], key: str, path: str,
                 expected_classes: int | None = None) -> list[str]:
    """Load ``state`` into ``module`` (fc re-initialised on a shape change); returns the notes logged."""
    own = module.state_dict()
    notes = []
    fc_rows = state.get("fc.weight").shape[0] if "fc.weight" in state else None
    if expected_classes is not None and fc_rows is not None and fc_rows != expected_classes:
        notes.append(f"{key}: the file's classifier has {fc_rows} outputs, not {expected_classes} as "
                     f"the *_pretrained_num_classes setting says; using the file's")
    if "fc.weight" in state and "fc.weight" in own and state["fc.weight"].shape != own["fc.weight"].shape:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        notes.append(f"{key}: classifier re-initialised ({fc_rows} outputs in the file, "
                     f"{own['fc.weight'].shape[0]} in this model)")
    missing = [k for k in own if k not in state and not (k.startswith("fc.") and "fc.weight" not in state)]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} in the file vs {tuple(own[k].shape)} here"
             for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong[:3]))
        if missing:
            parts.append(f"{len(missing)} tensors missing from the file (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors unknown to this model (e.g. {', '.join(unexpected[:3])})")
        raise ModelConfigError(
            f"{key}={path!r} does not fit this model (check model.backbone, model.input_type, "
            f"model.*_seq_length and model.num_fc): {' | '.join(parts)}"
        )
    module.load_state_dict(state, strict=False)
    for note in notes:
        log.info(note)
    return notes


def load_pretrained_weights(model: nn.Module, model_cfg: Any) -> list[str]:
    """Apply the spec's pretrained paths to a freshly built model; returns what was loaded."""
    streams = model_streams(model_cfg)
    loaded: list[str] = []
    if model_cfg.model_type == "joint" and model_cfg.joint_pretrained_model_path:
        path = model_cfg.joint_pretrained_model_path
        load_weights(model, checkpoint_weights(read_checkpoint(path, "model.joint_pretrained_model_path")),
                     "model.joint_pretrained_model_path", path)
        loaded.append("joint")
    else:
        for stream in streams:
            key = f"model.{stream}_pretrained_model_path"
            path = getattr(model_cfg, f"{stream}_pretrained_model_path")
            if not path:
                continue
            target = getattr(model, stream) if model_cfg.model_type == "joint" else model
            state = _stream_subset(checkpoint_weights(read_checkpoint(path, key)), stream)
            load_weights(target, state, key, path, getattr(model_cfg, f"{stream}_pretrained_num_classes"))
            loaded.append(stream)
    missing = [s for s in streams if s not in loaded and "joint" not in loaded]
    if model_cfg.imagenet_pretrained and missing:
        keys = ", ".join(f"model.{s}_pretrained_model_path" for s in missing)
        raise ModelConfigError(
            "model.imagenet_pretrained=true: this runtime does not download ImageNet weights; "
            f"set model.imagenet_pretrained=false, or give a checkpoint of this project in {keys}"
        )
    for what in loaded:
        log.info("Loaded pretrained %s weights", what)
    return loaded
