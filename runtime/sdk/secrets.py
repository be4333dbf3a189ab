"""Keep secrets out of everything the SDK writes or prints.

Secrets reach a job only through its process environment. Specs on disk and
in the job store hold an empty value in every secret field; text shown to a
user (log tails, error messages) has every known secret value replaced.

Masking replaces whole secret values, and only values of at least
``MIN_SECRET_LENGTH`` characters that are not well-known public values
(``test``, ``tlt_encode``...): a short or common value would mask ordinary
words and paths (``s3://data/test.tar.gz`` with the credentials ``test``/``test``)
and is not protected by masking anyway. Masking applies to what is shown or
stored, never to a value passed to a job; a known secret found in a field that
is not a secret field is refused instead (:func:`secrets_in`).
"""
from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from skillbank.runtime import settings
from skillbank.runtime.spec_builder import get_dotted, set_dotted

ENCRYPTION_KEY_ENV = settings.ENCRYPTION_KEY
# The caller's own key when `skillbank run` gives a job another one: kept known so it stays masked.
CALLER_KEY_ENV = settings.CALLER_ENCRYPTION_KEY
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_NAMES = (
    ENCRYPTION_KEY_ENV,
    CALLER_KEY_ENV,
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NGC_API_KEY",
    "HF_TOKEN",
    "WANDB_API_KEY",
)
# TAO's names for the model's encryption key field (a leaf name: ``encryption_key`` at the top of its specs).
ENCRYPTION_KEY_NAMES = ("encryption_key", "key")
# Other spec leaf names treated as secrets even when spec_params does not say so.
_SECRET_NAME = re.compile(
    r"^(credentials?|(.*_)?(encryption_key|secret|secret_key|secret_access_key|access_key_id|access_key"
    r"|password|token|session_token|api_key))$",
    re.I,
)
MASK = "***"
MIN_SECRET_LENGTH = 8
# Public, well-known values (test credentials, TAO's documented sample keys): never masked or refused.
COMMON_VALUES = frozenset({
    "password", "changeme", "testtest", "testing123", "12345678", "minioadmin", "localstack",
    "tlt_encode", "nvidia_tlt", "nvidia_tao",
})


def is_maskable(value: str) -> bool:
    """Whether ``value`` is treated as a secret in text: long enough and not a well-known public value."""
    return len(value) >= MIN_SECRET_LENGTH and value.strip().lower() not in COMMON_VALUES


def is_encryption_key(dotted_key: str, spec_params: Mapping[str, str] | None = None) -> bool:
    """Whether ``dotted_key`` holds the model's encryption key, which reaches a job only as
    ``$SKILLBANK_ENCRYPTION_KEY``: a field the action's ``key`` spec param fills (``spec_params``: field ->
    inference function, from skill_info.yaml), or one named as TAO names it (``encryption_key``, ``key``).

    The one rule: the generator, ``skillbank run``, create_job, AutoML, the MCP tools and the model's
    ``experiment.yaml`` all ask it.
    """
    leaf = dotted_key.rsplit(".", 1)[-1].lower()
    return (spec_params or {}).get(dotted_key) == "key" or leaf in ENCRYPTION_KEY_NAMES


def is_secret_field(dotted_key: str, spec_params: Mapping[str, str] | None = None) -> bool:
    """Whether a spec field holds a secret: the encryption key (:func:`is_encryption_key`) or a field whose
    leaf name says secret (``*_password``, ``aws_secret_access_key``, ``token`` ...)."""
    return is_encryption_key(dotted_key, spec_params) or bool(_SECRET_NAME.search(dotted_key.rsplit(".", 1)[-1]))


def take_encryption_key(overrides: Mapping[str, Any],
                        spec_params: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(``overrides`` without their encryption-key fields, the key given there as the job's environment).

    The environment is ``{"SKILLBANK_ENCRYPTION_KEY": key}``, or empty when no non-empty key was given.
    Pure: ``overrides`` is not changed.
    """
    rest, env = {}, {}
    for key, value in overrides.items():
        if not is_encryption_key(str(key), spec_params):
            rest[key] = value
        elif value not in (None, ""):
            env[ENCRYPTION_KEY_ENV] = str(value)
    return rest, env


def secret_fields(spec: Mapping[str, Any], spec_params: Mapping[str, str] | None = None) -> list[str]:
    """Dotted keys that hold secrets: those inferred by ``key`` plus every secret field of ``spec``."""
    fields = {field for field in (spec_params or {}) if is_encryption_key(field, spec_params)}
    fields.update(key for key in _leaf_keys(spec) if is_secret_field(key, spec_params))
    return sorted(fields)


def redact_spec(spec: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """A copy of ``spec`` with every field in ``fields`` set to an empty string (present fields only)."""
    out = copy.deepcopy(dict(spec))
    for field in fields:
        if get_dotted(out, field, None) not in (None, ""):
            set_dotted(out, field, "")
    return out


def known_secrets(env: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Known maskable secret values -> where each comes from (``$NAME``, or the label given in ``extra``).

    Sources: the process environment and ``env`` under :data:`SECRET_ENV_NAMES`, plus ``extra``
    (value -> label, e.g. a secret override's key).
    """
    found: dict[str, str] = {}
    for source in (os.environ, env or {}):
        for name in SECRET_ENV_NAMES:
            value = source.get(name)
            if value and is_maskable(str(value)):
                found.setdefault(str(value), f"${name}")
    for value, label in (extra or {}).items():
        if isinstance(value, str) and is_maskable(value):
            found.setdefault(value, label)
    return found


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Known maskable secret values (see :func:`known_secrets`), longest first."""
    found = known_secrets(env, {str(v): "" for v in extra if v})
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, values: Iterable[str] | None = None) -> str:
    """``text`` with every whole maskable secret value replaced by ``***`` (short or common values are kept)."""
    for value in sorted(values if values is not None else secret_values(), key=len, reverse=True):
        if value and is_maskable(value):
            text = text.replace(value, MASK)
    return text


def secrets_in(obj: Any, secrets: Mapping[str, str], skip: Iterable[str] = (),
               prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, source)`` of every string in ``obj`` that holds a known secret, outside the ``skip`` keys.

    Used to refuse (not alter) a secret pasted into a field that is not a secret field.
    """
    skipped = set(skip)
    hits: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(prefix, obj)]
    while stack:
        key, value = stack.pop()
        if key in skipped:
            continue
        if isinstance(value, Mapping):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, str):
            source = next((label for secret, label in secrets.items() if secret in value), None)
            if source is not None:
                hits.append((key, source))
    return sorted(hits)


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
