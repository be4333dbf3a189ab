"""Read ``spec_overrides`` from a JSON or YAML file (or stdin) and put them in dotted form.

Overrides are flat dotted keys (``train.optim.lr: 0.001``); nested mappings
are accepted too and flattened along the schema's sections only, so that a
map-valued field such as ``dataset.label_map`` stays one value.

Reading refuses, with one line naming the file (and the key where there is
one), what cannot be overrides text: binary or non-UTF-8 bytes, a key given
twice, nesting beyond ``SKILLBANK_MAX_NESTING``, YAML aliases that expand
too far, and strings that are not valid Unicode (lone surrogates).
"""
from __future__ import annotations

import os
import sys

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.json_read import loads
from skillbank.runtime.limits import short_repr
from skillbank.runtime.path_strings import path_text, read_bytes
from skillbank.runtime.settings import MAX_NESTING, SettingError, limit

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from typing import Any


class OverridesError(SkillbankError, ValueError):
    """Overrides that cannot be read (missing file, bad syntax, not a mapping)."""

    exit_code = 2  # the input is wrong, not the command


def load_overrides(source: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse the overrides in ``source`` (a path, or ``-`` for stdin); JSON first, then YAML."""
    if str(source) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data, where = (stream.read() if stream is not None else sys.stdin.read()), "<stdin>"
    else:
        path = where = path_text(source)  # a string, no Path: validate's start-up budget, see bench/cli_startup.py
        if os.path.isdir(path):
            raise OverridesError(f"overrides file {path} is a folder; give a JSON or YAML file (or - for stdin)")
        if not os.path.exists(path):
            raise OverridesError(f"overrides file not found: {path}")
        try:  # not only regular files: /dev/stdin and <(...) pipes are files to read too
            data = read_bytes(path)
        except OSError as exc:
            raise OverridesError(f"cannot read overrides file {path}: {exc.strerror or exc}") from None
    return parse_overrides(decode_text(data, where), where)


def decode_text(data: bytes | str, where: str) -> str:
    """UTF-8 text of ``data`` (a BOM is dropped); binary or other encodings are an OverridesError."""
    if isinstance(data, str):
        return data
    if b"\0" in data:
        raise OverridesError(f"{where}: a binary file (it holds NUL bytes); overrides are JSON or YAML text")
    try:  # "utf-8-sig" only for a BOM: its codec is a module to import (validate's start-up budget)
        return data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as exc:
        raise OverridesError(f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                             "save the file as UTF-8") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a key given twice in one object is an error (JSON would keep the last one)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise OverridesError(f"key {key!r} is given twice in one object; give each key once")
        out[key] = value
    return out


def parse_overrides(text: str, where: str = "<overrides>") -> dict[str, Any]:
    """Parse overrides text (JSON or YAML); an empty document means no overrides."""
    if not text.strip():
        return {}
    try:
        try:
            data = loads(text, object_pairs_hook=_unique_pairs)
        except ValueError as exc:
            import json  # loaded already: json.loads raised exc

            if not isinstance(exc, json.JSONDecodeError):
                raise
            from skillbank.runtime.yaml_io import safe_load  # PyYAML only for text that is not JSON

            data = safe_load(text)
    except OverridesError as exc:
        raise OverridesError(f"{where}: {exc}") from None
    except RecursionError:
        raise OverridesError(f"{where}: values nested too deeply to read (limit {MAX_NESTING}="
                             f"{limit(MAX_NESTING)})") from None
    except SettingError as exc:
        raise OverridesError(str(exc)) from None
    except Exception as exc:  # yaml.YAMLError, kept lazy-imported
        raise OverridesError(f"{where}: neither valid JSON nor valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OverridesError(
            f"{where}: overrides must be a mapping of dotted keys to values, got {type(data).__name__}"
        )
    check_text_and_depth(data, where)
    return data


def check_text_and_depth(data: Any, where: str) -> None:
    """Refuse strings that are not valid Unicode (lone surrogates) and nesting beyond the limit; names the key."""
    max_depth = limit(MAX_NESTING)
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > max_depth:
            raise OverridesError(f"{where}: {path or 'the document'} is nested more than {max_depth} levels "
                                 f"deep; raise {MAX_NESTING} if that is intended")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(key, path or "the document", where, "a key")
                stack.append((f"{path}.{key}" if path else str(key), item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
        else:
            _check_string(value, path, where, "the value")


def _check_string(value: Any, path: str, where: str, what: str) -> None:
    if not isinstance(value, str):
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise OverridesError(f"{where}: {path}: {what} {short_repr(value)} is not valid Unicode text (a lone "
                             "surrogate such as \\ud800); allowed: UTF-8 text") from None


def flatten(overrides: dict[str, Any], schema: dict[str, Any] | None = None, prefix: str = "",
            repeated: list[tuple[str, Any, Any]] | None = None) -> dict[str, Any]:
    """Flatten nested mappings into dotted keys.

    With ``schema`` (an object schema), only mappings that sit on a schema
    section (an object with ``properties``) are descended into; without it,
    every mapping is. An empty mapping on a section sets nothing. A dotted
    key reached twice (``train: {num_epochs: 3}`` and ``train.num_epochs: 5``)
    keeps the first value; with ``repeated`` each such ``(key, kept, other)``
    is appended there.
    """
    flat: dict[str, Any] = {}
    _flatten_into(flat, overrides, schema, prefix, repeated)
    return flat


def _flatten_into(flat: dict[str, Any], overrides: dict[str, Any], schema: dict[str, Any] | None, prefix: str,
                  repeated: list[tuple[str, Any, Any]] | None) -> None:
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(schema, dotted) and (value or schema is not None):
            _flatten_into(flat, value, schema, dotted + ".", repeated)
        elif dotted in flat:
            if repeated is not None:
                repeated.append((dotted, flat[dotted], value))
        else:
            flat[dotted] = value


def is_section(schema: dict[str, Any] | None, dotted: str) -> bool:
    """Whether ``dotted`` names a section (an object with ``properties``) of ``schema``."""
    return schema is not None and _is_section(schema, dotted)


def _is_section(schema: dict[str, Any] | None, dotted: str) -> bool:
    if schema is None:
        return True
    node: dict[str, Any] | None = schema
    for part in str(dotted).split("."):
        props = (node or {}).get("properties")
        if not isinstance(props, dict) or part not in props:
            return False
        node = props[part]
    return isinstance(node, dict) and "properties" in node
