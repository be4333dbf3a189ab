"""Rung gates: a multi-fidelity AutoML trial trains in one job that pauses at its rungs for the engine's word.

Multi-fidelity search (ASHA, Hyperband, BOHB) judges a trial at its rungs (epochs 1, 3, 9 ...). As TAO
does, the portable way is a train job per rung segment, each resuming from the previous one's checkpoint;
on the local platform that costs a job start, a checkpoint written and read, and a cold first epoch per
rung. A gated trial instead runs one train job for all its epochs; at the end of each rung epoch (after
its status.json lines) the job wakes the engine and waits until the engine opens the gate (the trial is
promoted) or cancels the job (it is pruned).

The two sides meet in files, so neither imports the other:

* the engine makes a gate folder per trial job holding ``plan.json`` (the rungs and the engine's wake
  pipe) and names the folder in the job's environment
  (:data:`GATE_ENV`); it opens rung ``r`` by writing ``open-<r>``;
* the job (``action_recognition train``'s :class:`~skillbank.runtime.action_recognition.callbacks.RungGate`)
  reads the plan, writes a byte to the wake pipe when it reaches a rung, and waits for ``open-<r>``.

The wake pipe is a FIFO in the AutoML workspace that the engine holds open while it runs (see
:class:`WakePipe`): the engine's wait selects on it beside the jobs' exit descriptors, so a trial that
reaches a rung is judged at once, not at the next poll. While no engine holds the pipe (it was stopped; a
rerun follows the job again) the job keeps waiting up to :data:`ORPHAN_AFTER_S`, then fails with a message
that says so.

Pure standard library and small: both the engine and the model's training import it.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from skillbank.runtime import settings
from skillbank.runtime.errors import SkillbankError

GATE_ENV = settings.RUNG_GATE  # names the gate folder of one trial job (set by the AutoML engine only)
PLAN_FILE = "plan.json"
WAKE_FIFO = "rung_wake.fifo"
ORPHAN_AFTER_S = 1800.0  # a job waits this long at a rung for a rerun of a runner that went away
_POLL_S = 0.005  # how often a waiting job looks for its gate file (a stat() call)
_ENGINE_CHECK_S = 1.0  # how often it checks that an engine still holds the wake pipe


class RungGateError(SkillbankError, RuntimeError):
    """A gated job can go no further: its plan is unreadable, or no engine came back to judge it."""


@dataclass(frozen=True)
class GatePlan:
    """What a gated job reads: where it pauses and how it calls the engine."""

    folder: Path
    rungs: tuple[int, ...]  # epoch counts (1-based) after which the job waits
    wake: Path | None  # the engine's wake FIFO
    orphan_after_s: float = ORPHAN_AFTER_S  # always the default for a job; tests shorten it

    def open_file(self, epochs: int) -> Path:
        return gate_file(self.folder, epochs)


def gate_file(folder: Path, epochs: int) -> Path:
    """The file whose presence opens the gate after ``epochs`` epochs."""
    return Path(folder) / f"open-{int(epochs)}"


# -- the engine's side -------------------------------------------------------------------------------

def prepare_gate(folder: Path, rungs: tuple[int, ...] | list[int], wake: Path | None) -> Path:
    """Make ``folder`` (emptied of an earlier job's gates) with the plan a job will read; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("open-*"):
        old.unlink(missing_ok=True)
    plan = {"rungs": [int(r) for r in rungs], "wake": str(wake) if wake else None}
    tmp = folder / f".{PLAN_FILE}.tmp"
    tmp.write_text(json.dumps(plan))
    os.replace(tmp, folder / PLAN_FILE)
    return folder


def open_gate(folder: Path, epochs: int) -> None:
    """Let the job waiting after epoch ``epochs`` go on (it may not be there yet: it will not stop then)."""
    path = gate_file(folder, epochs)
    if not path.exists():
        path.write_text("promoted\n")


class WakePipe:
    """The FIFO jobs write a byte to when they reach a rung; the engine selects on :attr:`fd`.

    Opened read-write, so the pipe never reports end-of-file when a job closes its end, and a job can
    tell a live engine (its non-blocking open for writing succeeds) from none (``ENXIO``).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def __enter__(self) -> WakePipe:
        try:
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                self.path.unlink()
                os.mkfifo(self.path, 0o600)
        except FileNotFoundError:
            os.mkfifo(self.path, 0o600)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        return self

    def drain(self) -> None:
        """Empty the pipe (every wake so far has been seen)."""
        if self.fd is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.fd, 4096):
                pass

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# -- the job's side -----------------------------------------------------------------------------------

def gate_plan() -> GatePlan | None:
    """The plan in the folder ``$SKILLBANK_RUNG_GATE`` names; None when the job is not gated."""
    folder = settings.rung_gate_folder()
    if not folder:
        return None
    path = Path(folder) / PLAN_FILE
    try:
        data = json.loads(path.read_text())
        rungs = tuple(sorted({int(r) for r in data["rungs"]}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RungGateError(f"{GATE_ENV}={folder}: cannot read its {PLAN_FILE} ({exc}); this variable is set by "
                            "`skillbank automl` for its trial jobs only") from exc
    wake = data.get("wake")
    return GatePlan(Path(folder), rungs, Path(wake) if wake else None)


def wake_engine(wake: Path | None) -> bool:
    """Write one byte to the engine's wake pipe; False when no engine holds it (or there is none)."""
    fd = None if wake is None else _open_writer(wake)
    if fd is None:
        return False
    try:
        with contextlib.suppress(BlockingIOError):  # a full pipe has woken the engine already
            os.write(fd, b"r")
    finally:
        os.close(fd)
    return True


def wait_at_rung(plan: GatePlan, epochs: int, *, clock=time.monotonic, sleep=time.sleep) -> None:
    """Block until the engine opens the gate after ``epochs``; the engine prunes by canceling the job.

    Raises :class:`RungGateError` when no engine has held the wake pipe for ``plan.orphan_after_s``.
    """
    target = plan.open_file(epochs)
    orphaned_since = None if plan.wake is None or wake_engine(plan.wake) else clock()
    next_check = clock() + _ENGINE_CHECK_S
    while not target.exists():
        sleep(_POLL_S)
        now = clock()
        if now < next_check or plan.wake is None:
            continue
        next_check = now + _ENGINE_CHECK_S
        if _engine_holds(plan.wake):
            if orphaned_since is not None:  # a rerun took the study over: tell it this job waits
                wake_engine(plan.wake)
            orphaned_since = None
            continue
        orphaned_since = orphaned_since if orphaned_since is not None else now
        if now - orphaned_since >= plan.orphan_after_s:
            raise RungGateError(
                f"waited {plan.orphan_after_s:g} s after epoch {epochs} for the AutoML runner that started this "
                f"job to judge it at its rung, and none is running (no reader on {plan.wake}); rerun the same "
                "`skillbank automl` command to go on with the study")


def _engine_holds(wake: Path) -> bool:
    """Whether a process holds the wake FIFO open for reading (an engine is running)."""
    try:
        fd = _open_writer(wake)
    except OSError:
        return False  # an unusable pipe counts as no engine: the job waits out ORPHAN_AFTER_S, then says so
    if fd is None:
        return False
    os.close(fd)
    return True


def _open_writer(wake: Path) -> int | None:
    """A non-blocking write end of the wake FIFO (the caller closes it); None when no engine holds it open
    for reading (``ENXIO``) or it is gone."""
    try:
        return os.open(wake, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return None
        raise
