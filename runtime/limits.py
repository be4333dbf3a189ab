"""Limits on what hostile or accidental input may cost, and the environment variables that change them.

Every limit has a default that fits real work (a TAO spec, a label map of thousands of classes, a video
data set whose frames barely compress) and a ``SKILLBANK_*`` variable to raise it; a message that
enforces a limit names its variable. :func:`env_number` reads any numeric ``SKILLBANK_*`` setting and
turns a bad value into one line that names the variable. Pure apart from reading ``os.environ``; no
heavy imports (``skillbank validate`` loads this module).
"""
from __future__ import annotations

import os


class SettingError(ValueError):
    """An environment setting that cannot be used; the message names the variable, its value and what is allowed."""


def env_number(name: str, default: float, *, minimum: float | None = None, integer: bool = False) -> float:
    """The number in ``$name`` (``default`` when unset or blank); a SettingError names the variable otherwise."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    kind = "a whole number" if integer else "a number"
    allowed = kind + (f" >= {minimum:g}" if minimum is not None else "")
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not {kind}; allowed: {allowed}") from None
    if value != value or value in (float("inf"), float("-inf")) or (minimum is not None and value < minimum):
        raise SettingError(f"{name}={raw!r} is out of range; allowed: {allowed}")
    return value


# name of the variable -> (default, minimum): the limits below read these.
MAX_YAML_NODES = "SKILLBANK_MAX_YAML_NODES"
MAX_NESTING = "SKILLBANK_MAX_NESTING"
MAX_ECHO_CHARS = "SKILLBANK_MAX_ECHO_CHARS"
MAX_PROBLEMS = "SKILLBANK_MAX_PROBLEMS"
ARCHIVE_MAX_RATIO = "SKILLBANK_ARCHIVE_MAX_RATIO"
ARCHIVE_MAX_BYTES = "SKILLBANK_ARCHIVE_MAX_BYTES"

_DEFAULTS: dict[str, tuple[int, int]] = {
    # values after YAML aliases are expanded: a TAO spec has a few hundred, a big label map some thousands
    MAX_YAML_NODES: (1_000_000, 1),
    # mapping/list levels in an overrides or spec document (a spec nests 4 deep)
    MAX_NESTING: (100, 1),
    # characters of a value echoed back in a message
    MAX_ECHO_CHARS: (200, 20),
    # problems listed by one validation (the rest are counted)
    MAX_PROBLEMS: (100, 1),
    # uncompressed / compressed size of an archive: video frames (JPEG/PNG) barely compress (~1-2), tar
    # headers of small files a little more; a decompression bomb is in the thousands
    ARCHIVE_MAX_RATIO: (100, 1),
    # bytes an archive may extract to: 4 TiB holds the largest public video data sets as frames
    ARCHIVE_MAX_BYTES: (4 * 2**40, 1),
}


def limit(name: str) -> int:
    """The current value of the limit ``name`` (one of the ``SKILLBANK_*`` names above)."""
    default, minimum = _DEFAULTS[name]
    return int(env_number(name, default, minimum=minimum, integer=True))


def short_repr(value: object, limit_chars: int | None = None) -> str:
    """``repr(value)`` as a message shows it: nested and long values are cut, never more than the echo limit.

    Safe on any input: deep nesting and huge strings cost no more than the characters shown.
    """
    import reprlib

    cap = limit_chars or limit(MAX_ECHO_CHARS)
    shortener = reprlib.Repr()
    shortener.maxlevel = 4
    shortener.maxstring = shortener.maxother = shortener.maxlong = cap
    shortener.maxdict = shortener.maxlist = shortener.maxtuple = shortener.maxset = 8
    text = shortener.repr(value)
    if len(text) > cap:
        text = text[: cap - 3] + "..."
    if isinstance(value, str) and len(value) > cap:
        text += f" ({len(value)} characters)"
    return text
