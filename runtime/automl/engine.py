"""The AutoML run loop: an Optuna study whose trials are train (and evaluate) jobs of the job SDK.

One trial = one recommendation (a set of hyperparameter values). For each:

1. a train job through ``create_job(skill, "train", overrides)`` (spec-param
   inference, S3 staging and platforms all apply), at most ``max_concurrent``
   trials at once;
2. the job's ``<results_dir>/train/status.json`` is followed; every epoch's
   ``val_acc`` (``val_loss`` when minimising) is reported to Optuna as an
   intermediate value, and multi-fidelity algorithms prune here: a pruned
   trial's job is canceled;
3. a trial that reaches a rung and is not pruned is promoted: its next train
   job resumes from the exact checkpoint of the previous one
   (``train.resume_training_checkpoint_path``) with ``train.num_epochs``
   raised to the next rung;
4. the objective: ``accuracy`` (default, maximise) from an ``evaluate`` job on
   the trial's exact checkpoint (test set: ``test_dataset`` or the train
   spec's ``dataset.val_dataset_dir``), read from
   ``<results_dir>/evaluate/results.json``; ``val_acc``/``val_loss`` (and
   ``train_acc``/``train_loss``) take the last training KPI instead;
5. a failed job makes the trial FAIL with the SDK's failure analysis (never a
   metric of 0); ``max_failures_in_a_row`` failures in a row with the same
   category stop the run with that cause (:class:`AutoMLStopped`).

The baseline (the run's own spec, no value changed) is trial 0 of the study,
trains the full budget and is never pruned, so the best trial is at least as
good as the baseline by construction.

Resume: the study lives in the workspace (``study.db``) or ``storage``. A
rerun with the same workspace keeps every finished trial; a trial left
RUNNING by this worker is followed again when its job still exists (running
or finished meanwhile), otherwise it is marked INTERRUPTED and queued again
with the same values.

Several workers (each with its own workspace) share one study through
``storage`` (PostgreSQL, see storage.py) and ``study_name``: creating the
study and "count the budget, ask for a trial" happen under the study's lock,
so together they run exactly ``max_trials`` trials; a worker with nothing
left to start waits for the other workers' running trials (as long as their
heartbeat is recent) before it writes its final files, so every worker ends
with the same best_rec.json.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.runtime.automl import algorithms as algos
from skillbank.runtime.automl import workspace as ws
from skillbank.runtime.automl.search_space import (
    ParamSpec,
    SearchSpaceError,
    build_search_space,
    default_values,
)
from skillbank.runtime.automl.storage import open_storage, study_lock, workspace_lock
from skillbank.runtime.sdk.job_labels import LabelError, automl_info, check_name, check_tags
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import build_spec, get_dotted
from skillbank.runtime.validation import leaf_schemas, normalize_overrides, resolve_spec

KPI_METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")
EVAL_METRICS = ("accuracy", "m_accuracy")
NUM_EPOCHS_KEY = "train.num_epochs"
RESUME_KEY = "train.resume_training_checkpoint_path"
TEST_SET_KEY = "evaluate.test_dataset_dir"
VAL_SET_KEY = "dataset.val_dataset_dir"
STUDY_NAME_DEFAULT = "automl"
LOG_TAIL_CHARS = 2000
HEARTBEAT_S = 10.0  # a worker stamps its running trials this often ...
STALE_AFTER_S = 60.0  # ... and one silent for this long is taken for gone (its trials wait for its rerun)

ProgressCallback = Callable[[dict[str, Any]], None]


class AutoMLError(RuntimeError):
    """A run that cannot start (bad options, a workspace holding another study)."""


class AutoMLStopped(RuntimeError):
    """The run stopped early (repeated failures with one cause); ``summary`` is the run's summary."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Options:
    """The run's settings after defaults are filled in."""

    algorithm: str
    metric: str
    direction: str
    max_trials: int
    max_concurrent: int
    plan: algos.BudgetPlan
    baseline: bool
    platform: str
    results_root: str | None
    test_dataset: str | None
    seed: int
    poll_interval: float
    max_failures_in_a_row: int
    job_name: str | None = None  # the user's name and tags, given to every trial job
    job_tags: tuple[str, ...] = ()
    platform_options: dict[str, Any] = field(default_factory=dict)  # checked --platform-option values


def metric_direction(metric: str, direction: str | None) -> str:
    """``maximize``/``minimize``: as given, else minimise losses and maximise everything else."""
    if direction is None:
        return "minimize" if "loss" in metric else "maximize"
    aliases = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}
    if direction not in aliases:
        raise AutoMLError(f"direction={direction!r}; allowed: maximize, minimize")
    return aliases[direction]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutoMLError(f"{name}={value!r}; allowed: an integer >= 1")
    return value


# ---------------------------------------------------------------------------------------------- trial state
@dataclass
class LiveTrial:
    """A trial this process is running: its Optuna handle and where its jobs are."""

    trial: Any  # optuna.Trial
    values: dict[str, Any]
    overrides: dict[str, Any]
    baseline: bool
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

    @property
    def number(self) -> int:
        return self.trial.number


# ---------------------------------------------------------------------------------------------- public API
def run_automl(
    skill: str | Skill,
    overrides: dict[str, Any] | None,
    *,
    algorithm: str = algos.DEFAULT_ALGORITHM,
    metric: str = "accuracy",
    direction: str | None = None,
    max_trials: int = 6,
    max_epochs: int | None = None,
    reduction_factor: int = 3,
    max_concurrent: int = 1,
    hyperparameters: list[str] | None = None,
    param_ranges: dict[str, dict[str, Any]] | None = None,
    override_disabled: bool = False,
    workspace: str | os.PathLike | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    platform: str = "local",
    results_root: str | os.PathLike | None = None,
    baseline: bool = True,
    on_progress: ProgressCallback | None = None,
    test_dataset: str | None = None,
    min_epochs: int = 1,
    seed: int = 0,
    poll_interval: float = 1.0,
    max_failures_in_a_row: int = 3,
    dry_run: bool = False,
    wait: bool = True,
    job_name: str | None = None,
    job_tags: list[str] | tuple[str, ...] = (),
    platform_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) an AutoML study for ``skill``'s train action; returns the run's summary.

    ``overrides`` are the train spec_overrides every trial starts from (dataset
    paths, label map, input size ...); the searched values are set on top.
    ``max_trials`` counts the baseline. ``max_epochs`` defaults to the
    overrides' ``train.num_epochs`` (else the template's). Raises AutoMLStopped
    (with ``.summary``) when repeated failures stop the run, AutoMLError /
    SearchSpaceError / SpecValidationError for bad input before anything runs.

    ``dry_run`` checks everything and returns the plan (search space, budget,
    workspace, the baseline's train submission) without starting a job;
    ``wait=False`` starts the run in a detached process and returns at once
    (follow it with ``skillbank automl status WORKSPACE``). A generated train
    runner passes its embedded budget (``skillbank generate --algorithm
    --max-trials --max-epochs --workspace``) as these keywords.

    Fallback: options left at their defaults may be set by
    ``$SKILLBANK_AUTOML_OPTIONS`` (a JSON object, e.g. ``{"max_trials": 4}``).

    Every trial job records its place (``automl``: workspace, study, trial number and, for multi-fidelity
    algorithms, its rung); ``job_name`` / ``job_tags`` label them too (``skillbank jobs list``).
    ``platform_options`` are the trial jobs' platform settings (slurm partition, gpus=0 ...).

    Raises StudyStorageError (one line) when ``storage`` cannot be opened (driver missing, database
    unreachable) or another running worker holds the workspace.
    """
    given = {
        "algorithm": algorithm, "metric": metric, "direction": direction, "max_trials": max_trials,
        "max_epochs": max_epochs, "reduction_factor": reduction_factor, "max_concurrent": max_concurrent,
        "hyperparameters": hyperparameters, "param_ranges": param_ranges, "override_disabled": override_disabled,
        "workspace": workspace, "storage": storage, "study_name": study_name, "platform": platform,
        "results_root": results_root, "baseline": baseline, "test_dataset": test_dataset,
        "min_epochs": min_epochs, "seed": seed, "poll_interval": poll_interval,
        "max_failures_in_a_row": max_failures_in_a_row, "job_name": job_name, "job_tags": job_tags,
        "platform_options": platform_options,
    }
    options = {**given, **environment_options(given)}
    run = AutoMLRun.prepare(skill, overrides, on_progress=on_progress, **options)
    if dry_run:
        return run.preview()
    if not wait:
        return run.detach(options)
    return run.run()


OPTIONS_ENV = "SKILLBANK_AUTOML_OPTIONS"  # fallback only: options are given as keywords (runner: AUTOML_OPTIONS)


def environment_options(given: dict[str, Any]) -> dict[str, Any]:
    """Options from ``$SKILLBANK_AUTOML_OPTIONS`` for those ``given`` left at their defaults (a fallback)."""
    import inspect

    text = os.environ.get(OPTIONS_ENV, "").strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AutoMLError(f"${OPTIONS_ENV} is not a JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise AutoMLError(f"${OPTIONS_ENV} must be a JSON object of run_automl options")
    defaults = {name: p.default for name, p in inspect.signature(run_automl).parameters.items()}
    unknown = sorted(k for k in data if k not in given)
    if unknown:
        raise AutoMLError(f"${OPTIONS_ENV}: unknown option(s) {unknown}; allowed: {', '.join(sorted(given))}")
    return {k: v for k, v in data.items() if given[k] == defaults[k]}


def default_workspace(skill_name: str, algorithm: str, overrides: dict[str, Any],
                      results_root: str | os.PathLike | None) -> Path:
    """``<results root>/automl/<skill>-<algorithm>-<hash of the overrides>``: a rerun of the same request resumes."""
    root = str(results_root or os.environ.get("SKILLBANK_RESULTS_ROOT") or Path.home() / "skillbank-results")
    if root.startswith("s3://"):
        root = str(Path.cwd())
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return Path(root).expanduser() / "automl" / f"{skill_name}-{algorithm}-{digest}"


# ---------------------------------------------------------------------------------------------- the run
class AutoMLRun:
    """One run of the loop over a study (build with :meth:`prepare`, then :meth:`run`)."""

    def __init__(self, skill: Skill, base: dict[str, Any], space: list[ParamSpec], options: Options,
                 workspace: Path, storage: str, study_name: str, on_progress: ProgressCallback | None):
        self.skill = skill
        self.base = base
        self.space = space
        self.options = options
        self.workspace = workspace
        self.storage = storage
        self.study_name = study_name
        self.on_progress = on_progress
        self.worker = f"{socket.gethostname()}:{workspace.absolute()}"
        self.live: list[LiveTrial] = []
        self.study: Any = None
        self.stop_reason: dict[str, Any] | None = None
        self._outcomes: list[tuple[str, str | None]] = []  # (state, failure category) of each finished trial
        self._last_line = ""
        self._events: list[str] = []
        self._context = self._spec_values(base)
        self.secret_env: dict[str, str] = {}  # the encryption key, passed to jobs through their environment
        self._backend: Any = None  # the opened optuna RDBStorage (see _storage)
        self._beats: dict[int, float] = {}  # trial number -> when this worker last stamped its heartbeat
        self._waiting_noted = False

    # -- setup ------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, skill: str | Skill, overrides: dict[str, Any] | None, **kw: Any) -> AutoMLRun:
        """Check every option and the base spec; nothing runs yet."""
        skill = skill if isinstance(skill, Skill) else Skill.load(skill)
        if "train" not in skill.actions:
            raise AutoMLError(f"{skill.name}: AutoML tunes the train action, which this skill does not have")
        try:
            algorithm = algos.check_algorithm(kw["algorithm"])
        except algos.AlgorithmError as exc:
            raise AutoMLError(str(exc)) from exc
        metric = str(kw["metric"])
        direction = metric_direction(metric, kw["direction"])
        base = normalize_overrides(skill, "train", dict(overrides or {}))
        secret_env = _take_secrets(skill, base)  # never stored in the study, workspace files or best_rec.json
        if RESUME_KEY in base and not base[RESUME_KEY]:
            del base[RESUME_KEY]
        if RESUME_KEY in base:
            raise AutoMLError(f"{RESUME_KEY} is set by the engine for promoted trials; remove it from the overrides")
        resolve_spec(skill, "train", base)  # every problem of the base spec at once, before any job
        template_epochs = get_dotted(skill.template("train"), NUM_EPOCHS_KEY)
        max_epochs = kw["max_epochs"] if kw["max_epochs"] is not None else base.get(NUM_EPOCHS_KEY, template_epochs)
        max_epochs = _positive_int("max_epochs", max_epochs)
        base[NUM_EPOCHS_KEY] = max_epochs
        try:
            plan = algos.budget_plan(algorithm, max_epochs, kw["reduction_factor"], kw["min_epochs"])
        except algos.AlgorithmError as exc:
            raise AutoMLError(str(exc)) from exc
        space = build_search_space(
            skill.schema("train"), hyperparameters=kw["hyperparameters"], param_ranges=kw["param_ranges"],
            override_disabled=kw["override_disabled"], base_values=base,
        )
        if metric not in KPI_METRICS and "evaluate" not in skill.actions:
            raise AutoMLError(f"metric {metric!r} needs an evaluate action; allowed here: {', '.join(KPI_METRICS)}")
        max_trials = _positive_int("max_trials", kw["max_trials"])
        if algorithm == "grid":  # a grid is searched once: never more trials than points (plus the baseline)
            max_trials = min(max_trials, algos.grid_size(space, max_trials) + (1 if kw["baseline"] else 0))
        try:
            job_name, job_tags = check_name(kw["job_name"]), tuple(check_tags(kw["job_tags"]))
        except LabelError as exc:
            raise AutoMLError(str(exc)) from exc
        from skillbank.runtime.sdk.platforms.base import PlatformError
        from skillbank.runtime.sdk.platforms.options import check_platform_options

        try:
            platform_options = check_platform_options(kw["platform"], kw["platform_options"])
        except PlatformError as exc:
            raise AutoMLError(str(exc)) from exc
        options = Options(
            algorithm=algorithm, metric=metric, direction=direction, max_trials=max_trials,
            max_concurrent=_positive_int("max_concurrent", kw["max_concurrent"]), plan=plan,
            baseline=bool(kw["baseline"]), platform=kw["platform"],
            results_root=str(kw["results_root"]) if kw["results_root"] else None,
            test_dataset=kw["test_dataset"], seed=int(kw["seed"]), poll_interval=float(kw["poll_interval"]),
            max_failures_in_a_row=_positive_int("max_failures_in_a_row", kw["max_failures_in_a_row"]),
            job_name=job_name, job_tags=job_tags, platform_options=platform_options,
        )
        # A storage given by URL is opened now: a missing driver or an unreachable database stops here,
        # before the workspace is made.
        backend = open_storage(kw["storage"]) if kw["storage"] else None
        workspace = Path(kw["workspace"] or default_workspace(skill.name, algorithm, base, kw["results_root"]))
        workspace = workspace.expanduser().absolute()
        workspace.mkdir(parents=True, exist_ok=True)
        storage = kw["storage"] or ws.default_storage(workspace)
        study_name = kw["study_name"] or STUDY_NAME_DEFAULT
        run = cls(skill, base, space, options, workspace, storage, study_name, kw["on_progress"])
        run.secret_env = secret_env
        run._backend = backend
        return run

    def preview(self) -> dict[str, Any]:
        """What a run would do, with nothing started (``dry_run``)."""
        from skillbank.runtime.sdk import jobs

        o = self.options
        submission = jobs.preview_job(self.skill, "train", self.base, platform=o.platform,
                                      results_root=o.results_root, platform_options=o.platform_options)
        return {"state": "dry_run", "skill": self.skill.name, "algorithm": o.algorithm, "metric": o.metric,
                "direction": o.direction, "max_trials": o.max_trials, "budget": o.plan.to_dict(),
                "search_space": [s.describe() for s in self.space], "workspace": str(self.workspace),
                "storage": ws.redact_url(self.storage), "baseline_submission": submission}

    def detach(self, options: dict[str, Any]) -> dict[str, Any]:
        """Start this run in a detached process (``wait=False``); its output goes to ``<workspace>/automl.log``."""
        import subprocess

        # The key travels in the child's environment, never in request.json.
        request = {"skill": str(self.skill.path), "overrides": self.base,
                   "options": {**options, "workspace": str(self.workspace)}}
        path = self.workspace / "request.json"
        ws.write_json(path, request)
        log = open(self.workspace / "automl.log", "ab")  # noqa: SIM115 - handed to the child process
        try:
            process = subprocess.Popen([sys.executable, "-m", "skillbank.runtime.automl.engine", str(path)],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env={**os.environ, **self.secret_env})
        finally:
            log.close()
        return {"state": "launched", "pid": process.pid, "workspace": str(self.workspace),
                "log": str(self.workspace / "automl.log"),
                "follow": f"skillbank automl status {self.workspace}"}

    def config(self) -> dict[str, Any]:
        """What defines the study: a resumed run must agree on it."""
        o = self.options
        return {
            "skill": self.skill.name,
            "algorithm": o.algorithm,
            "metric": o.metric,
            "direction": o.direction,
            "budget": o.plan.to_dict(),
            "search_space": [s.to_dict() for s in self.space],
            "overrides": self.base,
        }

    def _storage(self) -> Any:
        """The study's RDB storage, opened once."""
        if self._backend is None:
            self._backend = open_storage(self.storage)
        return self._backend

    def _lock(self):
        """The study's lock across workers (see storage.study_lock)."""
        return study_lock(self._storage(), self.study_name)

    def _open_study(self) -> None:
        with self._lock():  # one worker creates the study (and queues the baseline); the others load it
            self._open_study_locked()

    def _open_study_locked(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        o = self.options
        existing = None
        with contextlib.suppress(KeyError):
            existing = optuna.load_study(study_name=self.study_name, storage=self._storage())
        config = self.config()
        if existing is not None:
            stored = existing.user_attrs.get("config")
            if stored is not None and _comparable(stored) != _comparable(config):
                differs = [k for k in config if _comparable(stored).get(k) != _comparable(config).get(k)]
                raise AutoMLError(
                    f"workspace {self.workspace} holds a study with a different {', '.join(differs)}; "
                    "resume with the same settings or use a new --workspace"
                )
        done = len(existing.trials) if existing is not None else 0
        sampler = algos.make_sampler(o.algorithm, self.space, seed=o.seed + done, max_trials=o.max_trials,
                                     max_concurrent=o.max_concurrent)
        pruner = algos.make_pruner(o.algorithm, o.plan)
        self.study = optuna.create_study(study_name=self.study_name, storage=self._storage(), sampler=sampler,
                                         pruner=pruner, direction=o.direction, load_if_exists=True)
        if existing is None:
            self.study.set_user_attr("config", json.loads(json.dumps(config, default=str)))
            if o.baseline:
                self._enqueue(default_values(self.space), {"baseline": True})
            self._event("study created")
        else:
            self._event(f"study resumed with {done} trial(s)")

    def _enqueue(self, values: dict[str, Any], attrs: dict[str, Any]) -> None:
        params = {}
        for spec in self.space:
            with contextlib.suppress(SearchSpaceError, ValueError):
                raw = algos.raw_params([spec], values)[spec.raw_name]
                if spec.kind == "categorical" and not spec.weighted and raw not in spec.choices:
                    continue  # a default outside the chosen options: the sampler picks (the baseline ignores it)
                params[spec.raw_name] = raw
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a default outside a narrowed range is still the baseline's value
            self.study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        with workspace_lock(self.workspace):
            return self._run()

    def _run(self) -> dict[str, Any]:
        self._open_study()
        with self._lock():
            self._resume_running()
        try:
            while True:
                self._launch_more()
                if not self.live and not self._others_running():
                    break
                for live in list(self.live):
                    self._step(live)
                if self.stop_reason:
                    self._stop_all()
                    break
                self._heartbeat()
                self._write_files(state="running")
                time.sleep(self.options.poll_interval)
        except KeyboardInterrupt:
            # Trials stay RUNNING with their jobs recorded: the next run follows or re-queues them.
            self._write_files(state="interrupted")
            raise
        state = "stopped" if self.stop_reason else "finished"
        summary = self._write_files(state=state, plots=True)
        if self.stop_reason:
            raise AutoMLStopped(
                f"AutoML stopped after {self.options.max_failures_in_a_row} failed trials in a row with the same "
                f"cause ({self.stop_reason['category']}): {self.stop_reason.get('suggestion') or ''}".strip(),
                summary,
            )
        return summary

    def _finished_count(self) -> int:
        from optuna.trial import TrialState

        done = 0
        for t in self.study.get_trials(deepcopy=False):
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
            ):
                done += 1
            elif t.state == TrialState.RUNNING and t.user_attrs.get("worker") != self.worker:
                done += 1  # another worker's trial counts against the shared budget
        return done

    def _launch_more(self) -> None:
        while not self.stop_reason and len(self.live) < self.options.max_concurrent:
            # Counting the budget and asking must not interleave with another worker's: the lock makes
            # the workers of one study start exactly max_trials trials together.
            with self._lock():
                if self._finished_count() + len(self.live) >= self.options.max_trials:
                    return
                trial = self.study.ask()
                trial.set_user_attr("worker", self.worker)
                self._stamp(trial)
            self._start_trial(trial)

    def _stamp(self, trial: Any) -> None:
        """Record that this worker is alive and follows ``trial`` (other workers wait for fresh ones)."""
        now = time.time()
        trial.set_user_attr("heartbeat", now)
        self._beats[trial.number] = now

    def _heartbeat(self) -> None:
        for live in self.live:
            if time.time() - self._beats.get(live.number, 0.0) >= HEARTBEAT_S:
                self._stamp(live.trial)

    def _others_running(self) -> bool:
        """Whether another worker still follows trials of this study (a heartbeat within STALE_AFTER_S).

        A worker waits for them before it writes its final files, so that all end with the same best_rec.json.
        """
        from optuna.trial import TrialState

        now = time.time()
        others = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                  if t.user_attrs.get("worker") not in (None, self.worker)
                  and now - float(t.user_attrs.get("heartbeat") or 0.0) < STALE_AFTER_S]
        if others and not self._waiting_noted:
            self._waiting_noted = True
            self._event(f"waiting for {len(others)} trial(s) of other workers: "
                        + ", ".join(f"#{t.number}" for t in others))
        return bool(others)

    def _start_trial(self, trial: Any) -> None:
        is_baseline = bool(trial.user_attrs.get("baseline"))
        try:
            with warnings.catch_warnings():
                # the baseline's defaults may lie outside a narrowed --param-range: Optuna warns, we know
                warnings.filterwarnings("ignore", message="Fixed parameter")
                values = algos.suggest(trial, self.space, self._context)
        except SearchSpaceError as exc:
            self._fail(LiveTrial(trial, {}, {}, is_baseline), {"category": "search_space", "detail": str(exc),
                                                                 "suggestion": "Widen the ranges of the related "
                                                                               "parameters."}, remove=False)
            return
        if is_baseline:
            values = {spec.name: self._context.get(spec.name, spec.default) for spec in self.space}
            overrides = dict(self.base)
        else:
            overrides = {**self.base, **values}
        live = LiveTrial(trial, values, overrides, is_baseline)
        trial.set_user_attr("values", values)
        self.live.append(live)
        self._event(f"trial {trial.number} started" + (" (baseline)" if is_baseline else "")
                    + f": {_short(values)}")
        self._launch_train(live)

    def _launch_train(self, live: LiveTrial, resume_from: str | None = None, parent: str | None = None) -> None:
        from skillbank.runtime.sdk import jobs

        end = self.options.plan.next_end(live.epochs_done)
        overrides = {**live.overrides, NUM_EPOCHS_KEY: end}
        if resume_from:
            overrides[RESUME_KEY] = resume_from
        try:
            job_id = jobs.create_job(self.skill, "train", overrides, parent_job_id=parent,
                                     platform=self.options.platform, results_root=self.options.results_root,
                                     env=self.secret_env, platform_options=self.options.platform_options,
                                     **self._job_labels(live, "train"))
        except Exception as exc:  # noqa: BLE001 - validation, spec-param or launch errors fail this trial only
            self._fail(live, _launch_failure(exc))
            return
        live.stage, live.job_id, live.train_job = "train", job_id, job_id
        live.jobs.append({"job_id": job_id, "action": "train", "from_epoch": live.epochs_done, "to_epoch": end,
                          "resume_from": resume_from})
        self._save_attrs(live)

    def _launch_evaluate(self, live: LiveTrial) -> None:
        from skillbank.runtime.sdk import jobs

        overrides = self._evaluate_overrides(live)
        try:
            job_id = jobs.create_job(self.skill, "evaluate", overrides, parent_job_id=live.train_job,
                                     platform=self.options.platform, results_root=self.options.results_root,
                                     env=self.secret_env, platform_options=self.options.platform_options,
                                     **self._job_labels(live, "evaluate"))
        except Exception as exc:  # noqa: BLE001
            self._fail(live, _launch_failure(exc))
            return
        live.stage, live.job_id, live.eval_job = "evaluate", job_id, job_id
        live.jobs.append({"job_id": job_id, "action": "evaluate", "checkpoint": live.checkpoint})
        self._save_attrs(live)
        self._event(f"trial {live.number}: evaluating {Path(live.checkpoint or '').name}")

    def _job_labels(self, live: LiveTrial, action: str) -> dict[str, Any]:
        """A trial job's labels: its study and trial number, the rung of a train segment, the user's name/tags.

        Rungs count a trial's train jobs from 1 (multi-fidelity algorithms only): rung 2 continues rung 1.
        """
        rung = None
        if action == "train" and self.options.plan.multi_fidelity:
            rung = 1 + sum(1 for job in live.jobs if job["action"] == "train")
        return {"automl": automl_info(self.workspace, self.study_name, live.number, rung),
                "name": self.options.job_name, "tags": self.options.job_tags}

    def _evaluate_overrides(self, live: LiveTrial) -> dict[str, Any]:
        """The trial's spec (model, dataset ...) plus the test set and the exact checkpoint."""
        allowed = leaf_schemas(self.skill.schema("evaluate"))
        skip = {RESUME_KEY, "results_dir", "train.results_dir"}
        out = {k: v for k, v in live.overrides.items() if k in allowed and k not in skip}
        test_set = self.options.test_dataset or live.overrides.get(TEST_SET_KEY) or self._context.get(VAL_SET_KEY)
        out[TEST_SET_KEY] = test_set
        out["evaluate.checkpoint"] = live.checkpoint
        return out

    # -- following a trial ------------------------------------------------------------------------
    def _step(self, live: LiveTrial) -> None:
        from skillbank.runtime.sdk import jobs
        from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR

        try:
            record = jobs.refresh_job(live.job_id)
        except jobs.JobNotFoundError:
            self._fail(live, {"category": "lost", "detail": f"job {live.job_id} is not in the job store",
                              "suggestion": "The job store was reset while the run went on; rerun."})
            return
        if live.stage == "train" and self._report_epochs(live, record):
            return  # pruned
        status = record["status"]
        if status == ERROR:
            self._fail(live, jobs.get_failure_analysis(live.job_id), job=record)
        elif status == CANCELED:
            self._fail(live, {"category": "canceled", "detail": f"job {live.job_id} was canceled",
                              "suggestion": "Someone canceled the job; rerun to queue the trial again."},
                       job=record)
        elif status == COMPLETE:
            if live.stage == "train":
                self._train_finished(live, record)
            else:
                self._evaluate_finished(live, record)

    def _report_epochs(self, live: LiveTrial, record: dict[str, Any]) -> bool:
        """Report new epochs as intermediate values; True when the trial was pruned (its job canceled)."""
        from skillbank.runtime.sdk import jobs

        key = "val_loss" if self.options.direction == "minimize" else "val_acc"
        epochs, last_kpi = epoch_kpis(read_events(Path(record["results_dir"]) / "train" / "status.json"))
        if last_kpi:
            live.last_kpi = last_kpi
        for step, kpi in epochs:
            live.last_epoch_seen = max(live.last_epoch_seen, step)
            value = kpi.get(key)
            if step in live.reported or not _finite(value):
                continue
            live.trial.report(float(value), step)
            live.reported.add(step)
            # The baseline asks too (the pruner records its rung values for the others to compete
            # with) but is never pruned: it is the reference every trial is compared to.
            # Nothing is saved by pruning at the last epoch: a fully trained trial is scored, not pruned.
            if (self.options.plan.multi_fidelity and step < self.options.plan.max_epochs
                    and live.trial.should_prune() and not live.baseline):
                with contextlib.suppress(Exception):
                    jobs.cancel_job(live.job_id)
                live.trial.set_user_attr("epochs_trained", step)
                self._save_attrs(live, stage="pruned")
                self.study.tell(live.trial, state=_state("PRUNED"))
                self.live.remove(live)
                self._record_outcome("PRUNED", None)
                self._event(f"trial {live.number} pruned at epoch {step} ({key}={value:.4g})")
                return True
        return False

    def _train_finished(self, live: LiveTrial, record: dict[str, Any]) -> None:
        from skillbank.runtime.sdk.checkpoints import CheckpointError, select_checkpoint
        from skillbank.runtime.sdk.spec_params import parent_results_location

        live.epochs_done = live.jobs[-1]["to_epoch"]
        promote = self.options.plan.next_end(live.epochs_done) is not None
        try:
            # A promoted trial resumes from the newest checkpoint (the epochs it trained); a finished one is
            # scored on the best checkpoint its status.json reported (train.checkpointer), else the newest.
            checkpoint = select_checkpoint(parent_results_location(record), action="train",
                                           best=None if promote else record.get("best_checkpoint") or None).location
        except CheckpointError as exc:
            self._fail(live, {"category": "no_checkpoint", "detail": str(exc),
                              "suggestion": "The train job ended without a checkpoint; check its log."}, job=record)
            return
        live.checkpoint = checkpoint
        if promote:
            self._event(f"trial {live.number} promoted at epoch {live.epochs_done}; resuming from "
                        f"{Path(checkpoint).name}")
            self._launch_train(live, resume_from=checkpoint, parent=record["id"])
            return
        if self.options.metric in KPI_METRICS:
            value = live.last_kpi.get(self.options.metric)
            if not _finite(value):
                self._fail(live, {"category": "no_metric", "detail": f"the train job reported no finite "
                                  f"{self.options.metric} (KPIs: {sorted(live.last_kpi)})",
                                  "suggestion": "Check that validation runs (train.validation_interval)."},
                           job=record)
                return
            self._complete(live, float(value))
        else:
            self._launch_evaluate(live)

    def _evaluate_finished(self, live: LiveTrial, record: dict[str, Any]) -> None:
        path = Path(record["results_dir"]) / "evaluate" / "results.json"
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            self._fail(live, {"category": "no_metric", "detail": f"cannot read {path}: {exc}",
                              "suggestion": "The evaluate job wrote no results.json; check its log."}, job=record)
            return
        value = results.get(self.options.metric)
        if not _finite(value):
            numeric = sorted(k for k, v in results.items() if _finite(v))
            self._fail(live, {"category": "no_metric", "detail": f"results.json has no finite "
                              f"{self.options.metric!r}; it has: {', '.join(numeric)}",
                              "suggestion": f"Use --metric with one of: {', '.join(numeric + list(KPI_METRICS))}"},
                       job=record)
            return
        self._complete(live, float(value))

    # -- outcomes ---------------------------------------------------------------------------------
    def _complete(self, live: LiveTrial, value: float) -> None:
        live.trial.set_user_attr("epochs_trained", max(live.epochs_done, live.last_epoch_seen))
        self._save_attrs(live, stage="done")
        self.study.tell(live.trial, value)
        self.live.remove(live)
        self._record_outcome("COMPLETE", None)
        tag = " (baseline)" if live.baseline else ""
        self._event(f"trial {live.number}{tag} complete: {self.options.metric}={value:.4g}")

    def _fail(self, live: LiveTrial, failure: dict[str, Any], job: dict[str, Any] | None = None,
              remove: bool = True) -> None:
        failure = {k: failure.get(k) for k in ("category", "exit_code", "signal", "detail", "suggestion",
                                                 "log_tail") if failure.get(k) is not None}
        if "log_tail" in failure:
            failure["log_tail"] = str(failure["log_tail"])[-LOG_TAIL_CHARS:]
        failure.setdefault("category", "unknown")
        if job is not None:
            failure["job_id"] = job["id"]
        live.trial.set_user_attr("failure", failure)
        live.trial.set_user_attr("epochs_trained", live.last_epoch_seen)
        self._save_attrs(live, stage="failed")
        self.study.tell(live.trial, state=_state("FAIL"))
        if remove and live in self.live:
            self.live.remove(live)
        self._record_outcome("FAIL", failure)
        self._event(f"trial {live.number} failed ({failure['category']}): "
                    f"{failure.get('suggestion') or failure.get('detail') or ''}")

    def _record_outcome(self, state: str, failure: dict[str, Any] | None) -> None:
        """Stop when the last ``max_failures_in_a_row`` finished trials all failed with one category."""
        self._outcomes.append((state, (failure or {}).get("category")))
        n = self.options.max_failures_in_a_row
        recent = self._outcomes[-n:]
        if len(recent) == n and all(s == "FAIL" for s, _ in recent) and len({c for _, c in recent}) == 1:
            self.stop_reason = dict(failure or {})

    def _stop_all(self) -> None:
        """Cancel the jobs of trials still running and record them as failed (the run is stopping)."""
        from skillbank.runtime.sdk import jobs

        for live in list(self.live):
            with contextlib.suppress(Exception):
                jobs.cancel_job(live.job_id)
            live.trial.set_user_attr("failure", {"category": "stopped", "detail": "the run stopped early",
                                                 "suggestion": (self.stop_reason or {}).get("suggestion")})
            live.trial.set_user_attr("epochs_trained", live.last_epoch_seen)
            self._save_attrs(live, stage="failed")
            self.study.tell(live.trial, state=_state("FAIL"))
            self.live.remove(live)

    def _save_attrs(self, live: LiveTrial, stage: str | None = None) -> None:
        """Persist what a resumed run needs to follow this trial (jobs, stage, checkpoint).

        One key at a time: ``job_id`` and ``stage`` go last, so a worker killed halfway never leaves a
        job id whose ``jobs`` entry is missing (a resumed run follows only a trial whose ``jobs`` names it).
        """
        attrs = {
            "jobs": live.jobs, "train_job": live.train_job, "eval_job": live.eval_job, "checkpoint": live.checkpoint,
            "epochs_done": live.epochs_done, "baseline": live.baseline, "values": live.values, "kpi": live.last_kpi,
            "job_id": live.job_id, "stage": stage or live.stage,
        }
        for key, value in attrs.items():
            live.trial.set_user_attr(key, value)

    # -- resume -----------------------------------------------------------------------------------
    def _resume_running(self) -> None:
        """Follow this worker's RUNNING trials again, or re-queue those whose job is gone."""
        import optuna
        from optuna.trial import TrialState

        from skillbank.runtime.sdk import jobs

        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = frozen.user_attrs
            if attrs.get("worker") not in (None, self.worker):
                continue
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            job_id = attrs.get("job_id") or ""
            status = None
            if job_id:
                with contextlib.suppress(Exception):
                    status = jobs.get_job_status(job_id)
            recorded = any(j.get("job_id") == job_id for j in attrs.get("jobs") or [])
            if status in ("Pending", "Running", "Complete", "Error") and attrs.get("stage") in ("train", "evaluate") \
                    and recorded:
                values = attrs.get("values", {})
                baseline = bool(attrs.get("baseline"))
                live = LiveTrial(trial, values, dict(self.base) if baseline else {**self.base, **values}, baseline,
                                 stage=attrs["stage"], job_id=job_id, jobs=list(attrs.get("jobs", [])),
                                 epochs_done=int(attrs.get("epochs_done") or 0),
                                 reported=set(frozen.intermediate_values), train_job=attrs.get("train_job"),
                                 checkpoint=attrs.get("checkpoint"), eval_job=attrs.get("eval_job"))
                live.last_epoch_seen = max(frozen.intermediate_values, default=0)
                self.live.append(live)
                self._stamp(trial)
                self._event(f"trial {frozen.number}: following job {job_id} again ({status})")
                continue
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("failure", {"category": "interrupted",
                                            "detail": f"the runner stopped; job {job_id or '-'} is {status}"})
            self.study.tell(trial, state=TrialState.FAIL)
            requeue = {"requeued_from": frozen.number}
            if attrs.get("baseline"):
                requeue["baseline"] = True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.study.enqueue_trial(frozen.params, user_attrs=requeue, skip_if_exists=False)
            self._event(f"trial {frozen.number} re-queued (its job is {status or 'gone'})")

    # -- files and progress -------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        return [ws.trial_row(t) for t in self.study.get_trials(deepcopy=False)]

    def _write_files(self, state: str, plots: bool = False) -> dict[str, Any]:
        rows = self.rows()
        o = self.options
        best = ws.best_row(rows, o.direction)
        base_row = ws.baseline_row(rows)
        ws.write_history(self.workspace, rows)
        if best is not None:
            specs = dict(self.base) if best["baseline"] else {**self.base, **best["values"]}
            ws.write_json(self.workspace / ws.BEST_REC, ws.best_recommendation(
                best, specs=specs, metric=o.metric, direction=o.direction, baseline=base_row,
                skill=self.skill.name, algorithm=o.algorithm))
        plot_files: list[str] = []
        if plots and rows:
            from skillbank.runtime.automl.plots import write_plots

            plot_files = [str(p) for p in write_plots(self.workspace, rows, [s.to_dict() for s in self.space],
                                                      metric=o.metric, direction=o.direction)]
        summary = self._summary(state, rows, best, base_row, plot_files)
        ws.write_json(self.workspace / ws.STATE_FILE, {**summary, "config": self.config(), "pid": os.getpid(),
                                                       "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._progress(summary)
        return summary

    def _summary(self, state: str, rows: list[dict[str, Any]], best: dict[str, Any] | None,
                 base_row: dict[str, Any] | None, plot_files: list[str]) -> dict[str, Any]:
        o = self.options
        files = ws.paths(self.workspace)
        files["storage"] = ws.redact_url(self.storage)
        if plot_files:
            files["plot_files"] = plot_files
        finished = sum(1 for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL"))
        return {
            "state": state,
            "skill": self.skill.name,
            "algorithm": o.algorithm,
            "metric": o.metric,
            "direction": o.direction,
            "max_trials": o.max_trials,
            "finished": finished,
            "counts": ws.counts(rows),
            "running": [{"trial": live.number, "stage": live.stage, "job_id": live.job_id,
                         "epoch": live.last_epoch_seen, "max_epochs": o.plan.max_epochs} for live in self.live],
            "epochs_trained": sum(int(r["epochs_trained"] or 0) for r in rows),
            "budget": o.plan.to_dict(),
            "search_space": [s.describe() for s in self.space],
            "baseline": _brief(base_row),
            "best": _brief(best),
            "improvement": (best["value"] - base_row["value"]) if best and base_row and base_row["value"] is not None
            else None,
            "stop_reason": self.stop_reason,
            "events": self._events[-20:],
            "files": files,
        }

    def _progress(self, summary: dict[str, Any]) -> None:
        line = format_progress(summary)
        if line != self._last_line:
            self._last_line = line
            if self.on_progress is not None:
                self.on_progress({**summary, "line": line})

    def _event(self, text: str) -> None:
        self._events.append(f"{time.strftime('%H:%M:%S')} {text}")

    # -- helpers ------------------------------------------------------------------------------------
    def _spec_values(self, base: dict[str, Any]) -> dict[str, Any]:
        """Dotted key -> value of the base spec (template + overrides), for relations and the baseline."""
        spec = build_spec(self.skill.template("train"), base)
        return {key: get_dotted(spec, key) for key in leaf_schemas(self.skill.schema("train"))}


# ---------------------------------------------------------------------------------------------- helpers
def format_progress(summary: dict[str, Any]) -> str:
    """``trial 3/6 | best accuracy 87.5 (#2) | baseline 50 | running #3 train e2/3, #4 evaluate``."""
    finished, total = summary["finished"], summary["max_trials"]
    parts = [f"trial {min(finished + len(summary['running']), total)}/{total} ({finished} done)"]
    best = summary.get("best")
    parts.append(f"best {summary['metric']} {best['value']:.4g} (#{best['trial']})" if best else "best -")
    base = summary.get("baseline")
    if base and base.get("value") is not None:
        parts.append(f"baseline {base['value']:.4g}")
    counts = summary["counts"]
    if counts.get("PRUNED") or counts.get("FAIL"):
        parts.append(f"pruned {counts.get('PRUNED', 0)} failed {counts.get('FAIL', 0)}")
    running = [f"#{r['trial']} {r['stage']}" + (f" e{r['epoch']}/{r['max_epochs']}" if r["stage"] == "train" else "")
               for r in summary["running"]]
    parts.append("running " + (", ".join(running) if running else "-"))
    if summary["state"] != "running":
        parts.append(summary["state"])
    return " | ".join(parts)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of a status.json (a line still being written is skipped)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def epoch_kpis(events: list[dict[str, Any]]) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any]]:
    """Per finished epoch of a train status.json, ``(epochs completed, KPIs of that epoch)``; and the last KPIs.

    TAO's format (ours too): "Eval metrics generated." carries ``kpi`` {val_loss, val_acc} of the epoch
    whose "Training loop in progress" line (``epoch``, 0-based) follows; "Train metrics generated."
    carries {train_loss, train_acc}; every line repeats the last kpi. An epoch without validation has no
    val KPIs. The last KPIs merge the newest value of every key (val and train).
    """
    epochs: list[tuple[int, dict[str, Any]]] = []
    last: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    for event in events:
        kpi = event.get("kpi") if isinstance(event.get("kpi"), dict) else {}
        epoch = event.get("epoch")
        if event.get("message") == "Eval metrics generated." and kpi:
            pending = {k: v for k, v in kpi.items() if k.startswith("val_")}
            last.update(pending)
            continue
        if isinstance(epoch, int) and not isinstance(epoch, bool) and event.get("status") in ("RUNNING", "SUCCESS"):
            own = pending or {k: v for k, v in kpi.items() if k.startswith("val_")}
            epochs.append((epoch + 1, {**{k: v for k, v in kpi.items() if not k.startswith("val_")}, **own}))
            pending = {}
            last.update(own)
            continue
        if event.get("message") == "Train metrics generated." and epochs:
            epochs[-1] = (epochs[-1][0], {**epochs[-1][1], **kpi})
        last.update({k: v for k, v in kpi.items() if not k.startswith("val_")})
    return epochs, last


def _brief(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: row.get(k) for k in ("trial", "state", "value", "values", "train_job", "eval_job", "checkpoint",
                                    "epochs_trained")}


def _take_secrets(skill: Skill, base: dict[str, Any]) -> dict[str, str]:
    """Remove the encryption key (``key`` spec_params fields) from ``base``; return it as job environment."""
    from skillbank.runtime.sdk.secrets import ENCRYPTION_KEY_ENV

    env: dict[str, str] = {}
    for field_name, function in skill.spec_params("train").items():
        if function == "key":
            value = base.pop(field_name, None)
            if value not in (None, ""):
                env[ENCRYPTION_KEY_ENV] = str(value)
    return env


def _launch_failure(exc: Exception) -> dict[str, Any]:
    name = type(exc).__name__
    category = "invalid_spec" if name in ("SpecValidationError", "SpecParamError") else "launch_failed"
    return {"category": category, "detail": f"{name}: {exc}"[:LOG_TAIL_CHARS],
            "suggestion": "Fix the cause in detail; check the overrides with `skillbank validate`."}


def _state(name: str):
    from optuna.trial import TrialState

    return TrialState[name]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(values: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                     for k, v in values.items())


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config that must match to resume (the budget of trials may grow)."""
    return json.loads(json.dumps({k: config.get(k) for k in ("skill", "algorithm", "metric", "direction",
                                                             "budget", "search_space", "overrides")},
                                 default=str, sort_keys=True))


def print_progress_line(stream=None) -> ProgressCallback:
    """A progress callback: rewrites one line on a TTY, prints one line per change otherwise."""
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()

    def show(event: dict[str, Any]) -> None:
        line = event["line"]
        if tty:
            stream.write("\r\033[K" + line)
            if event["state"] != "running":
                stream.write("\n")
        else:
            stream.write(line + "\n")
        stream.flush()

    return show


def _main(argv: list[str]) -> int:
    """``python -m skillbank.runtime.automl.engine REQUEST.json``: the detached run of ``wait=False``."""
    request = json.loads(Path(argv[0]).read_text())
    try:
        run_automl(request["skill"], request["overrides"], on_progress=print_progress_line(sys.stdout),
                   **request["options"])
    except AutoMLStopped as exc:
        print(f"error: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
