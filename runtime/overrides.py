"""Read ``spec_overrides`` from a JSON or YAML file (or stdin) and put them in dotted form.

Overrides are flat dotted keys (``train.optim.lr: 0.001``); nested mappings
are accepted too and flattened along the schema's sections only, so that a
map-valued field such as ``dataset.label_map`` stays one value.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from skillbank.runtime.yaml_io import safe_load


class OverridesError(ValueError):
    """Overrides that cannot be read (missing file, bad syntax, not a mapping)."""


def load_overrides(source: str | Path) -> dict[str, Any]:
    """Parse the overrides in ``source`` (a path, or ``-`` for stdin); JSON first, then YAML."""
    if str(source) == "-":
        text, where = sys.stdin.read(), "<stdin>"
    else:
        path = Path(source)
        if not path.is_file():
            raise OverridesError(f"overrides file not found: {path}")
        text, where = path.read_text(), str(path)
    return parse_overrides(text, where)


def parse_overrides(text: str, where: str = "<overrides>") -> dict[str, Any]:
    """Parse overrides text (JSON or YAML); an empty document means no overrides."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = safe_load(text)
        except Exception as exc:  # yaml.YAMLError, kept lazy-imported
            raise OverridesError(f"{where}: neither valid JSON nor valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OverridesError(
            f"{where}: overrides must be a mapping of dotted keys to values, got {type(data).__name__}"
        )
    return data


def flatten(overrides: dict[str, Any], schema: dict[str, Any] | None = None, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys.

    With ``schema`` (an object schema), only mappings that sit on a schema
    section (an object with ``properties``) are descended into; without it,
    every mapping is.
    """
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and _is_section(schema, dotted):
            flat.update(flatten(value, schema, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _is_section(schema: dict[str, Any] | None, dotted: str) -> bool:
    if schema is None:
        return True
    node: dict[str, Any] | None = schema
    for part in dotted.split("."):
        props = (node or {}).get("properties")
        if not isinstance(props, dict) or part not in props:
            return False
        node = props[part]
    return isinstance(node, dict) and "properties" in node
