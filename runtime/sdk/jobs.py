"""The job API that generated runners, the CLI and AutoML call.

``create_job`` turns (skill, action, spec_overrides) into a running job:

1. resolve the skill and validate + merge the overrides (runtime.validation),
   unless they arrive validated (a ``ValidatedSpec``);
2. apply the action's ``spec_params`` inference (spec_params.py) with the
   parent job's record at hand, then the settings it inherits from the model
   it runs (inherited_settings.py: the parent's spec or the checkpoint's);
   steps 1-2 are job_prepare.py, which ``--dry-run`` stops after;
3. record the job (Pending) with its redacted spec;
4. stage inputs: ``s3://`` values are downloaded and archives extracted under
   ``<results_dir>/inputs/<field>`` (job_staging.py, data_staging.py);
5. write ``<results_dir>/spec.yaml`` with every secret field emptied; secrets
   go to the process through its environment only (the encryption key as
   ``SKILLBANK_ENCRYPTION_KEY``);
6. launch the action's skill_info ``command`` on the platform and mark the
   job Running.

The observers (``get_job_status``, ``wait``, ``describe_job`` ...) bring the
record up to date with the platform and finish an ended job
(job_refresh.py); progress comes from the job's status.json (status_file.py).

Results live in ``<results_root>/<job_id>/``. When ``results_root`` is an
``s3://`` URI the job runs in a local staging folder
(``<state_dir>/staging/<job_id>``) and its outputs (minus the action's
``upload_excludes``) are uploaded to ``<results_root>/<job_id>/`` by the
first observer that sees the job end: ``wait()``, ``get_job_status()`` or
``skillbank jobs show|wait``, in its own process; ``list_jobs()`` never waits
on S3 and hands the upload to a background process (background_upload.py).
Until then a finished job stays Running in the store; the upload happens
before the terminal status is recorded, so a terminal S3 job always has its
outputs uploaded (or is Error with category ``upload_failed``). Before launch
``create_job`` checks that the S3 destination can be written.

S3 credentials for staging and upload come from the standard AWS
environment of the calling process (plus ``env`` while ``create_job`` stages).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skillbank.runtime.sdk.failure import analyze_failure
from skillbank.runtime.sdk.job_exits import wait_any
from skillbank.runtime.sdk.job_prepare import JobError, PreparedJob, prepare_job
from skillbank.runtime.sdk.job_refresh import (
    analyze,
    finish,
    platform_of,
    resume_command,
    resume_field,
    skill_causes,
)
from skillbank.runtime.sdk.job_refresh import refresh as _refresh  # list_jobs has a `refresh` argument
from skillbank.runtime.sdk.job_staging import aws_environment, check_launchable, stage_inputs, write_spec
from skillbank.runtime.sdk.outputs import job_outputs, main_output
from skillbank.runtime.sdk.platforms import DEFAULT_PLATFORM
from skillbank.runtime.sdk.platforms.base import (
    CANCELED,
    COMPLETE,
    ERROR,
    TERMINAL,
    PlatformError,
    PlatformStatus,
)
from skillbank.runtime.sdk.platforms.submission import read_log
from skillbank.runtime.sdk.secrets import redact_obj, redact_text, secret_values
from skillbank.runtime.sdk.spec_params import exact_checkpoint
from skillbank.runtime.sdk.status_file import job_status_events, latest_progress, progress_updates
from skillbank.runtime.sdk.store import JobNotFoundError, JobStore
from skillbank.runtime.skills import Skill
from skillbank.runtime.validation import ValidatedSpec

__all__ = [
    "create_job", "preview_job", "prepare_job", "get_job", "list_jobs", "get_job_status", "get_job_logs",
    "cancel_job", "wait", "get_failure_analysis", "latest_progress", "JobNotFoundError", "JobError",
    "PreparedJob", "describe_job", "progress_updates", "resume_field", "resume_command", "platform_of", "job_outputs",
    "main_output", "refresh_job",
]


# -- create -----------------------------------------------------------------------------------


def create_job(
    skill: str | Skill,
    action: str,
    spec_overrides: Mapping[str, Any] | ValidatedSpec | None,
    parent_job_id: str | None = None,
    platform: str = DEFAULT_PLATFORM,
    results_root: str | os.PathLike | None = None,
    *,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
    store: JobStore | None = None,
    name: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    resumed_from: str | None = None,
    automl: Mapping[str, Any] | None = None,
    platform_options: Mapping[str, Any] | None = None,
) -> str:
    """Create, record and launch a job; returns its id. With ``dry_run`` returns :func:`preview_job`'s text.

    ``spec_overrides`` are validated here, unless they come validated already (a ``ValidatedSpec`` of
    this action, made by the caller's own check): the same overrides are never validated twice.

    ``platform_options`` are the platform's settings (``--platform-option``: slurm partition, gpus=0,
    docker cli ...; see platforms/options.py), checked before anything happens and kept in the record.

    ``name`` and ``tags`` label the job for ``jobs list``; ``resumed_from`` names the job this one continues
    (``skillbank jobs resume``); ``automl`` places an AutoML trial job in its study (job_labels.automl_info).
    """
    store = store or JobStore()
    if not dry_run and job_id and store.exists(job_id):
        raise JobError(f"job id {job_id!r} already exists; pick a new id or omit it")
    prepared = prepare_job(skill, action, spec_overrides, parent_job_id, platform, results_root, env=env,
                           job_id=job_id, store=store, name=name, tags=tags, resumed_from=resumed_from,
                           automl=automl, platform_options=platform_options)
    if dry_run:
        return prepared.submission
    check_launchable(prepared)  # before any record: a job that cannot run is not started
    _record(store, prepared)
    try:
        with aws_environment(prepared.secret_env):
            given = stage_inputs(prepared)
        write_spec(prepared)
        # the values as given (s3:// URIs, archives) beside the staged copies: `jobs resume` stages them again
        store.update(prepared.job_id, spec=_stored_spec(prepared), inputs=redact_obj(given, secret_values(
            prepared.secret_env)) or None)
        backend_id = prepared.platform.launch(prepared.request)
    except Exception as exc:
        message = redact_text(f"{type(exc).__name__}: {exc}", secret_values(prepared.secret_env))
        known = skill_causes(prepared.skill)
        failure = analyze_failure(exit_code=None, detail=message, known=known)
        if failure["category"] not in {row.category for row in known}:  # a cause the skill names keeps its fix
            failure["category"] = "launch_failed"
            failure["suggestion"] = "The job could not be staged or started; fix the cause named in detail and rerun."
        store.set_status(prepared.job_id, ERROR, failure=failure)
        raise JobError(f"job {prepared.job_id} could not be launched: {message}") from exc
    store.update(prepared.job_id, backend_id=str(backend_id))
    # The platform says whether the job already runs (local) or waits in a queue (slurm, kubernetes).
    with contextlib.suppress(PlatformError):
        _refresh(store, prepared.job_id)
    return prepared.job_id


def preview_job(skill: str | Skill, action: str, spec_overrides: Mapping[str, Any] | ValidatedSpec | None,
                *args: Any, **kwargs: Any) -> str:
    """The submission create_job would make (platform render), without recording, staging or launching.

    Takes create_job's arguments, ``dry_run`` aside.
    """
    return prepare_job(skill, action, spec_overrides, *args, **kwargs).submission


def _stored_spec(prepared: PreparedJob) -> dict[str, Any]:
    """The spec as the job store keeps it: known secret values masked (the job itself reads the real one)."""
    return redact_obj(prepared.spec, secret_values(prepared.secret_env))


def _record(store: JobStore, prepared: PreparedJob) -> None:
    store.insert(
        job_id=prepared.job_id, skill=prepared.skill.name, network_arch=prepared.skill.network_arch,
        action=prepared.action, platform=prepared.platform_name, spec=_stored_spec(prepared),
        results_dir=prepared.results_dir, parent_job_id=prepared.parent_job_id, results_uri=prepared.results_uri,
        platform_options=prepared.platform_options, inherited=prepared.inherited or None, **prepared.labels,
    )


# -- observe ----------------------------------------------------------------------------------


def get_job(job_id: str, *, store: JobStore | None = None) -> dict[str, Any]:
    """The stored job record (no platform query)."""
    return (store or JobStore()).get(job_id)


def list_jobs(
    skill: str | None = None,
    action: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    *,
    parent_job_id: str | None = None,
    since: str | None = None,
    tag: str | None = None,
    automl_workspace: str | os.PathLike | None = None,
    trials: bool = False,
    refresh: bool = True,
    store: JobStore | None = None,
) -> list[dict[str, Any]]:
    """Job records, newest first; unfinished jobs are refreshed from their platform first.

    AutoML trial jobs are left out unless ``trials`` is true or ``automl_workspace`` asks for that
    workspace's trials. ``since`` is a duration back from now (``2h``) or an ISO time (job_labels.parse_since).
    """
    from skillbank.runtime.sdk.job_labels import parse_since, workspace_key

    store = store or JobStore()
    filters: dict[str, Any] = {
        "skill": skill, "action": action, "parent_job_id": parent_job_id, "tag": tag,
        "since": parse_since(since) if since else None,
        "automl_workspace": workspace_key(automl_workspace) if automl_workspace else None,
        "trials": trials or automl_workspace is not None,
    }
    if refresh:
        for record in store.list(**filters):
            if record["status"] not in TERMINAL:
                with contextlib.suppress(PlatformError):
                    _refresh(store, record["id"], upload=False)  # listing never waits on an S3 upload
    return store.list(status=status, limit=limit, **filters)


def get_job_status(job_id: str, *, store: JobStore | None = None) -> str:
    """The job's status after asking its platform (finishing the record when it has ended)."""
    return _refresh(store or JobStore(), job_id)["status"]


def refresh_job(job_id: str, *, store: JobStore | None = None) -> dict[str, Any]:
    """The job record after asking its platform."""
    return _refresh(store or JobStore(), job_id)


def describe_job(job_id: str, *, store: JobStore | None = None) -> dict[str, Any]:
    """Everything ``jobs show`` tells about a job, text or JSON alike: the refreshed record plus

    ``progress`` (the status.json view of :func:`latest_progress`, with KPIs such as evaluate's
    ``accuracy`` in percent, or None), ``checkpoint`` (the exact checkpoint a child job takes through
    ``parent_job_id``, or None), ``outputs`` (the files it wrote: outputs.job_outputs, ``main`` marking the
    one a runner names), ``resumed_by`` (ids of the jobs that continue this one), ``failure``
    (an Error job's analysis) and ``resume`` (the command that continues it, when one can).
    """
    store = store or JobStore()
    record = _refresh(store, job_id)
    if record["status"] == ERROR and not record.get("failure"):
        record["failure"] = get_failure_analysis(job_id, store=store)
    record["progress"] = latest_progress(record)
    record["checkpoint"] = exact_checkpoint(record)  # the file evaluate/inference/export take from this job
    record["outputs"] = job_outputs(record)  # every file the action declares that exists, main one marked
    record["resumed_by"] = store.resumed_by(job_id)
    record["resume"] = resume_command(record) if record["status"] in (ERROR, CANCELED) else None
    return record


def get_job_logs(job_id: str, tail: int | None = None, *, store: JobStore | None = None) -> str:
    """The job's log (last ``tail`` lines when given), with known secret values masked."""
    record = (store or JobStore()).get(job_id)
    if record["backend_id"]:
        text = platform_of(record).logs(record["backend_id"], Path(record["results_dir"]), tail)
    else:
        text = read_log(Path(record["results_dir"]), tail) or ""
    return redact_text(text, secret_values())


def cancel_job(job_id: str, *, store: JobStore | None = None) -> str:
    """Stop the job; returns its final status (a finished job keeps its status)."""
    store = store or JobStore()
    record = _refresh(store, job_id)
    if record["status"] in TERMINAL:
        return record["status"]
    observed = PlatformStatus(CANCELED, detail="canceled")
    if record["backend_id"]:
        platform = platform_of(record)
        platform.cancel(record["backend_id"], Path(record["results_dir"]))
        after = platform.status(record["backend_id"], Path(record["results_dir"]))
        if after.state == COMPLETE:  # it finished on its own just before the cancel arrived
            observed = after
        else:
            observed = PlatformStatus(CANCELED, exit_code=after.exit_code, signal=after.signal, detail="canceled")
    return finish(store, record, observed)["status"]


def wait(
    job_id: str,
    timeout: float | None = None,
    poll: float = 1.0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    store: JobStore | None = None,
) -> str:
    """Block until the job ends; returns its final status.

    ``on_progress`` gets a progress view (:func:`progress_view`) of the newest status.json line at the first
    look, then one per new line: every epoch, also when several ended between two looks (:func:`progress_updates`).

    Raises TimeoutError (naming the job and its status) when ``timeout`` seconds pass first.
    """
    store = store or JobStore()
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: dict[str, Any] | None = None  # the newest status.json event already handed on
    first = True
    while True:
        record = _refresh(store, job_id)
        if on_progress is not None:
            events = job_status_events(record)
            views, seen_now = progress_updates(events, seen, final=record["status"] in TERMINAL)
            # The first look shows where the job is; later looks show every epoch that ended since.
            for view in views[-1:] if first else views:
                on_progress(view)
            if events:
                first, seen = False, seen_now
        if record["status"] in TERMINAL:
            return record["status"]
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} is still {record['status']} after {timeout:g}s")
        # Sleeps at most `poll` (status lines keep their pace) but wakes the moment a local job exits.
        wait_any([job_id], timeout=poll, store=store)


def get_failure_analysis(job_id: str, *, store: JobStore | None = None) -> dict[str, Any]:
    """Why the job failed: category, exit_code, signal, log_tail, suggestion (category None unless Error)."""
    store = store or JobStore()
    record = _refresh(store, job_id)
    if record["status"] == ERROR:
        return record["failure"] or analyze(record, PlatformStatus(ERROR))
    resume = resume_command(record)
    suggestion = {
        COMPLETE: "The job completed; nothing failed.",
        CANCELED: (f"The job was canceled; if that was not intended, continue it from its newest checkpoint: "
                   f"{resume}" if resume else "The job was canceled; rerun it if that was not intended."),
    }.get(record["status"], f"The job is {record['status']}; nothing has failed yet.")
    return {"category": None, "exit_code": record["exit_code"], "signal": record["signal"], "signal_name": None,
            "log_tail": "", "detail": "", "suggestion": suggestion}
