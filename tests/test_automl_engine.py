"""The AutoML engine end to end: real train/evaluate jobs through the job SDK on the sample data.

Budgets are tiny (32x32 frames, 1-2 epochs, 1-2 trials); most studies use the
training KPI (val_acc / val_loss) so that only one test pays for evaluate jobs.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from skillbank.runtime.automl.engine import AutoMLError, AutoMLStopped, run_automl
from skillbank.runtime.automl.search_space import SearchSpaceError
from skillbank.runtime.sdk import jobs

SKILL = "tao-train-action-recognition"
REPO = Path(__file__).resolve().parent.parent
FAST = {"poll_interval": 0.3}


@pytest.fixture
def overrides(sample_data) -> dict:
    return {
        "dataset.train_dataset_dir": str(sample_data / "train"),
        "dataset.val_dataset_dir": str(sample_data / "test"),
        "dataset.label_map": {"catch": 0, "smile": 1},
        "dataset.batch_size": 4,
        "dataset.workers": 0,
        "model.input_width": 32,
        "model.input_height": 32,
    }


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # jobs inherit it: two concurrent trials share two cores


def spec_of(job_id: str) -> dict:
    return yaml.safe_load((Path(jobs.get_job(job_id)["results_dir"]) / "spec.yaml").read_text())


def history(workspace: Path) -> list[dict]:
    return json.loads((workspace / "history.json").read_text())


# -------------------------------------------------------------------------------------------- bad input
def test_bad_input_fails_before_any_job(overrides, tmp_path):
    with pytest.raises(SearchSpaceError, match="model.dropout_ratio.*allowed: \\[0, 1\\]"):
        run_automl(SKILL, overrides, param_ranges={"model.dropout_ratio": {"valid_max": 2.0}},
                   workspace=tmp_path / "ws", max_epochs=1)
    with pytest.raises(AutoMLError, match="allowed: bayesian, hyperband, asha, bohb, random, grid"):
        run_automl(SKILL, overrides, algorithm="tpe", workspace=tmp_path / "ws")
    with pytest.raises(AutoMLError, match="max_epochs > min_epochs"):
        run_automl(SKILL, overrides, algorithm="hyperband", max_epochs=1, workspace=tmp_path / "ws")
    from skillbank.runtime.validation import SpecValidationError

    with pytest.raises(SpecValidationError, match="dataset.batch_size"):
        run_automl(SKILL, {**overrides, "dataset.batch_size": 0}, workspace=tmp_path / "ws")
    assert jobs.list_jobs() == []


def test_dry_run_plans_without_jobs(overrides, tmp_path):
    plan = run_automl(SKILL, overrides, dry_run=True, max_epochs=2, workspace=tmp_path / "ws")
    assert plan["state"] == "dry_run" and plan["budget"]["segments"] == [2]
    assert any("train.optim.lr" in line and "log" in line for line in plan["search_space"])
    assert jobs.list_jobs() == []


# -------------------------------------------------------------------------------------------- algorithms
@pytest.mark.slow
def test_bayesian_accuracy_from_evaluate_jobs(overrides, tmp_path):
    """Default algorithm and metric: each trial = train job + evaluate job on its exact checkpoint."""
    workspace = tmp_path / "ws"
    lines: list[str] = []
    secret = "automl-test-key-9f2c"  # the encryption key reaches jobs by environment only
    summary = run_automl(SKILL, {**overrides, "encryption_key": secret}, max_trials=2, max_epochs=1,
                         max_concurrent=2, workspace=workspace, on_progress=lambda e: lines.append(e["line"]),
                         **FAST)
    assert summary["state"] == "finished" and summary["metric"] == "accuracy"
    assert summary["counts"]["COMPLETE"] == 2
    rows = history(workspace)
    assert rows[0]["baseline"] and rows[0]["values"] == {"model.dropout_ratio": 0.5, "train.optim.lr": 0.0005}
    for row in rows:
        eval_spec = spec_of(row["eval_job"])
        assert eval_spec["evaluate"]["checkpoint"] == row["checkpoint"]
        assert Path(row["checkpoint"]).name.startswith("model_epoch_000_step_")  # exact, never *_latest
        assert eval_spec["evaluate"]["test_dataset_dir"] == overrides["dataset.val_dataset_dir"]
        assert jobs.get_job(row["eval_job"])["parent_job_id"] == row["train_job"]
        results = json.loads((Path(jobs.get_job(row["eval_job"])["results_dir"]) / "evaluate" / "results.json")
                             .read_text())
        assert row["value"] == pytest.approx(results["accuracy"])
        train_spec = spec_of(row["train_job"])
        for key, value in row["values"].items():
            section, _, name = key.rpartition(".")
            node = train_spec
            for part in section.split("."):
                node = node[part]
            assert node[name] == pytest.approx(value)
    best = json.loads((workspace / "best_rec.json").read_text())
    jsonschema.validate(best, json.loads((REPO / "schemas" / "best_rec.schema.json").read_text()))
    assert best["metric"] == "accuracy" and best["direction"] == "maximize"
    assert best["value"] >= best["baseline"]["value"]
    assert Path(best["checkpoint"]).is_file() and best["job_id"] == rows[best["rec_id"]]["train_job"]
    assert best["specs"]["dataset.train_dataset_dir"] == overrides["dataset.train_dataset_dir"]
    with open(workspace / "history.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["state"] for r in table] == ["COMPLETE", "COMPLETE"] and "train.optim.lr" in table[0]
    plots = sorted(p.name for p in (workspace / "plots").iterdir())
    assert plots == ["objective.png", "param_model.dropout_ratio.png", "param_train.optim.lr.png"]
    assert all((workspace / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in plots)
    assert lines and lines[-1].startswith("trial 2/2") and "best accuracy" in lines[-1]
    written = [p for p in workspace.rglob("*") if p.is_file()]
    written += [Path(jobs.get_job(r[k])["results_dir"]) / "spec.yaml" for r in rows for k in ("train_job", "eval_job")]
    assert not [p for p in written if secret.encode() in p.read_bytes()]
    assert secret not in json.dumps(summary)


def _asha_study(overrides: dict, workspace: Path) -> dict:
    """Epoch budget 2 in rungs of 1, the baseline and one trial whose learning rate makes val_loss explode.

    The run polls once an hour: it ends only because the jobs wake it (their exits, their rungs).
    """
    done: dict = {}
    run = threading.Thread(target=lambda: done.update(summary=run_automl(
        SKILL, overrides, algorithm="asha", metric="val_loss", max_trials=2, max_epochs=2, reduction_factor=2,
        workspace=workspace, seed=3, param_ranges={"train.optim.lr": {"valid_min": 0.05, "valid_max": 0.1},
                                                   "model.dropout_ratio": {"disabled": True}},
        job_tags=["sweep"], poll_interval=3600)), daemon=True)
    run.start()
    run.join(timeout=600)
    assert "summary" in done, "the run did not end: it waited for its poll instead of the jobs"
    return done["summary"]


@pytest.mark.slow
def test_asha_trial_trains_through_its_rungs_in_one_job(overrides, tmp_path, monkeypatch):
    """Local platform: the baseline is one train job that waits after epoch 1 until the run promotes it, with
    no checkpoint at the rung; the bad trial is pruned at the rung (its job canceled while it waits)."""
    from skillbank.runtime.automl import workers
    from skillbank.runtime.sdk.platforms.local import launch_record

    monkeypatch.setattr(workers, "HEARTBEAT_S", 3600.0)
    workspace = tmp_path / "ws"
    summary = _asha_study(overrides, workspace)
    baseline, bad = history(workspace)
    (job,) = baseline["jobs"]
    assert (job["from_epoch"], job["to_epoch"], job["gates"]) == (0, 2, [1])
    record = jobs.get_job(job["job_id"])
    assert record["automl"]["trial"] == baseline["trial"] and "rung" not in record["automl"]
    assert baseline["state"] == "COMPLETE" and baseline["epochs_trained"] == 2
    assert set(baseline["intermediate"]) == {"1", "2"}
    folder = Path(record["results_dir"])
    log = (folder / "log.txt").read_text()
    assert "Epoch 1 ends a rung: waiting" in log and "Promoted at epoch 1" in log
    assert launch_record(folder)["warm"] is True
    assert [p.name[:len("model_epoch_000")] for p in (folder / "train").glob("model_epoch_*.pth")] == \
        ["model_epoch_001"]  # nothing written at the rung
    assert spec_of(job["job_id"])["train"]["num_epochs"] == 2
    assert bad["state"] == "PRUNED" and bad["epochs_trained"] == 1 and len(bad["jobs"]) == 1
    pruned = jobs.get_job(bad["jobs"][0]["job_id"])
    assert pruned["status"] == "Canceled" and not list((Path(pruned["results_dir"]) / "train").glob("model_*"))
    assert summary["epochs_trained"] == 3
    automl_state = json.loads((workspace / "automl.json").read_text())
    assert any("trial 0 promoted at epoch 1; its job trains on" in e for e in automl_state["events"])


@pytest.mark.slow
def test_asha_segments_resume_from_the_exact_checkpoint(overrides, tmp_path, monkeypatch):
    """Platforms that may run TAO's container (anything but local) train a trial in segments, TAO's way: the
    baseline is promoted by a second job resuming from its epoch-1 checkpoint; the bad trial is pruned at the
    first rung and trains no further. Trial jobs start warm and write a checkpoint only where a segment ends.
    """
    from skillbank.runtime.automl import workers
    from skillbank.runtime.sdk.platforms.local import LocalPlatform, launch_record

    monkeypatch.setattr(workers, "HEARTBEAT_S", 3600.0)
    monkeypatch.setattr(LocalPlatform, "rung_gates", False)  # the path the remote platforms take
    workspace = tmp_path / "ws"
    summary = _asha_study(overrides, workspace)
    assert summary["direction"] == "minimize"
    baseline, bad = history(workspace)
    # every trial job names its study, trial and rung; the rung's continuation carries its trial too
    labels = [(job["trial"], job["rung"]) for job in (jobs.get_job(j["job_id"])["automl"]
                                                      for row in (baseline, bad) for j in row["jobs"])]
    assert labels == [(baseline["trial"], 1), (baseline["trial"], 2), (bad["trial"], 1)]
    record = jobs.get_job(baseline["jobs"][1]["job_id"])
    assert record["automl"]["workspace"] == str(workspace) and record["tags"] == ["sweep"]
    assert jobs.list_jobs() == []  # trial jobs are hidden unless asked for
    assert len(jobs.list_jobs(automl_workspace=workspace)) == 3
    assert baseline["state"] == "COMPLETE" and baseline["epochs_trained"] == 2
    first, second = baseline["jobs"]
    assert (first["from_epoch"], first["to_epoch"], second["to_epoch"]) == (0, 1, 2)
    resumed = spec_of(second["job_id"])["train"]
    first_checkpoint = jobs.get_job(first["job_id"])["checkpoints"]
    assert resumed["resume_training_checkpoint_path"] in first_checkpoint
    assert Path(resumed["resume_training_checkpoint_path"]).name.startswith("model_epoch_000_")
    assert resumed["num_epochs"] == 2 and jobs.get_job(second["job_id"])["parent_job_id"] == first["job_id"]
    assert set(baseline["intermediate"]) == {"1", "2"}  # JSON keys: epochs reported as intermediate values
    assert bad["state"] == "PRUNED" and bad["epochs_trained"] == 1 and len(bad["jobs"]) == 1
    assert bad["values"]["train.optim.lr"] >= 0.05
    assert summary["epochs_trained"] == 3
    for row in (baseline, bad):
        for job in row["jobs"]:
            folder = Path(jobs.get_job(job["job_id"])["results_dir"])
            assert launch_record(folder)["warm"] is True
            saved = sorted(p.name for p in (folder / "train").glob("model_epoch_*.pth"))
            assert [name[:len("model_epoch_000")] for name in saved] == [f"model_epoch_{job['to_epoch'] - 1:03d}"]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["hyperband", "bohb", "random", "grid"])
def test_each_algorithm_runs_a_tiny_study(algorithm, overrides, tmp_path):
    multi = algorithm in ("hyperband", "bohb")
    workspace = tmp_path / algorithm
    summary = run_automl(SKILL, overrides, algorithm=algorithm, metric="val_acc", max_trials=1,
                         max_epochs=2 if multi else 1, reduction_factor=2, baseline=False, workspace=workspace,
                         **FAST)
    (row,) = history(workspace)
    assert row["state"] == "COMPLETE" and not row["baseline"] and 0.0 <= row["value"] <= 1.0
    assert summary["counts"]["COMPLETE"] == 1
    # one job: local trials train through their rungs (where the trial's Hyperband bracket has one, at 1)
    assert [(job["from_epoch"], job["to_epoch"]) for job in row["jobs"]] == [(0, 2) if multi else (0, 1)]
    assert row["jobs"][0].get("gates") in (([1], None) if multi else (None,))
    assert set(row["values"]) == {"model.dropout_ratio", "train.optim.lr"}
    study_config = json.loads((workspace / "automl.json").read_text())["config"]
    assert study_config["algorithm"] == algorithm


def test_rung_decisions_are_taken_in_trial_order():
    """A trial whose segment ends at a rung waits there for every earlier trial of its ladder (same rungs) that
    still trains toward it, so which of two concurrent jobs wrote the epoch first decides no promotion."""
    from types import SimpleNamespace

    from skillbank.runtime.automl.algorithms import BudgetPlan, budget_plan
    from skillbank.runtime.automl.study import held_rung
    from skillbank.runtime.automl.trials import LiveTrial

    ladder = budget_plan("hyperband", 9, 3)  # rungs 1 and 3
    other_bracket = BudgetPlan(9, 1, 3, (3,), (3, 9))

    def live(number, plan=ladder, seen=0, done=0, stage="train"):
        return LiveTrial(SimpleNamespace(number=number), {}, {}, number == 0, plan, stage=stage,
                         epochs_done=done, last_epoch_seen=seen)

    baseline, first = live(0), live(1, seen=1)
    assert held_rung(first, [baseline, first]) == 1  # the baseline has not written epoch 1 yet
    assert held_rung(baseline, [baseline, first]) is None  # the earliest trial never waits
    baseline.last_epoch_seen = 1
    assert held_rung(first, [baseline, first]) is None
    promoted = live(1, seen=3, done=1)
    assert held_rung(promoted, [live(0, seen=2, done=1), promoted]) == 3  # the next rung, likewise
    assert held_rung(live(1, seen=9, done=3), [live(0, seen=2), promoted]) is None  # the last segment ends no rung
    assert held_rung(live(2, other_bracket, seen=3), [live(1, seen=1), live(2, other_bracket)]) is None
    assert held_rung(first, [live(0, stage="evaluate"), first]) is None


# -------------------------------------------------------------------------------------------- failures
@pytest.mark.slow
def test_failed_trials_are_recorded_and_repeated_failures_stop_the_run(overrides, tmp_path):
    empty = tmp_path / "empty"
    (empty / "catch").mkdir(parents=True)
    workspace = tmp_path / "ws"
    with pytest.raises(AutoMLStopped) as info:
        run_automl(SKILL, {**overrides, "dataset.train_dataset_dir": str(empty)}, metric="val_acc",
                   max_trials=4, max_epochs=1, max_failures_in_a_row=2, workspace=workspace, **FAST)
    rows = history(workspace)
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"]  # stopped after two, not four
    for row in rows:
        assert row["value"] is None and row["failure"]["category"] not in (None, "unknown")
        assert jobs.get_job_status(row["failure"]["job_id"]) == "Error"
    category = rows[0]["failure"]["category"]
    assert category in str(info.value)
    assert info.value.summary["state"] == "stopped" and info.value.summary["best"] is None
    assert not (workspace / "best_rec.json").exists()


# -------------------------------------------------------------------------------------------- resume
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from skillbank.cli import main; main()", "automl", *args]


@pytest.mark.slow
def test_resume_after_the_runner_is_killed_keeps_finished_trials(overrides, tmp_path):
    """Kill the CLI with two trials running; cancel one trial's job (as if lost). The rerun keeps every finished
    trial, follows the trial whose job lives on, and re-queues the other with the same values."""
    workspace = tmp_path / "ws"
    overrides_file = tmp_path / "overrides.yaml"
    overrides_file.write_text(yaml.safe_dump(overrides))
    argv = _cli(SKILL, str(overrides_file), "--algorithm", "random", "--metric", "val_acc", "--max-trials", "4",
                "--max-epochs", "3", "--max-concurrent", "2", "--workspace", str(workspace),
                "--poll-interval", "0.3")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runner = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 150
    before: list[dict] = []
    while time.monotonic() < deadline:
        if (workspace / "history.json").is_file():
            before = history(workspace)
            running = [r for r in before if r["state"] == "RUNNING" and r["train_job"]]
            if any(r["state"] == "COMPLETE" for r in before) and len(running) == 2:
                break
        assert runner.poll() is None, runner.communicate()
        time.sleep(0.2)
    else:
        pytest.fail(f"never saw a finished trial and two running ones: {before}")
    runner.send_signal(signal.SIGKILL)  # mid-study, two trials in flight
    runner.wait()
    followed, lost = sorted((r for r in before if r["state"] == "RUNNING"), key=lambda r: r["trial"])
    jobs.cancel_job(lost["train_job"])  # this trial's job is gone; the other one's keeps running
    status = subprocess.run(_cli("status", str(workspace)), capture_output=True, text=True, env=env)
    assert status.returncode == 0 and "not running" in status.stdout, status.stdout + status.stderr

    done = subprocess.run(argv + ["--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    rows = {r["trial"]: r for r in history(workspace)}
    for row in before:  # every trial finished before the kill is still there, unchanged
        if row["state"] == "COMPLETE":
            assert rows[row["trial"]]["value"] == row["value"]
            assert rows[row["trial"]]["train_job"] == row["train_job"]
    assert rows[followed["trial"]]["state"] == "COMPLETE"
    assert rows[followed["trial"]]["train_job"] == followed["train_job"]  # followed, not retrained
    assert rows[lost["trial"]]["state"] == "INTERRUPTED"
    (again,) = [r for r in rows.values() if r["requeued_from"] == lost["trial"]]
    assert again["state"] == "COMPLETE" and again["values"] == lost["values"]
    assert summary["counts"]["COMPLETE"] == 4 and summary["state"] == "finished"
    assert "trial 4/4" in done.stderr  # the progress line (one line per change: stderr is not a TTY)

    status = subprocess.run(_cli("status", str(workspace), "--format", "json"), capture_output=True, text=True,
                            env=env)
    info = json.loads(status.stdout)
    assert info["state"] == "finished" and info["finished"] == 4 and info["best_rec"]["value"] is not None


@pytest.mark.slow
def test_a_rerun_promotes_a_job_left_waiting_at_its_rung(overrides, tmp_path):
    """Kill the runner; its trial's job trains on to its rung and waits there with no runner. The rerun follows
    the same job and promotes it: the trial ends in that one job, not trained again."""
    workspace = tmp_path / "ws"
    overrides_file = tmp_path / "overrides.yaml"
    overrides_file.write_text(yaml.safe_dump(overrides))
    argv = _cli(SKILL, str(overrides_file), "--algorithm", "asha", "--metric", "val_acc", "--max-trials", "1",
                "--max-epochs", "2", "--reduction-factor", "2", "--workspace", str(workspace))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runner = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        rows = history(workspace) if (workspace / "history.json").is_file() else []
        if rows and rows[0]["train_job"]:
            break
        assert runner.poll() is None, runner.communicate()
        time.sleep(0.1)
    else:
        pytest.fail("the runner never started its trial's job")
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    job_id = rows[0]["train_job"]
    log = Path(jobs.get_job(job_id)["results_dir"]) / "log.txt"
    while time.monotonic() < deadline and "ends a rung: waiting" not in log.read_text():
        time.sleep(0.1)
    assert "ends a rung: waiting" in log.read_text() and jobs.get_job_status(job_id) == "Running"

    done = subprocess.run(argv + ["--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = history(workspace)
    assert row["state"] == "COMPLETE" and row["epochs_trained"] == 2
    assert [j["job_id"] for j in row["jobs"]] == [job_id] and jobs.get_job_status(job_id) == "Complete"
    assert "Promoted at epoch 1" in log.read_text()


def test_status_of_a_folder_without_a_run(tmp_path):
    result = subprocess.run(_cli("status", str(tmp_path)), capture_output=True, text=True)
    assert result.returncode == 2 and "no AutoML workspace" in result.stderr


def test_cli_param_ranges_and_dispatch(overrides, tmp_path):
    from click.testing import CliRunner

    from skillbank.cli import main
    from skillbank.cli.automl import parse_param_range

    assert parse_param_range("train.optim.lr={valid_min: 1e-4, valid_max: 1e-2}") == (
        "train.optim.lr", {"valid_min": 0.0001, "valid_max": 0.01})
    assert parse_param_range("model.dropout_ratio=disabled") == ("model.dropout_ratio", {"disabled": True})
    overrides_file = tmp_path / "overrides.json"
    overrides_file.write_text(json.dumps(overrides))
    # `automl SKILL ...` is `automl run SKILL ...`; a range outside the schema is a usage error, nothing runs
    result = CliRunner().invoke(main, ["automl", SKILL, str(overrides_file), "--param-range",
                                       "model.dropout_ratio={valid_min: 0.2, valid_max: 3}",
                                       "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "allowed: [0, 1]" in result.output
    assert jobs.list_jobs() == []
