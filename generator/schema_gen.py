"""Experiment-config dataclasses -> JSON Schema (Draft 2020-12) with TAO's metadata.

Pure functions: a dataclass in, plain dicts out. File writing lives in
``regen.py``. Output keeps dataclass field order so that templates read like
TAO's; every list that TAO treats as a set is sorted, so reruns are identical.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from skillbank.runtime.config.fields import TAO_METADATA_KEYS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_VERSION = 1

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def non_null(kind: Any) -> Any:
    """``str`` from ``str | None`` / ``Optional[str]``; any other annotation unchanged."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return kind


def type_schema(kind: Any) -> dict[str, Any]:
    """The JSON Schema type keywords of a Python annotation (str, int, List[int], Dict[str, int], ...)."""
    kind = non_null(kind)
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is list:
        return {"type": "array", "items": type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1])}
    raise TypeError(f"no JSON Schema mapping for annotation {kind!r}")


def _leaf_schema(f: dataclasses.Field, kind: Any) -> dict[str, Any]:
    meta = f.metadata
    schema = type_schema(kind)
    for key in TAO_METADATA_KEYS:
        if key in meta and meta[key] not in ("", None):
            schema[key] = meta[key]
    if meta.get("nullable"):  # TAO's Optional[...]: null means unset
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if non_null(kind) is int and "minimum" in schema:
        schema["minimum"] = int(schema["minimum"])
    if not meta.get("omit_default"):
        schema["default"] = _default_of(f)
    return schema


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            return dataclasses.asdict(value)
        return value
    return None


def object_schema(cls: type, prefix: str = "") -> dict[str, Any]:
    """The schema of one config section (recursively), with section-level AutoML lists."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            sub = object_schema(kind, f"{prefix}{f.name}.")
            for key in ("description", "automl_enabled", "popular"):
                if key in f.metadata and f.metadata[key] not in ("", None):
                    sub[key] = f.metadata[key]
            properties[f.name] = _order_object(sub)
        else:
            properties[f.name] = _leaf_schema(f, kind)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    defaults = automl_default_parameters(cls, prefix, recursive=False)
    disabled = automl_disabled_parameters(cls, prefix, recursive=False)
    if defaults:
        schema["automl_default_parameters"] = defaults
    if disabled:
        schema["automl_disabled_parameters"] = disabled
    return schema


def _order_object(schema: dict[str, Any]) -> dict[str, Any]:
    """Metadata first, then properties: easier to read in the generated file."""
    head = {k: v for k, v in schema.items() if k != "properties"}
    return {**head, "properties": schema["properties"]}


def _walk(cls: type, prefix: str = ""):
    """Yield (dotted key, field, annotation, is_section) over the whole config tree."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        key = f"{prefix}{f.name}"
        section = dataclasses.is_dataclass(kind)
        yield key, f, kind, section
        if section:
            yield from _walk(kind, key + ".")


def automl_default_parameters(cls: type, prefix: str = "", recursive: bool = True) -> list[str]:
    """Leaves flagged ``automl_enabled: true``: the default AutoML search space."""
    items = _walk(cls, prefix) if recursive else _direct(cls, prefix)
    return sorted(key for key, f, _, section in items if not section and f.metadata.get("automl_enabled") is True)


def automl_disabled_parameters(cls: type, prefix: str = "", recursive: bool = True) -> list[str]:
    """Sections and leaves flagged ``automl_enabled: false``."""
    items = _walk(cls, prefix) if recursive else _direct(cls, prefix)
    return sorted(key for key, f, _, _ in items if f.metadata.get("automl_enabled") is False)


def _direct(cls: type, prefix: str):
    """Like ``_walk`` but one level deep for sections' own lists (TAO lists children at each level)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        yield f"{prefix}{f.name}", f, kind, dataclasses.is_dataclass(kind)


def popular_defaults(cls: type) -> dict[str, Any]:
    """Nested dict of the fields flagged ``popular`` with their defaults (TAO's top-level ``popular``)."""
    out: dict[str, Any] = {}
    for key, f, _, section in _walk(cls):
        if section or not f.metadata.get("popular"):
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _default_of(f)
    return _sorted_tree(out)


def _sorted_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(v) if isinstance(v, dict) else v for k, v in sorted(tree.items())}


def action_defaults(cls: type, action: str, sections: tuple[str, ...]) -> dict[str, Any]:
    """The full default spec of ``action`` in field order, examples filled in (the template's content)."""

    def build(c: type, keep: tuple[str, ...] | None) -> dict[str, Any]:
        hints = typing.get_type_hints(c)
        out: dict[str, Any] = {}
        for f in dataclasses.fields(c):
            if keep is not None and f.name not in keep:
                continue
            kind = hints[f.name]
            if dataclasses.is_dataclass(kind):
                if f.metadata.get("in_template", True):
                    out[f.name] = build(kind, None)
            elif f.metadata.get("omit_default"):
                if action in f.metadata.get("example_actions", ()):
                    out[f.name] = f.metadata["example"]
            else:
                out[f.name] = _default_of(f)
        return out

    return build(cls, sections + (action,) if action not in sections else sections)


def action_schema(
    cls: type,
    action: str,
    *,
    sections: tuple[str, ...],
    model: str,
    network_arch: str,
    core_module: str,
    reads: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The complete packaged schema of one action: common sections, ``train`` and the action's own.

    ``reads`` (the fields the action's code reads: dotted leaves or sections) becomes
    ``x_action_reads``, sorted; every entry must name a field of the schema.
    """
    full = object_schema(cls)
    keep = sections + (action,) if action not in sections else sections
    properties = {k: v for k, v in full["properties"].items() if k in keep}
    extra: dict[str, Any] = {}
    if reads is not None:
        unknown = [key for key in reads if not _names_field({"properties": properties}, key)]
        if unknown:
            raise ValueError(f"{action}: fields read but not in the schema: {', '.join(unknown)}")
        extra["x_action_reads"] = sorted(reads)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"{model} {action} spec",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "default": action_defaults(cls, action, sections),
        "popular": popular_defaults(cls),
        "automl_default_parameters": automl_default_parameters(cls),
        "automl_disabled_parameters": automl_disabled_parameters(cls),
        "x_tao_schema": {
            "action": action,
            "core_module": core_module,
            "model": model,
            "network_arch": network_arch,
            "schema_action": action,
            "schema_version": SCHEMA_VERSION,
            "source": f"{cls.__module__}.{cls.__qualname__}",
        },
        **extra,
    }


def _names_field(schema: dict[str, Any], dotted: str) -> bool:
    node: Any = schema
    for part in dotted.split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
        if node is None:
            return False
    return True


def manifest(
    cls: type,
    actions: tuple[str, ...],
    *,
    model: str,
    network_arch: str,
    core_module: str,
    automl_enabled: bool,
) -> dict[str, Any]:
    """``schemas/manifest.json``: where each action's schema and template are, and the AutoML lists."""
    entries = {}
    for action in sorted(actions):
        entries[action] = {
            "automl_default_parameters": automl_default_parameters(cls),
            "automl_disabled_parameters": automl_disabled_parameters(cls),
            "core_module": core_module,
            "path": f"schemas/{action}.schema.json",
            "popular": popular_defaults(cls),
            "schema_action": action,
            "spec_template": f"references/spec_template_{action}.yaml",
        }
    return {
        "actions": entries,
        "automl_enabled": automl_enabled,
        "failures": {},
        "model": model,
        "network_arch": network_arch,
        "schema_version": SCHEMA_VERSION,
    }
