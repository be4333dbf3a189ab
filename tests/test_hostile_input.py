"""Hostile or broken input to the CLI: one clear line naming what is wrong, the right exit code, nothing written.

Bad input (unreadable files, bombs, settings that cannot be used) exits 2 with one line; overrides that read
fine but do not fit the schema exit 1 with every problem. No Traceback reaches the user.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from skillbank.cli import main

SKILL = "tao-train-action-recognition"
DATA = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test"}
SKILLBANK = Path(sys.executable).with_name("skillbank")


def cli(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def write(tmp_path: Path, text: str | bytes, name: str = "ov.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def one_line_error(result, *words: str, code: int = 2) -> None:
    """Exit ``code``, no traceback, the message on one line holding ``words``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# -- reading the overrides file --------------------------------------------------------------------

@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xfe\x00t\x00r\x00", ["binary file"]),
    ("num_epochs: 3\nmodel_name: caf\xe9\n".encode("latin-1"), ["not UTF-8 text", "0xe9"]),
    ("[" * 100_000 + "]" * 100_000, ["nested"]),
    ('{"model_name": "\\ud800"}', ["model_name", "not valid Unicode"]),
    ("num_epochs: 3\nnum_epochs: 4\n", ["'num_epochs' is given twice"]),
    ('{"num_epochs": 3, "num_epochs": 4}', ["'num_epochs' is given twice"]),
    ("dataset.label_map: {catch: 0, smile: 1, catch: 2}", ["'catch' is given twice"]),
    ("a: &x [*x]", ["recursive alias"]),
], ids=["binary", "latin-1", "deep json", "lone surrogate", "duplicate yaml key", "duplicate json key",
        "class named twice in a label map", "recursive alias"])
def test_unreadable_overrides_are_one_line_and_exit_2(tmp_path, data, words):
    path = write(tmp_path, data)
    for command in ("validate", "spec"):
        one_line_error(cli(command, SKILL, "train", path), path, *words)


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    result = cli("validate", SKILL, "train", path)
    one_line_error(result, "expands to more than 1000000 values", "SKILLBANK_MAX_YAML_NODES")
    assert len(result.output) < 500


def test_limits_are_configurable_and_a_bad_setting_names_its_variable(tmp_path, monkeypatch):
    path = write(tmp_path, "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n")
    assert cli("validate", SKILL, "train", path).exit_code == 1  # 7000 values: fine by default
    monkeypatch.setenv("SKILLBANK_MAX_YAML_NODES", "5000")
    one_line_error(cli("validate", SKILL, "train", path), "SKILLBANK_MAX_YAML_NODES")
    monkeypatch.setenv("SKILLBANK_MAX_YAML_NODES", "lots")
    one_line_error(cli("validate", SKILL, "train", path), "SKILLBANK_MAX_YAML_NODES='lots'", "whole number")


def test_a_folder_or_device_as_overrides_file_is_not_called_missing(tmp_path):
    one_line_error(cli("validate", SKILL, "train", str(tmp_path)), "is a folder")
    one_line_error(cli("validate", SKILL, "train", str(tmp_path / "nope.yaml")), "not found")
    devnull = cli("validate", SKILL, "evaluate", "/dev/null", "--format", "json")
    assert json.loads(devnull.stdout)["problems"]  # read as empty overrides: only the missing data sources


# -- values the model cannot use -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "key", "words"), [
    ("train.optim.lr: .nan", "train.optim.lr", "not a finite number"),
    ("train.optim.lr: -.inf", "train.optim.lr", "not a finite number"),
    ('{"train.optim.lr": 1e400}', "train.optim.lr", "not a finite number"),
    ("dataset.augmentation_config.scales: [1.0, .nan]", "dataset.augmentation_config.scales",
     "not a finite number"),
    ('{"num_epochs": 1000000000000000000000000000000}', "train.num_epochs", "integer range the runtime holds"),
    ("dataset.batch_size: 4294967296", "dataset.batch_size", "integer range the runtime holds"),
    ("dataset.label_map: {catch: 0, smile: 2}", "dataset.label_map", "exactly 0..1"),
    ("dataset.label_map: {1: 0, 2: 1}", "dataset.label_map", "class name must be a non-empty string"),
    ("train: {num_epochs: 3}\ntrain.num_epochs: 5\n", "train.num_epochs", "given twice with different values"),
    ("model: 5", "model", "is a section, not a field"),
], ids=["nan", "-inf", "json 1e400", "nan in a list", "huge int", "beyond C int", "label ids not 0..n-1",
        "int class names", "nested and dotted", "section given a value"])
def test_values_the_runtime_cannot_use_fail_validation_naming_the_key(tmp_path, text, key, words):
    path = write(tmp_path, text)
    result = cli("validate", SKILL, "train", path, "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert any(p["key"] == key and words in p["message"] for p in report["problems"]), report["problems"]
    json.dumps(report, allow_nan=False)  # the JSON answer itself is valid JSON (no NaN)
    assert cli("generate", SKILL, "train", path, "--automl-policy", "off").exit_code == 1  # same verdict


def test_an_empty_section_sets_nothing(tmp_path):
    path = write(tmp_path, json.dumps({**DATA, "model": {}}), "ov.json")
    result = cli("validate", SKILL, "train", path)
    assert result.exit_code == 0, result.output
    assert "model_name" not in result.output


def test_echoed_values_and_the_problem_list_are_capped(tmp_path, monkeypatch):
    huge = "x" * 20_000_000
    path = write(tmp_path, json.dumps({**DATA, "train.num_epochs": huge}), "ov.json")
    for fmt in ("text", "json"):
        result = cli("validate", SKILL, "train", path, "--format", fmt)
        assert result.exit_code == 1 and "train.num_epochs" in result.output
        assert len(result.output) < 2_000 and "(20000000 characters)" in result.output
    many = {**DATA, **{f"unknown.key_{i}": i for i in range(20_000)}}
    path = write(tmp_path, json.dumps(many), "many.json")
    report = json.loads(cli("validate", SKILL, "train", path, "--format", "json").stdout)
    assert len(report["problems"]) == 101
    assert report["problems"][-1]["message"] == "19900 more problem(s) not listed"
    assert "SKILLBANK_MAX_PROBLEMS" in report["problems"][-1]["allowed"]
    monkeypatch.setenv("SKILLBANK_MAX_PROBLEMS", "3")
    report = json.loads(cli("validate", SKILL, "train", path, "--format", "json").stdout)
    assert len(report["problems"]) == 4 and report["problems"][-1]["message"] == "19997 more problem(s) not listed"


# -- where output goes -------------------------------------------------------------------------------

def test_spec_and_generate_output_paths(tmp_path):
    path = write(tmp_path, json.dumps(DATA), "ov.json")
    nested = tmp_path / "new" / "folder" / "spec.yaml"
    assert cli("spec", SKILL, "train", path, "-o", str(nested)).exit_code == 0
    assert "num_epochs" in nested.read_text()
    one_line_error(cli("spec", SKILL, "train", path, "-o", str(tmp_path)), "is a folder")
    one_line_error(cli("generate", SKILL, "train", path, "--automl-policy", "off", "-o", str(tmp_path)),
                   "is a folder")
    assert not list(tmp_path.glob(".*tmp*")) and not list(tmp_path.glob("*.tmp-*"))


def test_generate_format_json_answers_in_json_on_errors(tmp_path):
    bad = write(tmp_path, json.dumps({**DATA, "train.optim.lr": "fast"}), "bad.json")
    result = cli("generate", SKILL, "train", bad, "--automl-policy", "off", "--format", "json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["problems"][0]["key"] == "train.optim.lr" and "no runner written" in answer["error"]
    result = cli("generate", "no-such-skill", "train", bad, "--format", "json")
    assert result.exit_code == 2 and "no-such-skill" in json.loads(result.stdout)["error"]
    result = cli("generate", SKILL, "train", str(tmp_path / "missing.json"), "--format", "json")
    assert result.exit_code == 2 and "not found" in json.loads(result.stdout)["error"]


def test_run_reads_stdin_overrides_once(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    overrides = json.dumps({"dataset.train_dir": str(data), "num_epochs": 3})
    done = subprocess.run([str(SKILLBANK), "run", str(fake_skill), "train", "-", "--automl-policy", "off",
                           "--dry-run", "--format", "json"], input=overrides, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spec"]["train"]["num_epochs"] == 3
    (runner,) = (Path(os.environ["SKILLBANK_STATE_DIR"]) / "runners").glob("*.py")
    assert "'train.num_epochs': 3" in runner.read_text() and str(data) in runner.read_text()


# -- the machine's own state -----------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + b"\x07" * 300, b"not a database at all" * 50],
                         ids=["zero-length", "truncated", "garbage"])
def test_a_damaged_job_store_is_one_line_and_nothing_launches(fake_skill, tmp_path, content):
    state = Path(os.environ["SKILLBANK_STATE_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    (state / "jobs.db").write_bytes(content)
    one_line_error(cli("jobs", "list"), str(state / "jobs.db"), "move it away")
    data = tmp_path / "data"
    data.mkdir()
    ov = write(tmp_path, json.dumps({"dataset.train_dir": str(data)}), "ov.json")
    done = subprocess.run([str(SKILLBANK), "run", str(fake_skill), "train", ov, "--automl-policy", "off"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr  # not launched, not "job failed"
    assert "Traceback" not in done.stdout + done.stderr and "jobs.db" in done.stdout
    assert not (Path(os.environ["SKILLBANK_RESULTS_ROOT"])).exists()


def test_state_dir_that_is_a_file_is_one_line(fake_skill, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "state-file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("SKILLBANK_STATE_DIR", str(not_a_folder))
    one_line_error(cli("jobs", "list"), str(not_a_folder), "is not a folder")
    ov = write(tmp_path, json.dumps({"dataset.train_dir": str(tmp_path)}), "ov.json")
    one_line_error(cli("run", str(fake_skill), "train", ov, "--automl-policy", "off"), str(not_a_folder))


def test_a_bad_s3_setting_names_its_variable(monkeypatch):
    from skillbank.runtime.sdk import s3

    monkeypatch.setenv("SKILLBANK_S3_CONNECT_TIMEOUT", "abc")
    with pytest.raises(s3.S3Error, match="SKILLBANK_S3_CONNECT_TIMEOUT='abc' is not a number"):
        s3.client()


@pytest.mark.parametrize("args", [["--size", "100000x100000"], ["--classes", "a/b,c"], ["--classes", ".hidden,c"],
                                  ["--frames", "100000"]])
def test_sample_data_arguments_it_cannot_make_exit_2(tmp_path, args):
    result = cli("sample-data", str(tmp_path / "out"), *args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "out" / "train").exists()


def test_the_model_command_refuses_the_same_values_naming_each_key(tmp_path, capsys):
    """`action_recognition` reads specs written by hand: NaN, infinity and integers beyond a C int are
    refused there too (exit 2, before any torch work), each key named."""
    from ar_cli import run_cli

    rc = run_cli("train", f"results_dir={tmp_path}", "train.optim.lr=.nan", "train.num_epochs=100000000000000000000",
                 "train.optim.momentum=1" + "0" * 400)
    out = capsys.readouterr().out
    assert rc == 2 and "Traceback" not in out
    assert "train.optim.lr: not a finite number" in out
    assert "train.num_epochs: outside the integer range the runtime holds" in out
    assert "train.optim.momentum: too large for a number" in out
