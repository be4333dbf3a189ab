"""Turn a spec dict (as read from YAML) into config dataclasses and back."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from skillbank.runtime.errors import SkillbankError

T = TypeVar("T")


class ConfigError(SkillbankError, ValueError):
    """A spec that does not fit its config dataclass; the message names the dotted key."""

    exit_code = 2  # the spec cannot run as written


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build ``cls`` from ``data``; unknown keys are an error, missing ones take defaults."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data.pop(f.name)
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{prefix}{f.name}: expected a mapping, got {value!r}")
            value = from_dict(kind, value, f"{prefix}{f.name}.")
        kwargs[f.name] = value
    if data:
        unknown = ", ".join(f"{prefix}{k}" for k in sorted(data))
        raise ConfigError(f"unknown spec keys: {unknown}")
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-dict form of a config dataclass, fields in declaration order."""
    return dataclasses.asdict(config)
