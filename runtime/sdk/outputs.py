"""The files a job wrote, named: what ``skillbank jobs show`` lists and a runner's last line names.

An action's files are declared in its skill's ``skill_info.yaml`` (``actions.<action>.files``): a glob
below the job's results folder (``path``) or the spec key that holds a file's path (``spec_key``),
with a description; ``main`` marks the file a runner names when the job ends, and ``checkpoint``
the files ``parent_model`` selects from. Every job also has the SDK's own ``spec.yaml`` and
``log.txt``. Only files that exist are listed: the job's local folder, or its ``s3://`` results once
uploaded. The main file of a checkpoint-writing action is the one a child job would take
(checkpoints.py: the recorded best, else the newest), so the runner and ``--parent-job-id`` agree.
"""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from skillbank.runtime.sdk import checkpoints
from skillbank.runtime.sdk.platforms.base import LOG_NAME
from skillbank.runtime.sdk.spec_params import parent_results_location
from skillbank.runtime.skills import Skill, SkillError
from skillbank.runtime.spec_builder import get_dotted

SPEC_NAME = "spec.yaml"  # the spec the SDK writes into every job's results folder
SDK_FILES: tuple[dict[str, Any], ...] = (
    {"path": SPEC_NAME, "description": "the spec the job read (secrets emptied)"},
    {"path": LOG_NAME, "description": "the job's output (stdout and stderr of its command)"},
)
_NOT_OUTPUTS = ("inputs",)  # staged inputs, not outputs


def declared_files(skill: Skill | None, action: str) -> list[dict[str, Any]]:
    """The action's declared files (skill_info ``files``) followed by the SDK's own."""
    declared: list[dict[str, Any]] = []
    if skill is not None:
        try:
            declared = [dict(entry) for entry in skill.action_info(action).get("files") or []]
        except SkillError:
            declared = []
    return [*declared, *(dict(entry) for entry in SDK_FILES)]


def job_outputs(record: Mapping[str, Any], skill: Skill | None = None) -> list[dict[str, Any]]:
    """The files of the job that exist: ``[{path, relative, description, main}]`` in declared order.

    ``path`` is a local path or an ``s3://`` URI; ``relative`` the path below the results folder (None
    for a file outside it); exactly one file (or none) has ``main`` true.
    """
    skill = skill or _skill(record)
    base = parent_results_location(record)
    present = {relative: location for location, relative in _list_files(base)}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    checkpoint_rows: list[dict[str, Any]] = []
    main_row: dict[str, Any] | None = None
    for entry in declared_files(skill, record["action"]):
        matches = _matches(entry, record, present)
        if entry.get("checkpoint"):
            matches += _best_outside(entry, record)
            found = [checkpoints.Checkpoint(location, relative or PurePosixPath(location).name,
                                            *checkpoints.parse_epoch_step(relative or location))
                     for relative, location in matches]
            matches = [(c.relative if c.relative in present else None, c.location)
                       for c in checkpoints.order_checkpoints(found, record["action"])]
        for relative, location in matches:
            if location in seen:
                continue
            seen.add(location)
            row = {"path": location, "relative": relative, "description": entry["description"], "main": False}
            rows.append(row)
            if entry.get("checkpoint"):
                checkpoint_rows.append({**row, "main_entry": bool(entry.get("main")), "row": row})
            elif entry.get("main") and main_row is None:
                main_row = row
    if any(row["main_entry"] for row in checkpoint_rows):
        main_row = _main_checkpoint(record, [r for r in checkpoint_rows if r["main_entry"]]) or main_row
    if main_row is not None:
        main_row["main"] = True
    return rows


def main_output(record: Mapping[str, Any], skill: Skill | None = None) -> dict[str, Any] | None:
    """The job's main file (``{path, relative, description, main}``), or None when it has none (yet)."""
    return next((row for row in job_outputs(record, skill) if row["main"]), None)


# -- helpers ------------------------------------------------------------------------------------


def _skill(record: Mapping[str, Any]) -> Skill | None:
    try:
        return Skill.load(record["skill"])
    except SkillError:  # a moved skill: only the SDK's own files are known
        return None


def _list_files(base: str) -> list[tuple[str, str]]:
    """(location, relative path) of every file below ``base`` except staged inputs and temporaries; links are
    listed."""
    return [(location, relative) for location, relative in checkpoints.list_files(base, skipped=_NOT_OUTPUTS)
            if not PurePosixPath(relative).name.startswith(".")]  # .spec.yaml.tmp, .ar_model_latest.pth.tmp


def _matches(entry: Mapping[str, Any], record: Mapping[str, Any],
             present: dict[str, str]) -> list[tuple[str | None, str]]:
    """(relative, location) of the files an entry names that exist."""
    if "path" in entry:
        pattern = str(entry["path"])
        return [(rel, present[rel]) for rel in sorted(present) if fnmatch.fnmatchcase(rel, pattern)]
    value = get_dotted(dict(record.get("spec") or {}), str(entry["spec_key"]))
    if not isinstance(value, str) or not value:
        return []
    results_dir = str(record["results_dir"]).rstrip("/") + "/"
    if value.startswith(results_dir) and value[len(results_dir):] in present:  # inside the (uploaded) folder
        relative = value[len(results_dir):]
        return [(relative, present[relative])]
    if value in present.values():
        return [(next(r for r, loc in present.items() if loc == value), value)]
    if not value.startswith("s3://") and os.path.isfile(value):  # written outside the results folder
        return [(None, value)]
    return []


def _best_outside(entry: Mapping[str, Any], record: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """The recorded best checkpoint when it lies outside the results folder (``train.checkpointer.dirpath``)."""
    best = record.get("best_checkpoint")
    if not (isinstance(best, str) and os.path.isabs(best) and "path" in entry and os.path.isfile(best)):
        return []
    if best.startswith(str(record["results_dir"]).rstrip("/") + "/"):
        return []  # inside: listed with the folder
    name_pattern = PurePosixPath(str(entry["path"])).name
    return [(None, best)] if fnmatch.fnmatchcase(PurePosixPath(best).name, name_pattern) else []


def _main_checkpoint(record: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The checkpoint row a child job's ``parent_model`` would take (the recorded best, else the newest)."""
    found = [checkpoints.Checkpoint(row["path"], row["relative"] or PurePosixPath(row["path"]).name,
                                    *checkpoints.parse_epoch_step(row["relative"] or row["path"])) for row in rows]
    try:
        chosen = checkpoints.choose_checkpoint(found, best=record.get("best_checkpoint") or None,
                                               action=record["action"], where=str(record["results_dir"]))
    except checkpoints.CheckpointError:
        chosen = checkpoints.order_checkpoints(found, record["action"])[0]
    return next((row["row"] for row in rows if row["path"] == chosen.location), None)
