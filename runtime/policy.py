"""The AutoML policy resolver: where a request for one action of a model skill goes.

``resolve_policy`` is a pure function of its inputs and of the skill's packaged
files (it only reads them): an explicit ``automl_policy`` wins, otherwise the
request's words decide (phrases such as "no HPO" or "turn off AutoML" switch
AutoML off for this run only), otherwise the policy is on. Only ``train`` can
route to AutoML, and only when the model declares ``automl_enabled: true`` and
its train schema and template are packaged and parse. Nothing here writes to
the skill folder: the per-run policy never changes model metadata.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from skillbank.runtime.request_words import find_off_phrase
from skillbank.runtime.yaml_io import safe_load

__all__ = ["AUTOML_TARGET", "NOT_RUNNABLE", "POLICY_VALUES", "PolicyError", "automl_files_problem",
           "find_off_phrase", "normalize_policy", "resolve_policy"]

AUTOML_TARGET = "tao-skill-bank:tao-run-automl"
AUTOML_ACTION = "train"

# explicit values -> resolved policy; "auto" is the legacy spelling of "on"
POLICY_VALUES: dict[str, str] = {"on": "on", "off": "off", "auto": "on"}

NOT_RUNNABLE = "AutoML is enabled but not runnable for this model until schemas are generated"


class PolicyError(ValueError):
    """An explicit automl_policy that is not one of the valid values."""


def normalize_policy(value: str) -> str:
    """Map an explicit policy value to ``on``/``off``; anything else is a PolicyError."""
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in POLICY_VALUES:
        raise PolicyError(
            f"automl_policy: invalid value {value!r}; allowed: {', '.join(POLICY_VALUES)} (auto means on)"
        )
    return POLICY_VALUES[key]


def automl_files_problem(skill_dir: Path) -> str | None:
    """Why the packaged train schema/template cannot drive AutoML, or None when both parse."""
    schema_path = skill_dir / "schemas" / f"{AUTOML_ACTION}.schema.json"
    template_path = skill_dir / "references" / f"spec_template_{AUTOML_ACTION}.yaml"
    if not schema_path.is_file():
        return f"missing schemas/{schema_path.name}"
    if not template_path.is_file():
        return f"missing references/{template_path.name}"
    try:
        schema = json.loads(schema_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"schemas/{schema_path.name} does not parse ({type(exc).__name__})"
    if not isinstance(schema, dict):
        return f"schemas/{schema_path.name} is not a JSON object"
    try:
        template = safe_load(template_path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"references/{template_path.name} does not parse ({type(exc).__name__})"
    if not isinstance(template, dict):
        return f"references/{template_path.name} is not a YAML mapping"
    return None


def _read_skill_info(skill_dir: Path) -> dict[str, Any]:
    path = skill_dir / "references" / "skill_info.yaml"
    try:
        info = safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return info if isinstance(info, dict) else {}


def resolve_policy(
    skill_dir: Path,
    action: str,
    automl_policy: str | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    """Decide where ``action`` of the model skill in ``skill_dir`` goes.

    Returns ``{route, target, skill_dir, action, automl_policy, policy_source,
    matched, runnable, reason}``: ``matched`` is the request phrase that switched
    AutoML off (normalised, e.g. ``"plain training"``), else None; ``route`` is ``automl`` (``target`` names the AutoML
    skill, which receives ``skill_dir``) or ``direct`` (``target`` is None);
    ``runnable`` says whether AutoML could run this action for this model at all
    (enabled, train schema and template packaged and parsing), whatever the
    policy. Raises PolicyError for an invalid explicit ``automl_policy``.
    """
    skill_dir = Path(skill_dir)
    phrase = None
    if automl_policy is not None:
        policy, source = normalize_policy(automl_policy), "explicit"
        why_policy = f"automl_policy={automl_policy.strip().lower()} given explicitly"
        if automl_policy.strip().lower() == "auto":
            why_policy += " (legacy 'auto' means on)"
    else:
        phrase = find_off_phrase(request)
        if phrase:
            policy, source = "off", "request"
            why_policy = f"the request says {phrase!r}, so AutoML is off for this run only"
        else:
            policy, source = "on", "default"
            why_policy = "automl_policy defaults to on"

    decision: dict[str, Any] = {
        "route": "direct",
        "target": None,
        "skill_dir": str(skill_dir),
        "action": action,
        "automl_policy": policy,
        "policy_source": source,
        "matched": phrase,
        "runnable": False,
        "reason": "",
    }
    if action != AUTOML_ACTION:
        decision["reason"] = f"{action!r} never routes to AutoML (only train does); it runs directly"
        return decision

    if _read_skill_info(skill_dir).get("automl_enabled") is not True:
        decision["reason"] = f"{why_policy}; automl_enabled is not true in skill_info.yaml, so train runs directly"
        return decision

    problem = automl_files_problem(skill_dir)
    decision["runnable"] = problem is None
    if policy == "off":
        decision["reason"] = f"{why_policy}; train runs directly (model metadata unchanged)"
        if problem is not None:
            decision["reason"] += f"; note: {NOT_RUNNABLE} ({problem})"
    elif problem is not None:
        decision["reason"] = f"{NOT_RUNNABLE} ({problem}); train runs directly"
    else:
        decision.update(route="automl", target=AUTOML_TARGET)
        decision["reason"] = (
            f"{why_policy}; AutoML is enabled and runnable for this model, so train goes to {AUTOML_TARGET}"
        )
    return decision
