"""Upload an S3 job's results in a process of its own, so that listing jobs never waits on S3.

``jobs list`` (``list_jobs``) sees many jobs at once and must answer at once, even when an S3 endpoint
accepts connections and never answers. When it finds an S3 job that has ended but whose outputs are not
uploaded yet, it calls :func:`start`: a detached ``python -m skillbank.runtime.sdk.background_upload
JOB_ID STATE_DIR`` that finishes the job as ``wait()`` would (upload, then the terminal status; an upload
failure makes the job an Error ``upload_failed``). Until then the job stays Running in the store.

One uploader per job: it claims ``<results_dir>/.upload.pid`` (its pid) first; a claim whose process is
gone is taken over. The credentials come from the environment, inherited, never from a file.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

CLAIM = ".upload.pid"
MODULE = "skillbank.runtime.sdk.background_upload"
_STARTED: list[subprocess.Popen] = []  # kept referenced: the uploader outlives this call, on purpose


def _claimed(results_dir: Path) -> bool:
    """Whether a live uploader holds the job's claim (a stale claim is removed)."""
    claim = Path(results_dir) / CLAIM
    try:
        pid = int(claim.read_text().strip() or "0")
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        claim.unlink(missing_ok=True)
        return False
    except PermissionError:
        return True


def start(job_id: str, results_dir: str | os.PathLike, state_dir: str | os.PathLike) -> bool:
    """Start the background uploader of ``job_id`` unless one runs already; True when one was started."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir() or _claimed(results_dir):
        return False
    claim = results_dir / CLAIM
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False  # another observer claimed it just now
    try:
        proc = subprocess.Popen([sys.executable, "-m", MODULE, job_id, str(state_dir)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                close_fds=True)
        _STARTED.append(proc)
        os.write(fd, str(proc.pid).encode())
    except OSError:
        claim.unlink(missing_ok=True)
        return False
    finally:
        os.close(fd)
    return True


def main(argv: list[str] | None = None) -> int:
    """Finish one job: upload its results and record its end (the job SDK's own code path)."""
    job_id, state_dir = (sys.argv[1:] if argv is None else argv)[:2]
    from skillbank.runtime.sdk import jobs
    from skillbank.runtime.sdk.store import JobStore

    store = JobStore(state_dir)
    results_dir = Path(store.get(job_id)["results_dir"])
    try:
        jobs.refresh_job(job_id, store=store)
    finally:
        with contextlib.suppress(OSError):
            if (results_dir / CLAIM).read_text().strip() == str(os.getpid()):
                (results_dir / CLAIM).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
