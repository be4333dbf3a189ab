"""The AutoML workspace folder: what a run leaves behind and what a rerun resumes from.

::

    <workspace>/
      study.db        the Optuna study (SQLite; --storage may put it in any Optuna RDB instead)
      automl.json     the run's configuration and live state (progress, running jobs), rewritten on change
      history.json    one row per trial (values, state, objective, epochs, jobs, checkpoint, failure)
      history.csv     the same rows, flat, for spreadsheets
      best_rec.json   the best recommendation: rec id, job id, specs, metric, direction, value, checkpoint
      plots/          objective.png and one PNG per hyperparameter (plots.py)

Files are written atomically (temporary file + rename), so ``automl status``
never reads half a file while a run updates it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STUDY_DB = "study.db"
STATE_FILE = "automl.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
BEST_REC = "best_rec.json"
PLOTS_DIR = "plots"
CSV_COLUMNS = ("trial", "state", "baseline", "value", "epochs_trained", "train_job", "eval_job", "checkpoint",
               "failure_category", "duration_s")


def default_storage(workspace: Path) -> str:
    """The SQLite URL of the study inside ``workspace``."""
    return f"sqlite:///{(Path(workspace) / STUDY_DB).absolute()}"


def redact_url(url: str) -> str:
    """An RDB URL without its password (``postgresql://user:***@host/db``): safe to write to disk."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist yet."""
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _jsonable(value: Any) -> Any:
    """NaN/inf become None (JSON has no such numbers); tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- rows
def trial_row(trial: Any) -> dict[str, Any]:
    """One history row from an Optuna FrozenTrial and the user attributes the engine keeps on it."""
    attrs = dict(trial.user_attrs)
    state = trial.state.name
    if state == "FAIL" and attrs.get("interrupted"):
        state = "INTERRUPTED"  # the runner stopped while it ran; the trial was queued again
    started, finished = trial.datetime_start, trial.datetime_complete
    duration = (finished - started).total_seconds() if started and finished else None
    intermediate = {int(step): value for step, value in sorted(trial.intermediate_values.items())}
    return {
        "trial": trial.number,
        "state": state,
        "baseline": bool(attrs.get("baseline")),
        "values": attrs.get("values", {}),
        "value": trial.value if state == "COMPLETE" else None,
        "last_intermediate": intermediate[max(intermediate)] if intermediate else None,
        "intermediate": intermediate,
        "epochs_trained": attrs.get("epochs_trained", max(intermediate) if intermediate else 0),
        "kpi": attrs.get("kpi") or {},  # the last training KPIs (val_acc, val_loss, ...) of the trial
        "stage": attrs.get("stage"),
        "jobs": attrs.get("jobs", []),
        "train_job": attrs.get("train_job"),
        "eval_job": attrs.get("eval_job"),
        "checkpoint": attrs.get("checkpoint"),
        "failure": attrs.get("failure"),
        "requeued_from": attrs.get("requeued_from"),
        "worker": attrs.get("worker"),
        "started": started.isoformat(timespec="seconds") if started else None,
        "finished": finished.isoformat(timespec="seconds") if finished else None,
        "duration_s": round(duration, 1) if duration is not None else None,
    }


def best_row(rows: Iterable[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The complete trial with the best value (earliest on ties), or None."""
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    if not done:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    return min(done, key=lambda r: (sign * r["value"], r["trial"]))


def baseline_row(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline trial (the default spec), the last one when it was re-queued."""
    found = [r for r in rows if r["baseline"] and r["state"] != "INTERRUPTED"]
    return found[-1] if found else None


def counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0, "INTERRUPTED": 0}
    for row in rows:
        out[row["state"]] = out.get(row["state"], 0) + 1
    return out


def history_csv(rows: list[dict[str, Any]]) -> str:
    """The rows flattened: the fixed columns, then one column per hyperparameter."""
    names = sorted({name for row in rows for name in row["values"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *names])
    for row in rows:
        flat = {**row, "failure_category": (row.get("failure") or {}).get("category")}
        writer.writerow([_cell(flat.get(c)) for c in CSV_COLUMNS] + [_cell(row["values"].get(n)) for n in names])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_history(workspace: Path, rows: list[dict[str, Any]]) -> None:
    write_json(workspace / HISTORY_JSON, rows)
    tmp = workspace / f".{HISTORY_CSV}.tmp"
    tmp.write_text(history_csv(rows))
    os.replace(tmp, workspace / HISTORY_CSV)


def best_recommendation(best: dict[str, Any], *, specs: dict[str, Any], metric: str, direction: str,
                        baseline: dict[str, Any] | None, skill: str, algorithm: str) -> dict[str, Any]:
    """The ``best_rec.json`` document."""
    return {
        "rec_id": best["trial"],
        "job_id": best["train_job"],
        "eval_job_id": best.get("eval_job"),
        "skill": skill,
        "algorithm": algorithm,
        "metric": metric,
        "direction": direction,
        "value": best["value"],
        "checkpoint": best["checkpoint"],
        "hyperparameters": best["values"],
        "specs": specs,
        "epochs_trained": best["epochs_trained"],
        "baseline": None if baseline is None else {
            "rec_id": baseline["trial"], "value": baseline["value"], "state": baseline["state"],
            "job_id": baseline["train_job"], "checkpoint": baseline["checkpoint"],
        },
    }


def paths(workspace: Path) -> dict[str, str]:
    """Where each workspace file is (whether or not it exists yet)."""
    ws = Path(workspace).absolute()
    return {
        "workspace": str(ws),
        "study": str(ws / STUDY_DB),
        "state": str(ws / STATE_FILE),
        "history_json": str(ws / HISTORY_JSON),
        "history_csv": str(ws / HISTORY_CSV),
        "best_rec": str(ws / BEST_REC),
        "plots": str(ws / PLOTS_DIR),
    }
