"""Bring a job's record up to date with its platform, and finish it when it has ended.

:func:`refresh` asks the job's platform how the job is doing and records what changed. A job seen
ending is finished once (:func:`finish`): a Complete job gets its checkpoints and the best one its
status.json reported, an Error job its failure analysis (the log tail, the skill's known causes and
the fix), and a job whose results root is ``s3://`` gets its outputs uploaded before its terminal
status is recorded. Listing never waits on S3: it hands the upload to a background process.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skillbank.runtime.sdk import checkpoints
from skillbank.runtime.sdk.failure import LOG_TAIL_LINES, KnownCause, analyze_failure, known_causes
from skillbank.runtime.sdk.platforms import get_platform
from skillbank.runtime.sdk.platforms.base import COMPLETE, ERROR, PENDING, RUNNING, TERMINAL, Platform, PlatformStatus
from skillbank.runtime.sdk.secrets import redact_text, secret_values
from skillbank.runtime.sdk.status_file import recorded_best
from skillbank.runtime.sdk.store import JobStore
from skillbank.runtime.skills import Skill


def refresh(store: JobStore, job_id: str, *, upload: bool = True) -> dict[str, Any]:
    """The record after asking the platform. ``upload=False`` (listing) never waits on S3: an ended S3 job's
    upload then runs in a background process (background_upload.py) and the job stays Running until it is done."""
    record = store.get(job_id)
    if record["status"] in TERMINAL or not record["backend_id"]:
        return record
    platform = platform_of(record)
    observed = platform.status(record["backend_id"], Path(record["results_dir"]))
    if observed.state in TERMINAL:
        if not upload and record["results_uri"] and not record["uploaded"]:
            from skillbank.runtime.sdk import background_upload

            background_upload.start(job_id, record["results_dir"], store.state_dir)
            return record
        return finish(store, record, observed)
    if observed.state != record["status"] and observed.state in (PENDING, RUNNING):
        store.set_status(job_id, observed.state)
        return store.get(job_id)
    return record


def finish(store: JobStore, record: dict[str, Any], observed: PlatformStatus) -> dict[str, Any]:
    """Record a job's end: checkpoints (Complete), failure analysis (Error), S3 upload; then the status."""
    results_dir = Path(record["results_dir"])
    state = observed.state
    fields: dict[str, Any] = {"exit_code": observed.exit_code, "signal": observed.signal}
    found: list[checkpoints.Checkpoint] = []
    if state == COMPLETE:
        found = checkpoints.list_checkpoints(results_dir, record["action"])
        fields["best_checkpoint"] = recorded_best(record)
    elif state == ERROR:
        fields["failure"] = analyze(record, observed)
    if record["results_uri"] and not record["uploaded"]:
        try:
            _upload(record)  # in this process: wait(), show, status; listing hands it to background_upload
            fields["uploaded"] = True
        except Exception as exc:  # noqa: BLE001 - any upload failure makes the job an Error, with the reason
            message = redact_text(f"{type(exc).__name__}: {exc}", secret_values())
            state = ERROR
            fields["failure"] = {**analyze_failure(exit_code=observed.exit_code, signal=observed.signal,
                                                   detail=message),
                                 "category": "upload_failed",
                                 "suggestion": "Check the S3 endpoint and credentials, then upload the results "
                                               "folder by hand or rerun."}
    if state == COMPLETE:
        base = record["results_uri"] if fields.get("uploaded") else None
        fields["checkpoints"] = [f"{base}/{c.relative}" if base else c.location for c in found]
    store.set_status(record["id"], state, **fields)
    return store.get(record["id"])


def platform_of(record: Mapping[str, Any]) -> Platform:
    """The platform a recorded job runs on, with the options it was launched with."""
    return get_platform(record["platform"], **(record.get("platform_options") or {}))


def analyze(record: Mapping[str, Any], observed: PlatformStatus) -> dict[str, Any]:
    """The failure analysis of an ended job: its log tail (secrets masked) against the skill's known causes."""
    log_text = ""
    with contextlib.suppress(Exception):
        log_text = platform_of(record).logs(
            record["backend_id"] or "", Path(record["results_dir"]), LOG_TAIL_LINES
        )
    log_text = redact_text(log_text, secret_values())
    lost = observed.exit_code is None and observed.signal is None
    return analyze_failure(exit_code=observed.exit_code, signal=observed.signal, log_text=log_text,
                           detail=observed.detail, lost=lost, known=skill_causes(record["skill"]),
                           resume_command=resume_command(record))


def skill_causes(skill: str | Skill) -> tuple[KnownCause, ...]:
    """The skill's "Error patterns" table (its SKILL.md); none when the skill or file cannot be read."""
    try:
        folder = skill.path if isinstance(skill, Skill) else Skill.load(skill).path
        return known_causes((folder / "SKILL.md").read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - a moved skill still gets the generic analysis
        return ()


def resume_field(skill: Skill, action: str) -> str | None:
    """The spec field an action resumes from (its ``resume_model`` spec param), None when it cannot resume."""
    return next((f for f, function in skill.spec_params(action).items() if function == "resume_model"), None)


def resume_command(record: Mapping[str, Any]) -> str | None:
    """``skillbank jobs resume ID`` when the job's action can continue from a checkpoint, else None."""
    try:
        resumable = resume_field(Skill.load(record["skill"]), record["action"]) is not None
    except Exception:  # noqa: BLE001 - the skill may have moved; then nothing is suggested
        return None
    return f"skillbank jobs resume {record['id']}" if resumable else None


def _upload(record: Mapping[str, Any]) -> list[str]:
    """Upload the job's results folder to its ``results_uri``, minus the action's ``upload_excludes``."""
    from skillbank.runtime.sdk import data_staging  # boto3 only for S3 jobs

    skill_excludes: list[str] = []
    with contextlib.suppress(Exception):  # the skill may have moved; upload everything but inputs then
        skill_excludes = list(Skill.load(record["skill"]).action_info(record["action"]).get("upload_excludes") or [])
    excludes = skill_excludes or ["inputs/"]
    return data_staging.upload_outputs(Path(record["results_dir"]), record["results_uri"], excludes)
