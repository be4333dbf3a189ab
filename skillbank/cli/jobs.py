"""``skillbank jobs list|show|logs|cancel|wait|resume``: look after jobs created by ``skillbank run`` or the SDK.

Every answer is available as JSON (``--format json``). Output never holds a
secret: specs in the store are redacted, and text is masked once more against
the secrets in this process's environment before it is printed.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, NoReturn

import click

from skillbank.runtime.sdk import jobs as job_api
from skillbank.runtime.sdk.job_labels import LabelError, automl_label
from skillbank.runtime.sdk.platforms.base import COMPLETE, ERROR, STATUSES, TERMINAL, PlatformError
from skillbank.runtime.sdk.secrets import redact_text, secret_values
from skillbank.runtime.sdk.store import JobNotFoundError

FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="text for people, json for programs")
SUMMARY_KEYS = ("id", "skill", "action", "status", "platform", "parent_job_id", "created_at", "results_dir")
LABEL_KEYS = ("name", "tags", "automl", "resumed_from")


def _echo(text: str, err: bool = False) -> None:
    click.echo(redact_text(text, secret_values()), err=err)


def _echo_json(data: Any) -> None:
    _echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _fail(exc: Exception, job_id: str) -> click.ClickException:
    """A one-line CLI error that names the job (platform errors name only the tool that failed)."""
    message = str(exc).strip("'\"")
    if job_id not in message:
        message = f"job {job_id}: {message}"
    return click.ClickException(redact_text(message, secret_values()))


@click.group()
def jobs() -> None:
    """List, inspect, follow and cancel jobs (the local job store, $SKILLBANK_STATE_DIR)."""


def job_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `jobs list --format json` (and of the MCP tool list_jobs): summary, labels, label text."""
    return [{**{k: r[k] for k in (*SUMMARY_KEYS, *LABEL_KEYS)}, "label": job_label(r)} for r in records]


def job_label(record: dict[str, Any], short: bool = False) -> str:
    """What a job is, beyond its action: its name and tags, its AutoML trial, the job it resumes."""
    parts = []
    if record.get("name"):
        parts.append(str(record["name"]))
    parts += [f"#{tag}" for tag in record.get("tags") or []]
    if record.get("automl"):
        parts.append(automl_label(record["automl"], short=short))
    if record.get("resumed_from"):
        parts.append(f"resumes {record['resumed_from'][:8] if short else record['resumed_from']}")
    return "  ".join(parts)


@jobs.command("list")
@click.option("--skill", default=None, help="only jobs of this skill")
@click.option("--action", default=None, help="only jobs of this action (train, evaluate, ...)")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="only jobs in this status")
@click.option("--automl", "workspace", metavar="WORKSPACE", default=None,
              help="only the trial jobs of this AutoML workspace (the folder `automl status` reads)")
@click.option("--since", metavar="WHEN", default=None,
              help="only jobs created since: a duration back from now (30m, 2h, 1d, 1w) or an ISO date/time "
                   "(UTC unless it has an offset)")
@click.option("--tag", default=None, help="only jobs carrying this tag (set with generate/run --tag)")
@click.option("--trials/--no-trials", default=False, show_default=True,
              help="include AutoML trial jobs (hidden by default; --automl shows one workspace's)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="at most this many (newest first)")
@FORMAT
def list_cmd(skill: str | None, action: str | None, status: str | None, workspace: str | None, since: str | None,
             tag: str | None, trials: bool, limit: int | None, fmt: str) -> None:
    """Jobs, newest first (unfinished ones are refreshed from their platform).

    The LABEL column holds a job's --name and #tags, an AutoML trial's place
    (`automl: <workspace> #3 rung 2`) and the job a resumed job continues.
    """
    try:
        records = job_api.list_jobs(skill=skill, action=action, status=status, limit=limit, since=since, tag=tag,
                                    automl_workspace=workspace, trials=trials)
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if fmt == "json":
        _echo_json(job_rows(records))
        return
    if not records:
        _echo("no jobs" + ("" if trials or workspace else " (AutoML trial jobs are hidden: add --trials)"))
        return
    rows = [("ID", "ACTION", "STATUS", "PLATFORM", "CREATED", "PARENT", "LABEL")]
    rows += [(r["id"], r["action"], r["status"], r["platform"], r["created_at"][:19],
              (r["parent_job_id"] or "-")[:8], job_label(r, short=True)) for r in records]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        _echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


@jobs.command("show")
@click.argument("job_id")
@click.option("--spec/--no-spec", default=False, help="include the job's (redacted) spec in text output")
@FORMAT
def show(job_id: str, spec: bool, fmt: str) -> None:
    """One job's record, its progress (KPIs) and, for an Error job, its failure analysis.

    JSON holds every field the text shows: progress, failure (with detail),
    resumed_from / resumed_by and the resume command.
    """
    try:
        record = job_api.describe_job(job_id)
    except (JobNotFoundError, PlatformError) as exc:
        raise _fail(exc, job_id) from None
    if fmt == "json":
        _echo_json(record)
        return
    for key in (*SUMMARY_KEYS, "results_uri", "updated_at", "backend_id", "exit_code", "signal", "name"):
        if record.get(key) not in (None, ""):
            _echo(f"{key}: {record[key]}")
    if record.get("tags"):
        _echo(f"tags: {', '.join(record['tags'])}")
    if record.get("automl"):
        _echo(automl_label(record["automl"]))
    if record.get("resumed_from"):
        _echo(f"resumed_from: {record['resumed_from']}")
    for later in record["resumed_by"]:
        _echo(f"resumed_by: {later}")
    if record["checkpoints"]:
        _echo("checkpoints:")
        for path in record["checkpoints"]:
            _echo(f"  {path}")
    if record.get("best_checkpoint"):
        _echo(f"best_checkpoint: {record['best_checkpoint']}")
    if record.get("inherited"):
        values = ", ".join(f"{k}={v!r}" for k, v in record["inherited"]["values"].items())
        _echo(f"inherited from {record['inherited']['from']}: {values}")
    if record.get("outputs"):
        _echo("outputs:")
        for row in record["outputs"]:
            _echo(f"  {row['path']}  ({'MAIN: ' if row['main'] else ''}{row['description']})")
    if record["progress"]:
        _echo(f"progress: {_progress_line(record['progress'])}")
        _echo(f"progress_event: {json.dumps(record['progress'])}")
    failure = record.get("failure")
    if failure:
        _echo(f"failure: {failure['category']} (exit code {failure['exit_code']}, signal {failure['signal']})")
        if failure.get("detail"):
            _echo(f"detail: {failure['detail']}")
        if failure.get("cause"):
            _echo(f"cause: {failure['cause']}")
        _echo(f"suggestion: {failure['suggestion']}")
        if failure.get("log_tail"):
            _echo("log tail:\n" + failure["log_tail"])
    if record.get("resume") and not record["resumed_by"]:
        _echo(f"resume: {record['resume']}")
    if spec:
        from skillbank.runtime.yaml_io import safe_dump

        _echo("spec:\n" + safe_dump(record["spec"]))


@jobs.command("logs")
@click.argument("job_id")
@click.option("--tail", type=click.IntRange(min=0), default=None, help="only the last N lines")
@click.option("--follow", "-f", is_flag=True, help="keep printing new lines until the job ends")
@click.option("--poll", type=float, default=1.0, show_default=True, help="seconds between checks with --follow")
def logs(job_id: str, tail: int | None, follow: bool, poll: float) -> None:
    """The job's log (stdout and stderr of its command)."""
    try:
        text = job_api.get_job_logs(job_id, tail=tail)
        click.echo(text, nl=False)
        if not follow:
            return
        seen = len(job_api.get_job_logs(job_id))
        while True:
            status = job_api.get_job_status(job_id)
            full = job_api.get_job_logs(job_id)
            click.echo(full[seen:], nl=False)
            seen = len(full)
            if status in TERMINAL:
                return
            time.sleep(poll)
    except (JobNotFoundError, PlatformError) as exc:
        raise _fail(exc, job_id) from None


@jobs.command("cancel")
@click.argument("job_id")
@FORMAT
def cancel(job_id: str, fmt: str) -> None:
    """Stop a job (a finished job keeps its status)."""
    try:
        status = job_api.cancel_job(job_id)
    except (JobNotFoundError, PlatformError) as exc:
        raise _fail(exc, job_id) from None
    if fmt == "json":
        _echo_json({"id": job_id, "status": status})
    else:
        _echo(f"{job_id}: {status}")


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=None, help="give up after this many seconds (exit code 2)")
@click.option("--poll", type=float, default=2.0, show_default=True, help="seconds between status checks")
@click.option("--quiet", "-q", is_flag=True, help="do not print progress events")
@FORMAT
def wait(job_id: str, timeout: float | None, poll: float, quiet: bool, fmt: str) -> None:
    """Block until the job ends; exit code 0 when it is Complete, 1 otherwise, 2 on timeout."""

    last: list[str] = []

    def progress(event: dict[str, Any]) -> None:
        line = _progress_line(event)
        if not quiet and line not in last:  # every epoch once; repeats of one state are not news
            last[:] = [line]
            _echo(f"[{job_id[:8]}] {line}", err=True)

    try:
        status = job_api.wait(job_id, timeout=timeout, poll=poll, on_progress=progress)
    except TimeoutError as exc:
        _echo(str(exc), err=True)
        sys.exit(2)
    except (JobNotFoundError, PlatformError) as exc:
        raise _fail(exc, job_id) from None
    record = job_api.get_job(job_id)
    _ended(job_id, status, {"id": job_id, "status": status, "results_dir": record["results_dir"],
                            "results_uri": record["results_uri"], "checkpoints": record["checkpoints"]}, fmt)


@jobs.command("resume")
@click.argument("job_id")
@click.option("--wait/--no-wait", default=False, show_default=True, help="follow the new job until it ends")
@click.option("--poll", type=float, default=2.0, show_default=True, help="seconds between checks with --wait")
@FORMAT
def resume(job_id: str, wait: bool, poll: float, fmt: str) -> None:
    """Continue a killed, failed or canceled train job from its newest checkpoint, as a new job.

    The new job has the old one's spec, platform, name and tags, starts with a
    copy of its checkpoints and status.json, and records resumed_from; `jobs
    show` of the old job names the new one (resumed_by). Exit status: 0
    launched (with --wait: Complete), 1 the resumed job failed or could not be
    launched.
    """
    from skillbank.runtime.sdk.resume import resume_job

    try:
        result = resume_job(job_id)
    except (JobNotFoundError, PlatformError, job_api.JobError) as exc:
        raise _fail(exc, job_id) from None
    new_id = result["job_id"]
    if not wait:
        if fmt == "json":
            _echo_json(result)
        else:
            _echo(f"{new_id}: resumes {job_id} from {result['checkpoint'] or '(no checkpoint: starts over)'}")
            _echo(f"follow it with: skillbank jobs wait {new_id}")
        return
    if fmt != "json":
        _echo(f"{new_id}: resumes {job_id} from {result['checkpoint'] or '(no checkpoint: starts over)'}")
    status = job_api.wait(new_id, poll=poll, on_progress=lambda e: _echo(f"[{new_id[:8]}] {_progress_line(e)}",
                                                                          err=True))
    _ended(new_id, status, result, fmt)


def _ended(job_id: str, status: str, result: dict[str, Any], fmt: str) -> NoReturn:
    """Say how a followed job ended (``result`` with its status and an Error's failure analysis) and exit:
    0 when it is Complete, 1 otherwise."""
    result["status"] = status
    if status == ERROR:
        result["failure"] = job_api.get_failure_analysis(job_id)
    if fmt == "json":
        _echo_json(result)
    else:
        _echo(f"{job_id}: {status}")
        if status == ERROR:
            _echo(f"failure: {result['failure']['category']}: {result['failure']['suggestion']}")
    sys.exit(0 if status == COMPLETE else 1)


def _progress_line(event: dict[str, Any]) -> str:
    """One line from a status.json event: status, epoch N/M (counted from 1), eta and KPIs; the message
    of a FAILURE; "finished" for an action's last line."""
    status = str(event.get("status", ""))
    message = str(event.get("message") or "")
    if status == "FAILURE":
        return f"FAILURE: {message}".rstrip(": ")
    finished = status == "SUCCESS" or message.endswith("finished successfully.")
    parts = ["finished" if finished else status]
    epoch, last = event.get("epoch"), event.get("max_epoch")
    if status != "STARTED" and isinstance(epoch, int) and not isinstance(epoch, bool):
        parts.append(f"epoch {epoch + 1}" + (f"/{last + 1}" if isinstance(last, int) else ""))
    if not finished and event.get("eta"):
        parts.append(f"eta {str(event['eta']).split('.')[0]}")
    kpi = event.get("kpi") or {}
    parts += [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kpi.items()]
    if len(parts) == 1 and message and not finished:
        parts.append(message)
    return " ".join(p for p in parts if p)
