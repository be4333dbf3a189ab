"""Validate ``spec_overrides`` against a skill's packaged schema; report every problem at once.

Pure apart from reading the skill's packaged files. Deliberately does not use
the ``jsonschema`` package: it costs more start-up than the whole rest of
``skillbank validate``, and our messages (dotted key, value, what is allowed,
did-you-mean) are the point of this module. The generated schemas are still
checked with ``jsonschema`` in the test suite and CI.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from skillbank.runtime.overrides import flatten
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import build_spec, expand_shorthand, get_dotted

MISSING_VALUE = "???"
_JSON_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the overrides."""

    key: str
    value: Any
    message: str
    allowed: str = ""

    def __str__(self) -> str:
        text = f"{self.key}: {self.message} (got {self.value!r})"
        return f"{text}; allowed: {self.allowed}" if self.allowed else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SpecValidationError(ValueError):
    """Overrides that do not fit the schema; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem], skill: str = "", action: str = "") -> None:
        self.problems = problems
        where = f"{skill} {action}: " if skill else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{where}{len(problems)} problem(s) in spec_overrides:\n{lines}")


def leaf_schemas(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted key -> property schema for every leaf (non-section) field."""
    out: dict[str, dict[str, Any]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        key = f"{prefix}{name}"
        if isinstance(prop, dict) and "properties" in prop:
            out.update(leaf_schemas(prop, key + "."))
        else:
            out[key] = prop
    return out


def normalize_overrides(skill: Skill, action: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Flat dotted overrides with shorthand keys expanded."""
    flat = flatten(overrides, skill.schema(action))
    return expand_shorthand(flat, skill.shorthand_keys())


def validate_overrides(
    skill: Skill, action: str, overrides: dict[str, Any], *, check_data_sources: bool = True
) -> list[Problem]:
    """Every problem in ``overrides`` for ``skill``/``action``; an empty list means valid."""
    schema = skill.schema(action)
    leaves = leaf_schemas(schema)
    flat = flatten(overrides, schema)
    problems = _shorthand_conflicts(flat, skill.shorthand_keys())
    normalized = expand_shorthand(flat, skill.shorthand_keys())
    for key, value in normalized.items():
        prop = leaves.get(key)
        if prop is None:
            problems.append(_unknown_key(key, value, leaves, schema))
            continue
        problems.extend(check_value(key, value, prop))
    merged = build_spec(skill.template(action), {k: v for k, v in normalized.items() if k in leaves})
    problems.extend(_cross_field_problems(merged, normalized))
    if check_data_sources:
        problems.extend(_missing_data_sources(skill, action, merged))
    return problems


def resolve_spec(
    skill: Skill, action: str, overrides: dict[str, Any], *, check_data_sources: bool = True
) -> dict[str, Any]:
    """The merged full spec (template + overrides); raises SpecValidationError listing every problem."""
    problems = validate_overrides(skill, action, overrides, check_data_sources=check_data_sources)
    if problems:
        raise SpecValidationError(problems, skill.name, action)
    return build_spec(skill.template(action), normalize_overrides(skill, action, overrides))


def value_type(prop: dict[str, Any]) -> str | None:
    """The JSON type of a property, without the ``"null"`` that TAO's Optional fields add."""
    kind = prop.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        return rest[0] if len(rest) == 1 else None
    return kind


def is_nullable(prop: dict[str, Any]) -> bool:
    """Whether ``null`` is allowed (TAO's Optional fields; null means unset, as tao-core writes them)."""
    kind = prop.get("type")
    return isinstance(kind, list) and "null" in kind


def check_value(key: str, value: Any, prop: dict[str, Any]) -> list[Problem]:
    """Type, bounds and enum checks of one value against its property schema."""
    kind = value_type(prop)
    if value is None and is_nullable(prop):
        return []
    if key.endswith("label_map"):
        return _label_map_problems(key, value)
    if value == MISSING_VALUE and prop.get("default") == MISSING_VALUE:
        return []
    if not _has_type(value, kind):
        return [Problem(key, value, f"wrong type, expected {_JSON_TYPES.get(kind, kind)}", _allowed(prop))]
    if kind == "array":
        item = prop.get("items") or {}
        for i, element in enumerate(value):
            if not _has_type(element, item.get("type")):
                return [Problem(key, value, f"item {i} ({element!r}) is not {_JSON_TYPES.get(item.get('type'))}",
                                _allowed(prop))]
        return []
    problems = []
    if "enum" in prop and value not in prop["enum"]:
        hint = difflib.get_close_matches(str(value), [str(e) for e in prop["enum"] if e is not None], n=1)
        message = "not one of the allowed values" + (f"; did you mean {hint[0]!r}?" if hint else "")
        problems.append(Problem(key, value, message, _allowed(prop)))
    if kind in ("integer", "number"):
        if "minimum" in prop and value < prop["minimum"]:
            problems.append(Problem(key, value, f"below the minimum {prop['minimum']}", _allowed(prop)))
        if "maximum" in prop and value > prop["maximum"]:
            problems.append(Problem(key, value, f"above the maximum {prop['maximum']}", _allowed(prop)))
    return problems


def _has_type(value: Any, kind: str | None) -> bool:
    if kind is None:
        return True
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def _allowed(prop: dict[str, Any]) -> str:
    """What a field accepts, in words: type, bounds, enum (and null, meaning unset, where TAO allows it)."""
    kind = value_type(prop)
    unset = " or null (unset)" if is_nullable(prop) else ""
    if "enum" in prop:
        return ", ".join(str(e) for e in prop["enum"] if e is not None) + unset
    text = _JSON_TYPES.get(kind, str(kind))
    if kind == "array":
        text = f"a list of {_JSON_TYPES.get((prop.get('items') or {}).get('type'), 'values')}"
    bounds = []
    if "minimum" in prop:
        bounds.append(f">= {prop['minimum']}")
    if "maximum" in prop:
        bounds.append(f"<= {prop['maximum']}")
    return f"{text} {' and '.join(bounds)}".strip() + unset


def _label_map_problems(key: str, value: Any) -> list[Problem]:
    allowed = "a non-empty mapping of class name to distinct integers >= 0, e.g. {catch: 0, smile: 1}"
    if not isinstance(value, dict) or not value:
        return [Problem(key, value, "must be a non-empty mapping of class name to index", allowed)]
    problems = []
    for name, index in value.items():
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            problems.append(Problem(f"{key}.{name}", index, "class index must be an integer >= 0", allowed))
    indices = [i for i in value.values() if isinstance(i, int)]
    duplicates = sorted({i for i in indices if indices.count(i) > 1})
    if duplicates:
        problems.append(Problem(key, value, f"class indices must be distinct; repeated: {duplicates}", allowed))
    return problems


def _unknown_key(key: str, value: Any, leaves: dict[str, Any], schema: dict[str, Any]) -> Problem:
    candidates = list(leaves)
    hints = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    if not hints:
        last = key.rsplit(".", 1)[-1]
        hints = [c for c in candidates if c.rsplit(".", 1)[-1] == last][:3]
    if not hints:
        tails = {c.rsplit(".", 1)[-1]: c for c in candidates}
        hints = [tails[t] for t in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(tails), n=3)]
    top = key.split(".", 1)[0]
    if top not in (schema.get("properties") or {}):
        sections = ", ".join(schema.get("properties") or {})
        allowed = f"keys under: {sections}"
    else:
        allowed = "a dotted key of this action's schema (see `skillbank schema`)"
    message = "unknown key" + (f"; did you mean {' or '.join(repr(h) for h in hints)}?" if hints else "")
    return Problem(key, value, message, allowed)


def _shorthand_conflicts(flat: dict[str, Any], shorthand: dict[str, str]) -> list[Problem]:
    problems = []
    for short, target in shorthand.items():
        if short in flat and target in flat and flat[short] != flat[target]:
            problems.append(Problem(short, flat[short], f"conflicts with {target}={flat[target]!r}",
                                    f"give only one of {short} / {target}"))
    return problems


def _cross_field_problems(merged: dict[str, Any], given: dict[str, Any]) -> list[Problem]:
    """Constraints between fields that a per-field check cannot see."""
    problems = []
    for section in ("train", "evaluate", "inference"):
        ids_key, num_key = f"{section}.gpu_ids", f"{section}.num_gpus"
        if ids_key not in given and num_key not in given:
            continue
        ids, num = get_dotted(merged, ids_key), get_dotted(merged, num_key)
        if isinstance(ids, list) and isinstance(num, int) and not isinstance(num, bool) and len(ids) != num:
            problems.append(Problem(ids_key, ids, f"has {len(ids)} id(s) but {num_key} is {num}",
                                    f"a list of exactly {num_key} GPU ids"))
    problems.extend(_interval_problems(merged))
    return problems


def _interval_problems(merged: dict[str, Any]) -> list[Problem]:
    """TAO asserts that validation_interval and (epoch unit) checkpoint_interval do not exceed num_epochs."""
    epochs = get_dotted(merged, "train.num_epochs")
    if not _has_type(epochs, "integer") or epochs < 1:
        return []
    keys = ["train.validation_interval"]
    if get_dotted(merged, "train.checkpoint_interval_unit", "epoch") == "epoch":
        keys.append("train.checkpoint_interval")
    problems = []
    for key in keys:
        value = get_dotted(merged, key)
        if _has_type(value, "integer") and value > epochs:
            problems.append(Problem(key, value, f"is above train.num_epochs={epochs}",
                                    f"an integer from 1 to train.num_epochs ({epochs})"))
    return problems


def _missing_data_sources(skill: Skill, action: str, merged: dict[str, Any]) -> list[Problem]:
    problems = []
    for key, source in skill.data_sources(action).items():
        value = get_dotted(merged, key)
        if value in (None, "", MISSING_VALUE):
            sample = (source or {}).get("archive")
            allowed = "a local folder or s3:// URI, or a .tar.gz/.tgz/.tar archive of one"
            if sample:
                allowed += f" (sample data: {sample})"
            problems.append(Problem(key, value, f"missing data source required by {action}", allowed))
        elif not isinstance(value, str):
            problems.append(Problem(key, value, "data source must be a path or URI string",
                                    "a local folder or s3:// URI, or an archive of one"))
    return problems
