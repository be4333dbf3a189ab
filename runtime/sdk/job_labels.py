"""What a job is called and where it comes from: the user's name and tags, an AutoML trial's place, resumes.

Pure functions, shared by the job SDK, the CLI and the MCP server:

* :func:`job_labels` checks the labels a job is created with (a bad name or tag is one line naming the
  value and what is allowed) and returns the store's columns ``name``, ``tags``, ``resumed_from``,
  ``automl``;
* :func:`automl_label` is how ``jobs list`` shows a trial job: ``automl: <workspace> #3 rung 2``;
* :func:`parse_since` reads ``jobs list --since`` (a duration back from now, or an ISO date/time).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from skillbank.runtime.errors import SkillbankError

MAX_NAME_LENGTH = 100
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=+/-]{0,63}")
TAG_RULE = "1-64 characters: letters, digits and _ . : = + / - (starting with a letter or digit)"
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SINCE_RULE = ("a duration back from now (90s, 30m, 2h, 1d, 1w) or an ISO date/time (2026-05-01, "
              "2026-05-01T14:30; UTC, as `jobs list` shows times, unless it has an offset)")


class LabelError(SkillbankError, ValueError):
    """A job label or list filter that is not allowed (the message names the value and the rule)."""


def check_name(name: Any) -> str | None:
    """The job's name as given, or None; refuses empty, multi-line and over-long names."""
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise LabelError(f"job name {name!r}: allowed: a non-empty text of at most {MAX_NAME_LENGTH} characters")
    if len(name) > MAX_NAME_LENGTH or any(not ch.isprintable() for ch in name):
        raise LabelError(f"job name {name!r}: allowed: one line of printable characters, at most "
                         f"{MAX_NAME_LENGTH} characters")
    return name.strip()


def check_tags(tags: Iterable[Any] | None) -> list[str]:
    """The job's tags in the order given, each once."""
    if isinstance(tags, str):  # one tag given where a list was expected
        tags = [tags]
    out: list[str] = []
    for tag in tags or ():
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise LabelError(f"job tag {tag!r}: allowed: {TAG_RULE}")
        if tag not in out:
            out.append(tag)
    return out


def automl_info(workspace: str | os.PathLike, study: str, trial: int, rung: int | None = None) -> dict[str, Any]:
    """The ``automl`` record of a trial job: its study's workspace and name, trial number, rung (or None)."""
    info: dict[str, Any] = {"workspace": workspace_key(workspace), "study": study, "trial": int(trial)}
    if rung is not None:
        info["rung"] = int(rung)
    return info


def workspace_key(workspace: str | os.PathLike) -> str:
    """How a workspace is stored and matched: its absolute path (as the AutoML engine names it)."""
    return str(Path(workspace).expanduser().absolute())


def job_labels(
    name: Any = None,
    tags: Iterable[Any] | None = (),
    resumed_from: str | None = None,
    automl: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The checked label columns of a new job record."""
    return {"name": check_name(name), "tags": check_tags(tags), "resumed_from": resumed_from or None,
            "automl": dict(automl) if automl else None}


def automl_label(automl: Mapping[str, Any] | None, *, short: bool = False) -> str:
    """``automl: <workspace> #3 rung 2`` for a trial job ('' for any other); ``short`` names the workspace folder."""
    if not automl:
        return ""
    workspace = str(automl.get("workspace") or "?")
    if short:
        workspace = Path(workspace).name or workspace
    text = f"automl: {workspace} #{automl.get('trial', '?')}"
    if automl.get("rung") is not None:
        text += f" rung {automl['rung']}"
    return text


def parse_since(text: str, now: datetime | None = None) -> str:
    """``--since`` as the ISO UTC time that ``created_at`` is compared with."""
    value = text.strip()
    now = now or datetime.now(timezone.utc)
    parts = _DURATION.findall(value.lower())
    if parts and _DURATION.sub("", value.lower()).strip() == "":
        delta = timedelta()
        for amount, unit in parts:
            delta += timedelta(**{_UNITS[unit]: int(amount)})
        return (now - delta).isoformat(timespec="microseconds")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise LabelError(f"--since {text!r}: allowed: {SINCE_RULE}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


__all__ = [
    "LabelError", "check_name", "check_tags", "automl_info", "workspace_key", "job_labels", "automl_label",
    "parse_since",
]
