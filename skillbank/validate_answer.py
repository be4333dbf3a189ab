"""The answer of `skillbank validate`: its report (also the MCP tool validate_overrides's) and printed form.

Click-free on purpose: the console script (:mod:`skillbank.console`) answers a plain ``validate`` call
with these functions before click is imported, and the click command prints the same text through them.
"""
from __future__ import annotations

from skillbank.runtime.skills import Skill
from skillbank.runtime.validation import Problem, validate_overrides

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from typing import Any


def validation_report(skill: Skill, action: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Every problem of ``overrides`` with its key, value, what is allowed and a did-you-mean.

    Raises SkillError (the skill's files are broken) and SettingError (a bad ``SKILLBANK_MAX_*``).
    """
    problems = validate_overrides(skill, action, overrides)
    return {"skill": skill.name, "action": action, "valid": not problems,
            "problems": [p.to_dict() for p in problems]}


def printed(report: dict[str, Any], keys_given: int, fmt: str) -> tuple[str, str, int]:
    """``(stdout, stderr, exit status)`` of `skillbank validate` for ``report``: 0 valid, 1 invalid."""
    problems = [Problem(**problem) for problem in report["problems"]]
    status = 1 if problems else 0
    if fmt == "json":
        import json  # only here: the text answer does not pay for it (validate's start-up budget, bench/cli_startup.py)

        return json.dumps(report, indent=2, default=str) + "\n", "", status
    where = f"{report['skill']} {report['action']}"
    if problems:
        return "", "".join([f"{where}: {len(problems)} problem(s)\n", *(f"  - {p}\n" for p in problems)]), status
    return f"{where}: overrides are valid ({keys_given} key(s))\n", "", status
