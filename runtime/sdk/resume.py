"""``skillbank jobs resume JOB_ID``: a new job with a stopped job's spec, continuing from its newest checkpoint.

The new job:

* has the old job's skill, action, platform, parent job, name and tags, and its recorded spec with the
  inputs as they were given (an ``s3://`` URI or archive is staged again into the new job's folder) and
  the fields the SDK infers per job emptied, so they are inferred for the new job (results folder,
  resume checkpoint, ONNX file, parent checkpoint);
* starts with a copy of the old job's ``<results_dir>/<action>/`` folder (checkpoints hard-linked, other
  files copied, the ``*_latest`` link remade): the action's ``resume_model`` inference then picks the
  newest checkpoint there, and training continues from it as a rerun into the same folder does (TAO's
  auto-resume). The old epochs' checkpoints and status.json lines are part of the new job's results;
* when the old local folder is gone but its outputs were uploaded to S3, resumes from the uploaded
  newest checkpoint (the resume field is an input, so the SDK downloads it);
* records ``resumed_from``; ``jobs show`` of the old job lists the new one under ``resumed_by``.

Only actions with a ``resume_model`` spec param (train) resume, and only from Error or Canceled: a
Running job is still going and a Complete one has nothing left to do.
"""
from __future__ import annotations

import copy
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from skillbank.runtime.sdk import checkpoints
from skillbank.runtime.sdk import jobs as job_api
from skillbank.runtime.sdk.job_prepare import results_location
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR
from skillbank.runtime.sdk.store import JobStore
from skillbank.runtime.skills import Skill, SkillError
from skillbank.runtime.spec_builder import get_dotted, set_dotted

# Spec params whose value belongs to one job: emptied so that the new job infers its own.
PER_JOB_FUNCTIONS = ("output_dir", "resume_model", "create_onnx_file", "parent_model", "parent_model_folder")
RESUMABLE = (ERROR, CANCELED)


def resume_job(job_id: str, *, store: JobStore | None = None) -> dict[str, Any]:
    """Start the job that continues ``job_id``; returns ``{job_id, resumed_from, checkpoint, results_dir}``.

    ``checkpoint`` is what the new job continues from (None: the old job wrote none, so it starts over).
    Raises JobNotFoundError for an unknown id and JobError (naming the job) when it cannot be resumed.
    """
    store = store or JobStore()
    old = job_api.refresh_job(job_id, store=store)
    try:
        skill = Skill.load(old["skill"])
    except SkillError as exc:
        raise job_api.JobError(f"job {job_id} cannot be resumed: {exc} (the bank is $SKILLBANK_ROOT)") from None
    field = job_api.resume_field(skill, old["action"])
    if field is None:
        raise job_api.JobError(f"job {job_id} is a {old['action']} job, which cannot continue from a checkpoint "
                               "(only actions with a resume_model spec param, such as train, can); rerun it")
    if old["status"] not in RESUMABLE:
        hint = ("nothing is left to continue" if old["status"] == COMPLETE
                else f"wait for it or cancel it first (skillbank jobs cancel {job_id})")
        raise job_api.JobError(f"job {job_id} is {old['status']}; only Error or Canceled jobs are resumed: {hint}")

    new_id = str(uuid.uuid4())
    root = _results_root(old)
    new_dir, _ = results_location(root, new_id, store)  # where create_job will put the new job
    overrides = _overrides(old, skill)
    checkpoint = _continue_from(old, new_dir)
    if checkpoint is not None and checkpoint.startswith("s3://"):
        set_dotted(overrides, field, checkpoint)  # the old folder is gone: the uploaded checkpoint is staged
    try:
        new_id = job_api.create_job(
            skill, old["action"], overrides, old["parent_job_id"], old["platform"], root, job_id=new_id,
            store=store, name=old.get("name"), tags=old.get("tags") or (), resumed_from=job_id,
            platform_options=old.get("platform_options"),  # the same partition, gpus, CLI ... as the old job
        )
    except Exception:
        if not store.exists(new_id):  # nothing was recorded: leave no orphan folder behind
            shutil.rmtree(new_dir, ignore_errors=True)
        raise
    new = store.get(new_id)
    resumed = get_dotted(new["spec"], field, None) or None
    return {"job_id": new_id, "resumed_from": job_id, "checkpoint": resumed, "results_dir": new["results_dir"],
            "results_uri": new["results_uri"], "status": new["status"]}


def _results_root(record: dict[str, Any]) -> str:
    """The results root the old job was created under (its results folder's parent)."""
    if record.get("results_uri"):
        return str(record["results_uri"]).rstrip("/").rsplit("/", 1)[0]
    return str(Path(record["results_dir"]).parent)


def _overrides(record: dict[str, Any], skill: Skill) -> dict[str, Any]:
    """The old job's spec with its inputs as given and its per-job inferred fields emptied (inferred again)."""
    spec = copy.deepcopy(record["spec"])
    for name, given in (record.get("inputs") or {}).items():
        set_dotted(spec, name, given)  # an s3:// URI or archive is staged again, into the new job's folder
    for name, function in skill.spec_params(record["action"]).items():
        if function in PER_JOB_FUNCTIONS and get_dotted(spec, name, None) is not None:
            set_dotted(spec, name, "")
    return spec


def _continue_from(record: dict[str, Any], new_dir: Path) -> str | None:
    """Put the old job's action folder into ``new_dir``; returns the checkpoint the new job continues from."""
    action = record["action"]
    old_dir = Path(record["results_dir"])
    newest = checkpoints.newest_checkpoint(old_dir, action)
    if newest is not None:
        seed_results(old_dir / action, new_dir / action)
        copied = new_dir / newest.relative
        return str(copied) if copied.is_file() else newest.location
    if record.get("results_uri") and record.get("uploaded"):
        uploaded = checkpoints.newest_checkpoint(str(record["results_uri"]), action)
        return uploaded.location if uploaded else None
    return None


def seed_results(source: Path, target: Path) -> list[Path]:
    """Copy ``source`` into ``target`` (created): checkpoints hard-linked, other files copied, links remade.

    Hard links are safe for checkpoints because training writes every checkpoint under a new name (a
    temporary file renamed into place), never into an existing file; status.json is appended to, so it
    is copied. Returns the files placed.
    """
    if not source.is_dir():
        return []
    placed = []
    for folder, dirnames, filenames in os.walk(source):
        here = Path(folder)
        there = target / here.relative_to(source)
        there.mkdir(parents=True, exist_ok=True)
        for name in [*filenames, *(d for d in dirnames if (here / d).is_symlink())]:
            src, dst = here / name, there / name
            if src.is_symlink():
                link = os.readlink(src)
                if os.path.isabs(link) and Path(link).is_relative_to(source):
                    link = str(target / Path(link).relative_to(source))  # a link into the old folder
                os.symlink(link, dst)
            elif name.lower().endswith(checkpoints.CHECKPOINT_SUFFIXES):
                try:
                    os.link(src, dst)
                except OSError:  # another file system, or links not allowed: a real copy
                    shutil.copy2(src, dst)
            else:
                shutil.copy2(src, dst)
            placed.append(dst)
    return placed


__all__ = ["resume_job", "seed_results"]
