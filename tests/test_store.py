"""The SQLite job store: records, permissions, forward-only status, several processes writing at once."""
from __future__ import annotations

import multiprocessing
import sqlite3
import stat

import pytest

from skillbank.runtime.sdk.store import (
    CANCELED,
    COMPLETE,
    ERROR,
    PENDING,
    RUNNING,
    JobNotFoundError,
    JobStore,
    StatusTransitionError,
)


def _new(store: JobStore, **extra) -> str:
    fields = {"skill": "s", "network_arch": "n", "action": "train", "platform": "local", "spec": {"a": 1},
                  "results_dir": "/tmp/r"}
    fields.update(extra)
    return store.insert(**fields)


def test_record_round_trip_and_listing(tmp_path):
    store = JobStore(tmp_path / "state")
    first = _new(store)
    second = _new(store, action="evaluate", parent_job_id=first)
    record = store.get(second)
    assert record["status"] == PENDING and record["parent_job_id"] == first
    assert record["spec"] == {"a": 1} and record["checkpoints"] == []
    assert record["created_at"] <= record["updated_at"]
    assert [r["id"] for r in store.list()] == [second, first]  # newest first
    assert [r["id"] for r in store.list(action="evaluate")] == [second]
    assert [r["id"] for r in store.list(parent_job_id=first)] == [second]
    assert len(store.list(limit=1)) == 1
    store.update(first, checkpoints=["/x/model_epoch_001_step_00010.pth"], backend_id="42")
    assert store.get(first)["checkpoints"] == ["/x/model_epoch_001_step_00010.pth"]
    with pytest.raises(ValueError, match="already exists"):
        _new(store, job_id=first)


def test_owner_only_permissions_and_wal(tmp_path):
    store = JobStore(tmp_path / "state")
    _new(store)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_state_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLBANK_STATE_DIR", str(tmp_path / "elsewhere"))
    assert JobStore().path == tmp_path / "elsewhere" / "jobs.db"


def test_unknown_job_names_the_id(tmp_path):
    store = JobStore(tmp_path / "state")
    with pytest.raises(JobNotFoundError, match="no-such-job"):
        store.get("no-such-job")
    with pytest.raises(JobNotFoundError, match="no-such-job"):
        store.set_status("no-such-job", RUNNING)


@pytest.mark.parametrize("terminal", [COMPLETE, ERROR, CANCELED])
def test_terminal_status_is_final(tmp_path, terminal):
    store = JobStore(tmp_path / "state")
    job = _new(store)
    assert store.set_status(job, RUNNING, backend_id="7")
    assert store.set_status(job, terminal, exit_code=0)
    for other in (PENDING, RUNNING, COMPLETE, ERROR, CANCELED):
        assert store.set_status(job, other, exit_code=99) is False
    record = store.get(job)
    assert record["status"] == terminal and record["exit_code"] == 0


def test_status_never_moves_back_and_rejects_unknown(tmp_path):
    store = JobStore(tmp_path / "state")
    job = _new(store)
    store.set_status(job, RUNNING)
    assert store.set_status(job, PENDING) is False
    assert store.get(job)["status"] == RUNNING
    with pytest.raises(StatusTransitionError, match="Finished"):
        store.set_status(job, "Finished")


def _writer(state_dir: str, worker: int, count: int, shared_job: str, queue) -> None:
    store = JobStore(state_dir)
    made = []
    for i in range(count):
        job = store.insert(skill=f"w{worker}", network_arch="n", action="train", platform="local",
                           spec={"i": i}, results_dir=f"/tmp/{worker}/{i}")
        store.set_status(job, RUNNING, backend_id=str(i))
        store.set_status(job, COMPLETE, checkpoints=[f"ckpt-{worker}-{i}"])
        made.append(job)
    # Every worker races to end the same job with a different status; exactly one may win.
    status = (COMPLETE, ERROR, CANCELED)[worker % 3]
    won = store.set_status(shared_job, status, exit_code=worker)
    queue.put((worker, made, won))


def test_concurrent_writers_in_several_processes(tmp_path):
    state = str(tmp_path / "state")
    store = JobStore(state)
    shared = _new(store)
    store.set_status(shared, RUNNING)
    workers, count = 4, 15
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(state, w, count, shared, queue)) for w in range(workers)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    made = [job for _, jobs, _ in results for job in jobs]
    assert len(set(made)) == workers * count
    for job in made:
        record = store.get(job)
        assert record["status"] == COMPLETE and len(record["checkpoints"]) == 1
    winners = [worker for worker, _, won in results if won]
    assert len(winners) == 1
    final = store.get(shared)
    assert final["exit_code"] == winners[0]
    assert final["status"] == (COMPLETE, ERROR, CANCELED)[winners[0] % 3]
