"""A job's ``status.json`` read one way: the events, the progress they show, the best checkpoint reported.

``status.json`` holds one JSON object per line, as TAO's status logger writes them (the model's writer
is ``action_recognition/status_log.py``). :func:`read_status_events` is the one reader: job
followers, ``jobs show``, AutoML and the tests all read through it. A line still being written (or
cut by a ``tail``) is skipped, never an error. The rest are pure functions over the events: TAO's
train format spreads one epoch over three lines, which :func:`progress_view` joins again
(:func:`epoch_kpis` per epoch, for AutoML).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from skillbank.runtime.action_recognition.status_log import STATUS_FILE

PROGRESS_FIELDS = ("epoch", "max_epoch", "step", "max_step", "time_per_epoch", "time_per_step", "eta")
EVAL_METRICS_MESSAGE = "Eval metrics generated."
TRAIN_METRICS_MESSAGE = "Train metrics generated."
LOOP_MESSAGE = "Training loop in progress"
FOLLOW_TAIL_BYTES = 16384  # what a follower reads of a long status.json on each look


def read_status_events(path: str | os.PathLike, tail: int | None = None) -> list[dict[str, Any]]:
    """The complete JSON-object lines of the status.json at ``path``, oldest first; [] when it cannot be read.

    ``tail`` reads only the last ``tail`` bytes (a follower's look at a long file). A ``path`` that is a
    folder means ``<folder>/status.json``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STATUS_FILE
    try:
        with open(path, "rb") as handle:
            if tail is not None:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - tail))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written, or cut by the tail
        if isinstance(event, dict):
            events.append(event)
    return events


def job_status_events(record: Mapping[str, Any], tail: int | None = FOLLOW_TAIL_BYTES) -> list[dict[str, Any]]:
    """The newest events of a job's status.json (the first of its likely places that has any)."""
    for path in _status_files(Path(record["results_dir"]), record["action"]):
        events = read_status_events(path, tail)
        if events:
            return events
    return []


def latest_progress(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The job's progress from its status.json (``<results_dir>/<action>/status.json`` first).

    The last event (its ``status`` and ``message``), completed by :func:`progress_view` with the newest
    finished epoch's fields and KPIs, since TAO's format spreads one epoch over three lines.
    """
    events = job_status_events(record)
    return progress_view(events) if events else None


def progress_updates(
    events: list[dict[str, Any]], seen: dict[str, Any] | None, *, final: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The progress views of the events after ``seen`` (the newest event handled before), one per line.

    Every epoch gets its own view, even when several ended between two looks: TAO's "Eval metrics
    generated." and "Train metrics generated." lines are folded into their epoch's "Training loop in
    progress" view, and that view waits for its train metrics line unless the job has ended (``final``).
    Returns the views and the new ``seen``. When ``seen`` is no longer among ``events`` (the file
    was replaced, or more was written than one look reads) every event counts as new.
    """
    start = 0
    if seen is not None:
        start = next((i + 1 for i in range(len(events) - 1, -1, -1) if events[i] == seen), 0)
    views: list[dict[str, Any]] = []
    handled = start - 1
    for i in range(start, len(events)):
        message = events[i].get("message")
        if message == EVAL_METRICS_MESSAGE:
            handled = i  # shown with the epoch's loop line that follows
            continue
        if message == TRAIN_METRICS_MESSAGE and i > 0 and events[i - 1].get("message") == LOOP_MESSAGE:
            handled = i  # shown with the loop line before it
            continue
        if message == LOOP_MESSAGE and i == len(events) - 1 and not final:
            break  # its train metrics line is still to come
        folds_next = (message == LOOP_MESSAGE and i + 1 < len(events)
                      and events[i + 1].get("message") == TRAIN_METRICS_MESSAGE)
        end = i + 2 if folds_next else i + 1
        view = progress_view(events[:end])
        if view is not None:
            views.append(view)
        handled = end - 1
    return views, events[handled] if handled >= 0 else seen


def progress_view(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last of ``events``, plus the epoch fields and KPIs of the newest "Training loop in progress" line.

    TAO's train status.json writes, per epoch: "Eval metrics generated." (kpi val_loss, val_acc), "Training
    loop in progress" (epoch 0-based, max_epoch = num_epochs - 1, step, eta ...; repeats the last kpi),
    "Train metrics generated." (kpi train_loss, train_acc). The view's ``kpi`` joins that epoch's val and
    train KPIs. Events of other actions (no ``epoch``) are returned as they are.
    """
    if not events:
        return None
    view = dict(events[-1])
    at = next((i for i in range(len(events) - 1, -1, -1) if _is_int(events[i].get("epoch"))), None)
    if at is None:
        return view
    loop = events[at]
    for name in PROGRESS_FIELDS:
        if name in loop and name not in view:
            view[name] = loop[name]
    kpi = dict(loop.get("kpi") or {}) if isinstance(loop.get("kpi"), dict) else {}
    before = events[at - 1] if at > 0 else {}
    if before.get("message") == EVAL_METRICS_MESSAGE and isinstance(before.get("kpi"), dict):
        kpi.update(before["kpi"])
    after = events[at + 1] if at + 1 < len(events) else {}
    if after.get("message") == TRAIN_METRICS_MESSAGE and isinstance(after.get("kpi"), dict):
        kpi.update(after["kpi"])
    if kpi:
        view["kpi"] = kpi
    return view


def epoch_kpis(events: list[dict[str, Any]]) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any]]:
    """Per finished epoch of a train status.json, ``(epochs completed, KPIs of that epoch)``; and the last KPIs.

    TAO's format (see :func:`progress_view`): "Eval metrics generated." carries ``kpi`` {val_loss, val_acc}
    of the epoch whose "Training loop in progress" line (``epoch``, 0-based) follows; "Train metrics
    generated." carries {train_loss, train_acc}; every line repeats the last kpi. An epoch without
    validation has no val KPIs. The last KPIs merge the newest value of every key (val and train).
    AutoML reports these epochs to Optuna (runtime/automl/trials.py).
    """
    epochs: list[tuple[int, dict[str, Any]]] = []
    last: dict[str, Any] = {}
    pending: dict[str, Any] = {}  # the val KPIs of the epoch whose loop line comes next
    for event in events:
        kpi = event.get("kpi") if isinstance(event.get("kpi"), dict) else {}
        if event.get("message") == EVAL_METRICS_MESSAGE and kpi:
            pending = {k: v for k, v in kpi.items() if k.startswith("val_")}
            last.update(pending)
            continue
        if _is_int(event.get("epoch")) and event.get("status") in ("RUNNING", "SUCCESS"):
            own = pending or {k: v for k, v in kpi.items() if k.startswith("val_")}
            epochs.append((event["epoch"] + 1, {**{k: v for k, v in kpi.items() if not k.startswith("val_")}, **own}))
            pending = {}
            last.update(own)
            continue
        if event.get("message") == TRAIN_METRICS_MESSAGE and epochs:
            epochs[-1] = (epochs[-1][0], {**epochs[-1][1], **kpi})
        last.update({k: v for k, v in kpi.items() if not k.startswith("val_")})
    return epochs, last


def recorded_best(record: Mapping[str, Any]) -> str | None:
    """The best checkpoint a job reported: the last ``best_checkpoint`` in its status.json events."""
    results_dir = Path(record["results_dir"])
    for path in [results_dir / record["action"] / STATUS_FILE, results_dir / STATUS_FILE]:
        reported = [str(event["best_checkpoint"]) for event in read_status_events(path)
                    if event.get("best_checkpoint")]
        if reported:
            # The newest report whose file is still there (a rerun may have replaced older best files).
            existing = [b for b in reported if (path.parent / b).is_file()]
            return existing[-1] if existing else reported[-1]
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _status_files(results_dir: Path, action: str) -> Iterator[Path]:
    """Where a job's status.json may be, most likely first; the folder is listed only when those miss."""
    yield results_dir / action / STATUS_FILE
    yield results_dir / STATUS_FILE
    yield from sorted(results_dir.glob(f"*/{STATUS_FILE}"))
