"""Paths as strings: what :mod:`pathlib` would give, without importing pathlib.

Validate's start-up budget, see bench/cli_startup.py: ``import pathlib`` (it imports ``re``, ``fnmatch``
and ``urllib.parse``) costs `skillbank validate` more than all of its own modules, so the modules that
`validate` loads work on path strings and make ``Path`` objects only for callers that ask for one. These
functions give the strings and bytes ``Path`` would, so messages and results are the same either way.
"""
from __future__ import annotations

import os


def path_text(path: str | os.PathLike[str]) -> str:
    """``str(Path(path))``: slashes collapsed, ``.`` parts and a trailing slash dropped (``..`` is kept)."""
    if os.sep != "/" or not isinstance(path, str):  # another flavour, a PathLike or bytes: pathlib answers
        from pathlib import Path

        return str(Path(path))
    rest = path.lstrip("/")
    leading = len(path) - len(rest)
    root = "//" if leading == 2 else "/" if leading else ""  # POSIX keeps exactly two leading slashes
    return root + "/".join(part for part in rest.split("/") if part not in ("", ".")) or "."


def path_name(text: str) -> str:
    """``Path(text).name`` of a :func:`path_text` string: its last part ('' for ``/`` and ``.``)."""
    return "" if text == "." else os.path.basename(text)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """``Path(path).read_bytes()``: the file's bytes; the same OSError when it cannot be read."""
    with open(path, "rb") as file:
        return file.read()
