"""AutoML on PostgreSQL (tests/engines.py): workers that share one study, resume after a kill, clear errors.

Each worker is a real ``skillbank automl run`` process; they share the job store and the sample data,
and each has its own workspace. Trials train one epoch on 32x32 frames and score the training KPI
val_acc, so no evaluate jobs run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engines import free_port, wait_until

from skillbank.runtime.sdk import jobs

SKILL = "tao-train-action-recognition"
SKILLBANK = [str(Path(sys.executable).parent / "skillbank")]  # this installation's command
TIMEOUT = 300


@pytest.fixture
def overrides_file(sample_overrides, tmp_path) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(yaml.safe_dump(sample_overrides))
    return path


def worker(overrides_file: Path, workspace: Path, storage: str, study: str, max_trials: int) -> subprocess.Popen:
    argv = [*SKILLBANK, "automl", "run", SKILL, str(overrides_file), "--storage", storage, "--study-name", study,
            "--workspace", str(workspace), "--max-trials", str(max_trials), "--max-epochs", "1",
            "--metric", "val_acc", "--algorithm", "random", "--poll-interval", "0.3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two workers' jobs share two cores
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finish(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"worker still running after {TIMEOUT}s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    return out


def study_trials(storage: str, study: str) -> list:
    import optuna

    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


# -------------------------------------------------------------------------------- errors, no server needed
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SKILLBANK, *args], capture_output=True, text=True, timeout=120)


def test_an_unreachable_database_is_one_line_and_exit_2(overrides_file, tmp_path):
    url = f"postgresql://optuna:pw-Secret-77@127.0.0.1:{free_port()}/optuna"
    done = run_cli("automl", "run", SKILL, str(overrides_file), "--storage", url, "--workspace", str(tmp_path / "ws"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot open the study storage postgresql://optuna:***@")
    assert "refused" in lines[0] and "pw-Secret-77" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ws").exists()  # nothing half-made


def test_a_missing_database_driver_is_one_line_and_exit_2(overrides_file, tmp_path):
    done = run_cli("automl", "run", SKILL, str(overrides_file), "--storage", "postgresql+pg8000://u@127.0.0.1/db",
                   "--workspace", str(tmp_path / "ws"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Error: --storage postgresql+pg8000://u@127.0.0.1/db: the database driver is not installed (pg8000); "
        "pip install pg8000"]


def test_a_second_worker_in_a_busy_workspace_is_refused(overrides_file, tmp_path):
    from skillbank.runtime.automl.engine import run_automl
    from skillbank.runtime.automl.storage import WorkspaceInUseError, workspace_lock

    workspace = tmp_path / "ws"
    workspace.mkdir()
    with workspace_lock(workspace):  # a running worker holds it
        with pytest.raises(WorkspaceInUseError, match=r"is in use by a running worker \(pid \d+\); give each worker "
                                                      r"its own --workspace"):
            run_automl(SKILL, yaml.safe_load(overrides_file.read_text()), workspace=workspace, max_epochs=1,
                       metric="val_acc")
    assert jobs.list_jobs(trials=True) == []


# -------------------------------------------------------------------------------- on a real PostgreSQL
@pytest.mark.engine
@pytest.mark.slow
def test_two_workers_share_one_study_and_run_exactly_max_trials(postgres_url, overrides_file, tmp_path):
    workers = [worker(overrides_file, tmp_path / f"ws-{name}", postgres_url, "shared", 3) for name in "ab"]
    outputs = [finish(proc) for proc in workers]
    trials = study_trials(postgres_url, "shared")
    assert sorted(t.number for t in trials) == [0, 1, 2]  # exactly max_trials, no number twice
    assert {t.state.name for t in trials} == {"COMPLETE"}
    assert len({t.user_attrs["worker"] for t in trials}) == 2, outputs  # both workers ran trials
    best = [json.loads((tmp_path / f"ws-{name}" / "best_rec.json").read_text()) for name in "ab"]
    assert best[0] == best[1]
    assert len(jobs.list_jobs(action="train", trials=True)) == 3


@pytest.mark.engine
@pytest.mark.slow
def test_a_worker_killed_mid_trial_and_rerun_finishes_the_study(postgres_url, overrides_file, tmp_path):
    workspace = tmp_path / "ws"
    proc = worker(overrides_file, workspace, postgres_url, "resumed", 2)

    def first_trial_training() -> str | None:
        """The job id of trial 0 once the study records it and the job runs."""
        try:
            trials = study_trials(postgres_url, "resumed") if proc.poll() is None else []
        except KeyError:  # the worker has not created the study yet
            return None
        attrs = trials[0].user_attrs if trials and trials[0].state.name == "RUNNING" else {}
        job_id = attrs.get("job_id") if attrs.get("stage") == "train" else None
        return job_id if job_id and jobs.get_job_status(job_id) == "Running" else None

    killed_job = wait_until(first_trial_training, 120, "trial 0's train job")
    proc.send_signal(signal.SIGKILL)  # no chance to tidy up: its trial stays RUNNING in the study
    proc.communicate()
    assert [t.state.name for t in study_trials(postgres_url, "resumed")] == ["RUNNING"]

    out = finish(worker(overrides_file, workspace, postgres_url, "resumed", 2))
    trials = study_trials(postgres_url, "resumed")
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE")], out
    # trial 0 was followed again: its job went on without the worker, and its result counted
    assert trials[0].user_attrs["train_job"] == killed_job
    assert jobs.get_job_status(killed_job) == "Complete"
    assert json.loads((workspace / "best_rec.json").read_text())["skill"] == SKILL
