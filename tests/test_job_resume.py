"""`skillbank jobs resume JOB_ID`: a killed train job continues, as a new job, from its newest checkpoint.

The fake skill proves the SDK's part in seconds (the new job's spec, its seeded results folder, the
records that link old and new, the failure analysis that suggests the command); the slow test SIGKILLs a
real training and resumes it to Complete with the old epochs kept.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from engines import wait_until
from fake_skill import make_fake_skill

from skillbank.cli.jobs import jobs as jobs_cli
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, ERROR
from skillbank.runtime.sdk.platforms.local import launch_record
from skillbank.runtime.sdk.resume import resume_job
from skillbank.runtime.sdk.status_file import read_status_events

SKILL = "tao-train-action-recognition"
TINY = {
    "model.input_width": 32, "model.input_height": 32, "model.rgb_seq_length": 3,
    "dataset.augmentation_config.crop_smaller_edge": 32, "dataset.workers": 0, "dataset.batch_size": 4,
}


@pytest.fixture
def fake_bank(tmp_path, monkeypatch) -> str:
    """The fake skill in a bank of its own, so that its job records name it ($SKILLBANK_ROOT)."""
    make_fake_skill(tmp_path / "bank")
    monkeypatch.setenv("SKILLBANK_ROOT", str(tmp_path / "bank"))
    return "fake-skill"



def _kill_after(job: str, checkpoint_glob: str, logged_epoch: int | None = None) -> Path:
    """SIGKILL the job's process once ``checkpoint_glob`` exists in its train folder; returns that folder.

    With ``logged_epoch``, also wait for that epoch's status line: the checkpoint is written just before it,
    and a kill between the two would leave an epoch that is trained but not logged.
    """
    folder = Path(jobs.get_job(job)["results_dir"]) / "train"
    wait_until(lambda: list(folder.glob(checkpoint_glob)), 120, checkpoint_glob)
    if logged_epoch is not None:
        wait_until(lambda: any(e.get("epoch") == logged_epoch and e["message"] == "Training loop in progress"
                               for e in read_status_events(folder)), 60, f"epoch {logged_epoch} status line")
    os.kill(launch_record(folder.parent)["child_pid"], signal.SIGKILL)
    assert jobs.wait(job, timeout=30, poll=0.1) == ERROR
    return folder


def test_a_killed_job_is_resumed_from_its_newest_checkpoint(fake_bank, tmp_path):
    old = jobs.create_job(fake_bank, "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 6,
                                                     "train.sleep": 0.4}, name="long run", tags=["nightly"])
    old_folder = _kill_after(old, "model_epoch_001_*.pth")
    analysis = jobs.get_failure_analysis(old)
    assert analysis["category"] == "signal" and f"skillbank jobs resume {old}" in analysis["suggestion"]
    kept = sorted(p.name for p in old_folder.glob("model_epoch_*.pth"))

    result = resume_job(old)
    new = jobs.get_job(result["job_id"])
    new_folder = Path(new["results_dir"]) / "train"
    assert new["resumed_from"] == old and new["name"] == "long run" and new["tags"] == ["nightly"]
    assert new["spec"]["train"]["resume"] == result["checkpoint"] == str(new_folder / kept[-1])
    assert new["spec"]["results_dir"] == new["results_dir"] != jobs.get_job(old)["results_dir"]
    for name in kept:  # the old epochs are part of the new job's results (hard links: no second copy)
        assert os.path.samefile(old_folder / name, new_folder / name)
    assert os.readlink(new_folder / "ar_model_latest.pth") == os.readlink(old_folder / "ar_model_latest.pth")
    assert jobs.wait(result["job_id"], timeout=30, poll=0.1) == COMPLETE

    shown = json.loads(CliRunner().invoke(jobs_cli, ["show", old, "--format", "json"]).output)
    assert shown["resumed_by"] == [result["job_id"]] and shown["resume"] == f"skillbank jobs resume {old}"
    text = CliRunner().invoke(jobs_cli, ["show", old]).output
    assert f"resumed_by: {result['job_id']}" in text and "resume: skillbank" not in text
    assert f"resumed_from: {old}" in CliRunner().invoke(jobs_cli, ["show", result["job_id"]]).output


def test_cli_resume_and_what_cannot_be_resumed(fake_bank, tmp_path):
    runner = CliRunner()
    running = jobs.create_job(fake_bank, "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 30.0})
    result = runner.invoke(jobs_cli, ["resume", running])
    assert result.exit_code == 1 and f"job {running} is Running" in result.output
    jobs.cancel_job(running)
    assert f"skillbank jobs resume {running}" in jobs.get_failure_analysis(running)["suggestion"]

    # canceled before its first checkpoint: the new job starts over, and says so
    result = runner.invoke(jobs_cli, ["resume", running, "--format", "json"])
    assert result.exit_code == 0, result.output
    resumed = json.loads(result.output)
    assert resumed["resumed_from"] == running and resumed["checkpoint"] is None
    assert jobs.get_job(running)["status"] == CANCELED
    jobs.cancel_job(resumed["job_id"])

    done = jobs.create_job(fake_bank, "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 1})
    assert jobs.wait(done, timeout=30, poll=0.1) == COMPLETE
    result = runner.invoke(jobs_cli, ["resume", done])
    assert result.exit_code == 1 and "is Complete" in result.output and "nothing is left" in result.output
    evaluate = jobs.create_job(fake_bank, "evaluate", {}, parent_job_id=done)
    assert jobs.wait(evaluate, timeout=30, poll=0.1) == COMPLETE
    result = runner.invoke(jobs_cli, ["resume", evaluate])
    assert result.exit_code == 1 and "cannot continue from a checkpoint" in result.output
    assert runner.invoke(jobs_cli, ["resume", "nope-1"]).exit_code == 1
    assert len(jobs.list_jobs()) == 4  # refusals record nothing


def test_a_job_on_s3_resumes_from_its_uploaded_checkpoint_and_inputs(fake_bank, tmp_path, moto_s3):
    bucket = moto_s3.create_bucket()
    moto_s3.client().put_object(Bucket=bucket, Key="data/train/sample.txt", Body=b"frames")
    root = f"s3://{bucket}/results"
    old = jobs.create_job(fake_bank, "train", {"dataset.train_dir": f"s3://{bucket}/data/train", "num_epochs": 2,
                                               "train.fail_code": 3}, results_root=root)
    assert jobs.wait(old, timeout=30, poll=0.1) == ERROR and jobs.get_job(old)["uploaded"]
    shutil.rmtree(jobs.get_job(old)["results_dir"])  # the local staging folder is gone, S3 holds the outputs

    result = resume_job(old)
    new = jobs.get_job(result["job_id"])
    assert result["checkpoint"] == f"{root}/{old}/train/model_epoch_001_step_00020.pth"
    assert new["spec"]["train"]["resume"] == result["checkpoint"] and new["results_uri"] == f"{root}/{new['id']}"
    staged = Path(new["spec"]["dataset"]["train_dir"])  # the input as given, staged again for the new job
    assert staged.is_relative_to(Path(new["results_dir"]) / "inputs") and (staged / "sample.txt").is_file()
    assert new["inputs"] == {"dataset.train_dir": f"s3://{bucket}/data/train"}
    assert jobs.wait(new["id"], timeout=30, poll=0.1) == ERROR  # train.fail_code again: it ran


@pytest.mark.slow
def test_resume_of_a_sigkilled_train_job_ends_complete_with_the_old_epochs_kept(sample_data):
    overrides = {**TINY, "num_epochs": 4, "dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test")}
    old = jobs.create_job(SKILL, "train", overrides)
    old_folder = _kill_after(old, "model_epoch_001_*.pth", logged_epoch=1)
    old_status = (old_folder / "status.json").read_text()
    assert f"skillbank jobs resume {old}" in jobs.get_failure_analysis(old)["suggestion"]

    result = CliRunner().invoke(jobs_cli, ["resume", old, "--wait", "--poll", "0.5", "--format", "json"])
    assert result.exit_code == 0, result.output
    new = json.loads(result.stdout)
    assert new["status"] == COMPLETE and new["resumed_from"] == old
    folder = Path(new["results_dir"]) / "train"
    assert new["checkpoint"] == str(folder / "model_epoch_001_step_00008.pth")
    events = read_status_events(folder)
    messages = [e["message"] for e in events]
    # epochs 0 and 1 come from the killed job, 2 and 3 were trained by the new one: nothing was trained twice
    assert [e["epoch"] for e in events if e["message"] == "Training loop in progress"] == [0, 1, 2, 3]
    resumed_at = messages.index(f"Resuming training from checkpoint: {new['checkpoint']}")
    assert [e["epoch"] for e in events[resumed_at:] if "epoch" in e] == [2, 3]
    record = jobs.get_job(new["job_id"])
    assert sorted(Path(c).name[:15] for c in record["checkpoints"]) == [f"model_epoch_00{e}" for e in range(4)]
    assert os.path.samefile(old_folder / "model_epoch_000_step_00004.pth", folder / "model_epoch_000_step_00004.pth")
    assert (old_folder / "status.json").read_text() == old_status  # the old job's files are left as they were
    assert jobs.describe_job(old)["resumed_by"] == [new["job_id"]]
