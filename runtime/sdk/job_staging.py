"""Put a prepared job's files in place before launch: its inputs checked and staged, its spec.yaml written.

Steps 4-5 of ``create_job`` (jobs.py). :func:`check_launchable` refuses, before anything is
recorded, a job that would fail later (a local data source or archive that does not exist, an S3
results destination that cannot be written). :func:`stage_inputs` downloads ``s3://`` inputs and
extracts archives under ``<results_dir>/inputs/<field>`` (data_staging.py) and points the spec at
them; :func:`write_spec` writes the spec the job reads, secret fields already emptied. AWS settings
given to ``create_job`` are visible to boto3 only inside :func:`aws_environment`.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from skillbank.runtime.sdk.archives import is_archive
from skillbank.runtime.sdk.job_prepare import JobError, PreparedJob, job_mounts
from skillbank.runtime.sdk.outputs import SPEC_NAME
from skillbank.runtime.sdk.platforms import PLATFORMS
from skillbank.runtime.spec_builder import get_dotted
from skillbank.runtime.yaml_io import safe_dump


def check_launchable(prepared: PreparedJob) -> None:
    """Refuse to launch what would fail later: a missing local data source or archive, an S3 results
    destination that cannot be written. Raises JobError naming the key (nothing is recorded)."""
    inputs = prepared.skill.action_info(prepared.action).get("inputs") or {}
    for key, info in inputs.items():
        value = get_dotted(prepared.spec, key)
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str) or not item or item == "???" or "://" in item:
                continue
            archive = is_archive(item)
            if (archive or PLATFORMS[prepared.platform_name].local_paths) and not os.path.exists(item):
                kind = "archive" if archive else (str((info or {}).get("type") or "path"))
                raise JobError(f"{key}: {kind} {item} does not exist on this machine; nothing was launched")
    if prepared.results_uri:
        from skillbank.runtime.sdk import s3

        try:
            with aws_environment(prepared.secret_env):
                s3.check_writable(prepared.results_uri)
        except s3.S3Error as exc:
            raise JobError(f"results root {prepared.results_uri.rsplit('/', 1)[0]} cannot be written: {exc}; "
                           "nothing was launched") from None


def stage_inputs(prepared: PreparedJob) -> dict[str, Any]:
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
    prepared.request.mounts = job_mounts(prepared)
    return {name: get_dotted(before, name, None) for name in inputs
            if get_dotted(before, name, None) != get_dotted(prepared.spec, name, None)}


def write_spec(prepared: PreparedJob) -> None:
    """Write ``<results_dir>/spec.yaml`` atomically: the job never reads a half-written spec."""
    prepared.results_dir.mkdir(parents=True, exist_ok=True)
    text = safe_dump(prepared.spec)
    tmp = prepared.spec_path.with_name(f".{SPEC_NAME}.tmp")
    tmp.write_text(text)
    os.replace(tmp, prepared.spec_path)


@contextlib.contextmanager
def aws_environment(env: Mapping[str, str]) -> Iterator[None]:
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
