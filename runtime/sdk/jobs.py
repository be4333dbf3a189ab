"""The job API that generated runners, the CLI and AutoML call.

``create_job`` turns (skill, action, spec_overrides) into a running job:

1. resolve the skill and validate + merge the overrides (runtime.validation);
2. apply the action's ``spec_params`` inference (spec_params.py) with the
   parent job's record at hand, then the settings it inherits from the model
   it runs (inherited_settings.py: the parent's spec or the checkpoint's);
3. record the job (Pending) with its redacted spec;
4. stage inputs: ``s3://`` values are downloaded and archives extracted under
   ``<results_dir>/inputs/<field>`` (data_staging.py);
5. write ``<results_dir>/spec.yaml`` with every secret field emptied; secrets
   go to the process through its environment only (the encryption key as
   ``SKILLBANK_ENCRYPTION_KEY``);
6. launch the action's skill_info ``command`` on the platform and mark the
   job Running.

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
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.runtime.sdk import checkpoints
from skillbank.runtime.sdk.failure import LOG_TAIL_LINES, KnownCause, analyze_failure, known_causes
from skillbank.runtime.sdk.inherited_settings import inherit_model_settings
from skillbank.runtime.sdk.job_labels import job_labels
from skillbank.runtime.sdk.outputs import job_outputs, main_output
from skillbank.runtime.sdk.platforms import DEFAULT_PLATFORM, get_platform
from skillbank.runtime.sdk.platforms.base import (
    CANCELED,
    COMPLETE,
    ERROR,
    PENDING,
    RUNNING,
    TERMINAL,
    LaunchRequest,
    Platform,
    PlatformError,
    PlatformStatus,
)
from skillbank.runtime.sdk.platforms.options import check_platform_options
from skillbank.runtime.sdk.platforms.submission import read_log
from skillbank.runtime.sdk.secrets import (
    ENCRYPTION_KEY_ENV,
    is_secret_field,
    known_secrets,
    redact_obj,
    redact_spec,
    redact_text,
    secret_fields,
    secret_values,
    secrets_in,
)
from skillbank.runtime.sdk.spec_params import InferenceContext, apply_spec_params, exact_checkpoint
from skillbank.runtime.sdk.store import JobNotFoundError, JobStore
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import get_dotted, set_dotted
from skillbank.runtime.yaml_io import safe_dump

RESULTS_ROOT_ENV = "SKILLBANK_RESULTS_ROOT"
SPEC_NAME = "spec.yaml"
STATUS_FILE = "status.json"

__all__ = [
    "create_job", "preview_job", "prepare_job", "get_job", "list_jobs", "get_job_status", "get_job_logs",
    "cancel_job", "wait", "get_failure_analysis", "latest_progress", "JobNotFoundError", "JobError",
    "PreparedJob", "describe_job", "progress_updates", "resume_field", "resume_command", "platform_of", "job_outputs",
    "main_output",
]


class JobError(RuntimeError):
    """A job that could not be created or launched (the message names the job and the cause)."""


@dataclass
class PreparedJob:
    """A job ready to launch: everything create_job records and hands to the platform."""

    job_id: str
    skill: Skill
    action: str
    platform_name: str
    platform: Platform
    spec: dict[str, Any]  # full spec as the job will read it, secret fields emptied
    results_dir: Path  # local folder the job runs in
    results_uri: str | None  # s3:// destination of the outputs, when results_root is S3
    parent_job_id: str | None
    request: LaunchRequest
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    labels: dict[str, Any] = field(default_factory=dict)  # name, tags, resumed_from, automl (job_labels.py)
    platform_options: dict[str, Any] = field(default_factory=dict)  # checked --platform-option values
    inherited: dict[str, Any] = field(default_factory=dict)  # {"from", "values"}: settings taken from the model

    @property
    def spec_path(self) -> Path:
        return self.results_dir / SPEC_NAME

    @property
    def submission(self) -> str:
        """What the platform would submit (``--dry-run``)."""
        return self.platform.render(self.request)


# -- create -----------------------------------------------------------------------------------


def create_job(
    skill: str | Skill,
    action: str,
    spec_overrides: Mapping[str, Any] | None,
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

    ``platform_options`` are the platform's settings (``--platform-option``: slurm partition, gpus=0,
    docker cli ...; see platforms/options.py), checked before anything happens and kept in the record.

    ``name`` and ``tags`` label the job for ``jobs list``; ``resumed_from`` names the job this one continues
    (``skillbank jobs resume``); ``automl`` places an AutoML trial job in its study (job_labels.automl_info).
    """
    labels = {"name": name, "tags": tags, "resumed_from": resumed_from, "automl": automl,
              "platform_options": platform_options}
    if dry_run:
        return preview_job(skill, action, spec_overrides, parent_job_id, platform, results_root,
                           env=env, job_id=job_id, store=store, **labels)
    store = store or JobStore()
    if job_id and store.exists(job_id):
        raise JobError(f"job id {job_id!r} already exists; pick a new id or omit it")
    prepared = prepare_job(skill, action, spec_overrides, parent_job_id, platform, results_root,
                           env=env, job_id=job_id, store=store, **labels)
    _check_inputs_and_destination(prepared)  # before any record: a job that cannot run is not started
    _record(store, prepared)
    try:
        with _aws_environment(prepared.secret_env):
            given = _stage(prepared)
        _write_spec(prepared)
        # the values as given (s3:// URIs, archives) beside the staged copies: `jobs resume` stages them again
        store.update(prepared.job_id, spec=_stored_spec(prepared), inputs=redact_obj(given, secret_values(
            prepared.secret_env)) or None)
        backend_id = prepared.platform.launch(prepared.request)
    except Exception as exc:
        message = redact_text(f"{type(exc).__name__}: {exc}", secret_values(prepared.secret_env))
        known = _known_causes(prepared.skill)
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


def preview_job(
    skill: str | Skill,
    action: str,
    spec_overrides: Mapping[str, Any] | None,
    parent_job_id: str | None = None,
    platform: str = DEFAULT_PLATFORM,
    results_root: str | os.PathLike | None = None,
    *,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
    store: JobStore | None = None,
    **labels: Any,
) -> str:
    """The submission create_job would make (platform render), without recording, staging or launching."""
    prepared = prepare_job(skill, action, spec_overrides, parent_job_id, platform, results_root,
                           env=env, job_id=job_id, store=store, **labels)
    return prepared.submission


def prepare_job(
    skill: str | Skill,
    action: str,
    spec_overrides: Mapping[str, Any] | None,
    parent_job_id: str | None = None,
    platform: str = DEFAULT_PLATFORM,
    results_root: str | os.PathLike | None = None,
    *,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
    store: JobStore | None = None,
    name: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    resumed_from: str | None = None,
    automl: Mapping[str, Any] | None = None,
    platform_options: Mapping[str, Any] | None = None,
) -> PreparedJob:
    """Validate, infer spec params and build the launch request; nothing is written or started."""
    from skillbank.runtime.validation import resolve_spec  # spec validation is only needed here

    labels = job_labels(name, tags, resumed_from, automl)  # a bad name or tag fails before anything else
    store = store or JobStore()
    skill = skill if isinstance(skill, Skill) else Skill.load(skill)
    skill.require_action(action)
    platform_impl = get_platform(platform, **dict(platform_options or {}))  # a bad option fails here, first
    job_id = job_id or str(uuid.uuid4())
    results_dir, results_uri = _results_location(results_root, job_id, store)
    spec_params = skill.spec_params(action)
    key_fields = [f for f, function in spec_params.items() if function == "key"]

    # Secrets leave the overrides here: validation, records and errors never see them.
    secret_env = {k: str(v) for k, v in (env or {}).items()}
    overrides = dict(spec_overrides or {})
    for key_field in key_fields:
        value = overrides.pop(key_field, None)
        if value not in (None, ""):
            secret_env[ENCRYPTION_KEY_ENV] = str(value)
    if ENCRYPTION_KEY_ENV not in secret_env and os.environ.get(ENCRYPTION_KEY_ENV):
        secret_env[ENCRYPTION_KEY_ENV] = os.environ[ENCRYPTION_KEY_ENV]
    _refuse_pasted_secrets(overrides, secret_env, key_fields)

    parent = None
    if parent_job_id:
        try:
            parent = _refresh(store, parent_job_id)
        except JobNotFoundError:
            raise JobError(f"parent job {parent_job_id!r} not found in the job store ({store.path})") from None

    spec = resolve_spec(skill, action, overrides)
    if ENCRYPTION_KEY_ENV in secret_env:  # a key the user gave beats a template default key
        for key_field in key_fields:
            set_dotted(spec, key_field, "")
    context = InferenceContext(
        job_id=job_id, action=action, network_arch=skill.network_arch, results_dir=results_dir,
        parent_job_id=parent_job_id, parent=parent, env=secret_env,
    )
    spec = apply_spec_params(spec, spec_params, context)
    # evaluate/inference/export run the parent's model: its settings (input size, label map ...) fill the spec
    spec, inherited = inherit_model_settings(skill, action, spec, overrides, parent, parent_job_id)
    for key_field in key_fields:  # the key inference's answer is what the process gets
        if get_dotted(spec, key_field) not in (None, ""):
            secret_env[ENCRYPTION_KEY_ENV] = str(get_dotted(spec, key_field))
    # Secret fields are emptied (their values travel in the environment); every other value is the user's.
    spec = redact_spec(spec, secret_fields(spec, spec_params))

    action_info = skill.action_info(action)
    request = LaunchRequest(
        job_id=job_id,
        command=_command(action_info, results_dir / SPEC_NAME, results_dir, job_id, skill, action),
        results_dir=results_dir,
        env=dict(secret_env),
        image=str(skill.info.get("container_image") or ""),
        gpus=_gpus(spec, skill.info.get("gpu_spec_key")),
        mounts=[],
        name=f"{skill.name}-{action}",
        **_parallel_layout(skill, action, spec),
    )
    prepared = PreparedJob(
        job_id=job_id, skill=skill, action=action, platform_name=platform, platform=platform_impl, spec=spec,
        results_dir=results_dir, results_uri=results_uri, parent_job_id=parent_job_id, request=request,
        secret_env=secret_env, labels=labels, inherited=inherited,
        platform_options=check_platform_options(platform, platform_options),
    )
    request.mounts = _mounts(prepared)
    return prepared


def _refuse_pasted_secrets(overrides: Mapping[str, Any], secret_env: Mapping[str, str],
                           key_fields: list[str]) -> None:
    """A known secret in a field that is not a secret field is refused: a job's values are never altered,
    and a secret must not reach its spec, record or log."""
    from skillbank.runtime.overrides import flatten

    flat = flatten(dict(overrides))
    given = {str(v): k for k, v in flat.items() if (k in key_fields or is_secret_field(k)) and isinstance(v, str)}
    plain = {k: v for k, v in flat.items() if k not in key_fields and not is_secret_field(k)}
    pasted = secrets_in(plain, known_secrets(secret_env, given))
    if pasted:
        where = "; ".join(f"{key} holds the value of {source}" for key, source in pasted)
        raise JobError(f"spec_overrides: {where}: a secret reaches a job only through its environment "
                       "(a secret field such as encryption_key, or an environment variable), never through "
                       "another field; remove it there")


def _results_location(
    results_root: str | os.PathLike | None, job_id: str, store: JobStore
) -> tuple[Path, str | None]:
    root = str(results_root or os.environ.get(RESULTS_ROOT_ENV) or Path.home() / "skillbank-results")
    if root.startswith("s3://"):
        return (store.state_dir / "staging" / job_id).absolute(), f"{root.rstrip('/')}/{job_id}"
    return (Path(root).expanduser().absolute() / job_id), None


def _command(action_info: Mapping[str, Any], spec_path: Path, results_dir: Path, job_id: str, skill: Skill,
             action: str) -> list[str]:
    template = str(action_info.get("command") or "")
    if not template.strip():
        raise JobError(f"{skill.name}: action {action!r} has no `command` in skill_info.yaml")
    values = {"config_path": str(spec_path), "results_dir": str(results_dir), "job_id": job_id}
    # Substitute per argument after splitting, so paths with spaces stay one argument.
    argv = []
    for token in shlex.split(template):
        for name, value in values.items():
            token = token.replace("{" + name + "}", value)
        argv.append(token)
    return argv


def _gpus(spec: Mapping[str, Any], gpu_spec_key: str | None) -> int:
    return _count(spec, gpu_spec_key)


def _count(spec: Mapping[str, Any], key: str | None) -> int:
    """The positive integer at the spec's dotted ``key``, else 0."""
    value = get_dotted(dict(spec), key) if key else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _parallel_layout(skill: Skill, action: str, spec: Mapping[str, Any]) -> dict[str, int]:
    """``nodes`` and ``tasks_per_node`` of the launch: one process per GPU on each node for a ``distributed``
    action (skill_info), one process otherwise."""
    if not skill.action_info(action).get("distributed"):
        return {"nodes": 1, "tasks_per_node": 1}
    return {"nodes": max(1, _count(spec, skill.info.get("nodes_spec_key"))),
            "tasks_per_node": max(1, _count(spec, skill.info.get("gpu_spec_key")))}


def platform_of(record: Mapping[str, Any]) -> Platform:
    """The platform a recorded job runs on, with the options it was launched with."""
    return get_platform(record["platform"], **(record.get("platform_options") or {}))


def _mounts(prepared: PreparedJob) -> list[tuple[str, str]]:
    """Host folders a container needs, at the same path inside: the results folder and local inputs."""
    mounts = [str(prepared.results_dir)]
    inputs = prepared.skill.action_info(prepared.action).get("inputs") or {}
    for input_field in inputs:
        value = get_dotted(prepared.spec, input_field)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item and "://" not in item and os.path.isabs(item):
                path = item if os.path.isdir(item) else os.path.dirname(item)
                if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
                    mounts.append(path)
    return [(m, m) for m in mounts]


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


# Platforms whose jobs read local paths of this machine (a container mounts them from here).
_LOCAL_PATH_PLATFORMS = ("local", "docker")


def _check_inputs_and_destination(prepared: PreparedJob) -> None:
    """Refuse to launch what would fail later: a missing local data source or archive, an S3 results
    destination that cannot be written. Raises JobError naming the key (nothing is recorded)."""
    inputs = prepared.skill.action_info(prepared.action).get("inputs") or {}
    for key, info in inputs.items():
        value = get_dotted(prepared.spec, key)
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str) or not item or item == "???" or "://" in item:
                continue
            is_archive = str(item).lower().endswith((".tar.gz", ".tgz", ".tar"))
            if (is_archive or prepared.platform_name in _LOCAL_PATH_PLATFORMS) and not os.path.exists(item):
                kind = "archive" if is_archive else (str((info or {}).get("type") or "path"))
                raise JobError(f"{key}: {kind} {item} does not exist on this machine; nothing was launched")
    if prepared.results_uri:
        from skillbank.runtime.sdk import s3

        try:
            with _aws_environment(prepared.secret_env):
                s3.check_writable(prepared.results_uri)
        except s3.S3Error as exc:
            raise JobError(f"results root {prepared.results_uri.rsplit('/', 1)[0]} cannot be written: {exc}; "
                           "nothing was launched") from None


def _stage(prepared: PreparedJob) -> dict[str, Any]:
    """Download S3 inputs / extract archives into ``<results_dir>/inputs``; updates the prepared spec.

    Returns the staged fields' values as given (field -> S3 URI or archive path).
    """
    prepared.results_dir.mkdir(parents=True, exist_ok=True)
    inputs = prepared.skill.action_info(prepared.action).get("inputs") or {}
    if not inputs:
        return {}
    from skillbank.runtime.sdk import data_staging  # S3 and archive code only when a job is staged

    before = prepared.spec
    prepared.spec = data_staging.stage_inputs(prepared.spec, inputs, prepared.results_dir / "inputs")
    prepared.request.mounts = _mounts(prepared)
    return {name: get_dotted(before, name, None) for name in inputs
            if get_dotted(before, name, None) != get_dotted(prepared.spec, name, None)}


def _write_spec(prepared: PreparedJob) -> None:
    prepared.results_dir.mkdir(parents=True, exist_ok=True)
    text = safe_dump(prepared.spec)
    tmp = prepared.spec_path.with_name(f".{SPEC_NAME}.tmp")
    tmp.write_text(text)
    os.replace(tmp, prepared.spec_path)


@contextlib.contextmanager
def _aws_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Make AWS settings given to create_job visible to boto3 while inputs are staged."""
    added = {k: v for k, v in env.items() if k.startswith("AWS_")}
    saved = {k: os.environ.get(k) for k in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    return _finish(store, record, observed)["status"]


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
            events = _progress_events(record)
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
        time.sleep(poll)


def get_failure_analysis(job_id: str, *, store: JobStore | None = None) -> dict[str, Any]:
    """Why the job failed: category, exit_code, signal, log_tail, suggestion (category None unless Error)."""
    store = store or JobStore()
    record = _refresh(store, job_id)
    if record["status"] == ERROR:
        return record["failure"] or _analyze(record, PlatformStatus(ERROR))
    resume = resume_command(record)
    suggestion = {
        COMPLETE: "The job completed; nothing failed.",
        CANCELED: (f"The job was canceled; if that was not intended, continue it from its newest checkpoint: "
                   f"{resume}" if resume else "The job was canceled; rerun it if that was not intended."),
    }.get(record["status"], f"The job is {record['status']}; nothing has failed yet.")
    return {"category": None, "exit_code": record["exit_code"], "signal": record["signal"], "signal_name": None,
            "log_tail": "", "detail": "", "suggestion": suggestion}


PROGRESS_FIELDS = ("epoch", "max_epoch", "step", "max_step", "time_per_epoch", "time_per_step", "eta")


def latest_progress(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The job's progress from its status.json (``<results_dir>/<action>/status.json`` first).

    The last event (its ``status`` and ``message``), completed by :func:`progress_view` with the newest
    finished epoch's fields and KPIs, since TAO's format spreads one epoch over three lines.
    """
    events = _progress_events(record)
    return progress_view(events) if events else None


def _progress_events(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The newest events of the job's status.json (the first of its likely places that has any)."""
    results_dir = Path(record["results_dir"])
    for path in _status_files(results_dir, record["action"]):
        events = _last_json_lines(path)
        if events:
            return events
    return []


EVAL_METRICS_MESSAGE = "Eval metrics generated."
TRAIN_METRICS_MESSAGE = "Train metrics generated."
LOOP_MESSAGE = "Training loop in progress"


def progress_updates(
    events: list[dict[str, Any]], seen: dict[str, Any] | None, *, final: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The progress views of the events after ``seen`` (the newest event handled before), one per line.

    Every epoch gets its own view, even when several ended between two looks: TAO's "Eval metrics
    generated." and "Train metrics generated." lines are folded into their epoch's "Training loop in
    progress" view, and that view waits for its train metrics line unless the job has ended (``final``).
    Returns the views and the new ``seen``. When ``seen`` is no longer among ``events`` (the file
    was replaced, or more was written than one look reads) every event counts as new.
    """
    start = 0
    if seen is not None:
        start = next((i + 1 for i in range(len(events) - 1, -1, -1) if events[i] == seen), 0)
    views: list[dict[str, Any]] = []
    handled = start - 1
    for i in range(start, len(events)):
        message = events[i].get("message")
        if message == EVAL_METRICS_MESSAGE:
            handled = i  # shown with the epoch's loop line that follows
            continue
        if message == TRAIN_METRICS_MESSAGE and i > 0 and events[i - 1].get("message") == LOOP_MESSAGE:
            handled = i  # shown with the loop line before it
            continue
        if message == LOOP_MESSAGE and i == len(events) - 1 and not final:
            break  # its train metrics line is still to come
        folds_next = (message == LOOP_MESSAGE and i + 1 < len(events)
                      and events[i + 1].get("message") == TRAIN_METRICS_MESSAGE)
        end = i + 2 if folds_next else i + 1
        view = progress_view(events[:end])
        if view is not None:
            views.append(view)
        handled = end - 1
    return views, events[handled] if handled >= 0 else seen


def progress_view(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last of ``events``, plus the epoch fields and KPIs of the newest "Training loop in progress" line.

    TAO's train status.json writes, per epoch: "Eval metrics generated." (kpi val_loss, val_acc), "Training
    loop in progress" (epoch 0-based, max_epoch = num_epochs - 1, step, eta ...; repeats the last kpi),
    "Train metrics generated." (kpi train_loss, train_acc). The view's ``kpi`` joins that epoch's val and
    train KPIs. Events of other actions (no ``epoch``) are returned as they are.
    """
    if not events:
        return None
    view = dict(events[-1])
    at = next((i for i in range(len(events) - 1, -1, -1) if _is_int(events[i].get("epoch"))), None)
    if at is None:
        return view
    loop = events[at]
    for name in PROGRESS_FIELDS:
        if name in loop and name not in view:
            view[name] = loop[name]
    kpi = dict(loop.get("kpi") or {}) if isinstance(loop.get("kpi"), dict) else {}
    before = events[at - 1] if at > 0 else {}
    if before.get("message") == "Eval metrics generated." and isinstance(before.get("kpi"), dict):
        kpi.update(before["kpi"])
    after = events[at + 1] if at + 1 < len(events) else {}
    if after.get("message") == "Train metrics generated." and isinstance(after.get("kpi"), dict):
        kpi.update(after["kpi"])
    if kpi:
        view["kpi"] = kpi
    return view


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _status_files(results_dir: Path, action: str) -> Iterator[Path]:
    """Where a job's status.json may be, most likely first; the folder is listed only when those miss."""
    yield results_dir / action / STATUS_FILE
    yield results_dir / STATUS_FILE
    yield from sorted(results_dir.glob(f"*/{STATUS_FILE}"))


# -- record keeping ---------------------------------------------------------------------------


def _refresh(store: JobStore, job_id: str, *, upload: bool = True) -> dict[str, Any]:
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
        return _finish(store, record, observed)
    if observed.state != record["status"] and observed.state in (PENDING, RUNNING):
        store.set_status(job_id, observed.state)
        return store.get(job_id)
    return record


def _finish(store: JobStore, record: dict[str, Any], observed: PlatformStatus) -> dict[str, Any]:
    """Record a job's end: checkpoints (Complete), failure analysis (Error), S3 upload; then the status."""
    results_dir = Path(record["results_dir"])
    state = observed.state
    fields: dict[str, Any] = {"exit_code": observed.exit_code, "signal": observed.signal}
    found: list[checkpoints.Checkpoint] = []
    if state == COMPLETE:
        found = checkpoints.list_checkpoints(results_dir, record["action"])
        fields["best_checkpoint"] = _recorded_best(record)
    elif state == ERROR:
        fields["failure"] = _analyze(record, observed)
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


def _upload(record: Mapping[str, Any]) -> list[str]:
    from skillbank.runtime.sdk import data_staging  # boto3 only for S3 jobs

    skill_excludes: list[str] = []
    with contextlib.suppress(Exception):  # the skill may have moved; upload everything but inputs then
        skill_excludes = list(Skill.load(record["skill"]).action_info(record["action"]).get("upload_excludes") or [])
    excludes = skill_excludes or ["inputs/"]
    return data_staging.upload_outputs(Path(record["results_dir"]), record["results_uri"], excludes)


def _analyze(record: Mapping[str, Any], observed: PlatformStatus) -> dict[str, Any]:
    log_text = ""
    with contextlib.suppress(Exception):
        log_text = platform_of(record).logs(
            record["backend_id"] or "", Path(record["results_dir"]), LOG_TAIL_LINES
        )
    log_text = redact_text(log_text, secret_values())
    lost = observed.exit_code is None and observed.signal is None
    return analyze_failure(exit_code=observed.exit_code, signal=observed.signal, log_text=log_text,
                           detail=observed.detail, lost=lost, known=_known_causes(record["skill"]),
                           resume_command=resume_command(record))


def _known_causes(skill: str | Skill) -> tuple[KnownCause, ...]:
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


def _recorded_best(record: Mapping[str, Any]) -> str | None:
    """The best checkpoint a job reported: the last ``best_checkpoint`` in its status.json events."""
    results_dir = Path(record["results_dir"])
    for path in [results_dir / record["action"] / STATUS_FILE, results_dir / STATUS_FILE]:
        if not path.is_file():
            continue
        reported = []
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                value = json.loads(line).get("best_checkpoint")
                if value:
                    reported.append(str(value))
        if reported:
            # The newest report whose file is still there (a rerun may have replaced older best files).
            existing = [b for b in reported if (path.parent / b).is_file()]
            return existing[-1] if existing else reported[-1]
    return None


def _last_json_lines(path: Path, tail: int = 16384) -> list[dict[str, Any]]:
    """The complete JSON-object lines in the last ``tail`` bytes of ``path``, oldest first."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - tail))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written, or cut by the tail
        if isinstance(event, dict):
            events.append(event)
    return events

