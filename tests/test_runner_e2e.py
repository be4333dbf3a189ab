"""Generated runners executed as subprocesses: a fake skill (fast) and the real model chain (slow).

The fake skill (tests/fake_skill.py) proves the runner's behaviour -- progress,
failure analysis, `skillbank run` as generate-then-execute, secrets by
environment -- in seconds. The slow test trains the real model on the sample
data and runs evaluate, inference and export with the train job as parent,
each through its own generated runner.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.sdk import jobs

SKILL = "tao-train-action-recognition"
SKILLBANK = Path(sys.executable).with_name("skillbank")
INJECTION = '"; rm -rf ~; echo "'
TINY_MODEL = {  # small enough for 2 CPU cores
    "model.input_width": 32,
    "model.input_height": 32,
    "dataset.augmentation_config.crop_smaller_edge": 32,
    "dataset.workers": 0,
}


def _generate(tmp_path: Path, skill: str, action: str, overrides: dict, *args: str) -> Path:
    """`skillbank generate` through the CLI; returns the runner path."""
    ov = tmp_path / f"{action}-overrides.json"
    ov.write_text(json.dumps(overrides))
    out = tmp_path / f"{action}_runner.py"
    result = CliRunner().invoke(main, ["generate", skill, action, str(ov), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def _execute(runner: Path, *args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(runner), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=runner.parent)


def _spec_on_disk(job_id: str) -> dict:
    return yaml.safe_load((Path(jobs.get_job(job_id)["results_dir"]) / "spec.yaml").read_text())


# -- fast: the fake skill -------------------------------------------------------------------

def test_runner_follows_a_job_with_progress(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    runner = _generate(tmp_path, str(fake_skill), "train", {"dataset.train_dir": str(data), "num_epochs": 3,
                                                            "train.sleep": 0.3}, "--automl-policy", "off")
    result = _execute(runner, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "Complete" and summary["route"] == "direct"
    assert summary["results_dir"] == str(Path(os.environ["SKILLBANK_RESULTS_ROOT"]) / summary["job_id"])
    assert "[train] epoch" in result.stderr  # progress goes to stderr when stdout carries JSON
    assert jobs.get_job(summary["job_id"])["status"] == "Complete"


def test_runner_exits_non_zero_with_failure_analysis(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    runner = _generate(tmp_path, str(fake_skill), "train", {"dataset.train_dir": str(data), "num_epochs": 1,
                                                            "train.fail_code": 7})
    result = _execute(runner)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ended Error" in result.stdout and "exit code 7" in result.stdout
    assert "suggestion:" in result.stdout and "Traceback: something broke" in result.stdout


def test_runner_no_wait_and_missing_parent(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    runner = _generate(tmp_path, str(fake_skill), "train", {"dataset.train_dir": str(data), "num_epochs": 1})
    result = _execute(runner, "--no-wait", "--format", "json")
    assert result.returncode == 0, result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    assert jobs.wait(job_id, timeout=60, poll=0.2) == "Complete"

    orphan = _generate(tmp_path, str(fake_skill), "evaluate", {}, "--parent-job-id", "no-such-job")
    result = _execute(orphan)
    assert result.returncode == 2
    assert "parent job 'no-such-job' not found" in result.stdout


def test_skillbank_run_is_generate_then_execute(fake_skill, tmp_path):
    """`skillbank run` writes the same runner as `generate` and executes it; the key travels by environment."""
    data = tmp_path / "data"
    data.mkdir()
    secret = "run-path-s3cret"
    overrides = {"dataset.train_dir": str(data), "num_epochs": 2, "encryption_key": secret}
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps(overrides))
    argv = [str(SKILLBANK), "run", str(fake_skill), "train", str(ov), "--automl-policy", "off"]
    result = subprocess.run([*argv, "--wait", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "Complete"
    record = jobs.get_job(summary["job_id"])
    env_seen = json.loads((Path(record["results_dir"]) / "train" / "env.json").read_text())
    assert env_seen["key_sha256"] == hashlib.sha256(secret.encode()).hexdigest()

    runners = list((Path(os.environ["SKILLBANK_STATE_DIR"]) / "runners").glob("*.py"))
    assert len(runners) == 1 and f"runner: {runners[0]}" in result.stderr
    assert secret not in runners[0].read_text() and secret not in result.stdout + result.stderr
    same = tmp_path / runners[0].name
    generated = CliRunner().invoke(main, ["generate", str(fake_skill), "train", str(ov), "--automl-policy", "off",
                                          "-o", str(same)])
    assert generated.exit_code == 0, generated.output
    assert same.read_text() == runners[0].read_text()  # the very same runner

    dry = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "local submission" in dry.stdout and len(jobs.list_jobs()) == 1


def test_skillbank_run_invalid_overrides_exit_1_and_write_nothing(tmp_path):
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps({"train.optim.lr": "fast"}))
    result = CliRunner().invoke(main, ["run", SKILL, "train", str(ov)])
    assert result.exit_code == 1
    assert "train.optim.lr" in result.output and "dataset.train_dataset_dir" in result.output
    assert not (Path(os.environ["SKILLBANK_STATE_DIR"]) / "runners").exists()


# -- slow: the real model on the sample data --------------------------------------------------

@pytest.mark.slow
def test_real_chain_train_then_evaluate_inference_export(sample_data, tmp_path):
    train_overrides = {
        "dataset.train_dataset_dir": str(sample_data / "train"),
        "dataset.val_dataset_dir": str(sample_data / "test"),
        "num_epochs": 1,
        "batch_size": 4,
        "model_name": INJECTION,  # must reach the spec verbatim, never run
        **TINY_MODEL,
    }
    train_runner = _generate(tmp_path, SKILL, "train", train_overrides, "--automl-policy", "off")
    result = _execute(train_runner, "--format", "json", timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    train = json.loads(result.stdout)
    assert train["status"] == "Complete" and train["route"] == "direct"
    assert "[train] epoch 1/1" in result.stderr and "val_acc=" in result.stderr
    assert _spec_on_disk(train["job_id"])["model_name"] == INJECTION
    checkpoints = sorted((Path(train["results_dir"]) / "train").glob("model_epoch_*_step_*.pth"))
    assert checkpoints

    # No model settings: the 32x32 input (and the rest of the model) come from the parent train job.
    children = {
        "evaluate": {"evaluate.test_dataset_dir": str(sample_data / "test"), "evaluate.video_num_segments": 2,
                     "dataset.workers": 0},
        "inference": {"inference.inference_dataset_dir": str(sample_data / "inference"), "dataset.workers": 0},
        "export": {},
    }
    runners = {action: _generate(tmp_path, SKILL, action, overrides, "--parent-job-id", train["job_id"])
               for action, overrides in children.items()}
    # the three children only read the train job's outputs: run their runners side by side
    procs = {action: subprocess.Popen([sys.executable, str(path), "--format", "json"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for action, path in runners.items()}
    done = {}
    for action, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, f"{action}:\n{stdout}\n{stderr}"
        done[action] = json.loads(stdout)
        assert done[action]["status"] == "Complete" and done[action]["parent_job_id"] == train["job_id"]
        assert done[action]["inherited"]["from"] == f"parent job {train['job_id']}"
        assert done[action]["inherited"]["values"]["model.input_width"] == 32
        assert _spec_on_disk(done[action]["job_id"])["model"]["input_height"] == 32  # the parent's, not 224
        assert stderr.strip().splitlines()[-1] == (f"job {done[action]['job_id']} Complete; main output: "
                                                   f"{done[action]['main_output']}")

    newest = str(checkpoints[-1])
    evaluate_dir = Path(done["evaluate"]["results_dir"])
    assert _spec_on_disk(done["evaluate"]["job_id"])["evaluate"]["checkpoint"] == newest
    results = json.loads((evaluate_dir / "evaluate" / "results.json").read_text())
    assert 0.0 <= results["accuracy"] <= 100.0  # percent, as TAO
    assert _spec_on_disk(done["inference"]["job_id"])["inference"]["checkpoint"] == newest
    assert (Path(done["inference"]["results_dir"]) / "inference" / "predictions.json").is_file()
    export_spec = _spec_on_disk(done["export"]["job_id"])
    assert export_spec["export"]["checkpoint"] == newest
    assert Path(export_spec["export"]["onnx_file"]).is_file()
    assert export_spec["export"]["onnx_file"].endswith("action_recognition.onnx")

    # `jobs show` lists each job's files, the main one marked: the one a runner's last line names
    mains = {"train": newest, "evaluate": str(evaluate_dir / "evaluate" / "results.json"),
             "inference": str(Path(done["inference"]["results_dir"]) / "inference" / "predictions.csv"),
             "export": export_spec["export"]["onnx_file"]}
    for action, job_id in {"train": train["job_id"], **{a: d["job_id"] for a, d in done.items()}}.items():
        shown = json.loads(CliRunner().invoke(main, ["jobs", "show", job_id, "--format", "json"]).output)
        assert [row["path"] for row in shown["outputs"] if row["main"]] == [mains[action]], action
        assert all(Path(row["path"]).exists() for row in shown["outputs"])
        assert {f"{action}/status.json", "spec.yaml", "log.txt"} <= {row["relative"] for row in shown["outputs"]}
    assert train["main_output"] == newest
