"""The MCP tools: plain functions (arguments dict in, result dict out) over the functions the CLI calls.

Each tool is a :class:`Tool`: its name, description, argument and result schemas and the function that
answers it. The functions never import the MCP SDK (``server`` does); long ones report progress through
the ``report(progress, total, message)`` callable they are given. One path, not two: ``run_job`` renders
and saves the same runner ``skillbank run`` does and executes it; ``job_status`` is ``skillbank jobs show``.

Secrets never cross the protocol: overrides that name a secret are refused (the server reads the
encryption key and cloud credentials from its own environment), and the server masks every known
secret value in every result.
"""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.mcp_server import tool_schemas as ts
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.platforms import PLATFORMS
from skillbank.runtime.sdk.secrets import ENCRYPTION_KEY_ENV, is_secret_field
from skillbank.runtime.skills import Skill

Report = Callable[[float, "float | None", "str | None"], None]
LAUNCH_TIMEOUT_S = 900.0  # a runner only validates, stages inputs and launches: minutes at most (S3 staging)
POLL_S = 1.0


class ToolError(SkillbankError):
    """A tool call that cannot be answered; the message is one line, ``data`` goes to the structured result."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.data = data


@dataclass(frozen=True)
class Tool:
    """One MCP tool: what it is called, what it takes and gives, and the function that answers it."""

    name: str
    description: str
    arguments: dict[str, Any]
    required: list[str]
    answer: Callable[[dict[str, Any], Report], dict[str, Any]]
    result: dict[str, Any]
    hints: dict[str, bool] = field(default_factory=dict)  # MCP tool annotations (readOnlyHint, ...)
    typed_overrides: bool = False
    typed_platform_options: bool = False

    def input_schema(self) -> dict[str, Any]:
        """The schema ``tools/list`` shows (typed overrides and platform options where the tool takes them)."""
        return ts.advertised_schema(self.arguments, self.required, typed=self.typed_overrides,
                                    platform_typed=self.typed_platform_options)

    def argument_schema(self) -> dict[str, Any]:
        """The schema the server checks a call's arguments against."""
        return ts.argument_schema(self.arguments, self.required)


# -- helpers ----------------------------------------------------------------------------------


def _skill(args: dict[str, Any], action: str | None = None) -> Skill:
    skill = Skill.load(args["skill"])
    if action is not None:
        skill.require_action(action)
    return skill


def _overrides(skill: Skill, action: str, args: dict[str, Any]) -> dict[str, Any]:
    """The call's overrides; a key that names a secret is refused without echoing its value."""
    from skillbank.runtime.validation import normalize_overrides

    given = dict(args.get("overrides") or {})
    spec_params = skill.spec_params(action)
    try:
        keys = list(normalize_overrides(skill, action, given))
    except (LookupError, ValueError):  # a schema that cannot be read is reported by validation itself
        keys = list(given)
    for key in [*given, *keys]:
        if is_secret_field(key, spec_params):
            raise ToolError(
                f"overrides.{key}: secrets are not taken as tool arguments (they would pass through the agent's "
                f"context); set {ENCRYPTION_KEY_ENV} (or the AWS_* credentials) in the MCP server's environment",
                key=key,
            )
    return given


def _render(args: dict[str, Any]):
    """``output_name -> GeneratedRunner`` for the call's launch arguments (the same generator `generate` uses)."""
    from skillbank.generator.runner_gen import GenerationError, generate_runner

    action = args["action"]
    skill = _skill(args, action)
    overrides = _overrides(skill, action, args)

    def render(output_name: str):
        try:
            return generate_runner(
                args["skill"], action, overrides, parent_job_id=args.get("parent_job_id"),
                platform=args.get("platform", "local"), automl_policy=args.get("automl_policy"),
                request=args.get("request"), results_root=args.get("results_root"), overrides_label="-",
                output_name=output_name, name=args.get("name"), tags=tuple(args.get("tags") or ()),
                automl_options=args.get("automl") or None, platform_options=args.get("platform_options"),
            )
        except GenerationError as exc:
            raise ToolError(str(exc), problems=[p.to_dict() for p in exc.problems]) from exc

    return render


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Monotonic:
    """Forwards progress only when it grows (MCP: progress must increase with each notification)."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.sent: float | None = None

    def __call__(self, value: float, total: float | None, message: str | None) -> None:
        if self.sent is None or value > self.sent:
            self.sent = value
            self.report(value, total, message)


# -- the tools' functions ---------------------------------------------------------------------


def list_skills(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.cli.bank import skill_catalogue

    return {"skills": skill_catalogue()}


def get_schema(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.runtime.schema_view import action_parameters

    skill = _skill(args, args["action"])
    return action_parameters(skill, args["action"], bool(args.get("all")))


def validate_overrides(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.validate_answer import validation_report

    skill = _skill(args, args["action"])
    return validation_report(skill, args["action"], _overrides(skill, args["action"], args))


def resolve_policy(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.runtime.policy import resolve_policy as resolve

    action = args.get("action", "train")
    skill = _skill(args, action)
    return resolve(skill, action, args.get("automl_policy"), args.get("request"))


def generate_runner(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.cli.generate import runner_report, save_runner

    output = Path(args["output"]).expanduser().absolute() if args.get("output") else None
    runner, path = save_runner(_render(args), output)
    return {**runner_report(runner, str(path)), "text": runner.text}


def run_job(args: dict[str, Any], report: Report) -> dict[str, Any]:
    """`skillbank run --no-wait --format json`, then (``wait``) follow the job or the AutoML run."""
    from skillbank.cli.generate import runner_command, runner_environment, save_runner

    runner, path = save_runner(_render(args))
    env = runner_environment(runner)
    dry_run = bool(args.get("dry_run"))
    argv = runner_command(path, fmt="json", dry_run=dry_run, wait=False)
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolError(f"runner {path} did not finish launching within {LAUNCH_TIMEOUT_S:g}s",
                        runner=str(path)) from None
    summary = _runner_summary(done, path)
    if dry_run or not args.get("wait"):
        return summary
    timeout = args.get("timeout")
    if summary.get("route") == "automl":
        return {**summary, "automl": follow_automl(summary.get("automl") or {}, report, timeout)}
    return {**summary, **follow_job(summary["job_id"], report, timeout)}


def _runner_summary(done: subprocess.CompletedProcess, path: Path) -> dict[str, Any]:
    """The runner's JSON summary; a runner that launched nothing is a ToolError with its reason."""
    try:
        summary = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        summary = {}
    if done.returncode != 0 or not isinstance(summary, dict) or not summary:
        reason = (summary.get("error") if isinstance(summary, dict) else None) or _tail(done.stderr) or "no output"
        raise ToolError(f"runner exited {done.returncode}: {reason}", runner=str(path), exit_code=done.returncode)
    return {**summary, "runner": str(path)}


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def follow_job(job_id: str, report: Report, timeout: float | None = None) -> dict[str, Any]:
    """Wait for the job, reporting each epoch as progress; returns its job_status."""
    from skillbank.cli.jobs import _progress_line as progress_line  # the line `skillbank jobs wait` prints
    from skillbank.runtime.sdk import jobs

    progress = _Monotonic(report)

    def on_event(event: dict[str, Any]) -> None:
        epoch, last = event.get("epoch"), event.get("max_epoch")
        done = epoch + 1 if _is_int(epoch) and event.get("status") != "STARTED" else 0
        progress(done, last + 1 if _is_int(last) else None, f"[{job_id[:8]}] {progress_line(event)}")

    try:
        jobs.wait(job_id, timeout=timeout, poll=POLL_S, on_progress=on_event)
    except TimeoutError as exc:
        return {**jobs.describe_job(job_id), "waited": str(exc)}
    return jobs.describe_job(job_id)


def follow_automl(launch: dict[str, Any], report: Report, timeout: float | None = None) -> dict[str, Any]:
    """Follow a detached AutoML run through its workspace files, reporting trials as progress."""
    from skillbank.runtime.automl.progress import format_progress
    from skillbank.runtime.automl.status import StatusError, process_alive, read_status

    workspace, pid = Path(str(launch.get("workspace"))), launch.get("pid")
    progress = _Monotonic(report)
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while True:
        try:
            info = read_status(workspace)
        except StatusError:
            info = None  # the run has not written its first state yet
        if info is not None and info.get("pid") == pid:
            running = sum(min(r.get("epoch") or 0, r.get("max_epochs") or 1) / (r.get("max_epochs") or 1)
                          for r in info.get("running") or [])
            progress(info["finished"] + min(running, 0.99), info["max_trials"], format_progress(info))
            if info.get("state") != "running":  # finished, stopped, interrupted, or its process is gone
                return info
        elif not process_alive(pid):
            log = workspace / "automl.log"
            tail = _tail(log.read_text(errors="replace")) if log.is_file() else ""
            raise ToolError(f"the AutoML run (pid {pid}) ended before it wrote its state in {workspace}"
                            + (f"; its log ends:\n{tail}" if tail else ""), workspace=str(workspace))
        if deadline is not None and time.monotonic() >= deadline:
            return {**(info or {}), "waited": f"AutoML run in {workspace} still running after {timeout}s",
                    "follow": launch.get("follow")}
        time.sleep(POLL_S)


def job_status(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.runtime.sdk import jobs

    return jobs.describe_job(args["job_id"])


def job_logs(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.runtime.sdk import jobs

    return {"job_id": args["job_id"], "logs": jobs.get_job_logs(args["job_id"], tail=args.get("tail"))}


def cancel_job(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.runtime.sdk import jobs

    return {"id": args["job_id"], "status": jobs.cancel_job(args["job_id"])}


def list_jobs(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.cli.jobs import job_rows
    from skillbank.runtime.sdk import jobs

    records = jobs.list_jobs(skill=args.get("skill"), action=args.get("action"), status=args.get("status"),
                             limit=args.get("limit"), parent_job_id=args.get("parent_job_id"),
                             trials=bool(args.get("trials")))
    return {"jobs": job_rows(records)}


def automl_status(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.runtime.automl.status import read_status

    return read_status(Path(args["workspace"]).expanduser())


def sample_data(args: dict[str, Any], report: Report) -> dict[str, Any]:
    from skillbank.cli.sample_data import write_sample_data

    return write_sample_data(
        Path(args["outdir"]).expanduser().absolute(), classes=tuple(args.get("classes") or ("catch", "smile")),
        videos_per_class=args.get("videos_per_class", 8), frames=args.get("frames", 16),
        size=(args.get("width", 32), args.get("height", 32)), seed=args.get("seed", 0),
        overwrite=bool(args.get("overwrite")), frame_format=args.get("frame_format", "png"),
    )


# -- the registry -----------------------------------------------------------------------------

_READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}


def _tools() -> list[Tool]:
    launch = ts.launch_arguments(tuple(PLATFORMS))
    job_result = ts.result_schema(
        {"id": {"type": "string"}, "status": ts.JOB_STATUS, "results_dir": {"type": "string"},
         "checkpoints": {"type": "array", "items": {"type": "string"}}, "checkpoint": ts.NULLABLE_STRING,
         "progress": {"type": ["object", "null"]}, "failure": {"type": ["object", "null"]}},
        ["id", "status", "results_dir", "checkpoints", "checkpoint"])
    return [
        Tool("list_skills", "The skills of the bank: their actions, and which train routes to AutoML.",
             {}, [], list_skills,
             ts.result_schema({"skills": {"type": "array", "items": {"type": "object"}}}, ["skills"]), _READ_ONLY),
        Tool("get_schema", "The parameters of a skill's action an agent usually sets (all=true: every field the "
             "action reads): type, default, bounds, enum, AutoML flags, data sources.",
             {"skill": ts.SKILL, "action": ts.ACTION,
              "all": {"type": "boolean", "default": False, "description": "Every field the action reads."}},
             ["skill", "action"], get_schema,
             ts.result_schema({"skill": {"type": "string"}, "action": {"type": "string"},
                               "parameters": {"type": "array", "items": {"type": "object"}}},
                              ["skill", "action", "parameters"]), _READ_ONLY),
        Tool("validate_overrides", "Check spec_overrides for a skill's action; returns every problem at once, each "
             "with its key, value, what is allowed and a did-you-mean for typos. Changes nothing.",
             {"skill": ts.SKILL, "action": ts.ACTION, "overrides": ts.OVERRIDES},
             ["skill", "action", "overrides"], validate_overrides,
             ts.result_schema({"valid": {"type": "boolean"}, "problems": {"type": "array", "items": {
                 "type": "object", "required": ["key", "message", "allowed"]}}}, ["valid", "problems"]),
             _READ_ONLY, typed_overrides=True),
        Tool("resolve_policy", "Where a request for a skill's action goes: AutoML (tao-run-automl) or direct "
             "training, and why. Words such as 'no HPO' or 'turn off AutoML' switch AutoML off for this run only.",
             {"skill": ts.SKILL, "action": {**ts.ACTION, "default": "train"}, "request": ts.REQUEST,
              "automl_policy": ts.POLICY}, ["skill"], resolve_policy,
             ts.result_schema({"route": {"type": "string", "enum": ["direct", "automl"]},
                               "automl_policy": {"type": "string"}, "runnable": {"type": "boolean"},
                               "reason": {"type": "string"}}, ["route", "automl_policy", "runnable", "reason"]),
             _READ_ONLY),
        Tool("generate_runner", "Validate the overrides, resolve the AutoML policy and write a standalone Python "
             "runner for the job (`python RUNNER` launches and follows it). Returns the runner's path and text. "
             "Nothing is launched.",
             {**launch, "output": {"type": "string", "description": "Write the runner here (default: the state "
                                                                   "folder, named after its content)."}},
             ["skill", "action", "overrides"], generate_runner,
             ts.result_schema({"runner": {"type": "string"}, "text": {"type": "string"},
                               "route": {"type": "string"}, "warnings": {"type": "array"}},
                              ["runner", "text", "route"]),
             {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False},
             typed_overrides=True, typed_platform_options=True),
        Tool("run_job", "Launch a job (train, evaluate, inference, export; train may route to AutoML): the same "
             "runner generate_runner writes, executed. Returns at once with the job id unless wait=true, which "
             "follows the job (progress: epochs, or AutoML trials) and returns its final status. dry_run=true "
             "shows the spec and the platform submission and launches nothing.",
             {**launch, "dry_run": {"type": "boolean", "default": False},
              "wait": {"type": "boolean", "default": False,
                       "description": "Follow the job (or AutoML run) until it ends, with progress notifications."},
              "timeout": {"type": "number", "exclusiveMinimum": 0,
                          "description": "With wait: stop following after this many seconds (the job goes on)."}},
             ["skill", "action", "overrides"], run_job,
             ts.result_schema({"job_id": {"type": "string"}, "route": {"type": "string"},
                               "runner": {"type": "string"}, "status": {"type": "string"},
                               "results_dir": {"type": "string"}}, ["route", "runner"]),
             {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": True},
             typed_overrides=True, typed_platform_options=True),
        Tool("job_status", "One job's record after asking its platform: status, results folder, checkpoints, "
             "the exact checkpoint a child job (evaluate, inference, export) takes, latest progress, and the "
             "failure analysis of an Error job.",
             {"job_id": ts.JOB_ID}, ["job_id"], job_status, job_result, _READ_ONLY),
        Tool("job_logs", "The job's log (stdout and stderr of its command), secrets masked.",
             {"job_id": ts.JOB_ID, "tail": {"type": "integer", "minimum": 0, "description": "Only the last N lines."}},
             ["job_id"], job_logs,
             ts.result_schema({"job_id": {"type": "string"}, "logs": {"type": "string"}}, ["job_id", "logs"]),
             _READ_ONLY),
        Tool("cancel_job", "Stop a job (a finished job keeps its status).", {"job_id": ts.JOB_ID}, ["job_id"],
             cancel_job, ts.result_schema({"id": {"type": "string"}, "status": ts.JOB_STATUS}, ["id", "status"]),
             {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": True}),
        Tool("list_jobs", "Jobs, newest first (unfinished ones are refreshed from their platform).",
             {"skill": {"type": "string"}, "action": {"type": "string"}, "status": ts.JOB_STATUS,
              "parent_job_id": {"type": "string"}, "limit": {"type": "integer", "minimum": 1},
              "trials": {"type": "boolean", "default": False, "description": "Include AutoML trial jobs."}},
             [], list_jobs, ts.result_schema({"jobs": {"type": "array", "items": {"type": "object"}}}, ["jobs"]),
             _READ_ONLY),
        Tool("automl_status", "Progress of the AutoML run in a workspace folder (read-only): trials, best and "
             "baseline, running jobs, best_rec.json.",
             {"workspace": {"type": "string", "description": "The run's workspace folder (run_job's "
                                                              "automl.workspace)."}},
             ["workspace"], automl_status,
             ts.result_schema({"state": {"type": "string"}, "finished": {"type": "integer"},
                               "max_trials": {"type": "integer"}}, ["state", "finished", "max_trials"]),
             _READ_ONLY),
        Tool("sample_data", "Write the synthetic sample data set (train/, test/, inference/ and archives) to try "
             "the skills on; returns the paths and the label map to use in overrides.",
             {"outdir": {"type": "string", "description": "Folder to write (absolute path recommended)."},
              "classes": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True,
                          "default": ["catch", "smile"]},
              "videos_per_class": {"type": "integer", "minimum": 1, "default": 8},
              "frames": {"type": "integer", "minimum": 2, "default": 16},
              "width": {"type": "integer", "minimum": 8, "default": 32},
              "height": {"type": "integer", "minimum": 8, "default": 32},
              "seed": {"type": "integer", "default": 0},
              # the choices of `sample-data --frame-format` (the runtime's FRAME_SUFFIXES, whose module loads numpy)
              "frame_format": {"type": "string", "enum": ["png", "jpeg"], "default": "png",
                               "description": "Frame files: lossless PNG, or JPEG (<frame>.jpg) as real data "
                                              "sets hold them."},
              "overwrite": {"type": "boolean", "default": False}},
             ["outdir"], sample_data,
             ts.result_schema({"outdir": {"type": "string"}, "train": {"type": "string"}, "test": {"type": "string"},
                               "inference": {"type": "string"}, "label_map": {"type": "object"}},
                              ["outdir", "train", "test", "inference", "label_map"]),
             {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}),
    ]


TOOLS: dict[str, Tool] = {tool.name: tool for tool in _tools()}
