"""Validate ``spec_overrides`` against a skill's packaged schema; report every problem at once.

Pure apart from reading the skill's packaged files. Deliberately does not use
the ``jsonschema`` package: it costs more start-up than the whole rest of
``skillbank validate``, and our messages (dotted key, value, what is allowed,
did-you-mean) are the point of this module. The generated schemas are still
checked with ``jsonschema`` in the test suite and CI.

Beyond the schema's own types, bounds and enums, values the runtime cannot use
are problems too: NaN and infinite numbers, integers outside the C ``int``
range, label maps that are not string names to the ids 0..n-1, a key given
both nested and dotted with different values. The list is capped at
``SKILLBANK_MAX_PROBLEMS`` (the rest are counted, cheaply: the cost stays
linear in the number of keys) and echoed values at ``SKILLBANK_MAX_ECHO_CHARS``.
"""
from __future__ import annotations

import sys
from collections import namedtuple

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.limits import short_repr
from skillbank.runtime.overrides import flatten, is_section
from skillbank.runtime.settings import MAX_ECHO_CHARS, MAX_PROBLEMS, limit
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import build_spec, expand_shorthand, get_dotted

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from typing import Any

MISSING_VALUE = "???"
INT_RANGE = (-(2**31), 2**31 - 1)  # what the runtime's integers hold (a C int: epochs, sizes, ids)
_JSON_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping"}
_INFINITIES = (float("inf"), float("-inf"))


# Records are named tuples, not dataclasses: importing dataclasses costs half of `skillbank validate`'s
# start-up budget (`make bench`); collections costs far less (still the largest import left on that path).
class Problem(namedtuple("Problem", ("key", "value", "message", "allowed"), defaults=("",))):
    """One thing wrong with the overrides: the dotted ``key`` (str), its ``value``, what is wrong
    (``message``) and what is ``allowed`` (str, may be empty)."""

    __slots__ = ()

    def __str__(self) -> str:
        text = f"{self.key}: {self.message} (got {short_repr(self.value)})"
        return f"{text}; allowed: {self.allowed}" if self.allowed else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a value too large, too deep or not finite is given as its shortened repr."""
        value = self.value if _echoes_whole(self.value) else short_repr(self.value)
        return {"key": self.key, "value": value, "message": self.message, "allowed": self.allowed}


def _echoes_whole(value: Any, budget: int = 64) -> bool:
    """Whether ``value`` is small plain data that a message may carry as it is (walks at most ``budget`` items)."""
    cap = limit(MAX_ECHO_CHARS)
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > 4:
            return False
        if isinstance(item, float) and not _finite(item):
            return False
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**53:
            return False
        if isinstance(item, str) and len(item) > cap:
            return False
        if isinstance(item, dict):
            if not all(isinstance(k, str) and len(k) <= cap for k in item):
                return False
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif not (item is None or isinstance(item, (bool, int, float, str))):
            return False
    return True


class SpecValidationError(SkillbankError, ValueError):
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
    return _checked(skill, action, overrides, check_data_sources)[0]


class ValidatedSpec(namedtuple("ValidatedSpec", ("skill", "action", "overrides", "spec"))):
    """Overrides that passed validation for one skill's action, and the full spec they make.

    ``skill`` (str) is the skill's name; ``overrides`` (dict) the flat dotted keys, shorthand keys
    expanded: what the user set; ``spec`` (dict) the action's template with the overrides merged in.
    Made by :func:`validated_spec` only: ``create_job`` makes one from plain overrides, and a caller that
    holds one already (``skillbank spec`` builds one to print the spec) may pass it to ``create_job``
    instead, which takes it as it is rather than validating the same overrides again.
    """

    __slots__ = ()


def validated_spec(
    skill: Skill, action: str, overrides: dict[str, Any], *, check_data_sources: bool = True
) -> ValidatedSpec:
    """The overrides checked and merged into the template; raises SpecValidationError listing every problem."""
    problems, normalized, merged = _checked(skill, action, overrides, check_data_sources)
    if problems:
        raise SpecValidationError(problems, skill.name, action)
    return ValidatedSpec(skill.name, action, normalized, merged)


def resolve_spec(
    skill: Skill, action: str, overrides: dict[str, Any], *, check_data_sources: bool = True
) -> dict[str, Any]:
    """The merged full spec of :func:`validated_spec`; raises SpecValidationError listing every problem."""
    return validated_spec(skill, action, overrides, check_data_sources=check_data_sources).spec


def _checked(
    skill: Skill, action: str, overrides: dict[str, Any], check_data_sources: bool
) -> tuple[list[Problem], dict[str, Any], dict[str, Any]]:
    """(every problem, the overrides flat with shorthand expanded, the template with the known keys merged)."""
    schema = skill.schema(action)
    leaves = leaf_schemas(schema)
    repeated: list[tuple[str, Any, Any]] = []
    flat = flatten(overrides, schema, repeated=repeated)
    problems = _repeated_keys(repeated) + _shorthand_conflicts(flat, skill.shorthand_keys())
    normalized = expand_shorthand(flat, skill.shorthand_keys())
    cap = limit(MAX_PROBLEMS)
    not_listed = 0
    for key, value in normalized.items():
        prop = leaves.get(key)
        if len(problems) >= cap:  # past the cap only count: no did-you-mean search, no message
            not_listed += 1 if prop is None else len(check_value(key, value, prop))
            continue
        if prop is None:
            problems.append(_section_given_a_value(key, value, schema) or _unknown_key(key, value, leaves, schema))
            continue
        problems.extend(check_value(key, value, prop))
    merged = build_spec(skill.template(action), {k: v for k, v in normalized.items() if k in leaves})
    problems.extend(_cross_field_problems(merged, normalized))
    if check_data_sources:
        problems.extend(_missing_data_sources(skill, action, merged))
    not_listed += max(0, len(problems) - cap)
    if not_listed:
        problems = problems[:cap] + [Problem(
            "...", None, f"{not_listed} more problem(s) not listed",
            f"at most {cap} are listed ({MAX_PROBLEMS}); fix these and validate again")]
    return problems, normalized, merged


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
                return [Problem(key, value, f"item {i} ({short_repr(element)}) is not "
                                f"{_JSON_TYPES.get(item.get('type'))}", _allowed(prop))]
            unusable = _unusable_number(element, item.get("type"))
            if unusable:
                return [Problem(key, value, f"item {i}: {unusable}", _allowed(prop))]
        return []
    unusable = _unusable_number(value, kind)
    if unusable:
        return [Problem(key, value, unusable, _allowed(prop))]
    problems = []
    if "enum" in prop and value not in prop["enum"]:
        import difflib  # only for a problem's did-you-mean: valid overrides do not pay for it

        hint = difflib.get_close_matches(str(value), [str(e) for e in prop["enum"] if e is not None], n=1)
        message = "not one of the allowed values" + (f"; did you mean {hint[0]!r}?" if hint else "")
        problems.append(Problem(key, value, message, _allowed(prop)))
    if kind in ("integer", "number"):
        if "minimum" in prop and value < prop["minimum"]:
            problems.append(Problem(key, value, f"below the minimum {prop['minimum']}", _allowed(prop)))
        if "maximum" in prop and value > prop["maximum"]:
            problems.append(Problem(key, value, f"above the maximum {prop['maximum']}", _allowed(prop)))
    return problems


def _unusable_number(value: Any, kind: str | None) -> str:
    """Why a value of the right JSON type still cannot reach the runtime (NaN, infinity, overflow), or ""."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, float) and not _finite(value):
        return "not a finite number (NaN and infinity are not allowed)"
    if isinstance(value, int) and kind == "integer" and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        return f"outside the integer range the runtime holds ({INT_RANGE[0]} to {INT_RANGE[1]})"
    if isinstance(value, int) and abs(value) > sys.float_info.max:
        return "too large for a number the runtime holds (at most about 1.8e308)"
    if isinstance(value, (dict, list)):  # free-form values: no NaN or infinity anywhere inside
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, float) and not _finite(item):
                return "holds a number that is not finite (NaN and infinity are not allowed)"
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return ""


def _finite(number: float) -> bool:
    """``math.isfinite(number)`` of a float; math is a library to load (validate's start-up budget, see
    bench/cli_startup.py)."""
    return number == number and number not in _INFINITIES  # NaN is the one float unequal to itself


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
    """The model's classes are the ids 0..n-1, each named once by a string (its class folder)."""
    allowed = ("a non-empty mapping of class name (a string) to the ids 0..n-1, each used once, "
               "e.g. {catch: 0, smile: 1}")
    if not isinstance(value, dict) or not value:
        return [Problem(key, value, "must be a non-empty mapping of class name to index", allowed)]
    problems = []
    ids: list[int] = []
    for name, index in value.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem(key, name, "class name must be a non-empty string (the class folder's name)",
                                    allowed))
            continue
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            problems.append(Problem(f"{key}.{name}", index, "class index must be an integer >= 0", allowed))
            continue
        ids.append(index)
    counts: dict[int, int] = {}
    for index in ids:
        counts[index] = counts.get(index, 0) + 1
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        problems.append(Problem(key, value, f"class indices must be distinct; repeated: {duplicates}", allowed))
    elif not problems and sorted(ids) != list(range(len(ids))):
        missing = sorted(set(range(len(ids))) - set(ids))[:5]
        problems.append(Problem(key, value, f"class indices must be exactly 0..{len(ids) - 1}; missing {missing}",
                                allowed))
    return problems


def _section_given_a_value(key: str, value: Any, schema: dict[str, Any]) -> Problem | None:
    """A section (``model``) given a value instead of its fields, else None."""
    if not is_section(schema, key):
        return None
    node: Any = schema
    for part in key.split("."):
        node = node["properties"][part]
    fields = list(node.get("properties") or {})[:3]
    example = ", ".join(f"{key}.{f}" for f in fields)
    return Problem(key, value, "is a section, not a field; set its fields instead",
                   f"a mapping of its fields, or dotted keys such as {example}")


def _repeated_keys(repeated: list[tuple[str, Any, Any]]) -> list[Problem]:
    """A key given twice (nested and dotted) with different values: which one is meant is not known."""
    return [Problem(key, other, f"given twice with different values ({short_repr(kept)} and {short_repr(other)})",
                    f"give {key} once, either nested or dotted")
            for key, kept, other in repeated if kept != other]


def _unknown_key(key: str, value: Any, leaves: dict[str, Any], schema: dict[str, Any]) -> Problem:
    import difflib  # only for a problem's did-you-mean: valid overrides do not pay for it

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
