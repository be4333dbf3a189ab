"""The SLURM platform on a real single-node cluster (tests/engines.py): jobs, options, cancel, errors, DDP.

No accounting database runs: status comes from squeue while a job waits or runs, then scontrol. The
jobs run with container ``none`` (this installation's command on the node) and ``gpus=0`` (the node
has no GPU gres, so any GPU request would be refused).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from engines import wait_until

from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR, RUNNING

pytestmark = [pytest.mark.engine]
SKILL = "tao-train-action-recognition"
OPTIONS = {"container": "none", "gpus": "0", "partition": "debug", "time": "10"}
TIMEOUT = 240


@pytest.fixture
def overrides(sample_overrides) -> dict:
    return {**sample_overrides, "train.num_epochs": 1}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # sbatch exports it: jobs share the machine's two cores


def script_of(job_id: str) -> str:
    return (Path(jobs.get_job(job_id)["results_dir"]) / "job.sbatch").read_text()


def follow(job_id: str) -> tuple[str, list[str]]:
    """Wait for the job; returns its final status and the statuses seen on the way."""
    seen: list[str] = []

    def note(_event) -> None:
        status = jobs.get_job(job_id)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)

    return jobs.wait(job_id, timeout=TIMEOUT, poll=0.5, on_progress=note), seen


def test_train_then_evaluate_run_on_slurm_with_the_platform_options(slurm_cluster, overrides):
    train = jobs.create_job(SKILL, "train", overrides, platform="slurm", platform_options=OPTIONS)
    record = jobs.get_job(train)
    assert record["backend_id"].isdigit() and record["platform"] == "slurm"
    assert record["platform_options"] == {"container": "none", "gpus": 0, "partition": "debug", "time": "10"}
    script = script_of(train)
    assert "#SBATCH --partition=debug\n" in script and "#SBATCH --time=10\n" in script
    assert "--gpus" not in script and "#SBATCH --ntasks=1\n" in script and "\nsrun " not in script
    status, seen = follow(train)
    assert status == COMPLETE, jobs.get_failure_analysis(train)
    assert RUNNING in seen  # followed through squeue while it ran
    assert jobs.get_job(train)["checkpoints"]

    evaluate = jobs.create_job(SKILL, "evaluate", {"evaluate.test_dataset_dir": overrides["dataset.val_dataset_dir"]},
                               parent_job_id=train, platform="slurm", platform_options=OPTIONS)
    assert jobs.wait(evaluate, timeout=TIMEOUT, poll=0.5) == COMPLETE, jobs.get_failure_analysis(evaluate)
    results = json.loads((Path(jobs.get_job(evaluate)["results_dir"]) / "evaluate" / "results.json").read_text())
    assert 0 <= results["accuracy"] <= 100
    # finished jobs are read from slurmctld (scontrol) without an accounting database
    platform = jobs.platform_of(jobs.get_job(evaluate))
    assert platform.status(jobs.get_job(evaluate)["backend_id"], Path("/nonexistent")).state == COMPLETE


SECRET = "enc-key-Slurm-0815-do-not-print"


def test_scancel_ends_a_job_as_canceled(slurm_cluster, fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 60},
                          platform="slurm", platform_options={"container": "none", "gpus": 0},
                          env={"SKILLBANK_ENCRYPTION_KEY": SECRET})
    env_file = Path(jobs.get_job(job)["results_dir"]) / "train" / "env.json"
    wait_until(lambda: jobs.get_job_status(job) == RUNNING and env_file.is_file(), 60, "the SLURM job to start")
    # the secret reached the job through sbatch's exported environment, and no file holds it
    assert json.loads(env_file.read_text())["key_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in script_of(job) and "SKILLBANK_ENCRYPTION_KEY" in script_of(job)
    assert jobs.cancel_job(job) == CANCELED
    record = jobs.get_job(job)
    platform = jobs.platform_of(record)
    # SLURM itself ends the job as CANCELLED (scontrol), within KillWait
    wait_until(lambda: platform.status(record["backend_id"], Path(record["results_dir"])).state == CANCELED, 30,
               "SLURM to report the job CANCELLED")
    assert jobs.get_job_status(job) == CANCELED


def test_a_failing_job_ends_as_error_with_its_log_tail(slurm_cluster, fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train",
                          {"dataset.train_dir": str(tmp_path), "train.num_epochs": 1, "train.fail_code": 3},
                          platform="slurm", platform_options={"container": "none", "gpus": 0})
    assert jobs.wait(job, timeout=TIMEOUT, poll=0.3) == ERROR
    failure = jobs.get_failure_analysis(job)
    assert failure["exit_code"] == 3
    assert "Traceback: something broke" in failure["log_tail"]


@pytest.mark.slow
def test_data_parallel_training_runs_two_tasks_under_srun(slurm_cluster, overrides):
    job = jobs.create_job(SKILL, "train", {**overrides, "train.num_gpus": 2, "train.gpu_ids": [0, 1]},
                          platform="slurm", platform_options={"container": "none", "gpus": 0})
    script = script_of(job)
    assert "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n" in script and re.search(r"\nsrun \S+action_recognition",
                                                                                      script)
    assert jobs.wait(job, timeout=TIMEOUT, poll=0.5) == COMPLETE, jobs.get_failure_analysis(job)
    log = jobs.get_job_logs(job)
    assert re.findall(r"distributed: world_size=\d+ backend=\w+", log) == ["distributed: world_size=2 backend=gloo"]
    assert log.count("Epoch 1/1:") == 1  # one process writes the log lines
    status = (Path(jobs.get_job(job)["results_dir"]) / "train" / "status.json").read_text()
    assert status.count("Starting Training Loop.") == 1


def test_multi_node_training_renders_nodes_and_tasks_per_node(overrides):
    text = jobs.preview_job(SKILL, "train", {**overrides, "train.num_gpus": 4, "train.gpu_ids": [0, 1, 2, 3],
                                             "train.num_nodes": 2}, platform="slurm",
                            platform_options={"container": "none", "gpus": 4})
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n" in text
    assert "#SBATCH --gpus-per-node=4\n" in text and "\nsrun " in text


@pytest.mark.slow
def test_automl_trials_run_as_slurm_jobs(slurm_cluster, overrides, tmp_path):
    from skillbank.runtime.automl.engine import run_automl

    summary = run_automl(SKILL, overrides, algorithm="random", metric="val_acc", max_trials=2, max_epochs=1,
                         max_concurrent=2, platform="slurm", platform_options={"container": "none", "gpus": "0"},
                         workspace=tmp_path / "ws", poll_interval=0.5)
    assert summary["state"] == "finished" and summary["counts"].get("COMPLETE") == 2, summary["events"]
    trial_jobs = jobs.list_jobs(action="train", trials=True)
    assert len(trial_jobs) == 2
    for record in trial_jobs:
        assert record["platform"] == "slurm" and record["backend_id"].isdigit()
        assert record["platform_options"] == {"container": "none", "gpus": 0}
        assert "--gpus" not in script_of(record["id"])
    assert (tmp_path / "ws" / "best_rec.json").is_file()
