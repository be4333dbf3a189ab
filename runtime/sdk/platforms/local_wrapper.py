"""Supervisor of one local job: ``python -m skillbank.runtime.sdk.platforms.local_wrapper RESULTS_DIR -- ARGV...``.

It is the leader of the job's own session and process group, so it outlives
the process that launched it. It runs ARGV with stdout+stderr appended to
``RESULTS_DIR/log.txt``, records the pids in ``.launch.json``, forwards
SIGTERM/SIGINT to the command, and when the command ends writes the exit
marker ``RESULTS_DIR/.exit`` (JSON: exit_code, signal, canceled, ended_at)
atomically. Without that marker a vanished job is known to be lost.
Secrets arrive in the environment and are never written by this module.

The command dies with its supervisor: on Linux it is started with
``PR_SET_PDEATHSIG`` = SIGKILL, so a ``kill -9`` of the supervisor (which
leaves the record "lost") cannot leave a training running that nobody tracks
or can cancel. What such a command started itself is swept by the platform
(``LocalPlatform`` kills what is left of the job's process group).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from skillbank.runtime.sdk.platforms.base import CANCEL_MARKER, EXIT_MARKER, LOG_NAME

LAUNCH_RECORD = ".launch.json"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # what a supervisor passes on to its command


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def exit_record(returncode: int | None, results_dir: Path) -> dict:
    """The marker contents for a ``Popen.returncode`` (negative = killed by that signal)."""
    canceled = (results_dir / CANCEL_MARKER).exists()
    if returncode is None:
        return {"exit_code": None, "signal": None, "canceled": canceled, "ended_at": time.time()}
    if returncode < 0:
        return {"exit_code": None, "signal": -returncode, "canceled": canceled, "ended_at": time.time()}
    return {"exit_code": returncode, "signal": None, "canceled": canceled, "ended_at": time.time()}


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int):
    """A ``preexec_fn``: the command gets SIGKILL when its supervisor dies (Linux; elsewhere None)."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the supervisor died before the line above took effect
            os._exit(137)

    return arm


def supervise(results_dir: Path, argv: list[str]) -> int:
    results_dir.mkdir(parents=True, exist_ok=True)
    with open(results_dir / LOG_NAME, "ab", buffering=0) as log:
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=results_dir, preexec_fn=die_with_parent(os.getpid()))
        except OSError as exc:  # command not found / not executable
            log.write(f"skillbank: cannot start {argv[0]!r}: {exc.strerror or exc}\n".encode())
            write_json_atomic(results_dir / EXIT_MARKER, {**exit_record(127, results_dir), "detail": str(exc)})
            return 127

        def send(signum: int) -> None:
            if child.poll() is None:
                child.send_signal(signum)

        return supervise_child(results_dir, child.pid, argv, wait=child.wait, send=send)


def supervise_child(results_dir: Path, child_pid: int, argv: list[str], *, wait: Callable[[], int],
                    send: Callable[[int], None], **launch_fields: object) -> int:
    """The supervisor's part once its command runs as ``child_pid`` (here, or forked by a warm server):
    forward :data:`FORWARDED` signals through ``send``, record ``.launch.json`` (plus ``launch_fields``),
    wait (``wait`` returns a ``Popen.returncode``) and write the exit marker. Returns the supervisor's code."""

    def forward(signum: int, _frame: object) -> None:
        # The whole group usually got the signal already; forwarding covers a signal sent to us alone.
        send(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    write_json_atomic(results_dir / LAUNCH_RECORD, {
        "wrapper_pid": os.getpid(), "child_pid": child_pid, "pgid": os.getpgid(0),
        "started_at": time.time(), "command": argv, **launch_fields,
    })
    while True:
        try:
            returncode = wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue
    write_json_atomic(results_dir / EXIT_MARKER, exit_record(returncode, results_dir))
    return 0


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m skillbank.runtime.sdk.platforms.local_wrapper RESULTS_DIR -- COMMAND [ARGS...]",
              file=sys.stderr)
        return 2
    return supervise(Path(args[0]), args[2:])


if __name__ == "__main__":
    sys.exit(main())
