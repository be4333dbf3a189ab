"""``loads``: :func:`json.loads` without importing :mod:`json` (and :mod:`re`, which it imports) on success.

Validate's start-up budget, see bench/cli_startup.py: ``import json`` costs `skillbank validate` more than
reading and checking the overrides, because ``json.decoder`` imports ``re`` (and ``re`` imports ``enum``).
:func:`json.loads` parses with the C scanner of ``_json``, and that scanner needs only a few attributes
of its decoder; :func:`loads` builds the same scanner from a small object holding json's defaults, so a
document is parsed by the very code ``json.loads`` would run. Whatever that scanner cannot answer alone
(an error: the scanner then needs ``json.decoder``, a UTF-8 BOM, bytes in another encoding, extra data)
goes to ``json.loads`` itself, which returns or raises exactly what it always does. The result is
always what ``json.loads`` gives.
"""
from __future__ import annotations

try:
    from _json import make_scanner
except ImportError:  # a Python without the C accelerator: json.loads does all the work
    make_scanner = None

TYPE_CHECKING = False  # typing for type checkers only: validate's start-up budget, see bench/cli_startup.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_BLANKS = " \t\n\r"  # JSON's whitespace (json.decoder.WHITESPACE), nothing else
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}  # json.decoder's
_NOT_UTF8 = (b"\x00", b"\xef", b"\xfe", b"\xff")  # first bytes of a BOM or of UTF-16/32 text


class _Decoder:
    """What the C scanner reads of a ``json.JSONDecoder``: its settings, json's defaults apart from the hook."""

    strict = True
    object_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__

    def __init__(self, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> None:
        self.object_pairs_hook = object_pairs_hook


_SCAN = make_scanner(_Decoder()) if make_scanner is not None else None


def loads(document: str | bytes | bytearray,
          object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """``json.loads(document, object_pairs_hook=object_pairs_hook)``: the same value, or the same error.

    On an error the hook may be called again for objects it already saw (json.loads parses once more).
    """
    text = _text(document)
    if text is not None and _SCAN is not None:
        scan = _SCAN if object_pairs_hook is None else make_scanner(_Decoder(object_pairs_hook))
        start = len(text) - len(text.lstrip(_BLANKS))
        try:
            value, end = scan(text, start)
        except Exception:  # every error is json.loads's to raise, with its own message
            pass
        else:
            if not text[end:].lstrip(_BLANKS):
                return value
    import json

    return json.loads(document, object_pairs_hook=object_pairs_hook)


def _text(document: object) -> str | None:
    """The text json.loads would parse, when that is plain: a str without a BOM, or bytes that json reads
    as UTF-8 (json.detect_encoding); None otherwise (json.loads decides)."""
    if isinstance(document, str):
        return None if document.startswith("\ufeff") else document
    if isinstance(document, (bytes, bytearray)) and document[:1] not in _NOT_UTF8 and document[1:2] != b"\x00":
        try:
            return document.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
    return None
