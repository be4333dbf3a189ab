"""Turn (skill, action, spec_overrides) into a job ready to launch; nothing is written or started.

:func:`prepare_job` is steps 1-2 of ``create_job`` (jobs.py): the overrides are validated once (or
arrive already validated, as a :class:`~skillbank.runtime.validation.ValidatedSpec`), the secrets leave
them for the job's environment, the action's ``spec_params`` are inferred with the parent job's record
at hand, the settings the job inherits from the model it runs are filled in, and the platform's
launch request is built. ``--dry-run`` shows the result; ``create_job`` records, stages and launches it.
"""
from __future__ import annotations

import copy
import os
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.runtime import settings
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.inherited_settings import inherit_model_settings
from skillbank.runtime.sdk.job_labels import job_labels
from skillbank.runtime.sdk.job_refresh import refresh
from skillbank.runtime.sdk.outputs import SPEC_NAME
from skillbank.runtime.sdk.platforms import DEFAULT_PLATFORM, get_platform
from skillbank.runtime.sdk.platforms.base import LaunchRequest, Platform
from skillbank.runtime.sdk.platforms.options import check_platform_options
from skillbank.runtime.sdk.secrets import (
    ENCRYPTION_KEY_ENV,
    is_encryption_key,
    is_secret_field,
    known_secrets,
    redact_spec,
    secret_fields,
    secrets_in,
    take_encryption_key,
)
from skillbank.runtime.sdk.spec_params import InferenceContext, apply_spec_params
from skillbank.runtime.sdk.store import JobNotFoundError, JobStore
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import get_dotted, set_dotted
from skillbank.runtime.validation import ValidatedSpec


class JobError(SkillbankError, RuntimeError):
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


def prepare_job(
    skill: str | Skill,
    action: str,
    spec_overrides: Mapping[str, Any] | ValidatedSpec | None,
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
    """Validate, infer spec params and build the launch request; nothing is written or started.

    ``spec_overrides`` already validated (a ValidatedSpec of this skill's ``action``) are taken as they
    are; a mapping is validated here (SpecValidationError lists every problem). The arguments are
    ``create_job``'s.
    """
    labels = job_labels(name, tags, resumed_from, automl)  # a bad name or tag fails before anything else
    store = store or JobStore()
    skill = skill if isinstance(skill, Skill) else Skill.load(skill)
    skill.require_action(action)
    platform_impl = get_platform(platform, **dict(platform_options or {}))  # a bad option fails here, first
    job_id = job_id or str(uuid.uuid4())
    results_dir, results_uri = results_location(results_root, job_id, store)
    spec_params = skill.spec_params(action)

    # Secrets leave the overrides here: validation, records and errors never see them.
    validated = spec_overrides if isinstance(spec_overrides, ValidatedSpec) else None
    overrides, given_key = take_encryption_key(validated.overrides if validated else dict(spec_overrides or {}),
                                               spec_params)
    secret_env = {**{k: str(v) for k, v in (env or {}).items()}, **given_key}
    encryption_key = settings.encryption_key(secret_env)  # given here, else this process's $SKILLBANK_ENCRYPTION_KEY
    if encryption_key:
        secret_env[ENCRYPTION_KEY_ENV] = encryption_key
    _refuse_pasted_secrets(overrides, secret_env, spec_params)

    parent = None
    if parent_job_id:
        try:
            parent = refresh(store, parent_job_id)
        except JobNotFoundError:
            raise JobError(f"parent job {parent_job_id!r} not found in the job store ({store.path})") from None

    validated = _validated(validated, skill, action, overrides)
    spec = copy.deepcopy(validated.spec)  # the caller's ValidatedSpec stays as it was
    key_fields = [key for key in secret_fields(spec, spec_params) if is_encryption_key(key, spec_params)]
    if ENCRYPTION_KEY_ENV in secret_env:  # a key the user gave beats a template default key
        for key_field in key_fields:
            set_dotted(spec, key_field, "")
    context = InferenceContext(
        job_id=job_id, action=action, network_arch=skill.network_arch, results_dir=results_dir,
        parent_job_id=parent_job_id, parent=parent, env=secret_env,
    )
    spec = apply_spec_params(spec, spec_params, context)
    # evaluate/inference/export run the parent's model: its settings (input size, label map ...) fill the spec
    spec, inherited = inherit_model_settings(skill, action, spec, validated.overrides, parent, parent_job_id)
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
        gpus=_count(spec, skill.info.get("gpu_spec_key")),
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
    request.mounts = job_mounts(prepared)
    return prepared


def results_location(
    results_root: str | os.PathLike | None, job_id: str, store: JobStore
) -> tuple[Path, str | None]:
    """(the local folder a job runs in, the ``s3://`` URI its outputs go to or None) under ``results_root``."""
    root = str(results_root or settings.results_root())
    if root.startswith("s3://"):
        return (store.state_dir / "staging" / job_id).absolute(), f"{root.rstrip('/')}/{job_id}"
    return (Path(root).expanduser().absolute() / job_id), None


def job_mounts(prepared: PreparedJob) -> list[tuple[str, str]]:
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


def _validated(validated: ValidatedSpec | None, skill: Skill, action: str,
               overrides: dict[str, Any]) -> ValidatedSpec:
    """``validated`` when it was made for this skill's action, else ``overrides`` validated now."""
    from skillbank.runtime.validation import validated_spec  # spec validation is only needed here

    if validated is None:
        return validated_spec(skill, action, overrides)
    if (validated.skill, validated.action) != (skill.name, action):
        raise JobError(f"spec_overrides were validated for {validated.skill} {validated.action}, "
                       f"not {skill.name} {action}")
    return validated


def _refuse_pasted_secrets(overrides: Mapping[str, Any], secret_env: Mapping[str, str],
                           spec_params: Mapping[str, str]) -> None:
    """A known secret in a field that is not a secret field is refused: a job's values are never altered,
    and a secret must not reach its spec, record or log."""
    from skillbank.runtime.overrides import flatten

    flat = flatten(dict(overrides))
    given = {str(v): k for k, v in flat.items() if is_secret_field(k, spec_params) and isinstance(v, str)}
    plain = {k: v for k, v in flat.items() if not is_secret_field(k, spec_params)}
    pasted = secrets_in(plain, known_secrets(secret_env, given))
    if pasted:
        where = "; ".join(f"{key} holds the value of {source}" for key, source in pasted)
        raise JobError(f"spec_overrides: {where}: a secret reaches a job only through its environment "
                       "(a secret field such as encryption_key, or an environment variable), never through "
                       "another field; remove it there")


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


def _count(spec: Mapping[str, Any], key: str | None) -> int:
    """The positive integer at the spec's dotted ``key``, else 0 (the GPUs, nodes ... a launch asks for)."""
    value = get_dotted(dict(spec), key) if key else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _parallel_layout(skill: Skill, action: str, spec: Mapping[str, Any]) -> dict[str, int]:
    """``nodes`` and ``tasks_per_node`` of the launch: one process per GPU on each node for a ``distributed``
    action (skill_info), one process otherwise."""
    if not skill.action_info(action).get("distributed"):
        return {"nodes": 1, "tasks_per_node": 1}
    return {"nodes": max(1, _count(spec, skill.info.get("nodes_spec_key"))),
            "tasks_per_node": max(1, _count(spec, skill.info.get("gpu_spec_key")))}
