"""Reading and writing the model's ``.pth`` checkpoints.

A checkpoint is the dict Lightning's ``Trainer.save_checkpoint`` writes (weights under ``state_dict``
with a ``model.`` prefix, optimiser and scheduler states, loop counters: what resuming needs) plus our
``skillbank`` block: the experiment config (secrets blanked), the label map and the RNG states, so
evaluate, inference, export and fine-tuning rebuild the model from the file alone. A plain state dict
of the network (no prefix) is read as weights too.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHECKPOINT_FORMAT = "skillbank-action-recognition/1"
LATEST_LINK = "ar_model_latest.pth"
CHECKPOINT_NAME = "model_epoch_{epoch:03d}_step_{step:05d}.pth"
_MODEL_PREFIX = "model."


class CheckpointFileError(ValueError):
    """A checkpoint that is missing or cannot be used; the message names the spec key and the path."""


def checkpoint_name(epoch: int, step: int) -> str:
    """``model_epoch_<EEE>_step_<SSSSS>.pth`` (epoch zero-based, global step)."""
    return CHECKPOINT_NAME.format(epoch=epoch, step=step)


def read_checkpoint(path: str | os.PathLike, key: str) -> dict[str, Any]:
    """The checkpoint dict at ``path``; ``key`` is the spec key that named it (for the message)."""
    import torch

    path = Path(path)
    if not str(path) or not path.is_file():
        raise CheckpointFileError(f"{key}={str(path)!r}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise CheckpointFileError(f"{key}={str(path)!r} is not a readable PyTorch checkpoint: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointFileError(f"{key}={str(path)!r} holds a {type(data).__name__}, not a checkpoint dict")
    return data


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The network's weights (keys as in ``build_model``'s module), from either checkpoint form."""
    state = checkpoint.get("state_dict", checkpoint)
    if any(k.startswith(_MODEL_PREFIX) for k in state):
        return {k[len(_MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(_MODEL_PREFIX)}
    return dict(state)


def checkpoint_meta(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Our block (config, label_map, rng); empty for a plain state dict."""
    return checkpoint.get("skillbank") or {}


def checkpoint_label_map(checkpoint: dict[str, Any]) -> dict[str, int] | None:
    return checkpoint_meta(checkpoint).get("label_map")


def checkpoint_model_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    config = checkpoint_meta(checkpoint).get("config") or {}
    return config.get("model")


def link_latest(checkpoint_path: str | os.PathLike) -> Path:
    """Point ``ar_model_latest.pth`` (beside the checkpoint) at it; relative, replaced atomically."""
    checkpoint_path = Path(checkpoint_path)
    link = checkpoint_path.parent / LATEST_LINK
    tmp = checkpoint_path.parent / f".{LATEST_LINK}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(checkpoint_path.name, tmp)
    os.replace(tmp, link)
    return link
