"""Warm starts and exit waits of the local platform: a job forked from a warm server is a local job like any
other (log, markers, exit code, cancel), and a follower wakes when a job ends instead of polling for it."""
from __future__ import annotations

import json
import os
import select
import sys
import textwrap
from pathlib import Path

import pytest
from engines import wait_until

from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.job_exits import wait_any
from skillbank.runtime.sdk.platforms import warm_start
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR, RUNNING, LaunchRequest
from skillbank.runtime.sdk.platforms.local import LocalPlatform, launch_record

# An entry point without torch, so the tests are quick: sleep, print, say what it ran with, exit with a code.
SLEEPER = textwrap.dedent('''
    import os, random, sys, time

    def preload():
        global PRELOADED
        PRELOADED = True

    def main(argv):
        print("argv", argv, "preloaded", PRELOADED, "token", len(os.environ.get("JOB_TOKEN", "")), flush=True)
        print("cwd", os.getcwd(), "argv0", sys.argv[0], "random", random.random(), flush=True)
        time.sleep(float(argv[0]))
        return int(argv[1])
''')


@pytest.fixture
def sleeper(tmp_path):
    """A warm server of the sleeper module (as keep_warm starts one per console script), and its environment."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "sleeper.py").write_text(SLEEPER)
    env = {**LocalPlatform._environment({}), "PYTHONPATH": str(tmp_path / "mods")}
    starter = warm_start.WarmStarter("sleeper", "sleeper:main", env, log=tmp_path / "warm.log")
    yield starter, env
    starter.close()


def _ended(platform, pid, results_dir):
    return wait_until(lambda: (s := platform.status(pid, results_dir)).state != RUNNING and s, 30, "the job to end")


def test_a_forked_job_keeps_the_local_contract(sleeper, tmp_path):
    starter, env = sleeper
    platform = LocalPlatform()
    first, second = tmp_path / "a", tmp_path / "b"
    pid = starter.launch(first, ["/bin/sleeper", "0.3", "3"], {**env, "JOB_TOKEN": "s3cr3t-value"})
    other = starter.launch(second, ["/bin/sleeper", "0", "0"], env)
    assert isinstance(pid, int) and platform.status(str(pid), first).state == RUNNING
    assert os.getpgid(pid) == pid  # its own process group: cancel and leftover sweeps reach all of it
    status = _ended(platform, str(pid), first)
    assert (status.state, status.exit_code) == (ERROR, 3)
    assert _ended(platform, str(other), second).state == COMPLETE
    log = platform.logs(str(pid), first)
    assert "argv ['0.3', '3'] preloaded True token 12" in log  # preloaded once, the job's own environment
    assert f"cwd {first} argv0 /bin/sleeper" in log
    assert log.split("random ")[1] != platform.logs(str(other), second).split("random ")[1]  # fresh random state
    record = launch_record(first)
    assert record["warm"] is True and record["wrapper_pid"] == pid and record["command"][0] == "/bin/sleeper"
    assert "s3cr3t" not in json.dumps(record)


def test_a_forked_job_is_canceled_like_any_local_job(sleeper, tmp_path):
    starter, env = sleeper
    platform = LocalPlatform(grace_s=5)
    pid = str(starter.launch(tmp_path / "j", ["/bin/sleeper", "600", "0"], env))
    wait_until(lambda: "argv" in platform.logs(pid, tmp_path / "j"), 30, "the job to start")
    platform.cancel(pid, tmp_path / "j")
    assert platform.status(pid, tmp_path / "j").state == CANCELED


def test_a_job_the_server_cannot_fork_says_why_warm_starts_stopped(sleeper, tmp_path):
    starter, env = sleeper
    (tmp_path / "a-file").write_text("")
    assert starter.launch(tmp_path / "a-file" / "job", ["/bin/sleeper", "0", "0"], env) is None  # start it cold
    assert starter.broken
    log = (tmp_path / "warm.log").read_text()
    assert "warm start of sleeper failed: " in log and "warm starts are off for the rest of this run" in log


def test_exit_fd_is_readable_once_the_job_ends(sleeper, tmp_path):
    starter, env = sleeper
    platform = LocalPlatform()
    pid = str(starter.launch(tmp_path / "j", ["/bin/sleeper", "0.5", "0"], env))
    fd = platform.exit_fd(pid, tmp_path / "j")
    try:
        readable, _, _ = select.select([fd], [], [], 120)  # wakes at the exit, long before the timeout
        assert readable and platform.status(pid, tmp_path / "j").state == COMPLETE
    finally:
        os.close(fd)
    ended = platform.exit_fd(pid, tmp_path / "j")  # an ended job: readable at once
    try:
        assert select.select([ended], [], [], 0)[0]
    finally:
        os.close(ended)


def test_wait_any_returns_when_one_job_ends(fake_skill, tmp_path):
    data = {"dataset.train_dir": str(tmp_path), "train.num_epochs": 1}
    quick = jobs.create_job(str(fake_skill), "train", {**data, "train.sleep": 0.2})
    slow = jobs.create_job(str(fake_skill), "train", {**data, "train.sleep": 600})
    try:
        assert wait_any([slow, quick], timeout=300) is True  # woken by the quick job's end, not the timeout
        assert jobs.get_job_status(quick) == COMPLETE and jobs.get_job_status(slow) == RUNNING
    finally:
        jobs.cancel_job(slow)


def test_only_single_process_jobs_of_this_installation_in_the_same_environment_start_warm(tmp_path):
    program = Path(sys.executable).parent / "skillbank"
    env = LocalPlatform._environment({})
    with LocalPlatform().keep_warm(["skillbank", "not-a-console-script"]):
        assert set(warm_start._OPEN) == {"skillbank"}
        assert warm_start.starter_for([str(program), "list"], env, {}, processes=1) is not None
        assert warm_start.starter_for([str(program), "list"], {**env, "X": "1"}, {"X": "1"}, 1) is not None
        assert warm_start.starter_for([str(program), "list"], env, {}, processes=2) is None  # data-parallel
        assert warm_start.starter_for(["/elsewhere/bin/skillbank", "list"], env, {}, 1) is None
        assert warm_start.starter_for([str(program), "list"], {**env, "OMP_NUM_THREADS": "7"}, {}, 1) is None
        request = LaunchRequest(job_id="j", command=["skillbank", "list"], results_dir=tmp_path / "r")
        backend = LocalPlatform().launch(request)
        status = _ended(LocalPlatform(), backend, tmp_path / "r")
        assert status.state == COMPLETE and launch_record(tmp_path / "r")["warm"] is True
        assert "tao-train-action-recognition" in LocalPlatform().logs(backend, tmp_path / "r")
    assert warm_start._OPEN == {}
