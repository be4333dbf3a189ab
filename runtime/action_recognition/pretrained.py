"""Start training from pretrained weights (``model.*_pretrained_model_path``), as TAO does.

A file is a TAO (or our) checkpoint, whose ``state_dict`` is read without its ``model.`` prefix, or a
plain state dict (e.g. pytorch-i3d's released I3D weights). Like TAO:

- a 2D ResNet takes ``conv1`` from the file and, when the input-channel count differs (flow weights
  for an rgb stream, another sequence length), averages it over the input channels;
- ``model.rgb/of_pretrained_num_classes`` other than 0 means "the file classifies that many classes":
  the classifier (``fc_cls`` / I3D ``logits``) is re-initialised for the spec's label map; 0 keeps the
  file's classifier;
- a joint model loads single-stream files into ``model_rgb`` / ``model_of``, or a whole joint
  checkpoint from ``model.joint_pretrained_model_path``.

Deliberately more forgiving than TAO where TAO would stop: a classifier whose class count does not fit
is skipped (fresh weights) and the log says so, and a 2D joint checkpoint loads (TAO's 2D path keeps
the ``model.`` prefix and fails). Every other mismatch is an error naming the spec key, the file and
the first differing tensors. ImageNet weights are never downloaded: ``model.imagenet_pretrained: true``
without a checkpoint is an error.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .checkpoint_io import model_state_dict, read_checkpoint
from .networks import ModelConfigError, model_streams

log = logging.getLogger("skillbank.action_recognition")

HEAD_MODULES = ("fc_cls", "logits", "fc1", "fc2")
"""Classifier layers, whose shapes follow the class count."""


def is_head_key(key: str) -> bool:
    """Whether a state_dict key belongs to a classifier layer (``fc_cls``, I3D ``logits``, joint ``fc1``/``fc2``)."""
    return any(part in HEAD_MODULES for part in key.split(".")[:-1])


def head_rows(state: dict[str, Any]) -> int | None:
    """How many classes a network's state dict classifies (its last classifier's output rows)."""
    for key in ("fc2.weight", "fc_cls.weight", "logits.conv3d.weight"):
        if key in state:
            return int(state[key].shape[0])
    return None


@dataclass(frozen=True)
class StateMismatch:
    """How a file's state dict differs from a module's: wrong shapes, missing and unknown tensors."""

    wrong: list[str]
    missing: list[str]
    unexpected: list[str]

    @classmethod
    def between(cls, own: dict[str, Any], state: dict[str, Any],
                optional: Callable[[str], bool] = lambda key: False) -> StateMismatch:
        """Compare; keys ``optional`` accepts may be missing from the file."""
        return cls(
            wrong=[f"{k} {tuple(state[k].shape)} in the file vs {tuple(own[k].shape)} here"
                   for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)],
            missing=[k for k in own if k not in state and not optional(k)],
            unexpected=[k for k in state if k not in own],
        )

    def __bool__(self) -> bool:
        return bool(self.wrong or self.missing or self.unexpected)

    def __str__(self) -> str:
        parts = []
        if self.wrong:
            parts.append("shapes differ: " + "; ".join(self.wrong[:3]))
        if self.missing:
            parts.append(f"{len(self.missing)} tensors missing from the file (e.g. {', '.join(self.missing[:3])})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} tensors unknown to this model "
                         f"(e.g. {', '.join(self.unexpected[:3])})")
        return " | ".join(parts)


def fit_state(own: dict[str, Any], state: dict[str, Any], key: str, path: str, *, fresh_head: str = "",
              average_conv1: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The part of ``state`` to load into a module whose state dict is ``own``, and notes for the log.

    The classifier is loaded when its shapes fit, unless ``fresh_head`` gives a reason not to.
    """
    state = dict(state)
    notes: list[str] = []
    if average_conv1 and "conv1.weight" in own and state:
        source = state.get("conv1.weight", next(iter(state.values())))  # TAO takes the file's first tensor
        target = own["conv1.weight"]
        if source.dim() == target.dim() and source.shape[1] != target.shape[1] \
                and source.shape[0] == target.shape[0] and source.shape[2:] == target.shape[2:]:
            state["conv1.weight"] = source.mean(dim=1, keepdim=True).expand_as(target).clone()
            notes.append(f"{key}: conv1 averaged over the file's {source.shape[1]} input channels for this "
                         f"model's {target.shape[1]}")
    skipped = [k for k in own if is_head_key(k) and k in state
               and (fresh_head or tuple(state[k].shape) != tuple(own[k].shape))]
    if skipped:
        why = fresh_head or f"the file classifies {head_rows(state)} classes, this model {head_rows(own)}"
        notes.append(f"{key}: classifier ({', '.join(sorted({k.rsplit('.', 1)[0] for k in skipped}))}) not loaded "
                     f"from the file, fresh weights instead ({why})")
        for k in skipped:
            del state[k]
    mismatch = StateMismatch.between(own, state, optional=is_head_key)
    if mismatch.missing or mismatch.wrong:
        raise ModelConfigError(
            f"{key}={path!r} does not fit this model (check model.backbone, model.input_type, "
            f"model.*_seq_length and model.num_fc): {mismatch}"
        )
    unexpected = mismatch.unexpected
    if unexpected:  # a superset (e.g. ImageNet weights with their own classifier): what fits is loaded
        notes.append(f"{key}: {len(unexpected)} tensors of the file are not used (e.g. {', '.join(unexpected[:3])})")
        state = {k: v for k, v in state.items() if k in own}
    return state, notes


def load_weights(module: nn.Module, state: dict[str, Any], key: str, path: str, *, fresh_head: str = "",
                 average_conv1: bool = False) -> list[str]:
    """Load ``state`` into ``module`` under :func:`fit_state`'s rules; returns the notes logged."""
    fitted, notes = fit_state(module.state_dict(), state, key, path, fresh_head=fresh_head,
                              average_conv1=average_conv1)
    module.load_state_dict(fitted, strict=False)
    for note in notes:
        log.info(note)
    return notes


def _file_weights(path: str, key: str, encryption_key: str) -> dict[str, Any]:
    return model_state_dict(read_checkpoint(path, key, encryption_key))


def load_pretrained_weights(model: nn.Module, model_cfg: Any, encryption_key: str = "") -> list[str]:
    """Apply the spec's pretrained paths to a freshly built model; returns which weights were loaded."""
    streams = model_streams(model_cfg)
    two_d = model_cfg.input_type == "2d"
    loaded: list[str] = []
    if model_cfg.model_type == "joint" and model_cfg.joint_pretrained_model_path:
        key, path = "model.joint_pretrained_model_path", model_cfg.joint_pretrained_model_path
        load_weights(model, _file_weights(path, key, encryption_key), key, path)
        loaded.append("joint")
    else:
        for stream in streams:
            key = f"model.{stream}_pretrained_model_path"
            path = getattr(model_cfg, f"{stream}_pretrained_model_path")
            if not path:
                continue
            state = _file_weights(path, key, encryption_key)
            if model_cfg.model_type == "joint":  # TAO builds each stream for the spec's classes
                load_weights(getattr(model, f"model_{stream}"), state, key, path, average_conv1=two_d)
            else:
                file_classes = getattr(model_cfg, f"{stream}_pretrained_num_classes")
                rows = head_rows(state)
                if file_classes and rows is not None and rows != file_classes:
                    log.info("%s: the file classifies %d classes, not model.%s_pretrained_num_classes=%d; "
                             "its classifier is not used either way", key, rows, stream, file_classes)
                fresh = f"model.{stream}_pretrained_num_classes={file_classes}, not 0, as in TAO" \
                    if file_classes else ""
                load_weights(model, state, key, path, fresh_head=fresh, average_conv1=two_d)
            loaded.append(stream)
    missing = [s for s in streams if s not in loaded and "joint" not in loaded]
    if model_cfg.imagenet_pretrained and missing:
        keys = ", ".join(f"model.{s}_pretrained_model_path" for s in missing)
        raise ModelConfigError(
            "model.imagenet_pretrained=true: this runtime does not download ImageNet weights; "
            f"set model.imagenet_pretrained=false, or give a local checkpoint in {keys}"
        )
    for what in loaded:
        log.info("Loaded pretrained %s weights", what)
    return loaded
