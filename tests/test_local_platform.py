"""The local platform: detached process groups, exit markers, logs, cancel, killed and lost jobs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from engines import wait_until

from skillbank.cli.jobs import jobs as jobs_cli
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms import get_platform
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR, RUNNING, LaunchRequest, PlatformError
from skillbank.runtime.sdk.platforms.local import LocalPlatform, launch_record


def _platform_wait(platform, backend_id, results_dir, timeout=20.0):
    return wait_until(lambda: (s := platform.status(backend_id, results_dir)).state != RUNNING and s,
                      timeout, "the job to end")


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_registry_knows_platforms():
    assert isinstance(get_platform("local"), LocalPlatform)
    with pytest.raises(PlatformError, match="unknown platform 'moon'; allowed: local, docker, slurm, kubernetes"):
        get_platform("moon")


def test_exit_code_log_and_environment(tmp_path):
    platform = LocalPlatform()
    code = "import os, sys; print('hello', len(os.environ['JOB_TOKEN'])); sys.exit(3)"
    request = LaunchRequest(job_id="j", command=[sys.executable, "-c", code], results_dir=tmp_path / "r",
                            env={"JOB_TOKEN": "s3cr3t-value"})
    backend = platform.launch(request)
    status = _platform_wait(platform, backend, tmp_path / "r")
    assert (status.state, status.exit_code, status.signal) == (ERROR, 3, None)
    assert platform.logs(backend, tmp_path / "r") == "hello 12\n"
    assert "s3cr3t" not in platform.render(request) and "JOB_TOKEN" in platform.render(request)
    assert "s3cr3t" not in (tmp_path / "r" / ".launch.json").read_text()


def test_missing_command_is_an_error_with_a_log_line(tmp_path):
    platform = LocalPlatform()
    backend = platform.launch(LaunchRequest(job_id="j", command=["no-such-program-xyz"], results_dir=tmp_path))
    status = _platform_wait(platform, backend, tmp_path)
    assert status.state == ERROR and status.exit_code == 127
    assert "cannot start 'no-such-program-xyz'" in platform.logs(backend, tmp_path)


def test_job_survives_the_process_that_launched_it(tmp_path):
    results = tmp_path / "r"
    launcher = (
        "import sys; from pathlib import Path\n"
        "from skillbank.runtime.sdk.platforms.base import LaunchRequest\n"
        "from skillbank.runtime.sdk.platforms.local import LocalPlatform\n"
        f"cmd = [sys.executable, '-c', 'import time; time.sleep(1.0); print(\"survived\")']\n"
        f"print(LocalPlatform().launch(LaunchRequest(job_id='j', command=cmd, results_dir=Path({str(results)!r}))))\n"
    )
    backend = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, check=True,
                             timeout=30).stdout.strip()
    platform = LocalPlatform()
    assert platform.status(backend, results).state == RUNNING  # the launcher is gone, the job is not
    status = _platform_wait(platform, backend, results)
    assert status.state == COMPLETE and status.exit_code == 0
    assert "survived" in platform.logs(backend, results, tail=1)


def test_cancel_kills_the_process_group(fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 30.0})
    record = jobs.get_job(job)
    assert record["status"] == RUNNING
    pids = wait_until(lambda: launch_record(Path(record["results_dir"])), 20, "the launch record")
    assert jobs.cancel_job(job) == CANCELED
    assert wait_until(lambda: _group_gone(pids["pgid"]), 10, "the process group to exit")
    assert jobs.get_job_status(job) == CANCELED
    assert jobs.cancel_job(job) == CANCELED  # a second cancel changes nothing
    assert jobs.get_failure_analysis(job)["category"] is None


def test_killed_child_ends_in_error_with_analysis(fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 30.0})
    results = Path(jobs.get_job(job)["results_dir"])
    pids = wait_until(lambda: launch_record(results), 20, "the launch record")
    wait_until(lambda: "fake model" in jobs.get_job_logs(job), 20, "the model to start")
    os.kill(pids["child_pid"], signal.SIGKILL)
    assert jobs.wait(job, timeout=20, poll=0.1) == ERROR
    analysis = jobs.get_failure_analysis(job)
    assert analysis["category"] == "signal" and analysis["signal"] == signal.SIGKILL
    assert analysis["signal_name"] == "SIGKILL" and "fake model: train" in analysis["log_tail"]
    assert analysis["suggestion"] and "\n" not in analysis["suggestion"]
    assert jobs.get_job(job)["failure"]["category"] == "signal"


def test_lost_process_is_an_error(fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 30.0})
    results = Path(jobs.get_job(job)["results_dir"])
    pids = wait_until(lambda: launch_record(results), 20, "the launch record")
    os.killpg(pids["pgid"], signal.SIGKILL)  # the supervisor dies too: nobody writes an exit marker
    assert jobs.wait(job, timeout=20, poll=0.1) == ERROR
    assert not (results / ".exit").exists()
    analysis = jobs.get_failure_analysis(job)
    assert analysis["category"] == "lost_process" and analysis["exit_code"] is None


def test_nonzero_exit_analysis(fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.fail_code": 3,
                                                     "num_epochs": 1})
    assert jobs.wait(job, timeout=30, poll=0.1) == ERROR
    analysis = jobs.get_failure_analysis(job)
    assert (analysis["category"], analysis["exit_code"]) == ("nonzero_exit", 3)
    assert "something broke" in analysis["log_tail"]
    assert jobs.get_job(job)["checkpoints"] == []  # only Complete jobs record checkpoints


def test_unknown_job_id_is_named():
    for call in (jobs.get_job, jobs.get_job_status, jobs.cancel_job, jobs.get_job_logs, jobs.get_failure_analysis):
        with pytest.raises(LookupError, match="unknown job id 'nope-123'"):
            call("nope-123")
    result = CliRunner().invoke(jobs_cli, ["show", "nope-123"])
    assert result.exit_code == 1 and "unknown job id 'nope-123'" in result.output


def test_cli_list_show_logs_wait_cancel(fake_skill, tmp_path):
    runner = CliRunner()
    done = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 1})
    result = runner.invoke(jobs_cli, ["wait", done, "--poll", "0.1", "--format", "json"])
    assert result.exit_code == 0, result.output
    waited = json.loads(result.stdout)
    assert waited["status"] == COMPLETE and waited["checkpoints"][0].endswith("model_epoch_000_step_00010.pth")

    slow = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 30.0})
    listed = json.loads(runner.invoke(jobs_cli, ["list", "--format", "json"]).output)
    assert [r["id"] for r in listed] == [slow, done]
    assert [r["status"] for r in listed] == [RUNNING, COMPLETE]
    running = json.loads(runner.invoke(jobs_cli, ["list", "--status", "Running", "--format", "json"]).output)
    assert [r["id"] for r in running] == [slow]
    shown = json.loads(runner.invoke(jobs_cli, ["show", done, "--format", "json"]).output)
    assert shown["id"] == done and shown["spec"]["results_dir"] == shown["results_dir"]
    assert "epoch 1/1" in runner.invoke(jobs_cli, ["logs", done, "--tail", "2"]).output
    text = runner.invoke(jobs_cli, ["list"]).output
    assert done in text and "Complete" in text
    canceled = runner.invoke(jobs_cli, ["cancel", slow, "--format", "json"])
    assert json.loads(canceled.output) == {"id": slow, "status": CANCELED}
    result = runner.invoke(jobs_cli, ["wait", slow, "--format", "json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["status"] == CANCELED


def test_cancel_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path):
    platform = LocalPlatform(grace_s=0.5)
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)")
    backend = platform.launch(LaunchRequest(job_id="j", command=[sys.executable, "-c", code], results_dir=tmp_path))
    wait_until(lambda: "ready" in platform.logs(backend, tmp_path), 20, "the command to start")
    started = time.monotonic()
    platform.cancel(backend, tmp_path)
    assert time.monotonic() - started < 8
    assert _group_gone(int(backend))
    status = platform.status(backend, tmp_path)
    assert status.state == CANCELED and status.signal == signal.SIGKILL


@pytest.mark.parametrize("log, exit_code, signum, category", [
    ("RuntimeError: CUDA out of memory. Tried to allocate 2 GiB", 1, None, "out_of_memory"),
    ("", None, signal.SIGKILL, "signal"),
    ("FileNotFoundError: [Errno 2] No such file or directory: '/data/train'", 1, None, "missing_file"),
    ("ModuleNotFoundError: No module named 'torchvision'", 1, None, "missing_dependency"),
    ("plain failure", 4, None, "nonzero_exit"),
])
def test_failure_categories(log, exit_code, signum, category):
    from skillbank.runtime.sdk.failure import analyze_failure

    analysis = analyze_failure(exit_code=exit_code, signal=signum, log_text="start\n" + log)
    assert analysis["category"] == category and analysis["exit_code"] == exit_code
    assert analysis["log_tail"].endswith(log) and len(analysis["suggestion"].splitlines()) == 1
