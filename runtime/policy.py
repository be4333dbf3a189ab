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

import os
from typing import Any

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.request_words import find_off_phrase
from skillbank.runtime.skills import Skill, SkillError

__all__ = ["AUTOML_TARGET", "NOT_RUNNABLE", "POLICY_VALUES", "PolicyError", "automl_files_problem",
           "automl_runnable", "find_off_phrase", "normalize_policy", "resolve_policy"]

AUTOML_TARGET = "tao-skill-bank:tao-run-automl"
AUTOML_ACTION = "train"

# explicit values -> resolved policy; "auto" is the legacy spelling of "on"
POLICY_VALUES: dict[str, str] = {"on": "on", "off": "off", "auto": "on"}

NOT_RUNNABLE = "AutoML is enabled but not runnable for this model until schemas are generated"


class PolicyError(SkillbankError, ValueError):
    """An explicit automl_policy that is not one of the valid values."""


def normalize_policy(value: str) -> str:
    """Map an explicit policy value to ``on``/``off``; anything else is a PolicyError."""
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in POLICY_VALUES:
        raise PolicyError(
            f"automl_policy: invalid value {value!r}; allowed: {', '.join(POLICY_VALUES)} (auto means on)"
        )
    return POLICY_VALUES[key]


def automl_files_problem(skill: Skill) -> str | None:
    """Why the packaged train schema/template cannot drive AutoML, or None when both are there and parse.

    Read through the skill (``skill.schema``/``skill.template``), so a caller that goes on to validate or
    render with the same Skill parses each file once.
    """
    for path, read in ((skill.schema_path(AUTOML_ACTION), skill.schema),
                       (skill.template_path(AUTOML_ACTION), skill.template)):
        where = f"{path.parent.name}/{path.name}"
        if not path.is_file():  # checked first: "missing <file>" rather than the reader's longer message
            return f"missing {where}"
        try:
            read(AUTOML_ACTION)
        except SkillError as exc:
            return f"{where}: {str(exc).removeprefix(f'{path}: ')}"
    return None


def automl_runnable(skill: Skill) -> bool:
    """Whether AutoML can run the model's train action at all, whatever the policy: the model declares
    ``automl_enabled: true`` and its train schema and template are packaged and parse. The one answer
    behind `skillbank list`, the MCP tool list_skills and :func:`resolve_policy`."""
    return skill.automl_enabled and automl_files_problem(skill) is None


def resolve_policy(
    skill: Skill | str | os.PathLike[str],
    action: str,
    automl_policy: str | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    """Decide where ``action`` of the model ``skill`` (a Skill, or its folder) goes.

    Returns ``{route, target, skill_dir, action, automl_policy, policy_source,
    matched, runnable, reason}``: ``matched`` is the request phrase that switched
    AutoML off (normalised, e.g. ``"plain training"``), else None; ``route`` is ``automl`` (``target`` names the AutoML
    skill, which receives ``skill_dir``) or ``direct`` (``target`` is None);
    ``runnable`` says whether AutoML could run this action for this model at all
    (enabled, train schema and template packaged and parsing), whatever the
    policy. Raises PolicyError for an invalid explicit ``automl_policy``.
    """
    if not isinstance(skill, Skill):
        skill = Skill(skill)
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
        "skill_dir": str(skill.path),
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

    if not skill.automl_enabled:
        decision["reason"] = f"{why_policy}; automl_enabled is not true in skill_info.yaml, so train runs directly"
        return decision

    problem = automl_files_problem(skill)
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
