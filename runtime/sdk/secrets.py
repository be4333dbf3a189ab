"""Keep secrets out of everything the SDK writes or prints.

Secrets reach a job only through its process environment. Specs on disk and
in the job store hold an empty value in every secret field; text shown to a
user (log tails, error messages) has every known secret value replaced.
"""
from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from skillbank.runtime.spec_builder import get_dotted, set_dotted

ENCRYPTION_KEY_ENV = "SKILLBANK_ENCRYPTION_KEY"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_NAMES = (
    ENCRYPTION_KEY_ENV,
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NGC_API_KEY",
    "HF_TOKEN",
    "WANDB_API_KEY",
)
# Spec leaf names treated as secrets even when spec_params does not say so.
_SECRET_NAME = re.compile(
    r"^(key|credentials?|(.*_)?(encryption_key|secret|secret_key|secret_access_key|access_key_id|access_key"
    r"|password|token|session_token|api_key))$",
    re.I,
)
MASK = "***"


def is_secret_field(dotted_key: str) -> bool:
    """Whether a spec field (by its leaf name) holds a secret: ``encryption_key``, ``*_password``, ..."""
    return bool(_SECRET_NAME.search(dotted_key.rsplit(".", 1)[-1]))


def secret_fields(spec: Mapping[str, Any], spec_params: Mapping[str, str] | None = None) -> list[str]:
    """Dotted keys of ``spec`` that hold secrets: those inferred by ``key`` plus secret-looking names."""
    fields = {field for field, function in (spec_params or {}).items() if function == "key"}
    fields.update(key for key in _leaf_keys(spec) if is_secret_field(key))
    return sorted(fields)


def redact_spec(spec: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """A copy of ``spec`` with every field in ``fields`` set to an empty string (present fields only)."""
    out = copy.deepcopy(dict(spec))
    for field in fields:
        if get_dotted(out, field, None) not in (None, ""):
            set_dotted(out, field, "")
    return out


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Known secret values: those in ``env`` (and the process environment) under secret names, plus ``extra``."""
    values = set()
    for source in (os.environ, env or {}):
        for name in SECRET_ENV_NAMES:
            value = source.get(name)
            if value:
                values.add(str(value))
    values.update(str(v) for v in extra if v)
    # Very short values would mask ordinary words; a secret that short is not protected by masking anyway.
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redact_text(text: str, values: Iterable[str] | None = None) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in values if values is not None else secret_values():
        if value:
            text = text.replace(value, MASK)
    return text


def redact_obj(obj: Any, values: Iterable[str]) -> Any:
    """Redact secret values inside strings of a JSON-like structure."""
    values = list(values)
    if isinstance(obj, str):
        return redact_text(obj, values)
    if isinstance(obj, dict):
        return {k: redact_obj(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v, values) for v in obj]
    return obj


def _leaf_keys(spec: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in spec.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaf_keys(value, dotted + ".")
        else:
            yield dotted
