"""What an AutoML run tells while it runs: its summary (``automl.json``, the returned value) and its progress line.

Pure formatting: :func:`run_summary` builds the summary from the history rows and the run's state;
:func:`format_progress` turns a summary into one line
(``trial 3/6 (2 done) | best accuracy 87.5 (#2) | baseline 50 | running #3 train e2/3, #4 evaluate``);
:func:`print_progress_line` is the callback the command line and the detached run print it with.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skillbank.runtime.automl import workspace as ws
from skillbank.runtime.automl.algorithms import BudgetPlan
from skillbank.runtime.automl.options import AutoMLOptions

ProgressCallback = Callable[[dict[str, Any]], None]
BRIEF_FIELDS = ("trial", "state", "value", "values", "train_job", "eval_job", "checkpoint", "epochs_trained")


def run_summary(*, state: str, skill: str, options: AutoMLOptions, plan: BudgetPlan, rows: list[dict[str, Any]],
                running: list[dict[str, Any]], search_space: list[str], workspace: Path, storage: str,
                stop_reason: dict[str, Any] | None, events: list[str],
                plot_files: list[str] = ()) -> dict[str, Any]:
    """The run's summary: counts, best and baseline, running jobs, budget, events and file locations.

    ``options`` are the run's resolved options (direction and max_epochs filled in); ``running`` holds one
    ``{trial, stage, job_id, epoch}`` per trial this worker follows.
    """
    best = ws.best_row(rows, options.resolved_direction)
    base_row = ws.baseline_row(rows)
    files = ws.paths(workspace)
    files["storage"] = ws.redact_url(storage)
    if plot_files:
        files["plot_files"] = list(plot_files)
    return {
        "state": state,
        "skill": skill,
        "algorithm": options.algorithm,
        "metric": options.metric,
        "direction": options.resolved_direction,
        "max_trials": options.max_trials,
        "finished": sum(1 for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL")),
        "counts": ws.counts(rows),
        "running": [{**item, "max_epochs": plan.max_epochs} for item in running],
        "epochs_trained": sum(int(r["epochs_trained"] or 0) for r in rows),
        "budget": plan.to_dict(),
        "search_space": list(search_space),
        "baseline": brief(base_row),
        "best": brief(best),
        "improvement": (best["value"] - base_row["value"]) if best and base_row and base_row["value"] is not None
        else None,
        "stop_reason": stop_reason,
        "events": events[-20:],
        "files": files,
    }


def brief(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A history row cut to what a summary shows of the best trial and the baseline."""
    if row is None:
        return None
    return {k: row.get(k) for k in BRIEF_FIELDS}


def format_progress(summary: dict[str, Any]) -> str:
    """``trial 3/6 (2 done) | best accuracy 87.5 (#2) | baseline 50 | running #3 train e2/3, #4 evaluate``."""
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


def short_values(values: dict[str, Any]) -> str:
    """``lr=0.001, dropout_ratio=0.5``: a trial's values for an event line (leaf names, 4 digits)."""
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                     for k, v in values.items())


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
