"""The experiment config a checkpoint carries, read without torch.

Our checkpoints (PyTorch's zip format, as ``torch.save`` writes it) hold a ``skillbank`` block with
the config they were trained with (secrets blanked). Reading it with ``torch.load`` would import
torch and load every tensor; the SDK only needs that block, so this reads the archive's
``data.pkl`` with an unpickler that allows plain containers and stands an inert placeholder in for
every tensor, storage and torch object (their bytes are never read). Anything else in the pickle
is refused, so a crafted file runs no code. TAO's checkpoints, plain state dicts, legacy
(non-zip) files, ``s3://`` URIs and unreadable files give None: the spec's values stand.
"""
from __future__ import annotations

import codecs
import collections
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

MAX_PICKLE_BYTES = 256 * 1024 * 1024  # data.pkl holds structure, not tensor bytes: far below this
_OPAQUE_MODULES = ("torch", "numpy", "pytorch_lightning", "lightning", "lightning_fabric")
_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex, "bytearray": bytearray,
                  "list": list, "dict": dict, "tuple": tuple, "int": int, "float": float, "bool": bool, "str": str}


class _Opaque:
    """Stands in for a tensor, storage, dtype or any other torch object: accepts anything, holds nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return _Opaque()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _ConfigUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name in ("OrderedDict", "Counter", "defaultdict"):
            return getattr(collections, name)
        if module == "_codecs" and name == "encode":  # bytes in protocol-2 pickles
            return codecs.encode
        if module == "builtins" and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module.split(".")[0] in _OPAQUE_MODULES:
            return _Opaque
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a checkpoint")

    def persistent_load(self, pid: Any) -> _Opaque:  # tensor storages: never read
        return _Opaque()


def checkpoint_object(path: str | os.PathLike) -> Any | None:
    """The checkpoint's top-level object with tensors as placeholders, or None when it cannot be read so."""
    text = str(path)
    if not text or text.startswith("s3://") or not Path(text).is_file():
        return None
    try:
        with zipfile.ZipFile(text) as archive:
            names = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if not names:
                return None
            name = min(names, key=len)  # the top-level record, not a nested one
            if archive.getinfo(name).file_size > MAX_PICKLE_BYTES:
                return None
            with archive.open(name) as handle:
                return _ConfigUnpickler(handle).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError):
        return None


def stored_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The config dict in the checkpoint's ``skillbank`` block (``config``), or None when there is none."""
    data = checkpoint_object(path)
    meta = data.get("skillbank") if isinstance(data, dict) else None
    config = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(config, dict):
        return None
    label_map = meta.get("label_map")
    dataset = config.get("dataset")
    if isinstance(label_map, dict) and isinstance(dataset, dict) and not dataset.get("label_map"):
        config = {**config, "dataset": {**dataset, "label_map": dict(label_map)}}  # the map it really used
    return config
