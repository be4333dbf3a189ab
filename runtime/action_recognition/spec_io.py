"""Load ``-e spec.yaml`` plus ``dotted.key=value`` overrides into an ``ExperimentConfig``.

Checks every field against its dataclass declaration (type, enum, minimum/maximum) and reports all
problems at once, each naming the dotted key, the value and what is allowed. TAO's ``Optional``
fields (declared ``nullable``) may be ``null``, as tao-core writes them: null means unset (the
field's default, ``''`` for paths). Also builds what TAO saves as ``experiment.yaml``. Needs no torch.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

from skillbank.runtime.config.action_recognition import ExperimentConfig
from skillbank.runtime.config.fields import MISSING_VALUE
from skillbank.runtime.config.loading import ConfigError, from_dict
from skillbank.runtime.limits import short_repr


class SpecError(ConfigError):
    """A spec that cannot run; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the spec:\n{lines}")


def parse_override(text: str) -> tuple[str, Any]:
    """``train.optim.lr=0.01`` -> ("train.optim.lr", 0.01); the value is read as YAML."""
    from skillbank.runtime.yaml_io import safe_load

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError([f"{text!r}: an override is written dotted.key=value (e.g. train.num_epochs=5)"])
    try:
        value = safe_load(raw) if raw.strip() else ""
    except Exception:  # noqa: BLE001 - an unparsable value is kept as the literal string
        value = raw
    return key, value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _known_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            keys += _known_keys(kind, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, _known_keys(ExperimentConfig), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def set_override(spec: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` in ``spec`` (in place), creating sections; unknown keys are an error."""
    cls: Any = ExperimentConfig
    node = spec
    parts = key.split(".")
    for i, part in enumerate(parts):
        names = {f.name for f in dataclasses.fields(cls)}
        if part not in names:
            raise SpecError([f"{key}: unknown spec key{_did_you_mean(key)}"])
        kind = _field_types(cls)[part]
        last = i == len(parts) - 1
        if dataclasses.is_dataclass(kind):
            if last:
                if not isinstance(value, dict):
                    raise SpecError([f"{key}: is a section; set its keys, e.g. {key}.<name>=value"])
                node[part] = value
                return
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, cls = node[part], kind
        elif not last:
            raise SpecError([f"{key}: {'.'.join(parts[: i + 1])} is a value, not a section"])
        else:
            node[part] = value


def _type_problem(key: str, value: Any, kind: Any) -> tuple[Any, str | None]:
    """(value, problem): the value converted where that is lossless, or a message."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # ``str | None``: None is fine, else the other type
        if value is None:
            return value, None
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
        return _type_problem(key, value, kind)
    if kind is bool:
        return value, None if isinstance(value, bool) else "expected true or false"
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value, None if ok else "expected an integer"
    if kind is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads 1e-3 as a string; TAO (OmegaConf) accepts it as a float.
                return float(value), None
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, int) and abs(value) > sys.float_info.max:
            return value, "too large for a number (at most about 1.8e308)"
        return (float(value) if ok else value), None if ok else "expected a number"
    if kind is str:
        return value, None if isinstance(value, str) else "expected a string"
    if origin in (list, list):
        if not isinstance(value, list):
            return value, "expected a list"
        (item_kind,) = typing.get_args(kind)
        out = []
        for i, item in enumerate(value):
            item, problem = _type_problem(f"{key}[{i}]", item, item_kind)
            if problem:
                return value, f"item {i} ({item!r}): {problem}"
            out.append(item)
        return out, None
    if origin in (dict, dict):
        if value is None:
            return value, None
        if not isinstance(value, dict):
            return value, "expected a mapping"
        key_kind, value_kind = typing.get_args(kind)
        for k, v in value.items():
            if _type_problem(key, k, key_kind)[1] or _type_problem(key, v, value_kind)[1]:
                return value, f"expected a mapping of {key_kind.__name__} to {value_kind.__name__}, got {k!r}: {v!r}"
        return value, None
    return value, None


def check_values(spec: dict[str, Any], cls: type = ExperimentConfig, prefix: str = "") -> list[str]:
    """Every problem of type, enum and bounds in ``spec`` (converts floats in place)."""
    problems: list[str] = []
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for unknown in sorted(set(spec) - names):
        problems.append(f"{prefix}{unknown}: unknown spec key{_did_you_mean(prefix + unknown)}")
    for f in dataclasses.fields(cls):
        if f.name not in spec:
            continue
        key, value, kind = f"{prefix}{f.name}", spec[f.name], hints[f.name]
        if dataclasses.is_dataclass(kind):
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"{key}: expected a section (mapping), got {value!r}")
            else:
                problems += check_values(value, kind, key + ".")
            continue
        if value == MISSING_VALUE:
            continue  # mandatory-and-missing is checked per action
        if value is None and f.metadata.get("nullable"):
            spec[f.name] = _default(f)  # TAO's Optional field set to null: unset
            continue
        value, problem = _type_problem(key, value, kind)
        if problem:
            problems.append(f"{key}: {problem}, got {value!r}")
            continue
        unusable = _unusable_number(value)
        if unusable:  # NaN, infinity or an integer beyond a C int: the same rule as `skillbank validate`
            problems.append(f"{key}: {unusable}, got {short_repr(value)}")
            continue
        spec[f.name] = value
        meta = f.metadata
        if meta.get("enum") and value is not None and value not in meta["enum"]:
            problems.append(f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, meta['enum']))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if meta.get("minimum") is not None and value < meta["minimum"]:
                problems.append(f"{key}: {value!r} is below the minimum {meta['minimum']}")
            if meta.get("maximum") is not None and value > meta["maximum"]:
                problems.append(f"{key}: {value!r} is above the maximum {meta['maximum']}")
    return problems


def _unusable_number(value: Any) -> str:
    """Why a typed value still cannot be used (NaN, infinity, an integer beyond a C int), or ""."""
    from skillbank.runtime.validation import INT_RANGE

    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            return "not a finite number (NaN and infinity are not allowed)"
        if isinstance(item, int) and not isinstance(item, bool) and not INT_RANGE[0] <= item <= INT_RANGE[1]:
            return f"outside the integer range the runtime holds ({INT_RANGE[0]} to {INT_RANGE[1]})"
    return ""


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return copy.deepcopy(f.default)


def missing_values(spec: dict[str, Any], action: str) -> list[str]:
    """Keys of the ``action`` section still holding TAO's ``???`` marker (or absent and mandatory)."""
    section = spec.get(action) or {}
    cls = _field_types(ExperimentConfig).get(action)
    if cls is None or not dataclasses.is_dataclass(cls):
        return []
    problems = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("mandatory") and section.get(f.name, MISSING_VALUE) in (MISSING_VALUE, None, ""):
            problems.append(f"{action}.{f.name}: required; set it in the spec or on the command line "
                            f"({action}.{f.name}=...)")
    return problems


def read_spec_file(path: str | os.PathLike) -> dict[str, Any]:
    from skillbank.runtime.yaml_io import safe_load

    path = Path(path)
    if not path.is_file():
        raise SpecError([f"-e {str(path)!r}: no such spec file"])
    try:
        data = safe_load(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - YAML syntax errors of any kind
        raise SpecError([f"-e {str(path)!r}: not valid YAML: {exc}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError([f"-e {str(path)!r}: a spec is a YAML mapping, got {type(data).__name__}"])
    return data


def load_config(spec_path: str | os.PathLike | None, overrides: list[str], action: str) -> ExperimentConfig:
    """The experiment config of ``action`` from a spec file and ``key=value`` overrides."""
    spec = read_spec_file(spec_path) if spec_path else {}
    problems: list[str] = []
    for text in overrides:
        try:
            set_override(spec, *parse_override(text))
        except SpecError as exc:
            problems += exc.problems
    problems += check_values(spec)
    problems += missing_values(spec, action)
    if problems:
        raise SpecError(problems)
    # Missing sections take their defaults; a ``None`` section (``train:`` with nothing under it) too.
    spec = {k: v for k, v in spec.items() if v is not None}
    return from_dict(ExperimentConfig, spec)


def results_dir(config: ExperimentConfig, action: str) -> Path:
    """Where ``action`` writes: ``<action>.results_dir`` if set, else ``<results_dir>/<action>``."""
    own = getattr(getattr(config, action), "results_dir", "")
    if own:
        return Path(own)
    if not config.results_dir:
        raise SpecError([f"results_dir: empty; set results_dir=<folder> (or {action}.results_dir)"])
    return Path(config.results_dir) / action


def redacted(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a spec dict with every secret field blanked (for checkpoints and logs).

    Which fields are secret is the SDK's one rule (sdk/secrets.py: the encryption key and secret-looking
    names), so what a checkpoint or experiment.yaml never holds is what a job record never shows.
    """
    from skillbank.runtime.sdk.secrets import redact_spec, secret_fields

    return redact_spec(spec, secret_fields(spec))


def experiment_spec(spec: dict[str, Any], action: str) -> dict[str, Any]:
    """What TAO saves as ``<results folder>/experiment.yaml`` for ``action``, from the full resolved spec.

    Every section, with ``results_dir`` set as TAO's ``update_results_dir`` does: ``<action>.results_dir``
    when set, else ``<results_dir>/<action>``, written both at the top level and in the action's section.
    Secrets are blanked (TAO would keep them; here they never reach a file). Pure: dict in, dict out.
    """
    out = redacted(spec)  # a deep copy: the caller's spec is left as it is
    section = out.get(action)
    own = section.get("results_dir") if isinstance(section, dict) else None
    if own:
        out["results_dir"] = own
    elif out.get("results_dir"):
        out["results_dir"] = os.path.join(out["results_dir"], action)
        if isinstance(section, dict):
            section["results_dir"] = out["results_dir"]
    else:
        raise SpecError([f"results_dir: empty; set results_dir=<folder> (or {action}.results_dir)"])
    return out


def write_experiment_yaml(config: ExperimentConfig, action: str) -> Path:
    """Write ``experiment.yaml`` (see :func:`experiment_spec`) into the action's results folder."""
    from skillbank.runtime.config.loading import to_dict
    from skillbank.runtime.yaml_io import safe_dump

    from .status_log import is_rank_zero

    folder = results_dir(config, action)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment.yaml"
    if not is_rank_zero():  # data-parallel training: the global rank zero writes the job's files
        return path
    tmp = folder / ".experiment.yaml.tmp"
    tmp.write_text(safe_dump(experiment_spec(to_dict(config), action)), encoding="utf-8")
    os.replace(tmp, path)
    return path
