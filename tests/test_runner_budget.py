"""AutoML options in runners: `generate`/`run` --algorithm --max-trials --max-epochs --workspace and
--automl-option KEY=VALUE, checked by AutoMLOptions and embedded as data (AUTOML_OPTIONS)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.generator.runner_gen import GenerationError, generate_runner
from skillbank.runtime.sdk import jobs

SKILL = "tao-train-action-recognition"
TRAIN = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test"}


def _embedded(text: str, name: str):
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not in the runner")


def _generate(tmp_path: Path, overrides: dict, *args: str, action: str = "train") -> tuple[Path, str]:
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps(overrides))
    out = tmp_path / "runner.py"
    result = CliRunner().invoke(main, ["generate", SKILL, action, str(ov), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_options_are_embedded_as_data_and_in_the_regenerate_line(tmp_path):
    runner, _ = _generate(tmp_path, TRAIN, "--algorithm", "random", "--max-trials", "2", "--max-epochs", "1",
                          "--workspace", "ws")
    text = runner.read_text()
    assert _embedded(text, "AUTOML_OPTIONS") == {"algorithm": "random", "max_trials": 2, "max_epochs": 1,
                                                 "workspace": str(tmp_path.cwd() / "ws")}
    assert "--max-trials 2" in text and "--max-epochs 1" in text and "--algorithm random" in text
    assert "#   automl budget:  algorithm=random (given); max_trials=2 (given)" in text
    assert "SKILLBANK_AUTOML_OPTIONS" not in text


@pytest.mark.parametrize(("request_text", "args", "epochs"), [
    ("train for 3 epochs", [], 3),  # the request's own count is the trials' max_epochs
    ("train for 3 epochs", ["--max-epochs", "5"], 5),  # the option wins
    ("train it", [], None),  # engine default: the overrides' train.num_epochs
])
def test_request_epoch_count_becomes_max_epochs(tmp_path, request_text, args, epochs):
    runner, _ = _generate(tmp_path, TRAIN, "--request", request_text, *args)
    assert _embedded(runner.read_text(), "AUTOML_OPTIONS").get("max_epochs") == epochs


def test_options_off_the_automl_route_are_ignored_with_a_warning(tmp_path):
    runner, output = _generate(tmp_path, TRAIN, "--automl-policy", "off", "--max-trials", "3")
    assert _embedded(runner.read_text(), "AUTOML_OPTIONS") == {}
    assert "warning: --max-trials ignored: only the AutoML route reads them" in output
    runner, _ = _generate(tmp_path, TRAIN, "--request", "plain training for 4 epochs")
    assert _embedded(runner.read_text(), "AUTOML_OPTIONS") == {}  # direct: the request's count is not a budget


@pytest.mark.parametrize(("args", "message"), [
    (["--max-trials", "0"], "--max-trials"), (["--max-epochs", "x"], "--max-epochs"),
    (["--algorithm", "magic"], "--algorithm"),
])
def test_bad_options_are_usage_errors(tmp_path, args, message):
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps(TRAIN))
    result = CliRunner().invoke(main, ["generate", SKILL, "train", str(ov), *args])
    assert result.exit_code == 2 and message in result.output


def test_generate_runner_checks_the_options_it_is_given():
    with pytest.raises(GenerationError, match="max_trials=0; allowed: an integer >= 1"):
        generate_runner(SKILL, "train", TRAIN, automl_options={"max_trials": 0})
    with pytest.raises(GenerationError, match="option\\(s\\) sed: unknown; allowed: algorithm, metric, direction"):
        generate_runner(SKILL, "train", TRAIN, automl_options={"sed": 1})
    # the runner sets these from its own --platform ... --tag: an embedded copy could only disagree
    with pytest.raises(GenerationError, match="platform: the runner sets them from its --platform"):
        generate_runner(SKILL, "train", TRAIN, automl_options={"platform": "slurm"})
    with pytest.raises(GenerationError, match="storage: a database URL with a password is never embedded"):
        generate_runner(SKILL, "train", TRAIN, automl_options={"storage": "postgresql://u:hunter2pass@db/optuna"})


def test_any_engine_option_is_embedded_and_regenerated_as_automl_option(tmp_path):
    """Options without a flag of their own (max_concurrent, metric ...) reach the runner as --automl-option; they
    used to need $SKILLBANK_AUTOML_OPTIONS in the runner's environment, which no longer exists."""
    from skillbank.runtime.automl.options import AutoMLOptions

    runner, _ = _generate(tmp_path, TRAIN, "--max-trials", "2", "--automl-option", "max_concurrent=2",
                          "--automl-option", "metric=val_acc",
                          "--automl-option", "hyperparameters=[dataset.batch_size]")
    text = runner.read_text()
    embedded = _embedded(text, "AUTOML_OPTIONS")
    assert embedded == {"metric": "val_acc", "max_trials": 2, "max_concurrent": 2,
                        "hyperparameters": ["dataset.batch_size"]}
    assert AutoMLOptions.from_dict(embedded).max_concurrent == 2
    assert "--automl-option max_concurrent=2" in text and "--automl-option metric=val_acc" in text
    bad = CliRunner().invoke(main, ["generate", SKILL, "train", str(tmp_path / "ov.json"), "--automl-option",
                                    "max_concurent=2"])
    assert bad.exit_code == 2 and "max_concurent: unknown; allowed:" in bad.output
    given = AutoMLOptions(algorithm="asha", max_concurrent=3)  # the dataclass itself is taken too
    generated = generate_runner(SKILL, "train", TRAIN, automl_options=given)
    assert _embedded(generated.text, "AUTOML_OPTIONS") == {"algorithm": "asha", "max_concurrent": 3}


def test_dry_run_prints_the_effective_budget_and_starts_nothing(tmp_path, sample_data):
    overrides = {"dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test"), "num_epochs": 7}
    runner, _ = _generate(tmp_path, overrides, "--max-trials", "2", "--workspace", str(tmp_path / "ws"))
    result = subprocess.run([sys.executable, str(runner), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (f"AutoML budget: algorithm bayesian, 2 trials (the baseline included), 7 epochs per fully trained "
            f"trial; workspace {tmp_path / 'ws'}") in result.stdout  # defaults filled in: bayesian, num_epochs
    assert jobs.list_jobs(trials=True) == []


@pytest.mark.slow
def test_a_runner_with_max_trials_2_max_epochs_1_runs_exactly_that_budget(tmp_path, sample_data, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    overrides = {"dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test"), "dataset.label_map": {"catch": 0, "smile": 1},
                 "dataset.batch_size": 8, "dataset.workers": 0, "model.input_width": 32, "model.input_height": 32,
                 "dataset.augmentation_config.crop_smaller_edge": 32, "train.num_epochs": 4}
    workspace = tmp_path / "ws"
    runner, _ = _generate(tmp_path, overrides, "--algorithm", "random", "--max-trials", "2", "--max-epochs", "1",
                          "--workspace", str(workspace))
    result = subprocess.run([sys.executable, str(runner)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("AutoML budget: algorithm random, 2 trials") and "1 epochs" in line for line in lines)
    history = json.loads((workspace / "history.json").read_text())
    assert len(history) == 2 and all(row["epochs_trained"] == 1 for row in history)
    train_jobs = jobs.list_jobs(action="train", trials=True)
    assert len(train_jobs) == 2 and all(job["spec"]["train"]["num_epochs"] == 1 for job in train_jobs)
    best = json.loads((workspace / "best_rec.json").read_text())
    assert f"best_rec: {workspace / 'best_rec.json'}" in result.stdout.replace("best_rec:  ", "best_rec: ")
    assert "plots:" in result.stdout
    assert lines[-1] == f"AutoML finished; main output (best checkpoint): {best['checkpoint']}"
