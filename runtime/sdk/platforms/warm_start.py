"""Warm starts for the local platform: a process per command that has done its imports and forks each job.

A fresh ``action_recognition`` process spends seconds importing torch and Lightning and about a second
tearing them down; an AutoML run starts many short train jobs of the same command. While
:func:`keep_warm` is open (``LocalPlatform.keep_warm``, which the AutoML engine opens for its run), a
warm server (warm_server.py) runs for each program named, and ``LocalPlatform.launch`` hands it every
job it can take (:func:`starter_for`): the program is a console script of this installation, the job
is one process (no data-parallel launch), and its environment is the one the server started with plus
the job's own variables (its secrets). Any other job, or any job once a server is gone, starts cold
through local_wrapper as before. A warm job is a local job like any other (log, markers, cancel,
status; see warm_server.py), and it outlives the process that started it.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

SERVER_MODULE = "skillbank.runtime.sdk.platforms.warm_server"
READY_TIMEOUT_S = 300.0  # the server's imports (torch, Lightning) on a loaded machine
REPLY_TIMEOUT_S = 60.0  # one fork

_OPEN: dict[str, WarmStarter] = {}  # program name -> its starter, while a keep_warm block holds it


class WarmStarter:
    """A running warm server for one program; :meth:`launch` forks a job from it."""

    def __init__(self, program: str, entry: str, env: Mapping[str, str], log: Path | None = None):
        self.program = program
        self.env = dict(env)
        self.log = log  # where the server's output goes; also why warm starts stopped
        self.ready = False
        self.broken = False
        with open(log, "ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as errors:
            self.process = subprocess.Popen([sys.executable, "-m", SERVER_MODULE, entry], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=errors, env=self.env, close_fds=True)

    def launch(self, results_dir: Path, argv: list[str], env: Mapping[str, str]) -> int | None:
        """The pid of the job's supervisor, or None when this server cannot take the job (start it cold)."""
        if not self.ready:
            self.ready = self._read(READY_TIMEOUT_S).get("ready") is True
            if not self.ready:
                return self._give_up()
        try:
            self.process.stdin.write(json.dumps({"results_dir": str(results_dir), "argv": argv,
                                                 "env": dict(env)}).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            return self._give_up()
        reply = self._read(REPLY_TIMEOUT_S)
        pid = reply.get("pid")
        if isinstance(pid, int):
            return pid
        if "error" in reply:  # the server could not fork this job: say why, or every later job starts cold unexplained
            self._note(f"warm start of {self.program} failed: {reply['error']}; warm starts are off for the "
                       "rest of this run (jobs start cold)")
        return self._give_up()

    def _read(self, timeout: float) -> dict[str, Any]:
        """The server's next reply ({} when it ended, hung or said something else)."""
        if self.broken:
            return {}
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if readable else b""
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            return {}
        return reply if isinstance(reply, dict) else {}

    def _note(self, line: str) -> None:
        """Append ``line`` to the server's log (stderr when there is none)."""
        if self.log is None:
            print(f"skillbank: {line}", file=sys.stderr, flush=True)
            return
        try:
            with open(self.log, "a", encoding="utf-8") as log:
                log.write(f"skillbank: {line}\n")
        except OSError:
            print(f"skillbank: {line}", file=sys.stderr, flush=True)

    def _give_up(self) -> None:
        self.broken = True
        self.close()
        return None

    def close(self) -> None:
        """End the server (the jobs it started go on)."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


@contextlib.contextmanager
def keep_warm(programs: Iterable[str], env: Mapping[str, str], log: Path | None = None) -> Iterator[None]:
    """Keep a warm server for each of ``programs`` (console scripts of this installation) while inside.

    ``env`` is the environment local jobs get (LocalPlatform's); ``log`` takes what the servers print.
    Servers start at once, so their imports overlap with whatever the caller does next.
    """
    started = []
    for program in programs:
        entry = console_entry(program)
        if program in _OPEN or entry is None:
            continue  # an outer block holds one already, or it is not a console script of ours
        _OPEN[program] = WarmStarter(program, entry, env, log)
        started.append(program)
    try:
        yield
    finally:
        for program in started:
            _OPEN.pop(program).close()


def starter_for(command: list[str], env: Mapping[str, str], own_env: Mapping[str, str],
                processes: int) -> WarmStarter | None:
    """The warm server that can take this job, or None (start it cold).

    ``command`` is the resolved argv; ``env`` the job's whole environment and ``own_env`` the variables
    only this job has (its secrets); ``processes`` how many processes the job runs as.
    """
    name = Path(command[0]).name
    starter = _OPEN.get(name)
    if starter is None or starter.broken or processes != 1:
        return None
    if command[0] != str(Path(sys.executable).parent / name):
        return None  # another installation's script of the same name
    shared = {k: v for k, v in env.items() if k not in own_env}
    if shared != {k: v for k, v in starter.env.items() if k not in own_env}:
        return None  # what the server imported under (thread counts ...) may differ from the job's
    return starter


def console_entry(program: str) -> str | None:
    """``MODULE:FUNCTION`` of ``program`` when it is a console script of this installation, else None."""
    from importlib.metadata import entry_points

    if not (Path(sys.executable).parent / program).is_file():
        return None
    found = list(entry_points(group="console_scripts", name=program))
    return found[0].value if found else None


def is_warm_supervisor(pid: int, results_dir: Path, cmdline: list[bytes]) -> bool:
    """Whether process ``pid`` (its ``/proc`` command line given) is the supervisor a warm server forked for
    the job in ``results_dir``: it runs the server's command line in the job's results folder."""
    if SERVER_MODULE.encode() not in cmdline:
        return False
    try:
        return os.readlink(f"/proc/{pid}/cwd") == os.path.realpath(results_dir)
    except OSError:
        return False
