"""`skillbank automl`: run (or resume) an AutoML study, and read a workspace's progress.

\b
  skillbank automl SKILL OVERRIDES [options]     run/resume (same as `skillbank automl run ...`)
  skillbank automl status WORKSPACE              progress of a run, read-only

The group dispatches to ``run`` when its first argument is not a subcommand
name, so both spellings work. Optuna, torch and matplotlib are imported only
when a run starts.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from skillbank.cli.bank import FORMAT, BadInput, emit_json, load_skill, read_overrides
from skillbank.cli.platform_options import PLATFORM_OPTION, platform_options
from skillbank.runtime.automl.algorithms import ALGORITHMS
from skillbank.runtime.automl.options import AutoMLOptions

DEFAULTS = AutoMLOptions()  # every flag's default comes from the options dataclass


class DefaultToRun(click.Group):
    """A group whose first argument may be a skill: ``automl SKILL ...`` means ``automl run SKILL ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToRun)
def automl() -> None:
    """Hyperparameter search for a skill's train action (the tao-run-automl skill).

    \b
    Run or resume:  skillbank automl SKILL OVERRIDES [options]
    Progress:       skillbank automl status WORKSPACE

    Each trial is a train job (plus an evaluate job for --metric accuracy)
    through the job SDK. See skills/applications/tao-run-automl/SKILL.md.
    """


def parse_param_range(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME=JSON-or-YAML`` -> (NAME, mapping); ``NAME=disabled`` disables the parameter."""
    name, sep, body = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r}: expected NAME=MAPPING, e.g. "
                                 "train.optim.lr='{valid_min: 0.0001, valid_max: 0.01}'", param_hint="--param-range")
    if body.strip() == "disabled":
        return name.strip(), {"disabled": True}
    from skillbank.runtime.overrides import OverridesError, parse_overrides

    try:
        value = parse_overrides(body, where=f"--param-range {name}")
    except OverridesError as exc:
        raise click.BadParameter(str(exc), param_hint="--param-range") from exc
    return name.strip(), {key: _numbers(item) for key, item in value.items()}


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a range bound written that way is meant as a number."""
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and re.fullmatch(r"[-+]?\d+", value.strip()) else number
    return value


@automl.command("run")
@click.argument("skill_name", metavar="SKILL")
@click.argument("overrides", metavar="OVERRIDES")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default=DEFAULTS.algorithm, show_default=True)
@click.option("--metric", default=DEFAULTS.metric, show_default=True,
              help="accuracy / m_accuracy (evaluate job), or val_acc / val_loss / train_acc / train_loss (training "
                   "KPI, no evaluate job).")
@click.option("--direction", type=click.Choice(["maximize", "minimize"]),
              help="Default: minimize for *loss metrics, maximize otherwise.")
@click.option("--max-trials", type=int, default=DEFAULTS.max_trials, show_default=True,
              help="Trials in all, the baseline included.")
@click.option("--max-epochs", type=int, help="Epochs of a fully trained trial (default: train.num_epochs).")
@click.option("--min-epochs", type=int, default=DEFAULTS.min_epochs, show_default=True,
              help="First rung (multi-fidelity).")
@click.option("--reduction-factor", type=int, default=DEFAULTS.reduction_factor, show_default=True,
              help="Hyperband/ASHA: keep 1/N of the trials at each rung.")
@click.option("--max-concurrent", type=int, default=DEFAULTS.max_concurrent, show_default=True,
              help="Trials running at once.")
@click.option("--hyperparameters", "hyperparameters", multiple=True, metavar="KEY[,KEY...]",
              help="Search these automl_enabled leaves too (besides the schema's defaults).")
@click.option("--param-range", "param_ranges", multiple=True, metavar="KEY=MAPPING",
              help="Custom range, e.g. train.optim.lr='{valid_min: 1e-4, valid_max: 1e-2}' or KEY=disabled.")
@click.option("--override-disabled", is_flag=True, help="Allow parameters listed as AutoML-disabled.")
@click.option("--workspace", type=click.Path(file_okay=False), metavar="DIR",
              help="Study, history, best_rec.json, plots; rerun with the same DIR to resume. "
                   "Default: <results root>/automl/<skill>-<algorithm>-<hash>.")
@click.option("--storage", metavar="URL", help="Optuna RDB URL shared by several workers (default: DIR/study.db).")
@click.option("--study-name", metavar="NAME", help="Study name inside --storage (default: automl).")
@click.option("--platform", default=DEFAULTS.platform, show_default=True)
@PLATFORM_OPTION
@click.option("--results-root", metavar="PATH", help="Where the jobs' results folders go.")
@click.option("--test-dataset", metavar="PATH", help="Evaluate's test set (default: dataset.val_dataset_dir).")
@click.option("--no-baseline", is_flag=True, help="Do not run the default spec as trial 0.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--poll-interval", type=float, default=DEFAULTS.poll_interval, show_default=True,
              help="Seconds between progress updates and looks at remote jobs (a local job's end wakes the run "
                   "at once).")
@click.option("--max-failures-in-a-row", type=int, default=DEFAULTS.max_failures_in_a_row, show_default=True,
              help="Stop after this many failed trials in a row with the same cause.")
@FORMAT
def run(skill_name: str, overrides: str, algorithm: str, metric: str, direction: str | None, max_trials: int,
        max_epochs: int | None, min_epochs: int, reduction_factor: int, max_concurrent: int,
        hyperparameters: tuple[str, ...], param_ranges: tuple[str, ...], override_disabled: bool,
        workspace: str | None, storage: str | None, study_name: str | None, platform: str,
        platform_option_items: tuple[str, ...], results_root: str | None, test_dataset: str | None,
        no_baseline: bool, seed: int, poll_interval: float, max_failures_in_a_row: int, fmt: str) -> None:
    """Run or resume AutoML for SKILL's train action, starting from OVERRIDES (file or -).

    A progress line (trial n/N, best so far, running jobs) goes to stderr.
    Exit status: 0 finished; 1 stopped early (repeated failures, cause
    printed); 2 bad input (nothing ran); 130 interrupted (rerun to resume).

    Several workers share one study: start each with the same --storage
    (e.g. postgresql://user@host/db) and --study-name and its own
    --workspace; together they run exactly --max-trials trials.
    """
    from skillbank.runtime.automl.engine import AutoMLError, AutoMLStopped, run_automl
    from skillbank.runtime.automl.progress import print_progress_line
    from skillbank.runtime.automl.search_space import SearchSpaceError
    from skillbank.runtime.automl.storage import StudyStorageError
    from skillbank.runtime.validation import SpecValidationError

    skill = load_skill(skill_name)
    spec_overrides = read_overrides(overrides)
    _interrupt_on_sigterm()
    try:
        options = AutoMLOptions(
            algorithm=algorithm, metric=metric, direction=direction, max_trials=max_trials, max_epochs=max_epochs,
            min_epochs=min_epochs, reduction_factor=reduction_factor, max_concurrent=max_concurrent,
            hyperparameters=hyperparameters, param_ranges=dict(parse_param_range(item) for item in param_ranges),
            override_disabled=override_disabled, workspace=workspace, storage=storage, study_name=study_name,
            platform=platform, platform_options=platform_options(platform, platform_option_items),
            results_root=results_root, baseline=not no_baseline, test_dataset=test_dataset, seed=seed,
            poll_interval=poll_interval, max_failures_in_a_row=max_failures_in_a_row,
        )
        summary = run_automl(skill, spec_overrides, options, on_progress=print_progress_line(sys.stderr))
    except StudyStorageError as exc:  # a database that cannot be used: one line, exit 2
        raise BadInput(str(exc)) from None
    except (AutoMLError, SearchSpaceError, SpecValidationError) as exc:
        raise click.UsageError(str(exc)) from exc
    except AutoMLStopped as exc:
        _report(exc.summary, fmt)
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: running trials keep their jobs; rerun the same command to resume", err=True)
        sys.exit(130)
    _report(summary, fmt)


@automl.command("status")
@click.argument("workspace", type=click.Path(file_okay=False))
@FORMAT
def status(workspace: str, fmt: str) -> None:
    """Progress of the AutoML run in WORKSPACE (read-only: the run is not touched)."""
    from skillbank.runtime.automl.status import StatusError, format_status, read_status

    try:
        info = read_status(Path(workspace))
    except StatusError as exc:
        raise click.UsageError(str(exc)) from exc
    if fmt == "json":
        emit_json(info)
    else:
        click.echo(format_status(info))


def _interrupt_on_sigterm() -> None:
    """``kill PID`` stops the run like Ctrl-C: the workspace records it, trials keep their jobs to resume."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _report(summary: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    from skillbank.runtime.automl.status import format_summary

    click.echo(format_summary(summary))
