"""The embedded default platform: jobs run as detached processes on this machine.

Launch starts ``local_wrapper`` (see there) in a new session; the backend id is
its pid, which is also the job's process-group id. Status comes from the exit
marker the wrapper writes, or from the wrapper still being alive; a wrapper
that is gone without a marker means the job was lost, and whatever is left of
its process group is killed then (the command itself dies with the wrapper, see
local_wrapper), so the record and the machine agree. Cancel writes a cancel
marker, sends SIGTERM to the whole group, waits ``grace_s`` and then sends
SIGKILL.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from skillbank.runtime.sdk.platforms import warm_start
from skillbank.runtime.sdk.platforms.base import (
    CANCEL_MARKER,
    CANCELED,
    COMPLETE,
    ERROR,
    EXIT_MARKER,
    LOG_NAME,
    RUNNING,
    LaunchRequest,
    Platform,
    PlatformError,
    PlatformStatus,
)
from skillbank.runtime.sdk.platforms.local_wrapper import LAUNCH_RECORD, exit_record, write_json_atomic
from skillbank.runtime.sdk.platforms.submission import read_log

WRAPPER_MODULE = "skillbank.runtime.sdk.platforms.local_wrapper"

# Wrappers this process started: polling them reaps zombies (a zombie still looks alive to kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen] = {}


class LocalPlatform(Platform):
    name = "local"
    rung_gates = True

    def __init__(self, grace_s: float = 10.0):
        self.grace_s = grace_s

    # -- launch -------------------------------------------------------------------------------
    def launch(self, request: LaunchRequest) -> str:
        results_dir = Path(request.results_dir)
        results_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment(request.env)
        command = self._resolve_command(request.command, env)
        starter = warm_start.starter_for(command, env, request.env, request.nodes * request.tasks_per_node)
        pid = starter.launch(results_dir, command, env) if starter is not None else None
        if pid is not None:
            return str(pid)  # forked by a warm server (keep_warm): the same contract as local_wrapper's
        argv = [sys.executable, "-m", WRAPPER_MODULE, str(results_dir), "--", *command]
        with open(results_dir / LOG_NAME, "ab") as log:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, cwd=results_dir, start_new_session=True, close_fds=True)
            except OSError as exc:
                raise PlatformError(f"cannot start the local job supervisor: {exc}") from exc
        _CHILDREN[proc.pid] = proc
        return str(proc.pid)

    def keep_warm(self, programs: list[str], log: Path | None = None):
        """Jobs of ``programs`` start from warm servers while inside (warm_start.py)."""
        return warm_start.keep_warm(programs, self._environment({}), log)

    @staticmethod
    def _environment(extra: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, **extra, "PYTHONUNBUFFERED": "1"}
        # Console scripts of this installation (action_recognition, skillbank) are found even when
        # the virtual environment is not activated.
        bindir = str(Path(sys.executable).parent)
        if bindir not in env.get("PATH", "").split(os.pathsep):
            env["PATH"] = os.pathsep.join(p for p in (bindir, env.get("PATH", "")) if p)
        return env

    @staticmethod
    def _resolve_command(command: list[str], env: dict[str, str]) -> list[str]:
        if not command:
            raise PlatformError("empty command: the action's skill_info `command` is blank")
        found = shutil.which(command[0], path=env.get("PATH"))
        return [found or command[0], *command[1:]]

    def render(self, request: LaunchRequest) -> str:
        names = " ".join(sorted(request.env))
        lines = [
            f"# local platform: detached process group, log -> {Path(request.results_dir) / LOG_NAME}",
            f"# environment passed by name only: {names}" if names else "# no extra environment",
            f"cd {shlex.quote(str(request.results_dir))} && {shlex.join(request.command)}",
        ]
        return "\n".join(lines) + "\n"

    # -- status -------------------------------------------------------------------------------
    def status(self, backend_id: str, results_dir: Path) -> PlatformStatus:
        results_dir = Path(results_dir)
        marker = read_exit_marker(results_dir)
        if marker is None and self._alive(backend_id, results_dir):
            return PlatformStatus(RUNNING, detail=f"pid {backend_id}")
        marker = marker or read_exit_marker(results_dir)  # it may have been written between the checks
        if marker is None:
            kill_leftovers(backend_id, results_dir)  # a lost job must not keep running untracked
            if (results_dir / CANCEL_MARKER).exists():
                return PlatformStatus(CANCELED, detail="canceled")
            return PlatformStatus(ERROR, detail=f"process {backend_id} is gone and left no exit marker")
        return status_from_marker(marker)

    def exit_fd(self, backend_id: str, results_dir: Path) -> int | None:
        """A pidfd of the job's supervisor (readable once it has exited); readable at once for an ended job."""
        if not hasattr(os, "pidfd_open"):
            return None  # not Linux: the follower polls
        if read_exit_marker(Path(results_dir)) is None and self._alive(backend_id, results_dir):
            with contextlib.suppress(ProcessLookupError):
                return os.pidfd_open(int(backend_id))
        return os.eventfd(1)  # it has ended already: a descriptor that is readable now

    def _alive(self, backend_id: str, results_dir: Path) -> bool:
        try:
            pid = int(backend_id)
        except (TypeError, ValueError):
            return False
        proc = _CHILDREN.get(pid)
        if proc is not None and proc.poll() is not None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False  # another user's process took over the pid: ours is gone
        return _is_our_wrapper(pid, results_dir)

    # -- logs ---------------------------------------------------------------------------------
    def logs(self, backend_id: str, results_dir: Path, tail: int | None = None) -> str:
        return read_log(results_dir, tail) or ""

    # -- cancel -------------------------------------------------------------------------------
    def cancel(self, backend_id: str, results_dir: Path) -> None:
        results_dir = Path(results_dir)
        if read_exit_marker(results_dir) is not None:
            return  # already finished
        (results_dir / CANCEL_MARKER).write_text(json.dumps({"at": time.time()}))
        try:
            pgid = int(backend_id)
        except (TypeError, ValueError):
            raise PlatformError(f"local backend id {backend_id!r} is not a process id") from None
        if not self._alive(backend_id, results_dir):
            kill_leftovers(backend_id, results_dir)  # the supervisor is gone; what it ran must not stay
            return
        self._signal_group(pgid, signal.SIGTERM)
        if not self._wait_group(pgid, self.grace_s):
            self._signal_group(pgid, signal.SIGKILL)
            self._wait_group(pgid, 5.0)
        if read_exit_marker(results_dir) is None:  # the wrapper died with the group before writing one
            write_json_atomic(results_dir / EXIT_MARKER, exit_record(-signal.SIGKILL, results_dir))

    @staticmethod
    def _signal_group(pgid: int, signum: int) -> None:
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            pass

    @staticmethod
    def _wait_group(pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            proc = _CHILDREN.get(pgid)
            if proc is not None:
                proc.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def read_exit_marker(results_dir: Path) -> dict | None:
    """The wrapper's exit record, or None while there is none (or it cannot be read)."""
    try:
        return json.loads((Path(results_dir) / EXIT_MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def status_from_marker(marker: dict) -> PlatformStatus:
    exit_code, signum = marker.get("exit_code"), marker.get("signal")
    if marker.get("canceled"):
        return PlatformStatus(CANCELED, exit_code=exit_code, signal=signum, detail="canceled")
    if exit_code == 0 and signum is None:
        return PlatformStatus(COMPLETE, exit_code=0)
    detail = marker.get("detail") or (f"killed by signal {signum}" if signum else f"exit code {exit_code}")
    return PlatformStatus(ERROR, exit_code=exit_code, signal=signum, detail=detail)


def kill_leftovers(backend_id: str, results_dir: Path) -> list[int]:
    """SIGKILL the processes left of a job whose supervisor is gone; returns their pids (Linux /proc only).

    A leftover is in the job's process group (the supervisor's pid) and runs in the job's results folder:
    while any process holds that group id the id cannot be reused, and the folder check keeps an unrelated
    group that got the number later out of reach.
    """
    try:
        pgid = int(backend_id)
    except (TypeError, ValueError):
        return []
    proc, folder = Path("/proc"), os.path.realpath(results_dir)
    killed = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) in (pgid, os.getpid()):
            continue
        try:
            fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
            cwd = os.readlink(entry / "cwd")
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if int(fields[2]) != pgid or not (cwd == folder or cwd.startswith(folder + os.sep)):
            continue
        try:
            os.kill(int(entry.name), signal.SIGKILL)
            killed.append(int(entry.name))
        except OSError:
            continue
    return killed


def _is_our_wrapper(pid: int, results_dir: Path) -> bool:
    """Guard against pid reuse: the live process must be this job's wrapper (Linux /proc; else trust the pid)."""
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True
    try:
        if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # a zombie: ended, not yet reaped by its parent
        cmdline = proc.joinpath("cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return True
    if WRAPPER_MODULE.encode() in cmdline and str(results_dir).encode() in cmdline:
        return True
    return warm_start.is_warm_supervisor(pid, results_dir, cmdline)


def launch_record(results_dir: Path) -> dict | None:
    """The pids the wrapper recorded (wrapper_pid, child_pid, pgid), once it has started the command."""
    try:
        return json.loads((Path(results_dir) / LAUNCH_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
