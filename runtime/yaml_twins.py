"""A bank YAML file read through its generated JSON twin: ``skill_info.yaml`` -> ``skill_info.json``.

Every ``skillbank`` call reads a skill's ``skill_info.yaml`` and often a spec template; parsing YAML
costs more start-up (importing PyYAML) than the whole rest of ``skillbank validate``. ``make
regen-schemas`` therefore writes beside each of those files a JSON twin that holds the same content
and the size and CRC-32 of the YAML bytes it was made from. :func:`twin_content` answers from the twin
only while it matches the YAML file byte for byte, so a hand edit that was not regenerated (or a bank
without twins, such as a user's own) is read from the YAML itself: the YAML file is always the source.

Pure functions apart from reading files; no heavy imports.
"""
from __future__ import annotations

import os
import zlib

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.json_read import loads
from skillbank.runtime.path_strings import path_text, read_bytes

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

TWIN_SUFFIX = ".json"
MISSING = object()  # what twin_content returns when the YAML file itself must be read


class TwinError(SkillbankError, ValueError):
    """YAML content that JSON cannot hold exactly (keys that are not strings, dates ...): it gets no twin."""


def twin_path(path: Path) -> Path:
    """Where the twin of ``path`` lives: the same name with ``.json``."""
    return path.with_suffix(TWIN_SUFFIX)


def _twin_file(path: str) -> str | None:
    """:func:`twin_path` of a :func:`path_text` string, as a string (validate's start-up budget, see
    bench/cli_startup.py: no pathlib); None where ``Path.with_suffix`` raises (a path without a name)."""
    folder, name = os.path.split(path)
    if not name or name == ".":
        return None
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name  # Path.suffix: not a leading or a trailing dot
    return os.path.join(folder, stem + TWIN_SUFFIX)


def _stamp(source: bytes) -> dict[str, Any]:
    # CRC-32 and size catch any edit of the source (this guards against stale files, not an attacker)
    return {"source_size": len(source), "source_crc32": f"{zlib.crc32(source):08x}"}


def render_twin(path: Path, source: bytes, content: Any) -> str:
    """The JSON text of the twin of ``path``, whose bytes are ``source`` and parsed content ``content``.

    Raises TwinError when JSON would not give back exactly ``content``.
    """
    import json  # only `make regen-schemas` writes twins

    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TwinError(f"{path}: its content cannot be written as JSON ({exc})") from None
    if json.loads(text) != content:
        raise TwinError(f"{path}: JSON would change its content (a key that is not a string?)")
    document = {"generated_from": path.name, **_stamp(source), "content": content}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def twin_content(path: str | os.PathLike[str], source: bytes) -> Any:
    """The content of YAML file ``path`` from its twin, when the twin was made from exactly ``source`` (the
    file's bytes); :data:`MISSING` otherwise (no twin, a stale one, or one this module did not write)."""
    twin = _twin_file(path_text(path))
    if twin is None:
        return MISSING
    try:
        document = loads(read_bytes(twin))
    except (OSError, ValueError, RecursionError):
        return MISSING  # no twin, or not one this module wrote: the YAML decides
    if not isinstance(document, dict) or "content" not in document:
        return MISSING
    stamp = _stamp(source)
    if any(document.get(key) != value for key, value in stamp.items()):
        return MISSING
    return document["content"]
