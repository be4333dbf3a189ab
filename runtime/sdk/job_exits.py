"""Waiting for jobs to end without polling them: sleep until one of several jobs ends.

A platform that can tell gives a file descriptor per job that becomes readable when the job ends
(``Platform.exit_fd``; local: a Linux pidfd of the job's supervisor). :func:`wait_any` blocks on all of
them at once, so a follower (the AutoML engine) wakes the moment a job exits, not at its next poll. Jobs
on platforms that cannot tell (slurm, docker, kubernetes) are looked at again when ``timeout`` passes.
"""
from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Iterable
from pathlib import Path

from skillbank.runtime.sdk.platforms.base import TERMINAL
from skillbank.runtime.sdk.store import JobNotFoundError, JobStore


def wait_any(job_ids: Iterable[str], timeout: float, *, store: JobStore | None = None,
             also: Iterable[int] = ()) -> bool:
    """Block until one of the jobs ends, one of the descriptors ``also`` is readable (the caller's own wake
    pipe), or ``timeout`` seconds pass; True when a job's end or a descriptor woke it.

    Returns at once when one of them has ended already (its record may still say otherwise: the caller
    refreshes it).
    """
    from skillbank.runtime.sdk.jobs import platform_of

    store = store or JobStore()
    fds: list[int] = []
    try:
        for job_id in job_ids:
            try:
                record = store.get(job_id)
            except JobNotFoundError:
                return True  # gone from the store: the caller's next look says so
            if record["status"] in TERMINAL:
                return True
            if record["backend_id"]:
                fd = platform_of(record).exit_fd(record["backend_id"], Path(record["results_dir"]))
                if fd is not None:
                    fds.append(fd)
        watched = [*fds, *also]
        if not watched:
            time.sleep(timeout)
            return False
        readable, _, _ = select.select(watched, [], [], timeout)
        return bool(readable)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
