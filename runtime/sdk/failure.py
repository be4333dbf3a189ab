"""Failure analysis: why a job ended in Error, in one category and a one-line suggestion.

Pure: the caller gives the exit code / signal the platform reported and the
log text; the answer is a dict (category, exit_code, signal, log_tail,
suggestion). Log-text patterns come first because they say more than an exit
code does (an out-of-memory kill is a SIGKILL, a Python traceback is exit 1).
"""
from __future__ import annotations

import re
import signal as signals
from typing import Any

LOG_TAIL_LINES = 30

# (category, pattern over the log tail, suggestion); first match wins.
_LOG_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("out_of_memory",
     re.compile(r"out of memory|OutOfMemoryError|MemoryError|Cannot allocate memory|oom-kill", re.I),
     "Lower dataset.batch_size (or the input size / sequence length) and rerun."),
    ("invalid_spec",
     re.compile(r"SpecValidationError|ConfigError|invalid spec|Validation error|KeyError: '", re.I),
     "Check the spec with `skillbank validate SKILL ACTION OVERRIDES` and fix the named keys."),
    ("missing_file",
     re.compile(r"FileNotFoundError|No such file or directory|does not exist", re.I),
     "A path in the spec does not exist where the job runs; check dataset and checkpoint paths."),
    ("missing_dependency",
     re.compile(r"ModuleNotFoundError|ImportError|command not found|No module named", re.I),
     "The job's environment lacks a program or package; install it or use the container platform."),
    ("data_error",
     re.compile(r"empty dataset|no videos|num_samples=0|found 0 ", re.I),
     "The dataset folder holds no usable samples; check its layout (<class>/<video>/rgb/<frames>)."),
)


def analyze_failure(
    *,
    exit_code: int | None,
    signal: int | None = None,
    log_text: str = "",
    detail: str = "",
    lost: bool = False,
) -> dict[str, Any]:
    """Classify a failed job. ``lost`` means the process vanished without reporting how it ended."""
    tail_lines = log_text.splitlines()[-LOG_TAIL_LINES:]
    tail = "\n".join(tail_lines)
    category, suggestion = _classify(exit_code, signal, tail, detail, lost)
    return {
        "category": category,
        "exit_code": exit_code,
        "signal": signal,
        "signal_name": _signal_name(signal),
        "log_tail": tail,
        "detail": detail,
        "suggestion": suggestion,
    }


def _classify(exit_code: int | None, signal: int | None, tail: str, detail: str, lost: bool) -> tuple[str, str]:
    text = f"{tail}\n{detail}"
    for category, pattern, suggestion in _LOG_PATTERNS:
        if pattern.search(text):
            return category, suggestion
    if lost:
        return "lost_process", (
            "The job's process disappeared without an exit record (machine restart or its supervisor was "
            "killed); rerun the job."
        )
    if signal is not None:
        name = _signal_name(signal)
        if signal == getattr(signals, "SIGKILL", 9):
            return "signal", f"Killed by {name}: often the out-of-memory killer or an operator; check memory, rerun."
        return "signal", f"Stopped by {name}; rerun unless someone stopped it on purpose."
    if exit_code is not None and exit_code != 0:
        return "nonzero_exit", f"The command exited with code {exit_code}; read the log tail for the cause."
    return "unknown", "The job failed without an exit code; read its log (`skillbank jobs logs JOB_ID`)."


def _signal_name(signal: int | None) -> str | None:
    if signal is None:
        return None
    try:
        return signals.Signals(signal).name
    except ValueError:
        return f"signal {signal}"
