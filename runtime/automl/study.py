"""The study loop: ask Optuna for trials within the budget, follow them (trials.py), tell Optuna how they ended.

The baseline (the run's own spec, no value changed) is trial 0 of the study, trains the full budget and
is never pruned, so the best trial is at least as good as the baseline by construction.
``max_failures_in_a_row`` failed trials in a row with one failure category stop the run with that cause.

Rung decisions are taken in trial order (:func:`held_rung`): a trial whose segment ends at a rung before an
earlier trial of its ladder got there waits for that trial's value, so a promotion does not depend on
which of two concurrent jobs finished its epoch first.

Waiting: between looks the loop sleeps until one of its jobs ends (``job_exits.wait_any``: a local job
wakes it the moment its process exits), a gated job reaches a rung (it writes to the run's wake pipe), or
``poll_interval`` passes (progress lines, remote platforms). On the local platform trial jobs start from a
warm process that has the model's imports done (``Platform.keep_warm``), and a multi-fidelity trial trains
through its rungs in one job that waits at each for the engine's word (runtime/rung_gates.py), so a
promotion costs no job start and no checkpoint.

Resume: the study lives in the workspace (``study.db``) or ``storage``. A rerun with the same workspace
keeps every finished trial; a trial left RUNNING by this worker is followed again when its job still
exists (running or finished meanwhile), otherwise it is marked INTERRUPTED and queued again with the
same values.

Several workers (each with its own workspace) share one study through ``storage`` (PostgreSQL, see
storage.py) and ``study_name``: creating the study and "count the budget, ask for a trial" happen under
the study's lock, so together they run exactly ``max_trials`` trials; a worker with nothing left to start
waits for the other workers' running trials (as long as their heartbeat is recent) before it writes its
final files, so every worker ends with the same best_rec.json.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from skillbank.runtime.automl import algorithms as algos
from skillbank.runtime.automl import trials, workers
from skillbank.runtime.automl import workspace as ws
from skillbank.runtime.automl.options import AutoMLError, AutoMLOptions, default_workspace
from skillbank.runtime.automl.progress import ProgressCallback, format_progress, run_summary, short_values
from skillbank.runtime.automl.search_space import ParamSpec, SearchSpaceError, build_search_space, default_values
from skillbank.runtime.automl.storage import open_storage, study_lock, workspace_lock
from skillbank.runtime.automl.trials import LiveTrial, Outcome, TrialSetup
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.rung_gates import WAKE_FIFO, WakePipe
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import build_spec, get_dotted
from skillbank.runtime.validation import leaf_schemas, normalize_overrides, resolve_spec

STUDY_NAME_DEFAULT = "automl"
WARM_LOG = "warm_start.log"  # what the warm job starter says (it has no job of its own to log to)


class AutoMLStopped(SkillbankError, RuntimeError):
    """The run stopped early (repeated failures with one cause); ``summary`` is the run's summary."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


class AutoMLRun:
    """One run of the loop over a study (build with :meth:`prepare`, then :meth:`run`)."""

    def __init__(self, setup: TrialSetup, base: dict[str, Any], space: list[ParamSpec], storage: str,
                 on_progress: ProgressCallback | None, backend: Any = None):
        self.setup = setup
        self.skill = setup.skill
        self.options = setup.options
        self.workspace = setup.workspace
        self.base = base
        self.space = space
        self.storage = storage
        self.on_progress = on_progress
        self.worker = workers.worker_id(self.workspace)
        self.live: list[LiveTrial] = []
        self.study: Any = None
        self.stop_reason: dict[str, Any] | None = None
        self._outcomes: list[tuple[str, str | None]] = []  # (state, failure category) of each finished trial
        self._last_line = ""
        self._last_written: Any = None
        self._events: list[str] = []
        self._backend = backend  # the opened optuna RDBStorage (see _storage)
        self._beats: dict[int, float] = {}  # trial number -> when this worker last stamped its heartbeat
        self._waiting_noted = False
        self._plots_prefetch: threading.Thread | None = None
        self._wake: WakePipe | None = None  # open while run() runs, for gated trials

    # -- setup ------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, skill: str | Skill, overrides: dict[str, Any] | None, options: AutoMLOptions,
                on_progress: ProgressCallback | None = None) -> AutoMLRun:
        """Check the options against the skill and the base spec; nothing runs yet.

        The run's options come out resolved: ``direction``, ``max_epochs``, ``workspace`` and ``study_name``
        filled in, ``max_trials`` capped at a grid's size.
        """
        from skillbank.runtime.sdk.platforms import get_platform
        from skillbank.runtime.sdk.secrets import take_encryption_key

        skill = skill if isinstance(skill, Skill) else Skill.load(skill)
        if "train" not in skill.actions:
            raise AutoMLError(f"{skill.name}: AutoML tunes the train action, which this skill does not have")
        base = normalize_overrides(skill, "train", dict(overrides or {}))
        # The key reaches jobs by their environment: never the study, workspace files or best_rec.json.
        base, secret_env = take_encryption_key(base, skill.spec_params("train"))
        if trials.RESUME_KEY in base and not base[trials.RESUME_KEY]:
            del base[trials.RESUME_KEY]
        if trials.RESUME_KEY in base:
            raise AutoMLError(f"{trials.RESUME_KEY} is set by the engine for promoted trials; "
                              "remove it from the overrides")
        resolve_spec(skill, "train", base)  # every problem of the base spec at once, before any job
        template_epochs = get_dotted(skill.template("train"), trials.NUM_EPOCHS_KEY)
        options = options.replace(max_epochs=options.max_epochs if options.max_epochs is not None
                                  else base.get(trials.NUM_EPOCHS_KEY, template_epochs))
        base[trials.NUM_EPOCHS_KEY] = options.max_epochs
        try:
            plan = algos.budget_plan(options.algorithm, options.max_epochs, options.reduction_factor,
                                     options.min_epochs)
        except algos.AlgorithmError as exc:
            raise AutoMLError(str(exc)) from exc
        space = build_search_space(skill.schema("train"), hyperparameters=list(options.hyperparameters),
                                   param_ranges=dict(options.param_ranges),
                                   override_disabled=options.override_disabled, base_values=base)
        if options.needs_evaluate and "evaluate" not in skill.actions:
            raise AutoMLError(f"metric {options.metric!r} needs an evaluate action; allowed here: "
                              f"{', '.join(trials.KPI_METRICS)}")
        max_trials = options.max_trials
        if options.algorithm == "grid":  # a grid is searched once: never more trials than points (+ baseline)
            max_trials = min(max_trials, algos.grid_size(space, max_trials) + (1 if options.baseline else 0))
        # A storage given by URL is opened now: a missing driver or an unreachable database stops here,
        # before the workspace is made.
        backend = open_storage(options.storage) if options.storage else None
        workspace = Path(options.workspace or default_workspace(skill.name, options.algorithm, base,
                                                                 options.results_root))
        workspace = workspace.expanduser().absolute()
        workspace.mkdir(parents=True, exist_ok=True)
        options = options.replace(direction=options.resolved_direction, max_trials=max_trials,
                                  workspace=str(workspace), study_name=options.study_name or STUDY_NAME_DEFAULT)
        context = _spec_values(skill, base)
        gated = plan.multi_fidelity and get_platform(options.platform, **options.platform_options).rung_gates
        setup = TrialSetup(skill, options, plan, context, workspace, secret_env,
                           wake=workspace / WAKE_FIFO if gated else None)
        return cls(setup, base, space, options.storage or ws.default_storage(workspace), on_progress, backend)

    def preview(self) -> dict[str, Any]:
        """What a run would do, with nothing started (``dry_run``)."""
        from skillbank.runtime.sdk import jobs

        o = self.options
        submission = jobs.preview_job(self.skill, "train", self.base, platform=o.platform,
                                      results_root=o.results_root, platform_options=o.platform_options)
        return {"state": "dry_run", "skill": self.skill.name, "algorithm": o.algorithm, "metric": o.metric,
                "direction": o.direction, "max_trials": o.max_trials, "budget": self.setup.plan.to_dict(),
                "search_space": [s.describe() for s in self.space], "workspace": str(self.workspace),
                "storage": ws.redact_url(self.storage), "baseline_submission": submission}

    def config(self) -> dict[str, Any]:
        """What defines the study: a resumed run must agree on it."""
        o = self.options
        return {"skill": self.skill.name, "algorithm": o.algorithm, "metric": o.metric, "direction": o.direction,
                "budget": self.setup.plan.to_dict(), "search_space": [s.to_dict() for s in self.space],
                "overrides": self.base}

    # -- the study and its lock ---------------------------------------------------------------------
    def _storage(self) -> Any:
        """The study's RDB storage, opened once."""
        if self._backend is None:
            self._backend = open_storage(self.storage)
        return self._backend

    def _lock(self):
        """The study's lock across workers (see storage.study_lock)."""
        return study_lock(self._storage(), self.options.study_name)

    def _open_study(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        o = self.options
        with self._lock():  # one worker creates the study (and queues the baseline); the others load it
            existing = None
            with contextlib.suppress(KeyError):
                existing = optuna.load_study(study_name=o.study_name, storage=self._storage())
            config = self.config()
            if existing is not None:
                stored = existing.user_attrs.get("config")
                if stored is not None and _comparable(stored) != _comparable(config):
                    differs = [k for k in config if _comparable(stored).get(k) != _comparable(config).get(k)]
                    raise AutoMLError(f"workspace {self.workspace} holds a study with a different "
                                      f"{', '.join(differs)}; resume with the same settings or use a new --workspace")
            done = len(existing.trials) if existing is not None else 0
            sampler = algos.make_sampler(o.algorithm, self.space, seed=o.seed + done, max_trials=o.max_trials,
                                         max_concurrent=o.max_concurrent)
            self.study = optuna.create_study(study_name=o.study_name, storage=self._storage(), sampler=sampler,
                                             pruner=algos.make_pruner(o.algorithm, self.setup.plan),
                                             direction=o.direction, load_if_exists=True)
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

    # -- the loop -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run (or resume) the study to its end; returns the summary (raises AutoMLStopped on a stop)."""
        wake = WakePipe(self.setup.wake) if self.setup.wake else contextlib.nullcontext()
        with workspace_lock(self.workspace), self._warm_jobs(), wake as self._wake:
            return self._run()

    def _warm_jobs(self):
        """Trial jobs start from a warm process where the platform offers one (local)."""
        from skillbank.runtime.sdk.platforms import get_platform

        actions = ["train", "evaluate"] if self.options.needs_evaluate else ["train"]
        programs = {str(self.skill.action_info(a).get("command") or "").split(" ", 1)[0] for a in actions}
        platform = get_platform(self.options.platform, **self.options.platform_options)
        return platform.keep_warm(sorted(p for p in programs if p), log=self.workspace / WARM_LOG)

    def _run(self) -> dict[str, Any]:
        self._open_study()
        with self._lock():
            self._resume_running()
        try:
            while True:
                self._launch_more()
                if not self.live and not self._others_running():
                    break
                # in trial order: an earlier trial's rung value is in before a later trial is judged there
                ended = [live for live in sorted(self.live, key=lambda t: t.number) if self._follow(live)]
                if self.stop_reason:
                    self._stop_all()
                    break
                if ended:
                    continue  # fill the free slots first; the files follow once the jobs run
                self._heartbeat()
                self._write_files(state="running")
                self._wait()  # until one of the jobs ends (or the poll interval passes)
        except KeyboardInterrupt:
            # Trials stay RUNNING with their jobs recorded: the next run follows or re-queues them.
            self._write_files(state="interrupted")
            raise
        summary = self._write_files(state="stopped" if self.stop_reason else "finished", plots=True)
        if self.stop_reason:
            raise AutoMLStopped(
                f"AutoML stopped after {self.options.max_failures_in_a_row} failed trials in a row with the same "
                f"cause ({self.stop_reason['category']}): {self.stop_reason.get('suggestion') or ''}".strip(),
                summary,
            )
        return summary

    def _wait(self) -> None:
        """Sleep until one of this worker's jobs ends, or the poll interval (at most the heartbeat's) passes."""
        from skillbank.runtime.sdk.job_exits import wait_any

        timeout = min(self.options.poll_interval, workers.HEARTBEAT_S)  # other workers must see this one alive
        if self._plots_prefetch is None:  # the plots at the end need matplotlib: import it while jobs train
            self._plots_prefetch = threading.Thread(target=_import_quietly, args=("matplotlib.figure",), daemon=True)
            self._plots_prefetch.start()
        # a held trial's segment job has ended: waiting on it would return at once; its turn comes with another's
        # exit (a gated job waits at its rung, alive: its exit still counts)
        waiting = [live.job_id for live in self.live
                   if live.at_gates or not trials.is_held(live, held_rung(live, self.live))]
        wake = [self._wake.fd] if self._wake is not None else []
        if waiting or wake:
            wait_any(waiting, timeout=timeout, also=wake)
            if self._wake is not None:
                self._wake.drain()  # before the looks that follow: a job reaching a rung later wakes the next wait
        else:  # only other workers' trials are running
            time.sleep(timeout)

    def _launch_more(self) -> None:
        while not self.stop_reason and len(self.live) < self.options.max_concurrent:
            # Counting the budget and asking must not interleave with another worker's: the lock makes
            # the workers of one study start exactly max_trials trials together.
            with self._lock():
                if workers.finished_count(self.study, self.worker) + len(self.live) >= self.options.max_trials:
                    return
                trial = self.study.ask()
                trial.set_user_attr("worker", self.worker)
                self._stamp(trial)
            self._start_trial(trial)

    def _start_trial(self, trial: Any) -> None:
        is_baseline = bool(trial.user_attrs.get("baseline"))
        context = self.setup.context
        try:
            with warnings.catch_warnings():
                # the baseline's defaults may lie outside a narrowed --param-range: Optuna warns, we know
                warnings.filterwarnings("ignore", message="Fixed parameter")
                values = algos.suggest(trial, self.space, context)
        except SearchSpaceError as exc:
            self._end(LiveTrial(trial, {}, {}, is_baseline, self.setup.plan), trials.failed({
                "category": "search_space", "detail": str(exc),
                "suggestion": "Widen the ranges of the related parameters."}))
            return
        if is_baseline:
            values = {spec.name: context.get(spec.name, spec.default) for spec in self.space}
            overrides = dict(self.base)
        else:
            overrides = {**self.base, **values}
        live = LiveTrial(trial, values, overrides, is_baseline, self._plan_of(trial))
        trial.set_user_attr("values", values)
        self.live.append(live)
        self._event(f"trial {trial.number} started" + (" (baseline)" if is_baseline else "")
                    + f": {short_values(values)}")
        outcome = trials.launch_train(self.setup, live)
        if outcome is not None:
            self._end(live, outcome)

    def _plan_of(self, trial: Any) -> algos.BudgetPlan:
        """The trial's segments: Hyperband's and BOHB's trials end a train job only at their bracket's rungs."""
        return algos.trial_plan(self.setup.plan, self.study.pruner, self.study, trial)

    def _follow(self, live: LiveTrial) -> bool:
        """Look at one trial's job; True when the trial ended (its slot is free)."""
        before, epochs_before = (live.job_id, live.stage), live.epochs_done
        outcome = trials.step(self.setup, live, held_rung(live, self.live))
        if outcome is not None:
            self._end(live, outcome)
            return True
        if (live.job_id, live.stage) == before and live.epochs_done != epochs_before:
            self._event(f"trial {live.number} promoted at epoch {live.epochs_done}; its job trains on")
        elif (live.job_id, live.stage) != before:
            checkpoint = Path(live.checkpoint or "").name
            self._event(f"trial {live.number} promoted at epoch {live.epochs_done}; resuming from {checkpoint}"
                        if live.stage == "train" else f"trial {live.number}: evaluating {checkpoint}")
        return False

    def _end(self, live: LiveTrial, outcome: Outcome) -> None:
        """Tell Optuna how the trial ended, record it on the trial and in the run's count."""
        trial = live.trial
        if outcome.state == "COMPLETE":
            trial.set_user_attr("epochs_trained", max(live.epochs_done, live.last_epoch_seen))
            trials.save_attrs(live, stage="done")
            self.study.tell(trial, outcome.value)
            tag = " (baseline)" if live.baseline else ""
            self._event(f"trial {live.number}{tag} complete: {self.options.metric}={outcome.value:.4g}")
        elif outcome.state == "PRUNED":
            trial.set_user_attr("epochs_trained", live.last_epoch_seen)
            trials.save_attrs(live, stage="pruned")
            self.study.tell(trial, state=_state("PRUNED"))
            self._event(f"trial {live.number} pruned {outcome.note}")
        else:
            failure = outcome.failure or {"category": "unknown"}
            trial.set_user_attr("failure", failure)
            trial.set_user_attr("epochs_trained", live.last_epoch_seen)
            trials.save_attrs(live, stage="failed")
            self.study.tell(trial, state=_state("FAIL"))
            self._event(f"trial {live.number} failed ({failure['category']}): "
                        f"{failure.get('suggestion') or failure.get('detail') or ''}")
        if live in self.live:
            self.live.remove(live)
        self._record_outcome(outcome.state, outcome.failure)

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
            trials.save_attrs(live, stage="failed")
            self.study.tell(live.trial, state=_state("FAIL"))
            self.live.remove(live)

    # -- workers (workers.py) --------------------------------------------------------------------------
    def _stamp(self, trial: Any) -> None:
        workers.stamp(trial, self._beats)

    def _heartbeat(self) -> None:
        for live in self.live:
            if time.time() - self._beats.get(live.number, 0.0) >= workers.HEARTBEAT_S:
                self._stamp(live.trial)

    def _others_running(self) -> bool:
        """Whether other workers still follow trials of this study (this one waits for them before its end)."""
        others = workers.others_running(self.study, self.worker)
        if others and not self._waiting_noted:
            self._waiting_noted = True
            self._event(f"waiting for {len(others)} trial(s) of other workers: "
                        + ", ".join(f"#{t.number}" for t in others))
        return bool(others)

    def _resume_running(self) -> None:
        """Follow this worker's RUNNING trials again, or re-queue those whose job is gone."""
        followed, events = workers.pick_up(self.study, self.worker, self.base, self._plan_of)
        for live in followed:
            self.live.append(live)
            self._stamp(live.trial)
        for text in events:
            self._event(text)

    # -- files and progress -------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        return [ws.trial_row(t) for t in self.study.get_trials(deepcopy=False)]

    def _write_files(self, state: str, plots: bool = False) -> dict[str, Any]:
        """history.json/.csv, best_rec.json and automl.json (when anything changed), plots at the end."""
        rows = self.rows()
        o = self.options
        plot_files: list[str] = []
        if plots and rows:
            from skillbank.runtime.automl.plots import write_plots

            plot_files = [str(p) for p in write_plots(self.workspace, rows, [s.to_dict() for s in self.space],
                                                      metric=o.metric, direction=o.direction)]
        running = [{"trial": live.number, "stage": live.stage, "job_id": live.job_id,
                    "epoch": live.last_epoch_seen} for live in self.live]
        summary = run_summary(state=state, skill=self.skill.name, options=o, plan=self.setup.plan, rows=rows,
                              running=running, search_space=[s.describe() for s in self.space],
                              workspace=self.workspace, storage=self.storage, stop_reason=self.stop_reason,
                              events=self._events, plot_files=plot_files)
        if (rows, summary) != self._last_written:  # a look that changed nothing rewrites nothing
            self._last_written = (rows, summary)
            ws.write_history(self.workspace, rows)
            best, base_row = ws.best_row(rows, o.direction), ws.baseline_row(rows)
            if best is not None:
                specs = dict(self.base) if best["baseline"] else {**self.base, **best["values"]}
                ws.write_json(self.workspace / ws.BEST_REC, ws.best_recommendation(
                    best, specs=specs, metric=o.metric, direction=o.direction, baseline=base_row,
                    skill=self.skill.name, algorithm=o.algorithm))
            ws.write_json(self.workspace / ws.STATE_FILE, {**summary, "config": self.config(), "pid": os.getpid(),
                                                           "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._progress(summary)
        return summary

    def _progress(self, summary: dict[str, Any]) -> None:
        line = format_progress(summary)
        if line != self._last_line:
            self._last_line = line
            if self.on_progress is not None:
                self.on_progress({**summary, "line": line})

    def _event(self, text: str) -> None:
        self._events.append(f"{time.strftime('%H:%M:%S')} {text}")


def held_rung(live: LiveTrial, running: list[LiveTrial]) -> int | None:
    """The rung that ends ``live``'s current segment while an earlier trial on the same rungs (the same
    Successive Halving ladder: a Hyperband bracket, or ASHA's one) still trains toward it; else None.

    Asynchronous Successive Halving judges a trial at a rung against the values reported there so far. The
    baseline and trial 1 start together and reach the first rung within milliseconds of each other, so
    which job wrote its epoch first decided whether trial 1 was pruned after one epoch or trained all of
    them (1 epoch or 9 in the AutoML benchmark). Judged in trial order, each trial meets the values
    of every trial started before it, as in a sequential run of the same seed; a trial that got there
    first waits for the other's lag.
    """
    rung = next((r for r in live.plan.rungs if r > live.epochs_done), None)
    if rung is None:
        return None
    lagging = any(other.number < live.number and other.stage == "train" and other.plan.rungs == live.plan.rungs
                  and other.last_epoch_seen < rung for other in running)
    return rung if lagging else None


def _spec_values(skill: Skill, base: dict[str, Any]) -> dict[str, Any]:
    """Dotted key -> value of the base spec (template + overrides), for relations and the baseline."""
    spec = build_spec(skill.template("train"), base)
    return {key: get_dotted(spec, key) for key in leaf_schemas(skill.schema("train"))}


def _import_quietly(module: str) -> None:
    """Import ``module`` ahead of need (a background thread); a failure shows where it is used instead."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def _state(name: str):
    from optuna.trial import TrialState

    return TrialState[name]


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config that must match to resume (the budget of trials may grow)."""
    return json.loads(json.dumps({k: config.get(k) for k in ("skill", "algorithm", "metric", "direction",
                                                             "budget", "search_space", "overrides")},
                                 default=str, sort_keys=True))
