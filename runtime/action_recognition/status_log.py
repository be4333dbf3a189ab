"""``status.json``: one JSON line per event (TAO's status format), read by job followers and AutoML."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

STARTED, RUNNING, SUCCESS, FAILURE = "STARTED", "RUNNING", "SUCCESS", "FAILURE"
STATUS_FILE = "status.json"


def format_duration(seconds: float | None) -> str | None:
    """``0:00:05.123456``-style, as TAO writes ``time_per_epoch`` and ``eta``."""
    return None if seconds is None else str(dt.timedelta(seconds=round(seconds, 3)))


class StatusWriter:
    """Appends status events to ``<folder>/status.json`` (creates the folder)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / STATUS_FILE

    def write(self, status: str, message: str = "", **fields: Any) -> dict[str, Any]:
        now = dt.datetime.now()
        event = {"date": now.strftime("%m/%d/%Y"), "time": now.strftime("%H:%M:%S"), "status": status}
        event.update(fields)
        event["message"] = message
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()
        return event


def read_status(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Every event in ``<folder>/status.json``, oldest first."""
    path = Path(folder) / STATUS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
