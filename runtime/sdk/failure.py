"""Failure analysis: why a job ended in Error, in one category and a one-line suggestion.

Pure: the caller gives the exit code / signal the platform reported and the
log text; the answer is a dict (category, exit_code, signal, log_tail,
detail, cause, suggestion). Log-text patterns come first because they say
more than an exit code does (an out-of-memory kill is a SIGKILL, a Python
traceback is exit 1).

A skill names its own known causes in its SKILL.md "Error patterns" table
(symptom, category, cause, fix): :func:`known_causes` reads that table, so the
analysis in a job record and the table an agent reads are one source. Those
patterns are tried before the generic ones below.
"""
from __future__ import annotations

import re
import signal as signals
from collections.abc import Sequence
from dataclasses import dataclass
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


ERROR_TABLE_HEADING = "## Error patterns"
_QUOTED = re.compile(r'"([^"]+)"')
_CATEGORY = re.compile(r"`([a-z][a-z0-9_]*)`")


@dataclass(frozen=True)
class KnownCause:
    """One row of a SKILL.md "Error patterns" table: a log pattern, its category, cause and fix."""

    symptom: str  # the table's text, e.g. "class folder ... is not in dataset.label_map"
    pattern: re.Pattern[str]
    category: str
    cause: str
    fix: str


def symptom_pattern(quotes: Sequence[str]) -> re.Pattern[str]:
    """A regex from the table's quoted symptoms: ``...`` stands for any text on the line, case is ignored."""
    parts = ["[^\n]*?".join(re.escape(piece.strip()) for piece in quote.split("...") if piece.strip())
             for quote in quotes]
    return re.compile("|".join(f"(?:{p})" for p in parts if p), re.I)


def known_causes(skill_md: str) -> tuple[KnownCause, ...]:
    """The rows of ``skill_md``'s "## Error patterns" table that quote a symptom and name a `category`.

    Columns: symptom (one or more quoted log texts, ``...`` = any text), category (in backticks),
    cause, fix. Rows without a quote or category are not patterns and are skipped.
    """
    start = skill_md.find(ERROR_TABLE_HEADING)
    if start < 0:
        return ()
    found = []
    for line in skill_md[start:].splitlines()[1:]:
        if line.startswith("#"):
            break  # the next section
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 4 or set(cells[0]) <= {"-", ":", " "}:
            continue
        quotes, category = _QUOTED.findall(cells[0]), _CATEGORY.search(cells[1])
        if quotes and category:
            found.append(KnownCause(cells[0], symptom_pattern(quotes), category.group(1), cells[2], cells[3]))
    return tuple(found)


def analyze_failure(
    *,
    exit_code: int | None,
    signal: int | None = None,
    log_text: str = "",
    detail: str = "",
    lost: bool = False,
    known: Sequence[KnownCause] = (),
    resume_command: str | None = None,
) -> dict[str, Any]:
    """Classify a failed job. ``lost`` means the process vanished without reporting how it ended.

    ``known`` are the skill's own causes (:func:`known_causes`), tried first; ``resume_command`` is how the
    job continues from its newest checkpoint (``skillbank jobs resume ID``), suggested for a killed job.
    """
    tail_lines = log_text.splitlines()[-LOG_TAIL_LINES:]
    tail = "\n".join(tail_lines)
    category, cause, suggestion = _classify(exit_code, signal, tail, detail, lost, known, resume_command)
    return {
        "category": category,
        "exit_code": exit_code,
        "signal": signal,
        "signal_name": _signal_name(signal),
        "log_tail": tail,
        "detail": detail,
        "cause": cause,
        "suggestion": suggestion,
    }


def _sentence(text: str) -> str:
    """A table cell as a one-line suggestion: capitalised, ending with a full stop."""
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _classify(exit_code: int | None, signal: int | None, tail: str, detail: str, lost: bool,
              known: Sequence[KnownCause], resume_command: str | None) -> tuple[str, str, str]:
    text = f"{tail}\n{detail}"
    for row in known:
        if row.pattern.search(text):
            return row.category, row.cause, _sentence(row.fix)
    for category, pattern, suggestion in _LOG_PATTERNS:
        if pattern.search(text):
            return category, "", suggestion
    # A killed job keeps its checkpoints: continuing from them beats starting over.
    again = f"continue it from its newest checkpoint: {resume_command}" if resume_command else "rerun the job"
    if lost:
        return "lost_process", "", (
            "The job's process disappeared without an exit record (machine restart or its supervisor was "
            f"killed); {again}."
        )
    if signal is not None:
        name = _signal_name(signal)
        if signal == getattr(signals, "SIGKILL", 9):
            return "signal", "", (f"Killed by {name}: often the out-of-memory killer or an operator; check memory, "
                                  f"then {again}.")
        return "signal", "", f"Stopped by {name}; unless someone stopped it on purpose, {again}."
    if exit_code is not None and exit_code != 0:
        return "nonzero_exit", "", f"The command exited with code {exit_code}; read the log tail for the cause."
    return "unknown", "", "The job failed without an exit code; read its log (`skillbank jobs logs JOB_ID`)."


def _signal_name(signal: int | None) -> str | None:
    if signal is None:
        return None
    try:
        return signals.Signals(signal).name
    except ValueError:
        return f"signal {signal}"
