"""The persistent job store: one SQLite row per job, safe for several processes at once.

The database lives at ``<state_dir>/jobs.db`` (``$SKILLBANK_STATE_DIR``, default
``~/.local/state/skillbank``), in WAL mode, owner-only (folder 0700, file 0600).
Every write is one short ``BEGIN IMMEDIATE`` transaction and connections wait
up to ``busy_timeout`` for the write lock, so concurrent writers queue instead
of failing. Status only moves forward: a terminal row (Complete, Error,
Canceled) is never changed again; that rule is in the SQL itself, so a racing
writer cannot break it.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR, PENDING, RUNNING, STATUSES, TERMINAL

STATE_DIR_ENV = "SKILLBANK_STATE_DIR"
DB_NAME = "jobs.db"
BUSY_TIMEOUT_MS = 30_000

# Allowed moves; a job may skip Running (a launch that fails, a cancel before start).
_NEXT: dict[str, tuple[str, ...]] = {
    PENDING: (RUNNING, COMPLETE, ERROR, CANCELED),
    RUNNING: (COMPLETE, ERROR, CANCELED),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    skill TEXT NOT NULL,
    network_arch TEXT NOT NULL,
    action TEXT NOT NULL,
    platform TEXT NOT NULL,
    status TEXT NOT NULL,
    parent_job_id TEXT,
    spec TEXT NOT NULL,
    results_dir TEXT NOT NULL,
    results_uri TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    backend_id TEXT,
    checkpoints TEXT NOT NULL DEFAULT '[]',
    best_checkpoint TEXT,
    exit_code INTEGER,
    signal INTEGER,
    failure TEXT,
    uploaded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(parent_job_id);
"""

_JSON_COLUMNS = {"spec", "checkpoints", "failure"}
_UPDATABLE = {
    "spec", "backend_id", "checkpoints", "best_checkpoint", "exit_code", "signal", "failure", "uploaded", "results_uri",
}


class JobNotFoundError(LookupError):
    """A job id that the store does not hold."""

    def __init__(self, job_id: str, where: Path | None = None):
        self.job_id = job_id
        suffix = f" in {where}" if where else ""
        super().__init__(f"unknown job id {job_id!r}{suffix}; `skillbank jobs list` shows the known jobs")


class StatusTransitionError(ValueError):
    """A status change the store refuses (unknown status, or a move out of a terminal state)."""


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "state" / "skillbank"


def now_iso() -> str:
    """UTC time with microseconds, so that ``created_at`` sorts jobs in creation order."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class JobStore:
    """Jobs in one SQLite file. Cheap to create: each call opens its own short-lived connection."""

    def __init__(self, state_dir: str | os.PathLike | None = None):
        self.state_dir = Path(state_dir).expanduser() if state_dir else default_state_dir()
        self.path = self.state_dir / DB_NAME
        self._prepare()

    # -- set-up -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(PermissionError):  # a folder someone else owns keeps its mode
            os.chmod(self.state_dir, 0o700)
        if not self.path.exists():
            # Create the file ourselves so it is 0600 from the first byte (SQLite copies
            # this mode onto its -wal and -shm files).
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; BEGIN IMMEDIATE takes the lock up front (no upgrade deadlocks)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- writes -----------------------------------------------------------------------------
    def insert(
        self,
        *,
        skill: str,
        network_arch: str,
        action: str,
        platform: str,
        spec: dict[str, Any],
        results_dir: str | os.PathLike,
        parent_job_id: str | None = None,
        job_id: str | None = None,
        results_uri: str | None = None,
        status: str = PENDING,
    ) -> str:
        """Record a new job (``spec`` must already be redacted); returns its id."""
        job_id = job_id or str(uuid.uuid4())
        if status not in STATUSES:
            raise StatusTransitionError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        stamp = now_iso()
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO jobs (id, skill, network_arch, action, platform, status, parent_job_id, spec,"
                    " results_dir, results_uri, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (job_id, skill, network_arch, action, platform, status, parent_job_id,
                     json.dumps(spec, sort_keys=False), str(results_dir), results_uri, stamp, stamp),
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"job id {job_id!r} already exists in {self.path}") from exc
        return job_id

    def set_status(self, job_id: str, status: str, **fields: Any) -> bool:
        """Move ``job_id`` to ``status`` (and set ``fields``) unless it is already terminal.

        Returns True when the row changed, False when the job was already in a
        terminal state or the move is not forward (e.g. Running -> Pending).
        """
        if status not in STATUSES:
            raise StatusTransitionError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        allowed_from = [src for src, targets in _NEXT.items() if status in targets]
        if status in _NEXT:  # setting the same non-terminal status again only refreshes fields
            allowed_from.append(status)
        assignments, values = self._assignments(fields)
        placeholders = ",".join("?" for _ in allowed_from)
        terminal = ",".join("?" for _ in TERMINAL)
        sql = (
            f"UPDATE jobs SET status=?, updated_at=?{assignments} WHERE id=? "
            f"AND status IN ({placeholders}) AND status NOT IN ({terminal})"
        )
        with self._write() as conn:
            cur = conn.execute(sql, (status, now_iso(), *values, job_id, *allowed_from, *TERMINAL))
            if cur.rowcount == 0 and conn.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone() is None:
                raise JobNotFoundError(job_id, self.path)
            return cur.rowcount == 1

    def update(self, job_id: str, **fields: Any) -> None:
        """Set non-status fields (backend id, checkpoints, failure, ...)."""
        if not fields:
            return
        assignments, values = self._assignments(fields)
        with self._write() as conn:
            cur = conn.execute(f"UPDATE jobs SET updated_at=?{assignments} WHERE id=?", (now_iso(), *values, job_id))
            if cur.rowcount == 0:
                raise JobNotFoundError(job_id, self.path)

    @staticmethod
    def _assignments(fields: dict[str, Any]) -> tuple[str, list[Any]]:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update job fields {sorted(unknown)}; allowed: {sorted(_UPDATABLE)}")
        parts, values = [], []
        for name, value in fields.items():
            parts.append(f", {name}=?")
            values.append(json.dumps(value) if name in _JSON_COLUMNS and value is not None else value)
        return "".join(parts), values

    # -- reads ------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id, self.path)
        return _record(row)

    def exists(self, job_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone() is not None

    def list(
        self,
        *,
        skill: str | None = None,
        action: str | None = None,
        status: str | None = None,
        parent_job_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first, filtered by any of the given columns."""
        where, values = [], []
        for column, value in (("skill", skill), ("action", action), ("status", status),
                              ("parent_job_id", parent_job_id)):
            if value is not None:
                where.append(f"{column}=?")
                values.append(value)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            values.append(int(limit))
        with self._connect() as conn:
            return [_record(row) for row in conn.execute(sql, values).fetchall()]


def _record(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for name in _JSON_COLUMNS:
        if record.get(name) is not None:
            record[name] = json.loads(record[name])
    record["uploaded"] = bool(record.get("uploaded"))
    return record


__all__ = [
    "JobStore", "JobNotFoundError", "StatusTransitionError", "default_state_dir",
    "PENDING", "RUNNING", "COMPLETE", "ERROR", "CANCELED", "TERMINAL",
]
