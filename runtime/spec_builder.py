"""Build a full spec from a template and dotted overrides (pure functions)."""
from __future__ import annotations

import copy

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from typing import Any


def expand_shorthand(overrides: dict[str, Any], shorthand: dict[str, str]) -> dict[str, Any]:
    """Replace skill_info shorthand keys (``num_epochs``) by their dotted keys (``train.num_epochs``).

    Order is kept; when both a shorthand and its dotted key are given the
    dotted key wins (validation reports the conflict when the values differ).
    """
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        target = shorthand.get(key, key)
        if target != key and target in overrides:
            continue
        out[target] = value
    return out


def get_dotted(spec: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key, or ``default`` when any part is missing."""
    node: Any = spec
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_dotted(spec: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key in place, creating intermediate mappings."""
    *parents, leaf = key.split(".")
    node = spec
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = copy.deepcopy(value)


def build_spec(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A new spec: the template with every dotted override applied (the template is not changed)."""
    spec = copy.deepcopy(template)
    for key, value in overrides.items():
        set_dotted(spec, key, value)
    return spec
