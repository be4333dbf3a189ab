"""Several workers on one study: who follows which trial, the shared budget, and picking up after a stop.

A worker is one ``run_automl`` process with its own workspace (``worker_id``: host and workspace). It
marks each trial it asks for with its id and a heartbeat, renewed every ``HEARTBEAT_S`` while the
trial runs. The workers of one study share its trial budget: another worker's running trial counts
as finished (:func:`finished_count`). A worker with nothing left to start waits for the others'
running trials while their heartbeat is fresh (:func:`others_running`), so all end with the same
best_rec.json. A rerun of a worker picks up its own RUNNING trials (:func:`pick_up`).
"""
from __future__ import annotations

import contextlib
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skillbank.runtime.automl.algorithms import BudgetPlan
from skillbank.runtime.automl.trials import LiveTrial

HEARTBEAT_S = 10.0  # a worker stamps its running trials this often ...
STALE_AFTER_S = 60.0  # ... and one silent for this long is taken for gone (its trials wait for its rerun)
FOLLOWABLE = ("Pending", "Running", "Complete", "Error")  # job states a rerun can still follow to an outcome


def worker_id(workspace: Path) -> str:
    return f"{socket.gethostname()}:{Path(workspace).absolute()}"


def stamp(trial: Any, beats: dict[int, float]) -> None:
    """Record on ``trial`` that its worker is alive (``beats``: trial number -> when it was last stamped)."""
    now = time.time()
    trial.set_user_attr("heartbeat", now)
    beats[trial.number] = now


def finished_count(study: Any, worker: str) -> int:
    """Trials that count against the budget: ended ones (not interrupted) and other workers' running ones."""
    from optuna.trial import TrialState

    done = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
        ):
            done += 1
        elif t.state == TrialState.RUNNING and t.user_attrs.get("worker") != worker:
            done += 1
    return done


def others_running(study: Any, worker: str) -> list[Any]:
    """The RUNNING trials of other workers whose heartbeat is recent (within ``STALE_AFTER_S``)."""
    from optuna.trial import TrialState

    now = time.time()
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.user_attrs.get("worker") not in (None, worker)
            and now - float(t.user_attrs.get("heartbeat") or 0.0) < STALE_AFTER_S]


def pick_up(study: Any, worker: str, base: dict[str, Any],
            plan_of: Callable[[Any], BudgetPlan]) -> tuple[list[LiveTrial], list[str]]:
    """This worker's RUNNING trials after a stop: (those to follow again, what happened as event lines).

    A trial whose recorded job still exists (running, or ended meanwhile) is followed again; any other is
    marked INTERRUPTED (FAIL with ``interrupted``, not counted) and queued again with the same values.
    """
    import optuna
    from optuna.trial import TrialState

    from skillbank.runtime.sdk import jobs

    followed, events = [], []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = frozen.user_attrs
        if attrs.get("worker") not in (None, worker):
            continue
        trial = optuna.trial.Trial(study, frozen._trial_id)
        job_id = attrs.get("job_id") or ""
        status = None
        if job_id:
            with contextlib.suppress(Exception):
                status = jobs.get_job_status(job_id)
        recorded = any(j.get("job_id") == job_id for j in attrs.get("jobs") or [])
        if status in FOLLOWABLE and attrs.get("stage") in ("train", "evaluate") and recorded:
            values = attrs.get("values", {})
            baseline = bool(attrs.get("baseline"))
            live = LiveTrial(trial, values, dict(base) if baseline else {**base, **values}, baseline,
                             plan_of(frozen), stage=attrs["stage"], job_id=job_id, jobs=list(attrs.get("jobs", [])),
                             epochs_done=int(attrs.get("epochs_done") or 0), reported=set(frozen.intermediate_values),
                             train_job=attrs.get("train_job"), checkpoint=attrs.get("checkpoint"),
                             eval_job=attrs.get("eval_job"))
            live.last_epoch_seen = max(frozen.intermediate_values, default=0)
            live.saved = dict(attrs)  # what the study holds already is not written again
            followed.append(live)
            events.append(f"trial {frozen.number}: following job {job_id} again ({status})")
            continue
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("failure", {"category": "interrupted",
                                        "detail": f"the runner stopped; job {job_id or '-'} is {status}"})
        study.tell(trial, state=TrialState.FAIL)
        requeue = {"requeued_from": frozen.number}
        if attrs.get("baseline"):
            requeue["baseline"] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.enqueue_trial(frozen.params, user_attrs=requeue, skip_if_exists=False)
        events.append(f"trial {frozen.number} re-queued (its job is {status or 'gone'})")
    return followed, events
