"""Where a study lives, and the locks that let several workers share it.

* :func:`open_storage` opens an Optuna RDB storage (SQLite in the workspace by default, PostgreSQL or
  MySQL with ``--storage``); a missing database driver or an unreachable database is one
  :class:`StudyStorageError` line that names the URL (its password masked), not a traceback.
* :func:`study_lock` serialises what must not interleave between workers of one study: creating it,
  and "count the budget, then ask for a trial", so that together they start exactly ``max_trials``.
  PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite: ``flock`` on a file beside it.
* :func:`workspace_lock` keeps a second worker out of a workspace that a running worker uses (the
  worker identity and its files live there).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skillbank.runtime.automl.workspace import redact_url
from skillbank.runtime.errors import SkillbankError

_DRIVERS = {  # SQLAlchemy driver name -> the pip package that provides it (else the missing module's name)
    "postgresql": "psycopg[binary]", "postgresql+psycopg": "psycopg[binary]", "postgresql+psycopg2": "psycopg2-binary",
    "mysql": "mysqlclient", "mysql+pymysql": "PyMySQL",
}
LOCK_FILE = ".worker.lock"


class StudyStorageError(SkillbankError, RuntimeError):
    """The study storage cannot be opened (message: one line with the masked URL and the cause)."""

    exit_code = 2


class WorkspaceInUseError(StudyStorageError):
    """Another running worker holds the workspace."""


def open_storage(url: str) -> Any:
    """An ``optuna.storages.RDBStorage`` for ``url``, checked: the driver is installed and the database answers."""
    import optuna
    import sqlalchemy
    from sqlalchemy.engine import make_url

    shown = redact_url(url)
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StudyStorageError(f"--storage {shown!r} is not a database URL; e.g. "
                                "postgresql://user:password@host:5432/db or sqlite:///study.db") from None
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        package = _DRIVERS.get(parsed.drivername) or exc.name or f"the driver of {parsed.drivername}"
        raise StudyStorageError(f"--storage {shown}: the database driver is not installed ({exc.name or exc}); "
                                f"pip install {package}") from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise StudyStorageError(f"--storage {shown}: SQLAlchemy knows no database {parsed.drivername!r}") from None
    kwargs = {"pool_pre_ping": True}
    if parsed.get_backend_name() != "sqlite":
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        with _schema_lock(url, kwargs):
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - every way of not reaching the database becomes one line
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise StudyStorageError(f"cannot open the study storage {shown}: {cause[:300]}") from None
    if parsed.get_backend_name() == "sqlite":
        _write_ahead(storage.engine)
    return storage


def _write_ahead(engine: Any) -> None:
    """SQLite in write-ahead-log mode with ``synchronous=NORMAL`` (as the job store): a commit no longer waits
    for the disk (about 20 ms each, dozens per trial), and a crash still leaves a consistent study."""
    import sqlalchemy

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", pragmas)
    engine.dispose()  # the connections opened while Optuna made its tables reconnect with the pragmas


@contextlib.contextmanager
def _schema_lock(url: str, engine_kwargs: dict[str, Any]) -> Iterator[None]:
    """On PostgreSQL, one worker at a time creates Optuna's tables (two at once collide on their types)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool, **engine_kwargs)
    try:
        if engine.url.get_backend_name() != "postgresql":
            yield
            return
        key = {"key": _lock_key("<schema>")}
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), key)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), key)
                conn.commit()
    finally:
        engine.dispose()


def _lock_key(study_name: str) -> int:
    """A stable signed 64-bit key for the study's advisory lock."""
    return int.from_bytes(hashlib.sha256(f"skillbank-automl:{study_name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def study_lock(storage: Any, study_name: str) -> Iterator[None]:
    """Hold the study's lock across workers (and machines, for a database server) while inside."""
    engine = storage.engine
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        database = engine.url.database or ""
        path = Path(f"{database}.lock") if database and database != ":memory:" else None
        if path is None:
            yield
            return
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        if backend == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _lock_key(study_name)})
            unlock = text("SELECT pg_advisory_unlock(:key)")
            params: dict[str, Any] = {"key": _lock_key(study_name)}
        elif backend == "mysql":
            conn.execute(text("SELECT GET_LOCK(:name, -1)"), {"name": f"skillbank-automl:{study_name}"[:64]})
            unlock = text("SELECT RELEASE_LOCK(:name)")
            params = {"name": f"skillbank-automl:{study_name}"[:64]}
        else:  # another database: the transactions of Optuna itself are all there is
            yield
            return
        conn.commit()
        try:
            yield
        finally:
            conn.execute(unlock, params)
            conn.commit()


@contextlib.contextmanager
def workspace_lock(workspace: Path) -> Iterator[None]:
    """Hold the workspace for this worker; another worker there gets a one-line error at once."""
    path = Path(workspace) / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WorkspaceInUseError(f"workspace {workspace} is in use by a running worker ({holder}); give each "
                                    f"worker its own --workspace (they share the study through --storage)") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
