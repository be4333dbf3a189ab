"""How a message shows a value that may be hostile: cut to the echo limit, whatever its size or depth.

The limits themselves (their ``SKILLBANK_*`` variables, defaults and parsing) live in
:mod:`skillbank.runtime.settings`; a message that enforces a limit names its variable. No heavy imports
(``skillbank validate`` loads this module).
"""
from __future__ import annotations

from skillbank.runtime.settings import MAX_ECHO_CHARS, limit


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
