"""`skillbank policy | generate | run`: resolve the AutoML policy, emit a runner, run a runner.

`run` is generate-then-execute: it renders the same runner `generate` would,
saves it under the state folder and executes it with this interpreter. It has
no launch logic of its own. None of these import torch.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from skillbank.cli.bank import FORMAT, emit_json, load_action, load_skill, read_overrides
from skillbank.generator.runner_gen import (
    ENCRYPTION_KEY_ENV,
    PLATFORMS,
    GeneratedRunner,
    GenerationError,
    generate_runner,
    is_encryption_key,
)
from skillbank.runtime.policy import POLICY_VALUES, PolicyError, resolve_policy
from skillbank.runtime.skills import SkillError

STATE_DIR_ENV = "SKILLBANK_STATE_DIR"

POLICY_OPTION = click.option(
    "--automl-policy", metavar="on|off|auto",
    help=f"Explicit AutoML policy for this run ({', '.join(POLICY_VALUES)}; auto = on). Wins over --request.",
)
REQUEST_OPTION = click.option(
    "--request", metavar="TEXT",
    help='The user\'s words, e.g. "train it, no HPO": phrases like "turn off AutoML" mean off for this run.',
)


def _launch_options(func):
    """Options shared by `generate` and `run` (same inputs, same runner)."""
    for option in reversed([
        click.argument("skill_name", metavar="SKILL"),
        click.argument("action"),
        click.argument("overrides", metavar="OVERRIDES"),
        click.option("--parent-job-id", metavar="ID",
                     help="Upstream job (the train job for evaluate/inference/export)."),
        click.option("--platform", type=click.Choice(PLATFORMS), default="local", show_default=True),
        POLICY_OPTION,
        REQUEST_OPTION,
        click.option("--results-root", metavar="PATH", help="Results root baked into the runner (default: "
                     "$SKILLBANK_RESULTS_ROOT, else ~/skillbank-results)."),
    ]):
        func = option(func)
    return func


@click.command()
@click.argument("skill_name", metavar="SKILL")
@click.option("--action", default="train", show_default=True)
@POLICY_OPTION
@REQUEST_OPTION
@FORMAT
def policy(skill_name: str, action: str, automl_policy: str | None, request: str | None, fmt: str) -> None:
    """Where SKILL's ACTION goes: AutoML (tao-run-automl) or direct, and why.

    Reads the skill's packaged files and changes nothing. Exit status: 0, or 2
    for an unknown skill/action or an invalid --automl-policy.
    """
    skill = load_skill(skill_name)
    load_action(skill, action)
    try:
        decision = resolve_policy(skill.path, action, automl_policy, request)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--automl-policy") from exc
    if fmt == "json":
        emit_json(decision)
        return
    target = f" -> {decision['target']} (skill_dir {decision['skill_dir']})" if decision["target"] else ""
    click.echo(f"route: {decision['route']}{target}")
    click.echo(f"automl_policy: {decision['automl_policy']} ({decision['policy_source']})")
    click.echo(f"runnable: {'yes' if decision['runnable'] else 'no'}")
    click.echo(f"reason: {decision['reason']}")


def _generate(skill_name: str, action: str, overrides: str, parent_job_id: str | None, platform: str,
              automl_policy: str | None, request: str | None, results_root: str | None,
              output_name: str) -> GeneratedRunner:
    """Shared by `generate` and `run`: usage errors exit 2, invalid overrides print every problem and exit 1."""
    skill = load_skill(skill_name)
    load_action(skill, action)
    given = read_overrides(overrides)
    try:
        return generate_runner(
            skill_name, action, given, parent_job_id=parent_job_id, platform=platform,
            automl_policy=automl_policy, request=request, results_root=results_root,
            overrides_label=overrides, output_name=output_name,
        )
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--automl-policy") from exc
    except SkillError as exc:
        raise click.ClickException(str(exc)) from exc
    except GenerationError as exc:
        click.echo(f"error: {exc}", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from exc


def _report(runner: GeneratedRunner, path: str | None) -> dict[str, Any]:
    return {"runner": path, "skill": runner.skill, "action": runner.action, "platform": runner.platform,
            "route": runner.route, "policy": runner.policy, "warnings": runner.warnings}


def _write(path: Path, text: str) -> None:
    """Write atomically (a half-written runner never exists), executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(path)


@click.command()
@_launch_options
@click.option("-o", "--output", metavar="FILE", help="Write the runner here (default: stdout).")
@FORMAT
def generate(skill_name: str, action: str, overrides: str, parent_job_id: str | None, platform: str,
             automl_policy: str | None, request: str | None, results_root: str | None,
             output: str | None, fmt: str) -> None:
    """Write a standalone Python runner for SKILL's ACTION with OVERRIDES (JSON/YAML file or -).

    Validates OVERRIDES first (every problem is printed and nothing is written
    when they are invalid), resolves the AutoML policy for train, then renders
    the runner. Secret keys (encryption_key, credentials) are left out with a
    warning; the runner reads $SKILLBANK_ENCRYPTION_KEY at run time.
    Exit status: 0 written, 1 invalid overrides, 2 usage error.
    """
    output_name = Path(output).name if output else "runner.py"
    runner = _generate(skill_name, action, overrides, parent_job_id, platform, automl_policy, request,
                       results_root, output_name)
    for warning in runner.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output:
        _write(Path(output), runner.text)
    elif fmt != "json":
        click.echo(runner.text, nl=False)
    if fmt == "json":
        emit_json({**_report(runner, output), **({} if output else {"text": runner.text})})
    elif output:
        click.echo(f"wrote {output}: {runner.skill} {runner.action} on {runner.platform}, route {runner.route}; "
                   f"run it with: python {output} [--dry-run] [--no-wait]", err=True)


def runners_dir() -> Path:
    """Where `skillbank run` keeps the runners it executes (beside the job store)."""
    state = os.environ.get(STATE_DIR_ENV) or str(Path.home() / ".local" / "state" / "skillbank")
    return Path(state).expanduser() / "runners"


@click.command()
@_launch_options
@click.option("--wait/--no-wait", default=False, show_default=True, help="Follow the job until it ends.")
@click.option("--dry-run", is_flag=True, help="Print the rendered submission; launch nothing.")
@FORMAT
def run(skill_name: str, action: str, overrides: str, parent_job_id: str | None, platform: str,
        automl_policy: str | None, request: str | None, results_root: str | None,
        wait: bool, dry_run: bool, fmt: str) -> None:
    """Generate the runner for SKILL's ACTION with OVERRIDES and execute it (same path as generate + python).

    The runner is kept in $SKILLBANK_STATE_DIR/runners/ (its name is printed) so
    the exact job can be rerun. A secret given as encryption_key in OVERRIDES
    reaches the runner through its environment only. Exit status: the runner's
    (0 ok, 1 job failed, 2 not launched / invalid, 3 AutoML engine missing).
    """
    inputs = (skill_name, action, overrides, parent_job_id, platform, automl_policy, request, results_root)
    runner = _generate(*inputs, "runner.py")
    # the file is named after its content, so the same inputs reuse one runner file
    digest = hashlib.sha256(runner.text.encode()).hexdigest()[:12]
    path = runners_dir() / f"{Path(runner.skill).name}-{runner.action}-{digest}.py"
    runner = _generate(*inputs, path.name)
    for key in runner.stripped_secrets:
        if not is_encryption_key(key, runner.key_fields):
            click.echo(f"warning: {key}: secret value left out; give it through the environment", err=True)
    _write(path, runner.text)
    click.echo(f"runner: {path}", err=True)
    argv = [sys.executable, str(path), "--format", fmt]
    if dry_run:
        argv.append("--dry-run")
    if not wait:
        argv.append("--no-wait")
    env = dict(os.environ)
    for key, value in runner.stripped_secrets.items():
        if is_encryption_key(key, runner.key_fields) and isinstance(value, str) and value:
            env[ENCRYPTION_KEY_ENV] = value  # by environment only; never in the runner file
    sys.exit(subprocess.call(argv, env=env))
