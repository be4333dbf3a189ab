"""The life of one AutoML trial: its train job(s), its evaluate job, and how it ends.

A trial is one recommendation (a set of hyperparameter values) followed through the job SDK:

1. a train job through ``create_job(skill, "train", overrides)`` that trains to the end of the trial's
   next segment (the next rung, or ``max_epochs``), saving a checkpoint only there (or as
   ``train.checkpointer``'s top-k says): the engine sets ``train.checkpoint_interval`` to that epoch;
2. every epoch's ``val_acc`` (``val_loss`` when minimising) in the job's ``status.json`` is reported to
   Optuna as an intermediate value; multi-fidelity algorithms may prune there (the job is canceled);
3. a trial that reaches a rung and is not pruned is promoted. Gated (the platform runs our model code
   here, ``setup.wake`` set, see runtime/rung_gates.py): one train job runs to ``max_epochs`` and waits
   after each rung epoch until the engine opens its gate, with no checkpoint written or read at a rung.
   Otherwise (TAO's way, any platform): each segment is its own job, and the next one resumes from the
   previous one's exact checkpoint (``train.resume_training_checkpoint_path``) with ``train.num_epochs``
   raised;
4. the objective: ``accuracy`` (default) from an evaluate job on the trial's exact checkpoint, or the
   last training KPI (``val_acc``, ``val_loss`` ...);
5. a failed job fails the trial with the SDK's failure analysis (never a metric of 0).

:func:`step` looks at a trial's current job once and says how the trial ended (an :class:`Outcome`),
or None while it goes on. The study loop (study.py) tells Optuna and keeps the count.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from skillbank.runtime.automl.algorithms import BudgetPlan
from skillbank.runtime.automl.options import KPI_METRICS, AutoMLOptions
from skillbank.runtime.rung_gates import GATE_ENV, open_gate, prepare_gate
from skillbank.runtime.sdk.job_labels import automl_info
from skillbank.runtime.sdk.status_file import epoch_kpis, read_status_events
from skillbank.runtime.skills import Skill
from skillbank.runtime.validation import leaf_schemas

NUM_EPOCHS_KEY = "train.num_epochs"
RESUME_KEY = "train.resume_training_checkpoint_path"
CHECKPOINT_INTERVAL_KEY = "train.checkpoint_interval"
CHECKPOINT_UNIT_KEY = "train.checkpoint_interval_unit"
TEST_SET_KEY = "evaluate.test_dataset_dir"
VAL_SET_KEY = "dataset.val_dataset_dir"
LOG_TAIL_CHARS = 2000
GATES_FOLDER = "gates"  # <workspace>/gates/trial-<n>: where gated trial jobs wait at their rungs


@dataclass
class LiveTrial:
    """A trial this process is running: its Optuna handle and where its jobs are."""

    trial: Any  # optuna.Trial
    values: dict[str, Any]
    overrides: dict[str, Any]
    baseline: bool
    plan: BudgetPlan  # this trial's segments (algorithms.trial_plan)
    stage: str = "train"  # train | evaluate
    job_id: str = ""
    jobs: list[dict[str, Any]] = field(default_factory=list)
    epochs_done: int = 0  # epochs the finished train segments reached
    reported: set[int] = field(default_factory=set)
    last_kpi: dict[str, Any] = field(default_factory=dict)
    train_job: str | None = None
    checkpoint: str | None = None
    eval_job: str | None = None
    last_epoch_seen: int = 0
    saved: dict[str, Any] = field(default_factory=dict)  # the user attributes as last written (save_attrs)

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def at_gates(self) -> bool:
        """Whether the trial's current job trains through its rungs, waiting at each (alive while it waits)."""
        return bool(self.jobs and self.jobs[-1].get("gates"))


class Outcome(NamedTuple):
    """How a trial ended: ``COMPLETE`` (with ``value``), ``PRUNED`` or ``FAIL`` (with ``failure``)."""

    state: str
    value: float | None = None
    failure: dict[str, Any] | None = None
    note: str = ""  # the event line's detail (pruned at which epoch ...)


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a run shares: the skill, the resolved options and plan, and where jobs belong."""

    skill: Skill
    options: AutoMLOptions
    plan: BudgetPlan
    context: dict[str, Any]  # dotted key -> value of the base spec (relations, the baseline, the test set)
    workspace: Path  # options.workspace (resolved), as a Path
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)  # the encryption key, for jobs only
    wake: Path | None = None  # the engine's wake pipe when trials train through their rungs (gated), else None


# ---------------------------------------------------------------------------------------------- launching
def launch_train(setup: TrialSetup, live: LiveTrial, resume_from: str | None = None,
                 parent: str | None = None) -> Outcome | None:
    """Start the trial's next train segment; a FAIL outcome when the job cannot be created."""
    from skillbank.runtime.sdk import jobs

    gated = trains_through_rungs(setup, live)
    end = live.plan.max_epochs if gated else live.plan.next_end(live.epochs_done)
    # A checkpoint only where the job ends (a rung, or max_epochs): the one the next segment resumes from or
    # the trial is scored on. train.checkpointer's top-k still keeps the best epochs.
    overrides = {**live.overrides, NUM_EPOCHS_KEY: end, CHECKPOINT_INTERVAL_KEY: end, CHECKPOINT_UNIT_KEY: "epoch"}
    if resume_from:
        overrides[RESUME_KEY] = resume_from
    launch = _launch(setup, live, "train")
    entry: dict[str, Any] = {"from_epoch": live.epochs_done, "to_epoch": end, "resume_from": resume_from}
    if gated:
        folder = prepare_gate(setup.workspace / GATES_FOLDER / f"trial-{live.number}", live.plan.rungs, setup.wake)
        launch["env"] = {**launch["env"], GATE_ENV: str(folder)}
        entry.update(gates=list(live.plan.rungs), gate=str(folder))
    try:
        job_id = jobs.create_job(setup.skill, "train", overrides, parent_job_id=parent, **launch)
    except Exception as exc:  # noqa: BLE001 - validation, spec-param or launch errors fail this trial only
        return launch_failure(exc)
    live.stage, live.job_id, live.train_job = "train", job_id, job_id
    live.jobs.append({"job_id": job_id, "action": "train", **entry})
    save_attrs(live)
    return None


def trains_through_rungs(setup: TrialSetup, live: LiveTrial) -> bool:
    """Whether the trial's train job is to train through its rungs, waiting at each (runtime/rung_gates.py)."""
    return setup.wake is not None and live.plan.multi_fidelity


def launch_evaluate(setup: TrialSetup, live: LiveTrial) -> Outcome | None:
    """Start the evaluate job on the trial's exact checkpoint; a FAIL outcome when it cannot be created."""
    from skillbank.runtime.sdk import jobs

    try:
        job_id = jobs.create_job(setup.skill, "evaluate", evaluate_overrides(setup, live),
                                 parent_job_id=live.train_job, **_launch(setup, live, "evaluate"))
    except Exception as exc:  # noqa: BLE001
        return launch_failure(exc)
    live.stage, live.job_id, live.eval_job = "evaluate", job_id, job_id
    live.jobs.append({"job_id": job_id, "action": "evaluate", "checkpoint": live.checkpoint})
    save_attrs(live)
    return None


def _launch(setup: TrialSetup, live: LiveTrial, action: str) -> dict[str, Any]:
    """create_job's keywords for a trial job: platform, results root, the key's environment and labels.

    Rungs count a trial's train jobs from 1 (multi-fidelity algorithms only): rung 2 continues rung 1.
    """
    o = setup.options
    rung = None
    if action == "train" and setup.plan.multi_fidelity and not trains_through_rungs(setup, live):
        rung = 1 + sum(1 for job in live.jobs if job["action"] == "train")
    return {"platform": o.platform, "results_root": o.results_root, "env": setup.secret_env,
            "platform_options": o.platform_options, "name": o.job_name, "tags": o.job_tags,
            "automl": automl_info(setup.workspace, setup.options.study_name, live.number, rung)}


def evaluate_overrides(setup: TrialSetup, live: LiveTrial) -> dict[str, Any]:
    """The trial's spec (model, dataset ...) plus the test set and the exact checkpoint."""
    allowed = leaf_schemas(setup.skill.schema("evaluate"))
    skip = {RESUME_KEY, "results_dir", "train.results_dir"}
    out = {k: v for k, v in live.overrides.items() if k in allowed and k not in skip}
    out[TEST_SET_KEY] = (setup.options.test_dataset or live.overrides.get(TEST_SET_KEY)
                         or setup.context.get(VAL_SET_KEY))
    out["evaluate.checkpoint"] = live.checkpoint
    return out


# ---------------------------------------------------------------------------------------------- following
def step(setup: TrialSetup, live: LiveTrial, hold_from: int | None = None) -> Outcome | None:
    """Look at the trial's current job once: report new epochs, promote, evaluate, or end the trial.

    ``hold_from``: a rung epoch the trial may not be judged at yet (the study loop's order of rung
    decisions); epochs from it on stay unreported and a finished segment waits to be promoted.
    """
    from skillbank.runtime.sdk import jobs
    from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR

    try:
        record = jobs.refresh_job(live.job_id)
    except jobs.JobNotFoundError:
        return failed({"category": "lost", "detail": f"job {live.job_id} is not in the job store",
                       "suggestion": "The job store was reset while the run went on; rerun."})
    held = False
    if live.stage == "train":
        pruned = report_epochs(setup, live, record, hold_from)
        if pruned is not None:
            return pruned
        held = is_held(live, hold_from)
        open_gates(live, hold_from)
    status = record["status"]
    if status == ERROR:
        return failed(jobs.get_failure_analysis(live.job_id), record)
    if status == CANCELED:
        return failed({"category": "canceled", "detail": f"job {live.job_id} was canceled",
                       "suggestion": "Someone canceled the job; rerun to queue the trial again."}, record)
    if status == COMPLETE and not held:
        return train_finished(setup, live, record) if live.stage == "train" else evaluate_finished(setup, record)
    return None


def open_gates(live: LiveTrial, hold_from: int | None) -> None:
    """Promote a gated trial at each rung its job has reached, was judged at and not pruned (a rung from
    ``hold_from`` on waits for the earlier trials of its ladder)."""
    if not live.at_gates:
        return
    opened = [rung for rung in live.jobs[-1]["gates"]
              if live.epochs_done < rung <= live.last_epoch_seen and (hold_from is None or rung < hold_from)]
    for rung in opened:
        open_gate(Path(live.jobs[-1]["gate"]), rung)
        live.epochs_done = rung
    if opened:
        save_attrs(live)


def is_held(live: LiveTrial, hold_from: int | None) -> bool:
    """Whether the trial's job has trained up to ``hold_from``, a rung it may not be judged at yet: it waits."""
    return hold_from is not None and live.last_epoch_seen >= hold_from


def report_epochs(setup: TrialSetup, live: LiveTrial, record: dict[str, Any],
                  hold_from: int | None = None) -> Outcome | None:
    """Report new epochs (before ``hold_from``) as intermediate values; a PRUNED outcome when the pruner stops
    the trial (job canceled)."""
    from skillbank.runtime.sdk import jobs
    key = "val_loss" if setup.options.direction == "minimize" else "val_acc"
    epochs, last_kpi = epoch_kpis(read_status_events(Path(record["results_dir"]) / "train"))
    if last_kpi:
        live.last_kpi = last_kpi
    plan = live.plan
    for epoch, kpi in epochs:
        live.last_epoch_seen = max(live.last_epoch_seen, epoch)
        value = kpi.get(key)
        if epoch in live.reported or not finite(value) or (hold_from is not None and epoch >= hold_from):
            continue
        live.trial.report(float(value), epoch)
        live.reported.add(epoch)
        # The baseline asks too (the pruner records its rung values for the others to compete with) but
        # is never pruned: it is the reference every trial is compared to. Nothing is saved by pruning at
        # the last epoch: a fully trained trial is scored, not pruned.
        if plan.multi_fidelity and epoch < plan.max_epochs and live.trial.should_prune() and not live.baseline:
            with contextlib.suppress(Exception):
                jobs.cancel_job(live.job_id)
            live.last_epoch_seen = epoch
            return Outcome("PRUNED", note=f"at epoch {epoch} ({key}={value:.4g})")
    return None


def train_finished(setup: TrialSetup, live: LiveTrial, record: dict[str, Any]) -> Outcome | None:
    """A train segment completed: promote the trial (next segment), start its evaluate job, or score it."""
    from skillbank.runtime.sdk.checkpoints import CheckpointError, select_checkpoint
    from skillbank.runtime.sdk.spec_params import parent_results_location

    live.epochs_done = live.jobs[-1]["to_epoch"]
    promote = live.plan.next_end(live.epochs_done) is not None
    try:
        # A promoted trial resumes from the newest checkpoint (the epochs it trained); a finished one is
        # scored on the best checkpoint its status.json reported (train.checkpointer), else the newest.
        checkpoint = select_checkpoint(parent_results_location(record), action="train",
                                       best=None if promote else record.get("best_checkpoint") or None).location
    except CheckpointError as exc:
        return failed({"category": "no_checkpoint", "detail": str(exc),
                       "suggestion": "The train job ended without a checkpoint; check its log."}, record)
    live.checkpoint = checkpoint
    if promote:
        return launch_train(setup, live, resume_from=checkpoint, parent=record["id"])
    metric = setup.options.metric
    if not setup.options.needs_evaluate:
        value = live.last_kpi.get(metric)
        if not finite(value):
            return failed({"category": "no_metric", "detail": f"the train job reported no finite {metric} "
                           f"(KPIs: {sorted(live.last_kpi)})",
                           "suggestion": "Check that validation runs (train.validation_interval)."}, record)
        return Outcome("COMPLETE", float(value))
    return launch_evaluate(setup, live)


def evaluate_finished(setup: TrialSetup, record: dict[str, Any]) -> Outcome:
    """The trial's evaluate job completed: its ``results.json`` holds the objective."""
    metric = setup.options.metric
    path = Path(record["results_dir"]) / "evaluate" / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return failed({"category": "no_metric", "detail": f"cannot read {path}: {exc}",
                       "suggestion": "The evaluate job wrote no results.json; check its log."}, record)
    value = results.get(metric)
    if not finite(value):
        numeric = sorted(k for k, v in results.items() if finite(v))
        return failed({"category": "no_metric", "detail": f"results.json has no finite {metric!r}; it has: "
                       f"{', '.join(numeric)}",
                       "suggestion": f"Use --metric with one of: {', '.join(numeric + list(KPI_METRICS))}"}, record)
    return Outcome("COMPLETE", float(value))


# ---------------------------------------------------------------------------------------------- records
def save_attrs(live: LiveTrial, stage: str | None = None) -> None:
    """Persist what a resumed run needs to follow this trial (jobs, stage, checkpoint).

    One key at a time, and only those that changed since the last save (each is a write to the study's
    storage): ``job_id`` and ``stage`` go last, so a worker killed halfway never leaves a job id whose ``jobs``
    entry is missing (a resumed run follows only a trial whose ``jobs`` names it).
    """
    attrs = {
        "jobs": live.jobs, "train_job": live.train_job, "eval_job": live.eval_job, "checkpoint": live.checkpoint,
        "epochs_done": live.epochs_done, "baseline": live.baseline, "values": live.values, "kpi": live.last_kpi,
        "job_id": live.job_id, "stage": stage or live.stage,
    }
    for key, value in attrs.items():
        if key not in live.saved or live.saved[key] != value:
            live.trial.set_user_attr(key, value)
            live.saved[key] = copy.deepcopy(value)  # ``jobs`` and ``kpi`` change in place later


def failed(failure: dict[str, Any], job: dict[str, Any] | None = None) -> Outcome:
    """A FAIL outcome with the failure's fields kept to what a history row shows (the log tail cut short)."""
    kept = {k: failure.get(k) for k in ("category", "exit_code", "signal", "detail", "suggestion", "log_tail")
            if failure.get(k) is not None}
    if "log_tail" in kept:
        kept["log_tail"] = str(kept["log_tail"])[-LOG_TAIL_CHARS:]
    kept.setdefault("category", "unknown")
    if job is not None:
        kept["job_id"] = job["id"]
    return Outcome("FAIL", failure=kept)


def launch_failure(exc: Exception) -> Outcome:
    name = type(exc).__name__
    category = "invalid_spec" if name in ("SpecValidationError", "SpecParamError") else "launch_failed"
    return failed({"category": category, "detail": f"{name}: {exc}"[:LOG_TAIL_CHARS],
                   "suggestion": "Fix the cause in detail; check the overrides with `skillbank validate`."})


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
