"""YAML reading and writing with PyYAML's C implementation when it is there (start-up and speed matter)."""
from __future__ import annotations

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a safe loader (CSafeLoader or SafeLoader)


def safe_dump(data: Any) -> str:
    """Block-style YAML keeping key order (specs read like TAO's templates)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True)
