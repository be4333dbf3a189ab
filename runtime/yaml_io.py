"""YAML reading and writing with PyYAML's C implementation when it is there (start-up and speed matter).

PyYAML follows YAML 1.1, where ``1e-4`` (no dot) is a string; specs and
overrides are written by people and agents who mean a number, as YAML 1.2
and JSON read it. The loader here resolves such exponent floats as floats.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that also reads YAML 1.2 floats such as 1e-4 and 5E3."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a safe loader (CSafeLoader or SafeLoader)


def safe_dump(data: Any) -> str:
    """Block-style YAML keeping key order (specs read like TAO's templates)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000,
                     allow_unicode=True)
