"""A warm job starter: ``python -m skillbank.runtime.sdk.platforms.warm_server MODULE:FUNCTION``.

It imports a console script's entry point once (and calls the module's ``preload()`` when it has one:
torch, Lightning and the model for ``action_recognition``), then reads one JSON request per line on
stdin and forks a job from itself for each: no interpreter start, no imports, no teardown per job.
Its own process does nothing but import and fork, so it holds no threads a fork would break.

A forked job keeps the local platform's contract (local_wrapper.py) exactly: the fork is the job's
supervisor, in its own session and process group, with stdout/stderr appended to
``RESULTS_DIR/log.txt``, cwd the results folder; it records ``.launch.json``, forks the command (which
gets SIGKILL when its supervisor dies), forwards SIGTERM/SIGINT/SIGHUP to it, and writes the exit
marker ``.exit`` when it ends. The command runs the entry point in-process with the request's
``argv`` and environment, and leaves without the interpreter's teardown (fast_exit.py).

Protocol: the server answers ``{"ready": true}`` once it has imported, then one line per request:
``{"results_dir", "argv", "env"}`` -> ``{"pid": SUPERVISOR_PID}`` (or ``{"error": TEXT}``). It ends at
the end of stdin (its client closed it, or died); the jobs it started go on without it.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skillbank.runtime.fast_exit import exit_now
from skillbank.runtime.sdk.platforms.base import LOG_NAME
from skillbank.runtime.sdk.platforms.local_wrapper import FORWARDED, die_with_parent, supervise_child


def load_entry(entry: str) -> Callable[[list[str]], Any]:
    """The function ``MODULE:FUNCTION`` names, after the module's ``preload()`` (when it has one) ran."""
    module_name, _, function = entry.partition(":")
    module = importlib.import_module(module_name)
    preload = getattr(module, "preload", None)
    if callable(preload):
        preload()
    return getattr(module, function)


def serve(entry: str) -> None:
    main = load_entry(entry)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the supervisors this process forks
    _reply({"ready": True})
    for line in sys.stdin:
        try:
            request = json.loads(line)
            _reply({"pid": fork_job(main, Path(request["results_dir"]), list(request["argv"]),
                                    dict(request["env"]))})
        except Exception as exc:  # noqa: BLE001 - the client starts the job the cold way instead
            _reply({"error": f"{type(exc).__name__}: {exc}"})
    os._exit(0)  # its client is done: nothing to flush, and a teardown with torch loaded takes a second


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()  # nothing stays buffered for a fork to inherit


def fork_job(main: Callable[[list[str]], Any], results_dir: Path, argv: list[str], env: dict[str, str]) -> int:
    """Fork the job's supervisor; returns its pid (the job's backend id and process group) once the
    supervisor is its own process group in the results folder, so that status and cancel find it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    settled, settled_signal = os.pipe()
    pid = os.fork()
    if pid:
        os.close(settled_signal)
        os.read(settled, 1)  # returns when the supervisor closes its end (or ends)
        os.close(settled)
        return pid
    code = 1
    try:  # the supervisor: never returns to the server's loop
        os.close(settled)
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # it waits for its command itself
        _enter(results_dir)
        os.close(settled_signal)
        code = supervise(main, results_dir, argv, env)
    finally:
        os._exit(code)


def _enter(results_dir: Path) -> None:
    """stdin from /dev/null, stdout and stderr appended to the job's log, cwd the results folder."""
    log = os.open(results_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.chdir(results_dir)


def supervise(main: Callable[[list[str]], Any], results_dir: Path, argv: list[str], env: dict[str, str]) -> int:
    """Run the command as local_wrapper.supervise does, forked instead of executed."""
    supervisor = os.getpid()
    child = os.fork()
    if child == 0:
        run_command(main, argv, env, supervisor)

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    def wait() -> int:
        return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])  # negative for a signal, as Popen says

    return supervise_child(results_dir, child, argv, wait=wait, send=send, warm=True)


def run_command(main: Callable[[list[str]], Any], argv: list[str], env: dict[str, str], supervisor: int) -> None:
    """The job's command: ``main(argv[1:])`` in this forked process, as if started fresh; never returns."""
    code = 1
    try:
        arm = die_with_parent(supervisor)
        if arm is not None:
            arm()
        for signum in FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = list(argv)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the process's stdin until it ends
        sys.stdout.reconfigure(line_buffering=True)  # job followers read the log as it grows
        _fresh_random_state()
        result = main(argv[1:])
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported in the job's log like an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        exit_now(code)


def _fresh_random_state() -> None:
    """Seed Python's and NumPy's global generators from the OS, as a fresh interpreter does (a fork copies them)."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if len(args) != 1 or ":" not in args[0]:
        print("usage: python -m skillbank.runtime.sdk.platforms.warm_server MODULE:FUNCTION", file=sys.stderr)
        return 2
    serve(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
