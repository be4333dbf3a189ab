"""``status.json``: one JSON line per event, exactly as TAO's status logger writes them.

Every line holds ``date`` ("M/D/YYYY") and ``time`` ("H:M:S"), neither zero padded, ``status``
(STARTED, RUNNING, SUCCESS, FAILURE, SKIPPED), ``verbosity`` ("INFO"), ``message``, then the event's
data fields and ``kpi``. As TAO's logger does, the writer keeps the last ``kpi`` it was given and
repeats it on every later line. Only the global rank-zero process writes (TAO's ``rank_zero_only``).
The SDK reads them (sdk/status_file.py, for job followers and AutoML); TAO's readers ignore fields
they do not know.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

STARTED, RUNNING, SUCCESS, FAILURE, SKIPPED = "STARTED", "RUNNING", "SUCCESS", "FAILURE", "SKIPPED"
INFO = "INFO"
STATUS_FILE = "status.json"
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def format_duration(seconds: float | None) -> str | None:
    """``0:00:05.123456``: ``str(timedelta)``, as TAO writes ``time_per_epoch``, ``time_per_step`` and ``eta``."""
    return None if seconds is None else str(dt.timedelta(seconds=seconds))


def parse_duration(text: str) -> float:
    """Seconds of a ``format_duration`` text: ``H:MM:SS[.ffffff]``, after ``N day(s), `` from a day on."""
    days, _, clock = text.rpartition(", ")
    hours, minutes, seconds = clock.split(":")
    return (int(days.split()[0]) * 86400 if days else 0) + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def tao_date_time(now: dt.datetime) -> tuple[str, str]:
    """TAO's ``date`` and ``time`` fields: ``M/D/YYYY`` and ``H:M:S`` without zero padding."""
    return f"{now.month}/{now.day}/{now.year}", f"{now.hour}:{now.minute}:{now.second}"


def is_rank_zero() -> bool:
    """Whether this process is the global rank zero (a process no launcher numbered counts as zero)."""
    return all(os.environ.get(name, "0") in ("", "0") for name in _RANK_VARIABLES)


class StatusWriter:
    """Appends TAO-format status events to ``<folder>/status.json`` (creates the folder on first write).

    ``write(status, message, kpi=..., **fields)`` returns the event it wrote (or would have written,
    on a rank that does not write). A ``kpi`` given becomes the writer's ``kpi`` and is repeated on
    every later line, until another replaces it.
    """

    def __init__(self, folder: str | os.PathLike, *, enabled: bool | None = None):
        self.path = Path(folder) / STATUS_FILE
        self.enabled = is_rank_zero() if enabled is None else enabled
        self.kpi: dict[str, Any] | None = None

    def write(self, status: str = RUNNING, message: str = "", *, kpi: dict[str, Any] | None = None,
              verbosity: str = INFO, **fields: Any) -> dict[str, Any]:
        if kpi is not None:
            self.kpi = dict(kpi)
        date, time = tao_date_time(dt.datetime.now())
        event: dict[str, Any] = {"date": date, "time": time, "status": status, "verbosity": verbosity,
                                 "message": message}
        event.update(fields)
        if self.kpi:
            event["kpi"] = dict(self.kpi)
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(event, default=_plain) + "\n")
                handle.flush()
        return event


def _plain(value: Any) -> Any:
    """NumPy / torch scalars as Python numbers (TAO's writer fails on a NumPy float32 under NumPy 2)."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return str(value)

