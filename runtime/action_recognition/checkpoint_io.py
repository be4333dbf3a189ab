"""Reading and writing the model's ``.pth`` checkpoints, in TAO's format.

A checkpoint is the dict Lightning's ``Trainer.save_checkpoint`` writes, as TAO's training writes it:
``epoch``, ``global_step``, ``pytorch-lightning_version``, ``state_dict`` (the network under a
``model.`` prefix, TAO's key names), ``loops``, ``callbacks``, ``optimizer_states``,
``lr_schedulers``. Ours adds a ``skillbank`` block (the experiment config with secrets blanked, the
label map and the RNG states) that TAO's loader ignores; a TAO checkpoint has none, and everything
here works without it. A plain state dict of the network (no prefix, e.g. pytorch-i3d weights) is
read as weights too.

Encrypted TAO checkpoints (``state_dict_encrypted`` set, written when TAO trains with an
``encryption_key``) hold the state_dict as bytes encrypted by NVIDIA's closed ``nvidia-eff`` codec.
Where NVIDIA's ``eff`` package is importable they are decrypted as TAO does (untested here: the
package is not installable on this project's machines); otherwise they are refused with a clear error.
"""
from __future__ import annotations

import os
import pickle
import warnings
from io import BytesIO
from pathlib import Path
from typing import Any

from skillbank.runtime.errors import SkillbankError

CHECKPOINT_FORMAT = "skillbank-action-recognition/1"
LATEST_LINK = "ar_model_latest.pth"
CHECKPOINT_NAME = "model_epoch_{epoch:03d}_step_{step:05d}.pth"
MODEL_PREFIX = "model."
ENCRYPTED_FLAG = "state_dict_encrypted"


class CheckpointFileError(SkillbankError, ValueError):
    """A checkpoint that is missing or cannot be used; the message names the spec key and the path."""

    exit_code = 2  # the spec cannot run as written


def checkpoint_name(epoch: int, step: int) -> str:
    """``model_epoch_<EEE>_step_<SSSSS>.pth`` (epoch zero-based, global step)."""
    return CHECKPOINT_NAME.format(epoch=epoch, step=step)


def read_checkpoint(path: str | os.PathLike, key: str, encryption_key: str = "") -> dict[str, Any]:
    """The checkpoint dict at ``path`` with a readable ``state_dict``; ``key`` is the spec key that named it."""
    import torch

    path = Path(path)
    if not str(path) or not path.is_file():
        raise CheckpointFileError(f"{key}={str(path)!r}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it was not written with
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise CheckpointFileError(f"{key}={str(path)!r} is not a readable PyTorch checkpoint "
                                  f"({load_failure(exc)})") from None
    if not isinstance(data, dict):
        raise CheckpointFileError(f"{key}={str(path)!r} holds a {type(data).__name__}, not a checkpoint dict")
    return decrypt(data, encryption_key, f"{key}={str(path)!r}")


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load`` failed, in one line of our own: torch's text is long and speaks to its developers."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    # UnpicklingError, EOFError, KeyError, struct.error, zip RuntimeError...: the file is not what it claims
    return ("not a file written by torch.save, or damaged (truncated, or changed after saving), or it holds "
            "objects other than tensors and plain data")


def is_encrypted(checkpoint: dict[str, Any]) -> bool:
    return bool(checkpoint.get(ENCRYPTED_FLAG))


def decrypt(checkpoint: dict[str, Any], encryption_key: str, what: str) -> dict[str, Any]:
    """``checkpoint`` with its state_dict decrypted in place (unchanged when it is not encrypted)."""
    if not is_encrypted(checkpoint):
        return checkpoint
    try:
        from eff.codec import decrypt_stream  # NVIDIA's closed codec (nvidia-eff), as TAO uses it
    except ImportError:
        raise CheckpointFileError(
            f"{what} is an encrypted TAO checkpoint ({ENCRYPTED_FLAG}={checkpoint[ENCRYPTED_FLAG]!r}): its "
            "state_dict is encrypted with NVIDIA's closed nvidia-eff codec, which is not installed here, so it "
            "cannot be read. Decrypt it with TAO (run TAO's export or train with the same encryption_key), or "
            "install NVIDIA's eff packages (nvidia-eff, nvidia-eff-tao-encryption) beside this runtime"
        ) from None
    if not encryption_key:
        raise CheckpointFileError(f"{what} is an encrypted TAO checkpoint: set encryption_key (or "
                                  "$SKILLBANK_ENCRYPTION_KEY) to the key it was trained with")
    out = BytesIO()
    try:
        decrypt_stream(input_stream=BytesIO(checkpoint["state_dict"]), output_stream=out,
                       passphrase=encryption_key, encryption=checkpoint[ENCRYPTED_FLAG])
        checkpoint["state_dict"] = pickle.loads(out.getvalue())  # noqa: S301 - TAO's own format
    except Exception as exc:  # noqa: BLE001 - the codec raises its own types
        raise CheckpointFileError(f"{what}: decryption failed ({type(exc).__name__}); is encryption_key the "
                                  "key it was trained with?") from None
    checkpoint[ENCRYPTED_FLAG] = False
    return checkpoint


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The network's weights (TAO's key names, no ``model.`` prefix), from either checkpoint form."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict):
        raise CheckpointFileError(f"the checkpoint's state_dict is a {type(state).__name__}, not a mapping")
    if any(k.startswith(MODEL_PREFIX) for k in state):
        return {k[len(MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
    return {k: v for k, v in state.items() if hasattr(v, "shape")}


def checkpoint_meta(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Our block (config, label_map, rng); empty for TAO's checkpoints and plain state dicts."""
    meta = checkpoint.get("skillbank")
    return meta if isinstance(meta, dict) else {}


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
