"""The AutoML search space, read from a skill's packaged train schema (pure: dicts in, specs out).

Which parameters (TAO's semantics):

* By default the schema's ``automl_default_parameters``.
* ``hyperparameters`` names others. A leaf may be searched when its type is
  searchable (number, integer, boolean, or a string with an ``enum``) and it
  is not refused. Refused unless ``override_disabled``: a name listed in
  ``automl_disabled_parameters`` or a leaf marked ``automl_enabled: false``.
  A *section* listed there (``model``, ``train.optim``) is not a parameter and
  does not disable the leaves below it: ``model.dropout_ratio`` is
  ``automl_enabled: true`` under the disabled ``model`` section.
* Keys the engine sets itself (``train.num_epochs``, the resume checkpoint,
  results folders) are never searched.

Ranges:

* ``minimum``/``maximum`` (and exclusive bounds) of the schema.
* An unbounded side is derived from the default. Learning-rate-like floats
  (``lr``, ``learning_rate``, ``*_lr``, ``weight_decay``) are searched on a log
  scale over ``[default/10, default*10]`` clipped to the schema's bounds.
  Other floats: ``default/10`` .. ``default*10`` on the missing side (``0..1``
  around a zero default); integers: ``default/4`` .. ``default*4``.
* Enums are categorical and honour ``option_weights``; booleans are categorical.
* ``math_cond``: ``"^ 2"`` powers of two (of any base), ``"/ 8"`` multiples,
  ``"> 0.0"``/``">= 1"``/``"< x"``/``"<= x"`` bounds, ``"!= 0"`` an excluded
  value, and ``"> depends_on"`` (``>=``, ``<``, ``<=``) a relation to the value
  of the ``depends_on`` parameter (a ``parent_param``), which is sampled first
  or, when not searched, read from the trial's spec.
* ``param_ranges`` (``--param-range``) narrow a parameter: ``valid_min``,
  ``valid_max``, ``valid_options``, ``option_weights``, ``log`` or
  ``disabled: true``. A range outside the schema's bounds is an error naming
  the parameter, the range given and the range allowed. A range for a
  parameter that is not otherwise searched adds it (the same rules apply).
"""
from __future__ import annotations

import bisect
import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.secrets import is_secret_field
from skillbank.runtime.validation import leaf_schemas

# Keys the engine owns per trial: searching them would fight the budget plan or the job layout.
ENGINE_KEYS = {
    "train.num_epochs": "the engine sets it per trial from max_epochs (the epoch budget)",
    "train.resume_training_checkpoint_path": "the engine sets it when a trial resumes",
    "train.checkpoint_interval": "the engine saves a checkpoint where each train job's rung segment ends",
    "train.checkpoint_interval_unit": "the engine saves a checkpoint where each train job's rung segment ends",
    "results_dir": "each job gets its own results folder",
    "train.results_dir": "each job gets its own results folder",
}
CUSTOM_RANGE_KEYS = ("valid_min", "valid_max", "valid_options", "option_weights", "log", "disabled")
_LR_LIKE = re.compile(r"^(lr|learning_rate|base_lr|init_lr|max_lr|min_lr|.*_lr|weight_decay|wd)$")
_COMPARISONS = (">=", "<=", "!=", ">", "<")
_DERIVE_FACTOR_FLOAT = 10.0
_DERIVE_FACTOR_INT = 4


class SearchSpaceError(SkillbankError, ValueError):
    """A hyperparameter or custom range that cannot be searched; the message names the key and what is allowed."""

    exit_code = 2


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter.

    ``kind`` is ``float``, ``int`` or ``categorical``. Numeric kinds use
    ``low``/``high`` (inclusive), ``log`` and ``step``; categoricals use
    ``choices`` and optional ``weights``. ``relation`` is ``(op, depends_on)``
    for ``"> depends_on"``-style conditions; ``exclude`` holds values a
    ``"!= x"`` condition forbids inside the range.
    """

    name: str
    kind: str
    default: Any
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    weights: tuple[float, ...] | None = None
    relation: tuple[str, str] | None = None
    exclude: tuple = ()
    depends_on: str | None = None
    parent_param: bool = False
    origin: str = "schema"

    @property
    def weighted(self) -> bool:
        """Categorical with unequal weights: sampled as a quantile through the weights' CDF."""
        return self.kind == "categorical" and self.weights is not None and len(set(self.weights)) > 1

    @property
    def raw_name(self) -> str:
        """The Optuna parameter name (a weighted categorical is a quantile in [0, 1))."""
        return f"{self.name}#q" if self.weighted else self.name

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["choices"] = list(self.choices)
        out["weights"] = list(self.weights) if self.weights is not None else None
        out["relation"] = list(self.relation) if self.relation else None
        out["exclude"] = list(self.exclude)
        return {k: v for k, v in out.items() if v not in (None, (), [])}

    def describe(self) -> str:
        """One line for humans: ``train.optim.lr: float [5e-05, 0.005] log``."""
        if self.kind == "categorical":
            text = f"{self.name}: one of {list(self.choices)}"
            if self.weighted:
                text += f" weights {list(self.weights or ())}"
        else:
            text = f"{self.name}: {self.kind} [{self.low:g}, {self.high:g}]"
            if self.log:
                text += " log"
            if self.step:
                text += f" step {self.step:g}"
        if self.relation:
            text += f" ({self.relation[0]} {self.relation[1]})"
        return text


# ---------------------------------------------------------------------------------------------- schema walk
def section_names(schema: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict) and "properties" in prop:
            out.append(f"{prefix}{name}")
            out.extend(section_names(prop, f"{prefix}{name}."))
    return out


def disabled_parameters(schema: dict[str, Any]) -> set[str]:
    """Names refused without ``override_disabled``: the schema's list plus leaves marked ``automl_enabled: false``."""
    listed = set(schema.get("automl_disabled_parameters") or [])
    marked = {key for key, prop in leaf_schemas(schema).items() if prop.get("automl_enabled") is False}
    return listed | marked


def default_parameters(schema: dict[str, Any]) -> list[str]:
    return list(schema.get("automl_default_parameters") or [])


def searchable_type(prop: dict[str, Any]) -> str | None:
    """``float``/``int``/``bool``/``enum`` when the field can be searched, else None."""
    kind = prop.get("type")
    if isinstance(kind, list):  # a nullable field (tao-core's Optional): its value type
        kind = next((k for k in kind if k != "null"), None)
    if "enum" in prop and kind in ("string", "integer", "number", None):
        return "enum"
    return {"number": "float", "integer": "int", "boolean": "bool"}.get(kind)


def eligible_parameters(schema: dict[str, Any], *, override_disabled: bool = False) -> list[str]:
    """Every leaf ``hyperparameters`` may name (sorted)."""
    disabled = set() if override_disabled else disabled_parameters(schema)
    return sorted(
        key for key, prop in leaf_schemas(schema).items()
        if searchable_type(prop) and key not in disabled and key not in ENGINE_KEYS and not is_secret_field(key)
    )


def check_parameter(schema: dict[str, Any], name: str, *, override_disabled: bool = False) -> dict[str, Any]:
    """The property schema of ``name`` when it may be searched; otherwise a SearchSpaceError saying why."""
    leaves = leaf_schemas(schema)
    if name not in leaves:
        if name in section_names(schema):
            raise SearchSpaceError(f"{name}: is a section, not a parameter; name a leaf such as "
                                   f"{', '.join(k for k in leaves if k.startswith(name + '.'))[:200]}")
        hints = difflib.get_close_matches(name, list(leaves), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(h) for h in hints)}?" if hints else ""
        raise SearchSpaceError(f"{name}: unknown parameter{hint} (allowed: a dotted leaf key of the train schema)")
    if name in ENGINE_KEYS or is_secret_field(name):
        why = ENGINE_KEYS.get(name, "a secret, never a hyperparameter")
        raise SearchSpaceError(f"{name}: cannot be searched: {why}")
    prop = leaves[name]
    if not override_disabled and name in disabled_parameters(schema):
        raise SearchSpaceError(
            f"{name}: AutoML is disabled for this parameter (automl_disabled_parameters / automl_enabled: false); "
            "pass --override-disabled to search it anyway"
        )
    if not searchable_type(prop):
        raise SearchSpaceError(
            f"{name}: type {prop.get('type')!r} cannot be searched (allowed: number, integer, boolean, enum)"
        )
    return prop


# ---------------------------------------------------------------------------------------------- math_cond
def parse_math_cond(text: str, name: str = "") -> tuple[str, Any]:
    """``"^ 2"`` -> ("^", 2); ``"> depends_on"`` -> (">", "depends_on"); ``"!= 0"`` -> ("!=", 0.0)."""
    raw = str(text).strip()
    for op in ("^", "/") + _COMPARISONS:
        if raw.startswith(op):
            operand = raw[len(op):].strip()
            if operand in ("depends_on", "") and op in _COMPARISONS and op != "!=":
                return op, "depends_on"
            try:
                number = float(operand)
            except ValueError:
                break
            if op in ("^", "/") and number <= (1 if op == "^" else 0):
                break
            return op, number
    raise SearchSpaceError(
        f"{name}: math_cond {text!r} is not understood (allowed: '^ N', '/ N', '> x', '>= x', '< x', "
        "'<= x', '!= x', or '> depends_on' with >, >=, <, <=)"
    )


# ---------------------------------------------------------------------------------------------- build
def build_search_space(
    schema: dict[str, Any],
    *,
    hyperparameters: Iterable[str] | None = None,
    param_ranges: dict[str, dict[str, Any]] | None = None,
    override_disabled: bool = False,
    base_values: dict[str, Any] | None = None,
) -> list[ParamSpec]:
    """The parameters to search, parents before the parameters that depend on them.

    ``hyperparameters`` adds to the schema's defaults; ``base_values`` are the
    run's own override values (dotted keys), used as each parameter's default.
    """
    base_values = dict(base_values or {})
    ranges = dict(param_ranges or {})
    names: list[str] = []
    for name in [*default_parameters(schema), *(hyperparameters or []), *ranges]:
        if name not in names:
            names.append(name)
    specs = []
    for name in names:
        custom = ranges.get(name)
        if custom is not None:
            _check_custom_keys(name, custom)
            if custom.get("disabled"):
                continue
        prop = check_parameter(schema, name, override_disabled=override_disabled)
        specs.append(param_spec(name, prop, base_value=base_values.get(name), custom=custom))
    if not specs:
        raise SearchSpaceError("the search space is empty: every parameter is disabled; "
                               f"searchable: {', '.join(eligible_parameters(schema))}")
    return _parents_first(specs, leaf_schemas(schema))


def param_spec(
    name: str, prop: dict[str, Any], *, base_value: Any = None, custom: dict[str, Any] | None = None
) -> ParamSpec:
    """The search spec of one field from its property schema (and an optional custom range)."""
    custom = dict(custom or {})
    kind = searchable_type(prop)
    default = base_value if base_value is not None else prop.get("default")
    common = {
        "name": name,
        "default": default,
        "depends_on": prop.get("depends_on"),
        "parent_param": _truthy(prop.get("parent_param")),
        "origin": "custom" if custom else "schema",
    }
    if kind in ("enum", "bool"):
        return _categorical_spec(name, prop, kind, custom, common)
    conds = [parse_math_cond(c, name) for c in _math_conds(prop)]
    lo, hi = _schema_bounds(prop, kind)
    if "valid_options" in custom:
        options = _numeric_options(name, custom["valid_options"], kind, lo, hi, conds)
        weights = _weights(name, custom.get("option_weights"), options)
        return _relational(ParamSpec(kind="categorical", choices=tuple(options), weights=weights, **common),
                           conds, prop, name)
    log = kind == "float" and bool(_LR_LIKE.match(name.rsplit(".", 1)[-1]))
    low, high, origin = _range(name, kind, default, lo, hi, log, custom)
    if "log" in custom:
        log = bool(custom["log"])
    common["origin"] = origin
    step = None
    exclude: list[Any] = []
    choices: list[Any] | None = None
    for op, operand in conds:
        if operand == "depends_on":
            continue
        if op == "^":
            choices = _powers(operand, low, high, kind)
            if not choices:
                raise SearchSpaceError(f"{name}: no power of {operand:g} lies in [{low:g}, {high:g}] "
                                       f"(math_cond '^ {operand:g}')")
        elif op == "/":
            step = int(operand) if kind == "int" else float(operand)
            low, high = _snap_multiples(name, low, high, step, kind)
            log = False  # Optuna cannot combine a step with a log scale
        elif op == "!=":
            low, high, exclude = _exclude(kind, low, high, operand)
        else:
            low, high = _tighten(kind, low, high, op, operand)
    if low > high:
        raise SearchSpaceError(f"{name}: the conditions {_math_conds(prop)} leave an empty range")
    if log and low <= 0:
        log = False
    if choices is not None:
        choices = [c for c in choices if low <= c <= high and c not in exclude]
        spec = ParamSpec(kind="categorical", choices=tuple(choices), **common)
    else:
        spec = ParamSpec(kind=kind, low=low, high=high, log=log, step=step, exclude=tuple(exclude), **common)
    return _relational(spec, conds, prop, name)


def _categorical_spec(name: str, prop: dict[str, Any], kind: str, custom: dict[str, Any],
                      common: dict[str, Any]) -> ParamSpec:
    allowed = [False, True] if kind == "bool" else list(prop["enum"])
    schema_weights = prop.get("option_weights")
    if schema_weights is not None and len(schema_weights) != len(allowed):
        raise SearchSpaceError(f"{name}: option_weights has {len(schema_weights)} weights for "
                               f"{len(allowed)} options {allowed}")
    for key in ("valid_min", "valid_max"):
        if key in custom:
            raise SearchSpaceError(f"{name}: {key} does not apply to a categorical parameter "
                                   f"(allowed: valid_options from {allowed}, option_weights)")
    options = list(custom.get("valid_options") or allowed)
    outside = [o for o in options if o not in allowed]
    if outside:
        raise SearchSpaceError(f"{name}: valid_options {options} include {outside}, which the schema does not "
                               f"allow (allowed: {allowed})")
    if custom.get("option_weights") is not None:
        weights = _weights(name, custom["option_weights"], options)
    elif schema_weights is not None:
        by_option = dict(zip(map(repr, allowed), schema_weights, strict=True))
        weights = _weights(name, [by_option[repr(o)] for o in options], options)
    else:
        weights = None
    return ParamSpec(kind="categorical", choices=tuple(options), weights=weights, **common)


def _relational(spec: ParamSpec, conds: list[tuple[str, Any]], prop: dict[str, Any], name: str) -> ParamSpec:
    for op, operand in conds:
        if operand == "depends_on":
            parent = prop.get("depends_on")
            if not parent:
                raise SearchSpaceError(f"{name}: math_cond '{op} depends_on' needs a depends_on key in the schema")
            return ParamSpec(**{**asdict(spec), "relation": (op, str(parent))})
    return spec


def _math_conds(prop: dict[str, Any]) -> list[str]:
    cond = prop.get("math_cond")
    if cond in (None, "", "nan"):
        return []
    return [c for c in (cond if isinstance(cond, list) else [cond]) if str(c).strip()]


def _schema_bounds(prop: dict[str, Any], kind: str) -> tuple[float | None, float | None]:
    lo = prop.get("minimum", prop.get("valid_min"))
    hi = prop.get("maximum", prop.get("valid_max"))
    ex_lo = prop.get("exclusiveMinimum", prop.get("exclusive_minimum"))
    ex_hi = prop.get("exclusiveMaximum", prop.get("exclusive_maximum"))
    if isinstance(ex_lo, (int, float)) and not isinstance(ex_lo, bool):
        lo = ex_lo + 1 if kind == "int" else math.nextafter(float(ex_lo), math.inf)
    if isinstance(ex_hi, (int, float)) and not isinstance(ex_hi, bool):
        hi = ex_hi - 1 if kind == "int" else math.nextafter(float(ex_hi), -math.inf)
    lo = None if lo is None or (isinstance(lo, float) and math.isinf(lo)) else lo
    hi = None if hi is None or (isinstance(hi, float) and math.isinf(hi)) else hi
    return lo, hi


def _range(name: str, kind: str, default: Any, lo: float | None, hi: float | None, log: bool,
           custom: dict[str, Any]) -> tuple[Any, Any, str]:
    """Inclusive (low, high) and where they came from (schema, derived or custom)."""
    given_lo, given_hi = custom.get("valid_min"), custom.get("valid_max")
    for key, value in (("valid_min", given_lo), ("valid_max", given_hi)):
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise SearchSpaceError(f"{name}: {key} {value!r} is not a number")
    if given_lo is not None or given_hi is not None:
        allowed = f"[{_fmt(lo, '-inf')}, {_fmt(hi, 'inf')}]"
        given = f"[{_fmt(given_lo, '.')}, {_fmt(given_hi, '.')}]"
        if (given_lo is not None and ((lo is not None and given_lo < lo) or (hi is not None and given_lo > hi))) or \
           (given_hi is not None and ((hi is not None and given_hi > hi) or (lo is not None and given_hi < lo))):
            raise SearchSpaceError(f"{name}: custom range {given} is outside the schema's bounds; allowed: {allowed}")
        if given_lo is not None and given_hi is not None and given_lo > given_hi:
            raise SearchSpaceError(f"{name}: custom range {given} has valid_min above valid_max")
    d = default if isinstance(default, (int, float)) and not isinstance(default, bool) else (lo or 0)
    if log and d > 0:
        low, high = d / _DERIVE_FACTOR_FLOAT, d * _DERIVE_FACTOR_FLOAT
        low = max(low, lo) if lo is not None else low
        high = min(high, hi) if hi is not None else high
        origin = "derived"
    else:
        low, high, origin = lo, hi, "schema"
        if low is None:
            low, origin = _derive(kind, d, below=True), "derived"
        if high is None:
            high, origin = _derive(kind, d, below=False, low=low), "derived"
    if given_lo is not None:
        low, origin = given_lo, "custom"
    if given_hi is not None:
        high, origin = given_hi, "custom"
    if low > high:  # e.g. a custom valid_max below the derived low
        raise SearchSpaceError(f"{name}: range [{_fmt(low)}, {_fmt(high)}] is empty; give both valid_min and valid_max")
    if kind == "int":
        low, high = int(math.ceil(low)), int(math.floor(high))
    else:
        low, high = float(low), float(high)
    return low, high, origin


def _derive(kind: str, default: float, *, below: bool, low: float | None = None) -> float:
    factor = _DERIVE_FACTOR_INT if kind == "int" else _DERIVE_FACTOR_FLOAT
    if below:
        if default > 0:
            return max(1, default // factor) if kind == "int" else default / factor
        return default - (factor if kind == "int" else 1.0)
    if default > 0:
        return default * factor
    return (low if low is not None else default) + (factor if kind == "int" else 1.0)


def _powers(base: float, low: float, high: float, kind: str) -> list[Any]:
    out, k = [], 0
    while base ** k <= high and k < 64:
        value = base ** k
        if value >= low:
            out.append(int(value) if kind == "int" or float(value).is_integer() else value)
        k += 1
    return out


def _snap_multiples(name: str, low: Any, high: Any, step: Any, kind: str) -> tuple[Any, Any]:
    snapped_lo = math.ceil(low / step) * step
    snapped_hi = math.floor(high / step) * step
    if kind == "int":
        snapped_lo, snapped_hi = int(snapped_lo), int(snapped_hi)
    if snapped_lo > snapped_hi:
        raise SearchSpaceError(f"{name}: no multiple of {step:g} lies in [{low:g}, {high:g}] (math_cond '/ {step:g}')")
    return snapped_lo, snapped_hi


def _tighten(kind: str, low: Any, high: Any, op: str, c: float) -> tuple[Any, Any]:
    if op in (">", ">="):
        if kind == "int":
            bound = math.floor(c) + 1 if op == ">" else math.ceil(c)
        else:
            bound = math.nextafter(c, math.inf) if op == ">" else c
        return max(low, bound), high
    if kind == "int":
        bound = math.ceil(c) - 1 if op == "<" else math.floor(c)
    else:
        bound = math.nextafter(c, -math.inf) if op == "<" else c
    return low, min(high, bound)


def _exclude(kind: str, low: Any, high: Any, c: float) -> tuple[Any, Any, list[Any]]:
    value = int(c) if kind == "int" and float(c).is_integer() else c
    if low == value:
        low = low + 1 if kind == "int" else math.nextafter(float(low), math.inf)
    elif high == value:
        high = high - 1 if kind == "int" else math.nextafter(float(high), -math.inf)
    elif low < value < high:
        return low, high, [value]
    return low, high, []


def _numeric_options(name: str, options: Any, kind: str, lo: float | None, hi: float | None,
                     conds: list[tuple[str, Any]]) -> list[Any]:
    if not isinstance(options, list) or not options:
        raise SearchSpaceError(f"{name}: valid_options must be a non-empty list (got {options!r})")
    out = []
    allowed = f"[{_fmt(lo, '-inf')}, {_fmt(hi, 'inf')}]"
    for value in options:
        ok_type = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            expected = "an integer" if kind == "int" else "a number"
            raise SearchSpaceError(f"{name}: valid_options value {value!r} is not {expected}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SearchSpaceError(f"{name}: valid_options value {value!r} is outside the schema's bounds; "
                                   f"allowed: {allowed}")
        for op, operand in conds:
            if operand != "depends_on" and not satisfies(value, op, operand):
                raise SearchSpaceError(f"{name}: valid_options value {value!r} breaks math_cond '{op} {operand:g}'")
        out.append(value)
    return out


def _weights(name: str, weights: Any, options: list[Any]) -> tuple[float, ...] | None:
    if weights is None:
        return None
    if not isinstance(weights, list) or len(weights) != len(options):
        raise SearchSpaceError(f"{name}: option_weights {weights!r} must be a list of {len(options)} numbers, "
                               f"one per option {options}")
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights) or sum(weights) <= 0:
        raise SearchSpaceError(f"{name}: option_weights {weights!r} must be numbers >= 0 with a positive sum")
    return tuple(float(w) for w in weights)


def _check_custom_keys(name: str, custom: Any) -> None:
    if not isinstance(custom, dict):
        raise SearchSpaceError(f"{name}: a custom range must be a mapping "
                               f"(allowed keys: {', '.join(CUSTOM_RANGE_KEYS)})")
    unknown = [k for k in custom if k not in CUSTOM_RANGE_KEYS]
    if unknown:
        raise SearchSpaceError(f"{name}: unknown custom range key(s) {unknown}; "
                               f"allowed: {', '.join(CUSTOM_RANGE_KEYS)}")


def _parents_first(specs: list[ParamSpec], leaves: dict[str, dict[str, Any]]) -> list[ParamSpec]:
    """Order so that a depends_on parent comes before its children (stable otherwise); cycles are errors."""
    by_name = {s.name: s for s in specs}
    ordered: list[ParamSpec] = []
    visiting: set[str] = set()

    def visit(spec: ParamSpec) -> None:
        if spec in ordered:
            return
        if spec.name in visiting:
            raise SearchSpaceError(f"{spec.name}: depends_on forms a cycle")
        visiting.add(spec.name)
        parent = spec.depends_on
        if parent:
            if parent not in leaves:
                raise SearchSpaceError(f"{spec.name}: depends_on {parent!r} is not a field of the schema")
            if parent in by_name:
                visit(by_name[parent])
        visiting.discard(spec.name)
        ordered.append(spec)

    for spec in specs:
        visit(spec)
    return ordered


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().upper() == "TRUE")


def _fmt(value: Any, missing: str = "?") -> str:
    return missing if value is None else f"{value:g}" if isinstance(value, (int, float)) else repr(value)


# ---------------------------------------------------------------------------------------------- values
def satisfies(value: Any, op: str, other: Any) -> bool:
    """Whether ``value op other`` holds (``^``: a power of ``other``; ``/``: a multiple of ``other``)."""
    if op == ">":
        return value > other
    if op == ">=":
        return value >= other
    if op == "<":
        return value < other
    if op == "<=":
        return value <= other
    if op == "!=":
        return value != other
    if op == "/":
        return math.isclose(value / other, round(value / other), abs_tol=1e-9)
    if op == "^":
        if value <= 0:
            return False
        exponent = math.log(value, other)
        return math.isclose(exponent, round(exponent), abs_tol=1e-9)
    raise SearchSpaceError(f"unknown comparison {op!r}")


def decode_quantile(spec: ParamSpec, u: float) -> Any:
    """The option a quantile ``u`` in [0, 1) picks through the weights' cumulative distribution."""
    weights = spec.weights or tuple(1.0 for _ in spec.choices)
    total = sum(weights)
    edges, acc = [], 0.0
    for w in weights:
        acc += w / total
        edges.append(acc)
    index = min(bisect.bisect_right(edges, min(max(u, 0.0), 1.0 - 1e-12)), len(spec.choices) - 1)
    while weights[index] == 0 and index > 0:  # a zero-weight option is never chosen
        index -= 1
    return spec.choices[index]


def encode_quantile(spec: ParamSpec, value: Any) -> float:
    """The middle of ``value``'s segment in [0, 1): the quantile that decodes to it."""
    weights = spec.weights or tuple(1.0 for _ in spec.choices)
    total = sum(weights)
    index = list(spec.choices).index(value)
    start = sum(weights[:index]) / total
    return start + weights[index] / total / 2


def raw_value(spec: ParamSpec, value: Any) -> Any:
    """The Optuna parameter value that stands for ``value`` (used to enqueue a known configuration)."""
    if spec.weighted:
        if value not in spec.choices:
            raise SearchSpaceError(f"{spec.name}: {value!r} is not one of {list(spec.choices)}")
        return encode_quantile(spec, value)
    return value


def decode(spec: ParamSpec, raw: Any) -> Any:
    """The spec value of an Optuna parameter value."""
    if spec.weighted:
        return decode_quantile(spec, float(raw))
    if spec.kind == "int":
        return int(raw)
    if spec.kind == "float":
        return float(raw)
    return raw


def apply_relations(space: list[ParamSpec], values: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every relation and excluded value enforced (TAO's clamp-to-valid rule).

    The parent of a relation is the sampled value when searched, otherwise its
    value in ``context`` (the trial's spec). A value that breaks a relation is
    moved to the nearest value of its domain that keeps it; when none exists
    the trial cannot be built and SearchSpaceError says why.
    """
    out = dict(values)
    for spec in space:
        value = out[spec.name]
        if spec.exclude and value in spec.exclude:
            value = _nearest_allowed(spec, value, lambda v, s=spec: v not in s.exclude)
        if spec.relation:
            op, parent = spec.relation
            if parent not in out and parent not in context:
                raise SearchSpaceError(f"{spec.name}: depends_on {parent!r} has no value in the spec")
            other = out.get(parent, context.get(parent))
            if not satisfies(value, op, other):
                def keeps(v: Any, o: str = op, p: Any = other, s: ParamSpec = spec) -> bool:
                    return satisfies(v, o, p) and v not in s.exclude

                value = _nearest_allowed(spec, value, keeps, reason=f"{op} {parent} (= {other!r})")
        out[spec.name] = value
    return out


def _nearest_allowed(spec: ParamSpec, value: Any, ok, reason: str = "") -> Any:
    candidates = domain_points(spec)
    allowed = [c for c in candidates if ok(c)]
    if not allowed and spec.kind == "float":
        # a continuous range: step just past the bound the relation sets
        allowed = [c for c in _float_edges(spec, value) if ok(c)]
    if not allowed:
        raise SearchSpaceError(f"{spec.name}: no value in its range satisfies {reason or 'its conditions'}")
    if spec.kind == "categorical" and not all(isinstance(c, (int, float)) for c in allowed):
        return allowed[0]
    return min(allowed, key=lambda c: (abs(c - value), c))


def _float_edges(spec: ParamSpec, value: Any) -> list[float]:
    """Points near the relation's bound inside a float range (the parent value nudged either way)."""
    out = []
    for v in (value,):
        for direction in (math.inf, -math.inf):
            x = v
            for _ in range(3):
                x = math.nextafter(x, direction)
            out.append(x)
    return [x for x in out if spec.low <= x <= spec.high]


def domain_points(spec: ParamSpec, limit: int = 4096) -> list[Any]:
    """Every value of a finite domain (categorical, int, stepped float); for a float range its two ends."""
    if spec.kind == "categorical":
        return list(spec.choices)
    if spec.kind == "int":
        step = int(spec.step or 1)
        count = (spec.high - spec.low) // step + 1
        if count <= limit:
            return list(range(spec.low, spec.high + 1, step))
        picks = (spec.low + step * round(i * (count - 1) / (limit - 1)) for i in range(limit))
        return sorted({spec.low, spec.high, *picks})
    if spec.step:
        count = int(round((spec.high - spec.low) / spec.step)) + 1
        return [spec.low + i * spec.step for i in range(min(count, limit))]
    return [spec.low, spec.high]


def grid_points(spec: ParamSpec, resolution: int) -> list[Any]:
    """The Optuna values a grid search tries for ``spec`` (``resolution`` points for continuous ranges)."""
    if spec.kind == "categorical":
        return [raw_value(spec, c) for c in spec.choices if not spec.weights or spec.weights[spec.choices.index(c)] > 0]
    if spec.kind == "int":
        points = domain_points(spec)
        if len(points) <= resolution:
            return points
        return sorted({points[round(i * (len(points) - 1) / (resolution - 1))] for i in range(resolution)})
    if spec.step:
        points = domain_points(spec)
        if len(points) <= resolution:
            return points
        return sorted({points[round(i * (len(points) - 1) / (resolution - 1))] for i in range(resolution)})
    if resolution == 1:
        return [spec.default if spec.low <= spec.default <= spec.high else spec.low]
    if spec.log:
        a, b = math.log(spec.low), math.log(spec.high)
        return [float(math.exp(a + (b - a) * i / (resolution - 1))) for i in range(resolution)]
    return [float(spec.low + (spec.high - spec.low) * i / (resolution - 1)) for i in range(resolution)]


def default_values(space: list[ParamSpec]) -> dict[str, Any]:
    """Each parameter's default (the baseline's values)."""
    return {spec.name: spec.default for spec in space}
