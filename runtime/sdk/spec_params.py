"""Spec-param inference: fill the fields ``skill_info.yaml`` ``spec_params`` names for an action.

Each inference function is registered by name (the names skill_info uses) and
is a plain function ``(context, current_value) -> value``. It reads only the
context it is given (the job's id and results folder, the parent job's record,
the environment); the SDK gathers that context before calling
:func:`apply_spec_params`, which returns a new spec and changes nothing else.

A value the user gave wins over inference unless it is empty (``''``,
``None`` or TAO's ``???``). ``ptm_if_no_resume_model`` is the exception: it
always runs, because its job is to drop the user's pretrained path when a
resume checkpoint exists.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.runtime import settings
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk import checkpoints
from skillbank.runtime.sdk.platforms.base import COMPLETE
from skillbank.runtime.spec_builder import get_dotted, set_dotted

EMPTY_VALUES = ("", None, "???")


class SpecParamError(SkillbankError, ValueError):
    """An inference that cannot produce a value (missing parent job, no checkpoint, unknown function)."""


@dataclass
class InferenceContext:
    """What inference functions may read about the job being created."""

    job_id: str
    action: str
    network_arch: str
    results_dir: Path  # the job's own local results folder
    parent_job_id: str | None = None
    parent: dict[str, Any] | None = None  # the parent's job record (status refreshed), None if not found
    env: Mapping[str, str] = field(default_factory=dict)  # secrets given to create_job (never written)
    field: str = ""  # the spec field being filled (set by apply_spec_params)


InferenceFunction = Callable[[InferenceContext, Any], Any]


@dataclass(frozen=True)
class _Registered:
    function: InferenceFunction
    user_value_wins: bool


INFERENCE_FUNCTIONS: dict[str, _Registered] = {}


def inference_function(name: str, *, user_value_wins: bool = True) -> Callable[[InferenceFunction], InferenceFunction]:
    """Register ``function`` under ``name`` (the name used in skill_info ``spec_params``)."""

    def register(function: InferenceFunction) -> InferenceFunction:
        if name in INFERENCE_FUNCTIONS:
            raise ValueError(f"inference function {name!r} is already registered")
        INFERENCE_FUNCTIONS[name] = _Registered(function, user_value_wins)
        return function

    return register


def is_empty(value: Any) -> bool:
    return value in EMPTY_VALUES or (isinstance(value, str) and value.strip() in EMPTY_VALUES)


def apply_spec_params(
    spec: dict[str, Any], spec_params: Mapping[str, str], context: InferenceContext
) -> dict[str, Any]:
    """A copy of ``spec`` with every ``spec_params`` field inferred (user values win unless empty)."""
    unknown = {f: n for f, n in spec_params.items() if n not in INFERENCE_FUNCTIONS}
    if unknown:
        field_name, name = next(iter(unknown.items()))
        raise SpecParamError(
            f"spec_params field {field_name!r} names unknown inference function {name!r}; "
            f"allowed: {', '.join(sorted(INFERENCE_FUNCTIONS))}"
        )
    out = copy.deepcopy(spec)
    for field_name, name in spec_params.items():
        registered = INFERENCE_FUNCTIONS[name]
        current = get_dotted(out, field_name, None)
        if registered.user_value_wins and not is_empty(current):
            continue
        context.field = field_name
        set_dotted(out, field_name, registered.function(context, current))
    return out


# -- the functions -----------------------------------------------------------------------------


@inference_function("key")
def infer_key(context: InferenceContext, current: Any) -> str:
    """The encryption key: from the overrides (the current value) or $SKILLBANK_ENCRYPTION_KEY; '' if none.

    The value is a secret: the SDK passes it to the job through the environment and
    writes an empty field to disk.
    """
    return settings.encryption_key(context.env)


@inference_function("output_dir")
def infer_output_dir(context: InferenceContext, current: Any) -> str:
    """The job's own results folder."""
    return str(context.results_dir)


@inference_function("create_onnx_file")
def infer_onnx_file(context: InferenceContext, current: Any) -> str:
    """``<results_dir>/<network_arch>.onnx``."""
    return str(Path(context.results_dir) / f"{context.network_arch}.onnx")


@inference_function("resume_model")
def infer_resume_model(context: InferenceContext, current: Any) -> str:
    """The newest exact checkpoint already in this job's results ('' when there is none)."""
    found = checkpoints.newest_checkpoint(context.results_dir, context.action)
    return found.location if found else ""


@inference_function("ptm_if_no_resume_model", user_value_wins=False)
def infer_ptm_if_no_resume(context: InferenceContext, current: Any) -> str:
    """The user's pretrained-model path, but '' when the job resumes from its own checkpoint."""
    if checkpoints.newest_checkpoint(context.results_dir, context.action) is not None:
        return ""
    return "" if is_empty(current) else str(current)


@inference_function("parent_model")
def infer_parent_model(context: InferenceContext, current: Any) -> str:
    """The exact checkpoint file the parent job produced (see checkpoints.py for the rules)."""
    return parent_checkpoint(context).location


@inference_function("parent_model_folder")
def infer_parent_model_folder(context: InferenceContext, current: Any) -> str:
    """The folder that holds the parent's exact checkpoint."""
    return parent_checkpoint(context).folder


def parent_checkpoint(context: InferenceContext) -> checkpoints.Checkpoint:
    """The parent's checkpoint; every way this can fail is an error naming the parent job."""
    parent_id = context.parent_job_id
    if not parent_id:
        raise SpecParamError(
            f"{context.field or 'this field'} is inferred from a parent job's checkpoint, but no parent job was "
            f"given; pass parent_job_id (--parent-job-id) of a Complete train job or set {context.field} yourself"
        )
    parent = context.parent
    if parent is None:
        raise SpecParamError(f"parent job {parent_id!r} not found in the job store")
    if parent.get("status") != COMPLETE:
        raise SpecParamError(
            f"parent job {parent_id!r} is {parent.get('status')}, not {COMPLETE}; "
            f"its checkpoints cannot be used for {context.field}"
        )
    try:
        return job_checkpoint(parent)
    except checkpoints.CheckpointError as exc:
        raise SpecParamError(f"parent job {parent_id!r} has no usable checkpoint: {exc}") from exc


def job_checkpoint(job: Mapping[str, Any]) -> checkpoints.Checkpoint:
    """The exact checkpoint a finished job hands to its children: the best it recorded, else its newest.

    Raises CheckpointError when its results hold none.
    """
    return checkpoints.select_checkpoint(
        parent_results_location(job), action=job.get("action"), best=job.get("best_checkpoint") or None
    )


def exact_checkpoint(job: Mapping[str, Any]) -> str | None:
    """Where :func:`job_checkpoint` is for a Complete job with checkpoints (what ``parent_job_id`` gives), else None."""
    if job.get("status") != COMPLETE or not job.get("checkpoints"):
        return None
    try:
        return job_checkpoint(job).location
    except checkpoints.CheckpointError:
        return None


def parent_results_location(parent: Mapping[str, Any]) -> str:
    """Where a finished job's outputs are: its S3 results once uploaded, else its local folder."""
    if parent.get("results_uri") and parent.get("uploaded"):
        return str(parent["results_uri"])
    return str(parent["results_dir"])
