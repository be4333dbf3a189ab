"""`skillbank policy | generate | run`: resolve the AutoML policy, emit a runner, run a runner.

`run` is generate-then-execute: it renders the same runner `generate` would,
saves it under the state folder and executes it with this interpreter. It has
no launch logic of its own. None of these import torch.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from skillbank.cli.bank import (
    FORMAT,
    BadInput,
    emit_json,
    load_action,
    load_skill,
    read_overrides,
    write_output,
)
from skillbank.cli.platform_options import PLATFORM_OPTION, platform_options
from skillbank.generator.runner_gen import GeneratedRunner, GenerationError, generate_runner
from skillbank.runtime import settings
from skillbank.runtime.policy import POLICY_VALUES, PolicyError, resolve_policy
from skillbank.runtime.sdk.platforms import PLATFORMS
from skillbank.runtime.sdk.secrets import CALLER_KEY_ENV, ENCRYPTION_KEY_ENV, is_encryption_key, take_encryption_key
from skillbank.runtime.skills import SkillError

STATE_DIR_ENV = settings.STATE_DIR  # named in messages

POLICY_OPTION = click.option(
    "--automl-policy", metavar="on|off|auto",
    help=f"Explicit AutoML policy for this run ({', '.join(POLICY_VALUES)}; auto = on). Wins over --request.",
)
REQUEST_OPTION = click.option(
    "--request", metavar="TEXT",
    help='The user\'s words, e.g. "train it, no HPO": phrases like "turn off AutoML" mean off for this run.',
)


def _check_label(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """--name / --tag: a value that is not allowed is a usage error (exit 2) naming it and the rule."""
    from skillbank.runtime.sdk.job_labels import LabelError, check_name, check_tags

    try:
        return check_name(value) if param.name == "name" else tuple(check_tags(value))
    except LabelError as exc:
        raise click.BadParameter(str(exc)) from None


def _launch_options(func):
    """Options shared by `generate` and `run` (same inputs, same runner)."""
    for option in reversed([
        click.argument("skill_name", metavar="SKILL"),
        click.argument("action"),
        click.argument("overrides", metavar="OVERRIDES"),
        click.option("--parent-job-id", metavar="ID",
                     help="Upstream job (the train job for evaluate/inference/export)."),
        click.option("--platform", type=click.Choice(list(PLATFORMS)), default="local", show_default=True),
        PLATFORM_OPTION,
        POLICY_OPTION,
        REQUEST_OPTION,
        click.option("--results-root", metavar="PATH", help="Results root baked into the runner (default: "
                     "$SKILLBANK_RESULTS_ROOT, else ~/skillbank-results)."),
        click.option("--name", metavar="TEXT", callback=_check_label,
                     help="A name for the job (every trial job on the AutoML route), shown by `jobs list`."),
        click.option("--tag", "tags", metavar="TAG", multiple=True, callback=_check_label,
                     help="A tag for the job (repeatable); `jobs list --tag TAG` filters by it."),
    ]):
        func = option(func)
    return func


def _automl_budget_options(func):
    """The AutoML route's options (train routed to tao-run-automl), embedded in the runner as data."""
    from skillbank.runtime.automl.algorithms import ALGORITHMS  # no optuna: the names only
    from skillbank.runtime.automl.options import AutoMLOptions

    # the defaults shown are the options dataclass's, as `skillbank automl` shows them; no click default:
    # a flag left out is not embedded, so the runner's engine applies its own default
    defaults = AutoMLOptions()
    for option in reversed([
        click.option("--algorithm", type=click.Choice(ALGORITHMS),
                     help=f"AutoML route: the search algorithm (default: {defaults.algorithm})."),
        click.option("--max-trials", type=click.IntRange(min=1),
                     help=f"AutoML route: trials in all, the baseline included (default: {defaults.max_trials})."),
        click.option("--max-epochs", type=click.IntRange(min=1),
                     help="AutoML route: epochs of a fully trained trial (default: an epoch count in --request, "
                          "else train.num_epochs)."),
        click.option("--workspace", type=click.Path(file_okay=False), metavar="DIR",
                     help="AutoML route: study, best_rec.json and plots; the same DIR resumes "
                          "(default: <results root>/automl/<skill>-<algorithm>-<hash>)."),
        click.option("--automl-option", "automl_option_items", multiple=True, metavar="KEY=VALUE",
                     help="AutoML route: any other engine option (repeatable; a YAML value), e.g. "
                          "--automl-option max_concurrent=2 --automl-option metric=val_acc."),
    ]):
        func = option(func)
    return func


def automl_budget(algorithm: str | None = None, max_trials: int | None = None, max_epochs: int | None = None,
                  workspace: str | None = None, automl_option_items: tuple[str, ...] = ()) -> dict[str, Any]:
    """The AutoML options given on the command line (those left out are not in the mapping)."""
    from skillbank.runtime.automl.options import AutoMLError, parse_option_items

    try:
        given = parse_option_items(automl_option_items)
    except AutoMLError as exc:
        raise BadInput(str(exc)) from None
    flags = {"algorithm": algorithm, "max_trials": max_trials, "max_epochs": max_epochs, "workspace": workspace}
    return {**given, **{key: value for key, value in flags.items() if value is not None}}


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
        decision = resolve_policy(skill, action, automl_policy, request)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--automl-policy") from exc
    if fmt == "json":
        emit_json(decision)
        return
    target = f" -> {decision['target']} (skill_dir {decision['skill_dir']})" if decision["target"] else ""
    click.echo(f"route: {decision['route']}{target}")
    click.echo(f"automl_policy: {decision['automl_policy']} ({decision['policy_source']})")
    if decision["matched"]:
        click.echo(f"matched: {decision['matched']!r}")
    click.echo(f"runnable: {'yes' if decision['runnable'] else 'no'}")
    click.echo(f"reason: {decision['reason']}")


def _generate(skill_name: str, action: str, overrides: str, parent_job_id: str | None, platform: str,
              automl_policy: str | None, request: str | None, results_root: str | None,
              output_name: str, *, given: dict[str, Any] | None = None, fmt: str = "text",
              name: str | None = None, tags: tuple[str, ...] = (),
              automl: dict[str, Any] | None = None,
              platform_options: dict[str, Any] | None = None) -> GeneratedRunner:
    """Shared by `generate` and `run`: usage errors exit 2, invalid overrides print every problem and exit 1.

    ``given`` are the overrides already read (stdin can be read only once); else ``overrides`` is read.
    """
    skill = load_skill(skill_name)
    load_action(skill, action)
    if given is None:
        given = read_overrides(overrides)
    try:
        return generate_runner(
            skill_name, action, given, parent_job_id=parent_job_id, platform=platform,
            automl_policy=automl_policy, request=request, results_root=results_root,
            overrides_label=overrides, output_name=output_name, name=name, tags=tags, automl_options=automl,
            platform_options=platform_options,
        )
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--automl-policy") from exc
    except SkillError as exc:
        raise click.ClickException(str(exc)) from exc
    except GenerationError as exc:
        click.echo(f"error: {exc}", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        if fmt == "json":
            emit_json({"error": str(exc), "problems": [p.to_dict() for p in exc.problems]})
        raise SystemExit(1) from exc


@contextlib.contextmanager
def _json_errors(fmt: str) -> Iterator[None]:
    """With --format json, a usage error (exit 2) is also one JSON object on stdout: {"error": ...}."""
    try:
        yield
    except click.ClickException as exc:
        if fmt == "json":
            emit_json({"error": exc.format_message(), "exit_code": exc.exit_code})
        raise


def runner_report(runner: GeneratedRunner, path: str | None) -> dict[str, Any]:
    """What `generate --format json` and the MCP tool generate_runner say about a runner (no secrets)."""
    return {"runner": path, "skill": runner.skill, "action": runner.action, "platform": runner.platform,
            "platform_options": runner.platform_options, "route": runner.route, "policy": runner.policy,
            "warnings": runner.warnings}


def _write(path: Path, text: str, option: str = "-o") -> None:
    """Write atomically (a half-written runner never exists), executable; a bad path is one line, exit 2."""
    write_output(path, text, executable=True, option=option)


@click.command()
@_launch_options
@_automl_budget_options
@click.option("-o", "--output", metavar="FILE", help="Write the runner here (default: stdout).")
@FORMAT
def generate(skill_name: str, action: str, overrides: str, parent_job_id: str | None, platform: str,
             platform_option_items: tuple[str, ...], automl_policy: str | None, request: str | None,
             results_root: str | None,
             name: str | None, tags: tuple[str, ...], output: str | None, fmt: str,
             algorithm: str | None = None, max_trials: int | None = None, max_epochs: int | None = None,
             workspace: str | None = None, automl_option_items: tuple[str, ...] = ()) -> None:
    """Write a standalone Python runner for SKILL's ACTION with OVERRIDES (JSON/YAML file or -).

    Validates OVERRIDES first (every problem is printed and nothing is written
    when they are invalid), resolves the AutoML policy for train, then renders
    the runner. Secret keys (encryption_key, credentials) are left out with a
    warning; the runner reads $SKILLBANK_ENCRYPTION_KEY at run time.
    Exit status: 0 written, 1 invalid overrides, 2 usage error.
    """
    output_name = Path(output).name if output else "runner.py"
    with _json_errors(fmt):
        if output and Path(output).is_dir():  # before any work: nothing is generated for nowhere
            raise BadInput(f"-o {output}: is a folder; give a file path")
        options = platform_options(platform, platform_option_items)
        runner = _generate(skill_name, action, overrides, parent_job_id, platform, automl_policy, request,
                           results_root, output_name, fmt=fmt, name=name, tags=tags,
                           automl=automl_budget(algorithm, max_trials, max_epochs, workspace, automl_option_items),
                           platform_options=options)
        for warning in runner.warnings:
            click.echo(f"warning: {warning}", err=True)
        if output:
            _write(Path(output), runner.text)
    if not output and fmt != "json":
        click.echo(runner.text, nl=False)
    if fmt == "json":
        emit_json({**runner_report(runner, output), **({} if output else {"text": runner.text})})
    elif output:
        click.echo(f"wrote {output}: {runner.skill} {runner.action} on {runner.platform}, route {runner.route}; "
                   f"run it with: python {output} [--dry-run] [--no-wait]", err=True)


def runners_dir() -> Path:
    """Where `skillbank run` keeps the runners it executes (beside the job store)."""
    return settings.state_dir() / "runners"


def save_runner(render: Callable[[str], GeneratedRunner],
                output: Path | None = None) -> tuple[GeneratedRunner, Path]:
    """Render a runner (``render(file name)``) and write it to ``output``, else under :func:`runners_dir`.

    Under the state folder the file is named after its content, so the same inputs reuse one runner file.
    Shared by `skillbank run` and the MCP tools generate_runner and run_job.
    """
    if output is None:
        first = render("runner.py")
        digest = hashlib.sha256(first.text.encode()).hexdigest()[:12]
        output = runners_dir() / f"{Path(first.skill).name}-{first.action}-{digest}.py"
    runner = render(output.name)
    _write(output, runner.text, option=f"runner (under ${STATE_DIR_ENV})" if output.parent == runners_dir() else "-o")
    return runner, output


def runner_command(path: Path, *, fmt: str, dry_run: bool, wait: bool) -> list[str]:
    """The command line that executes a saved runner with this interpreter."""
    argv = [sys.executable, str(path), "--format", fmt]
    if dry_run:
        argv.append("--dry-run")
    if not wait:
        argv.append("--no-wait")
    return argv


def runner_environment(runner: GeneratedRunner) -> dict[str, str]:
    """This process's environment, plus an encryption key given in the overrides: by environment only.

    When that key replaces this shell's own $SKILLBANK_ENCRYPTION_KEY, the shell's key goes along as
    $SKILLBANK_CALLER_ENCRYPTION_KEY, a secret name: the runner and the job still know it, so it stays masked.
    """
    env = dict(os.environ)
    _, given = take_encryption_key(runner.stripped_secrets, runner.spec_params)
    if given:
        own = settings.encryption_key()
        if own and own != given[ENCRYPTION_KEY_ENV]:
            env[CALLER_KEY_ENV] = own
        env.update(given)  # never in the runner file
    return env


@click.command()
@_launch_options
@_automl_budget_options
@click.option("--wait/--no-wait", default=False, show_default=True, help="Follow the job until it ends.")
@click.option("--dry-run", is_flag=True, help="Print the rendered submission; launch nothing.")
@FORMAT
def run(skill_name: str, action: str, overrides: str, parent_job_id: str | None, platform: str,
        platform_option_items: tuple[str, ...], automl_policy: str | None, request: str | None,
        results_root: str | None,
        name: str | None, tags: tuple[str, ...], wait: bool, dry_run: bool, fmt: str,
        algorithm: str | None = None, max_trials: int | None = None, max_epochs: int | None = None,
        workspace: str | None = None, automl_option_items: tuple[str, ...] = ()) -> None:
    """Generate the runner for SKILL's ACTION with OVERRIDES and execute it (same path as generate + python).

    The runner is kept in $SKILLBANK_STATE_DIR/runners/ (its name is printed) so
    the exact job can be rerun. A secret given as encryption_key in OVERRIDES
    reaches the runner through its environment only. Exit status: the runner's
    (0 ok, 1 job failed, 2 not launched / invalid).
    """
    inputs = (skill_name, action, overrides, parent_job_id, platform, automl_policy, request, results_root)
    with _json_errors(fmt):
        options = platform_options(platform, platform_option_items)
        given = read_overrides(overrides)  # once: stdin cannot be read twice
        budget = automl_budget(algorithm, max_trials, max_epochs, workspace, automl_option_items)
        runner, path = save_runner(lambda file_name: _generate(*inputs, file_name, given=given, fmt=fmt, name=name,
                                                               tags=tags, automl=budget, platform_options=options))
    for key in runner.stripped_secrets:
        if not is_encryption_key(key, runner.spec_params):
            click.echo(f"warning: {key}: secret value left out; give it through the environment", err=True)
    click.echo(f"runner: {path}", err=True)
    argv = runner_command(path, fmt=fmt, dry_run=dry_run, wait=wait)
    sys.exit(subprocess.call(argv, env=runner_environment(runner)))
