"""Build a full spec from a template and dotted overrides (pure functions)."""
from __future__ import annotations

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from typing import Any

_ATOMS = (str, int, float, bool, type(None))  # what copy.deepcopy gives back as it is


def deep_copy(value: Any) -> Any:
    """``copy.deepcopy(value)``; plain JSON data (dicts, lists, strings, numbers, None), which a template and
    overrides read from JSON are, is copied here without importing copy (validate's start-up budget, see
    bench/cli_startup.py). Anything else, or a dict or list that appears twice (a YAML alias), goes to
    copy.deepcopy, which keeps that sharing."""
    if not _plain(value, set()):
        import copy

        return copy.deepcopy(value)
    return _copy_plain(value)


def _plain(value: Any, seen: set[int]) -> bool:
    """Whether ``value`` is JSON data in which no dict or list appears twice (``seen``: the ids met so far)."""
    kind = type(value)
    if kind in _ATOMS:
        return True
    if (kind is not dict and kind is not list) or id(value) in seen:
        return False
    seen.add(id(value))
    if kind is list:
        return all(_plain(item, seen) for item in value)
    return all(type(key) in _ATOMS and _plain(item, seen) for key, item in value.items())


def _copy_plain(value: Any) -> Any:
    if type(value) is dict:
        return {key: _copy_plain(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy_plain(item) for item in value]
    return value


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
    node[leaf] = deep_copy(value)


def build_spec(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A new spec: the template with every dotted override applied (the template is not changed)."""
    spec = deep_copy(template)
    for key, value in overrides.items():
        set_dotted(spec, key, value)
    return spec
