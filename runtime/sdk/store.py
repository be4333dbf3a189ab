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

from skillbank.runtime import settings
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR, PENDING, RUNNING, STATUSES, TERMINAL

STATE_DIR_ENV = settings.STATE_DIR  # named in messages
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
    uploaded INTEGER NOT NULL DEFAULT 0,
    name TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    resumed_from TEXT,
    automl TEXT,
    platform_options TEXT,
    inherited TEXT,
    inputs TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(parent_job_id);
"""
# Columns added after the first release: a store made before them gets them on open (ALTER TABLE).
_ADDED_COLUMNS = {"name": "TEXT", "tags": "TEXT NOT NULL DEFAULT '[]'", "resumed_from": "TEXT", "automl": "TEXT",
                  "platform_options": "TEXT", "inherited": "TEXT", "inputs": "TEXT"}
_INDEXES = "CREATE INDEX IF NOT EXISTS jobs_resumed_from ON jobs(resumed_from);"

_JSON_COLUMNS = {"spec", "checkpoints", "failure", "tags", "automl", "platform_options", "inherited", "inputs"}
_UPDATABLE = {
    "spec", "backend_id", "checkpoints", "best_checkpoint", "exit_code", "signal", "failure", "uploaded", "results_uri",
    "inputs",
}


class JobNotFoundError(SkillbankError, LookupError):
    """A job id that the store does not hold."""

    def __init__(self, job_id: str, where: Path | None = None):
        self.job_id = job_id
        suffix = f" in {where}" if where else ""
        super().__init__(f"unknown job id {job_id!r}{suffix}; `skillbank jobs list` shows the known jobs")


class StoreError(SkillbankError, RuntimeError):
    """A job store that cannot be used: a damaged or foreign jobs.db, or a state folder that is not a folder."""

    exit_code = 2  # the machine's settings, not the command, are wrong


class StatusTransitionError(SkillbankError, ValueError):
    """A status change the store refuses (unknown status, or a move out of a terminal state)."""


def default_state_dir() -> Path:
    return settings.state_dir()


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
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise StoreError(f"state folder {self.state_dir} (${STATE_DIR_ENV}) is not a folder; point "
                             f"{STATE_DIR_ENV} at a folder (the job store is made there)")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot make the state folder {self.state_dir} (${STATE_DIR_ENV}): "
                             f"{exc.strerror or exc}") from None
        with contextlib.suppress(PermissionError):  # a folder someone else owns keeps its mode
            os.chmod(self.state_dir, 0o700)
        if not self.path.exists():
            self._create()
        elif self.path.is_file() and self.path.stat().st_size == 0 and not _has_wal(self.path):
            # _create never leaves an empty file in place: this one was truncated, and its jobs are gone.
            raise StoreError(f"job store {self.path} is empty (0 bytes): it was truncated; move it away (its "
                             f"jobs are lost) or set {STATE_DIR_ENV} to another folder")
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            _add_missing_columns(conn)
            conn.executescript(_INDEXES)

    def _create(self) -> None:
        """Make jobs.db with its schema beside it and link it into place: a reader never sees an empty file.

        The file is 0600 from the first byte (SQLite copies this mode onto its -wal and -shm files).
        """
        tmp = self.path.with_name(f".{DB_NAME}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            finally:
                conn.close()
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs is kept
                os.link(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot create the job store {self.path}: {exc}") from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        except sqlite3.IntegrityError:
            raise  # a duplicate id: the caller words it
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        finally:
            conn.close()

    def _unusable(self, exc: Exception) -> StoreError:
        return StoreError(f"job store {self.path} cannot be used ({exc}): it is damaged or not a skillbank job "
                          f"store; move it away (its jobs are lost) or set {STATE_DIR_ENV} to another folder")

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
        name: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        resumed_from: str | None = None,
        automl: dict[str, Any] | None = None,
        platform_options: dict[str, Any] | None = None,
        inherited: dict[str, Any] | None = None,
    ) -> str:
        """Record a new job (``spec`` must already be redacted); returns its id.

        ``name`` and ``tags`` are the user's labels; ``resumed_from`` the job this one continues;
        ``automl`` the AutoML study a trial job belongs to (workspace, study, trial, rung);
        ``platform_options`` the platform's settings (``--platform-option``), so that status, logs and
        cancel ask the same CLI, namespace ... as the launch did; ``inherited`` the settings the spec took
        from the model it runs (``{"from": ..., "values": {key: value}}``, see inherited_settings.py).
        """
        job_id = job_id or str(uuid.uuid4())
        if status not in STATUSES:
            raise StatusTransitionError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        stamp = now_iso()
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO jobs (id, skill, network_arch, action, platform, status, parent_job_id, spec,"
                    " results_dir, results_uri, created_at, updated_at, name, tags, resumed_from, automl,"
                    " platform_options, inherited) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (job_id, skill, network_arch, action, platform, status, parent_job_id,
                     json.dumps(spec, sort_keys=False), str(results_dir), results_uri, stamp, stamp,
                     name, json.dumps(list(tags)), resumed_from, json.dumps(automl) if automl else None,
                     json.dumps(platform_options) if platform_options else None,
                     json.dumps(inherited) if inherited else None),
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
        since: str | None = None,
        tag: str | None = None,
        automl_workspace: str | None = None,
        trials: bool = True,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first, filtered by any of the given columns.

        ``since``: created at or after this ISO time (UTC, as ``created_at``); ``tag``: jobs carrying it;
        ``automl_workspace``: trial jobs of that AutoML workspace (its absolute path); ``trials=False``
        leaves out every AutoML trial job.
        """
        where, values = [], []
        for column, value in (("skill", skill), ("action", action), ("status", status),
                              ("parent_job_id", parent_job_id)):
            if value is not None:
                where.append(f"{column}=?")
                values.append(value)
        if since is not None:
            where.append("created_at>=?")
            values.append(since)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value=?)")
            values.append(tag)
        if automl_workspace is not None:
            where.append("json_extract(automl, '$.workspace')=?")
            values.append(automl_workspace)
        if not trials:
            where.append("automl IS NULL")
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            values.append(int(limit))
        with self._connect() as conn:
            return [_record(row) for row in conn.execute(sql, values).fetchall()]

    def resumed_by(self, job_id: str) -> list[str]:
        """Ids of the jobs that resume ``job_id`` (``skillbank jobs resume``), oldest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT id FROM jobs WHERE resumed_from=? ORDER BY created_at, id", (job_id,))
            return [row["id"] for row in rows.fetchall()]


def _has_wal(path: Path) -> bool:
    """Whether SQLite's write-ahead log beside ``path`` holds anything (then an empty main file is normal)."""
    wal = Path(f"{path}-wal")
    return wal.is_file() and wal.stat().st_size > 0


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older version up to the current columns."""
    present = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)").fetchall()}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in present:
            try:
                conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise


def _record(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for name in _JSON_COLUMNS:
        if record.get(name) is not None:
            record[name] = json.loads(record[name])
    record["uploaded"] = bool(record.get("uploaded"))
    return record


__all__ = [
    "JobStore", "JobNotFoundError", "StatusTransitionError", "StoreError", "default_state_dir",
    "PENDING", "RUNNING", "COMPLETE", "ERROR", "CANCELED", "TERMINAL",
]
