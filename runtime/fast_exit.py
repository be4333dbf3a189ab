"""Leaving a process without the interpreter's teardown, which takes about a second once torch is loaded.

What a normal exit does that anyone can see still happens: the ``atexit`` handlers run (logging's
flush and close among them) and stdout and stderr are flushed. What is skipped is freeing every module
and object one by one, which nothing reads. Used where a job's process ends: the model's command
(``action_recognition``) and the jobs a warm starter forks (sdk/platforms/warm_server.py).
"""
from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """End this process with ``code`` after the ``atexit`` handlers and a flush of stdout and stderr."""
    try:
        atexit._run_exitfuncs()  # what sys.exit would run; the module teardown after it is what is skipped
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
