"""`skillbank automl status DIR`: a run's progress from its workspace files, without touching the run.

Reads ``automl.json`` (the live state the engine rewrites on every change),
``history.json`` and ``best_rec.json``; opens no study storage and writes
nothing. Running trials get their job's latest ``status.json`` event from the
job store record (``get_job``, which does not poll the platform).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from skillbank.runtime.automl import workspace as ws
from skillbank.runtime.errors import SkillbankError


class StatusError(SkillbankError, LookupError):
    """A folder that holds no AutoML workspace."""

    exit_code = 2


def read_status(workspace: Path) -> dict[str, Any]:
    """The run's state, counts, best and baseline, running jobs and file locations."""
    workspace = Path(workspace)
    state = ws.read_json(workspace / ws.STATE_FILE)
    if state is None:
        raise StatusError(f"{workspace}: no AutoML workspace here (no {ws.STATE_FILE}); "
                          "start one with `skillbank automl SKILL OVERRIDES --workspace DIR`")
    rows = ws.read_json(workspace / ws.HISTORY_JSON) or []
    best_rec = ws.read_json(workspace / ws.BEST_REC)
    info = {k: v for k, v in state.items() if k not in ("config",)}
    info["alive"] = process_alive(state.get("pid")) if state.get("state") == "running" else False
    if state.get("state") == "running" and not info["alive"]:
        info["state"] = "not running (the runner exited; rerun the same command to resume)"
    info["trials"] = [{k: r.get(k) for k in ("trial", "state", "baseline", "value", "values", "epochs_trained",
                                             "train_job", "eval_job")} | {
                          "failure": (r.get("failure") or {}).get("category")} for r in rows]
    info["best_rec"] = best_rec
    for item in info.get("running", []):
        item["progress"] = _job_progress(item.get("job_id"))
    return info


def process_alive(pid: Any) -> bool:
    """Whether the process ``pid`` (an AutoML run's, from its state file) still exists on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job_progress(job_id: str | None) -> dict[str, Any] | None:
    if not job_id:
        return None
    with contextlib.suppress(Exception):
        from skillbank.runtime.sdk import jobs

        record = jobs.get_job(job_id)
        event = jobs.latest_progress(record) or {}
        return {"status": record["status"], "epoch": event.get("epoch"), "max_epoch": event.get("max_epoch"),
                "kpi": event.get("kpi")}
    return None


def format_status(info: dict[str, Any]) -> str:
    """Human text of :func:`read_status`."""
    lines = [f"AutoML {info.get('algorithm')} on {info.get('skill')}: {info.get('state')} "
             f"(updated {info.get('updated_at')})",
             f"  trials: {info.get('finished')}/{info.get('max_trials')} finished; "
             + ", ".join(f"{k.lower()} {v}" for k, v in (info.get("counts") or {}).items() if v)]
    lines += _best_lines(info)
    for item in info.get("running", []):
        progress = item.get("progress") or {}
        epoch = progress.get("epoch")
        last = progress.get("max_epoch")  # TAO's 0-based last epoch
        total = f"/{last + 1}" if isinstance(last, int) else ""
        where = f" epoch {epoch + 1}{total}" if isinstance(epoch, int) else ""
        lines.append(f"  running: trial {item['trial']} {item['stage']} job {item['job_id']} "
                     f"({progress.get('status', '?')}{where})")
    lines.append("  trials:")
    for row in info.get("trials", []):
        value = "-" if row.get("value") is None else f"{row['value']:.4g}"
        tag = " baseline" if row.get("baseline") else ""
        fail = f" ({row['failure']})" if row.get("failure") else ""
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in (row.get("values") or {}).items())
        lines.append(f"    #{row['trial']:<3} {row['state']:<11} {info.get('metric')}={value:<8} "
                     f"epochs={row.get('epochs_trained') or 0}{tag}{fail}  {values}")
    if info.get("stop_reason"):
        lines.append(f"  stopped: {info['stop_reason'].get('category')}: {info['stop_reason'].get('suggestion')}")
    lines += _file_lines(info.get("files") or {})
    return "\n".join(lines)


def format_summary(summary: dict[str, Any]) -> str:
    """Human text of run_automl's summary."""
    counts = summary.get("counts") or {}
    lines = [f"AutoML {summary['algorithm']} on {summary['skill']}: {summary['state']}",
             f"  trials: {summary['finished']}/{summary['max_trials']} finished "
             f"(complete {counts.get('COMPLETE', 0)}, pruned {counts.get('PRUNED', 0)}, "
             f"failed {counts.get('FAIL', 0)}), {summary['epochs_trained']} epoch(s) trained",
             "  search space: " + "; ".join(summary.get("search_space") or [])]
    lines += _best_lines(summary)
    if summary.get("stop_reason"):
        reason = summary["stop_reason"]
        lines.append(f"  stopped: {reason.get('category')}: {reason.get('suggestion') or reason.get('detail')}")
    lines += _file_lines(summary.get("files") or {})
    return "\n".join(lines)


def _best_lines(info: dict[str, Any]) -> list[str]:
    metric = info.get("metric")
    out = []
    base, best = info.get("baseline"), info.get("best")
    if base:
        value = "-" if base.get("value") is None else f"{base['value']:.4g}"
        out.append(f"  baseline: {metric}={value} (trial {base['trial']}, {base['state']})")
    if best:
        out.append(f"  best:     {metric}={best['value']:.4g} (trial {best['trial']}) "
                   + ", ".join(f"{k}={_fmt(v)}" for k, v in (best.get("values") or {}).items()))
        out.append(f"  best checkpoint: {best.get('checkpoint')}")
    return out


def _file_lines(files: dict[str, Any]) -> list[str]:
    out = []
    for label, key in (("workspace", "workspace"), ("best_rec", "best_rec"), ("history", "history_csv"),
                       ("plots", "plots")):
        if files.get(key):
            out.append(f"  {label + ':':<10} {files[key]}")
    return out


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
