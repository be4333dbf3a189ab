"""The console script answers `skillbank validate` without click, exactly as the click command does."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from skillbank import console
from skillbank.cli import main as click_main

SKILL = "tao-train-action-recognition"
DATA = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test"}


def _by_click(args: list[str], stdin: bytes | None) -> tuple[str, str, int]:
    result = CliRunner().invoke(click_main, args, input=stdin, prog_name="skillbank")
    return result.stdout, result.stderr, result.exit_code


def _by_console(args: list[str], stdin: bytes | None, capsys, monkeypatch) -> tuple[str, str, int]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8"))
    with pytest.raises(SystemExit) as exit_:
        console.main(args)
    out, err = capsys.readouterr()
    return out, err, exit_.value.code or 0


@pytest.fixture
def files(tmp_path):
    written = {
        "valid.json": json.dumps({**DATA, "num_epochs": 3}),
        "invalid.yaml": "train.optim.lrr: 0.1\nmodel.backbone: resnet_99\nnum_epochs: 0\n",
        "garbage.yaml": "a: [unclosed\n  - : :",
        "list.json": "[1, 2]",
    }
    for name, text in written.items():
        (tmp_path / name).write_text(text)
    return tmp_path


CASES = {
    "valid": ["validate", SKILL, "train", "{valid.json}"],
    "valid json": ["validate", SKILL, "train", "{valid.json}", "--format", "json"],
    "format first": ["validate", "--format=json", SKILL, "train", "{valid.json}"],
    "problems": ["validate", SKILL, "train", "{invalid.yaml}"],
    "problems json": ["validate", SKILL, "train", "{invalid.yaml}", "--format", "json"],
    "no data sources for evaluate": ["validate", SKILL, "evaluate", "{valid.json}"],
    "unreadable": ["validate", SKILL, "train", "{garbage.yaml}"],
    "not a mapping": ["validate", SKILL, "train", "{list.json}"],
    "missing file": ["validate", SKILL, "train", "{nope.json}"],
    "unknown skill": ["validate", "no-such-skill", "train", "{valid.json}"],
    "unknown action": ["validate", SKILL, "fly", "{valid.json}"],
    "bad format": ["validate", SKILL, "train", "{valid.json}", "--format", "xml"],
    "too few arguments": ["validate", SKILL, "train"],
    "stdin": ["validate", SKILL, "train", "-"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_answers_as_the_click_command(case, files, capsys, monkeypatch):
    args = [str(files / arg[1:-1]) if arg.startswith("{") else arg for arg in CASES[case]]
    stdin = json.dumps({**DATA, "num_epochs": 2}).encode() if "-" in args else None
    expected = _by_click(args, stdin)
    assert _by_console(args, stdin, capsys, monkeypatch) == expected
    assert expected[2] in (0, 1, 2)


@pytest.mark.parametrize(("name", "value"), [("SKILLBANK_MAX_PROBLEMS", "lots"), ("SKILLBANK_ROOT", "/nowhere")])
def test_a_bad_setting_is_the_same_one_line(name, value, files, capsys, monkeypatch):
    monkeypatch.setenv(name, value)
    args = ["validate", SKILL, "train", str(files / "invalid.yaml")]
    out, err, status = _by_console(args, None, capsys, monkeypatch)
    assert (out, err, status) == _by_click(args, None)
    assert status == 2 and err.startswith(f"Error: {name}={value!r}") and err.count("\n") == 1


def test_other_commands_and_help_go_to_the_click_cli(capsys, monkeypatch):
    out, _, status = _by_console(["list", "--format", "json"], None, capsys, monkeypatch)
    assert status == 0 and {row["skill"] for row in json.loads(out)} == {SKILL, "tao-run-automl"}
    out, _, status = _by_console(["validate", "--help"], None, capsys, monkeypatch)
    assert status == 0 and out.startswith("Usage: skillbank validate [OPTIONS] SKILL ACTION OVERRIDES")


def test_validate_imports_only_what_it_needs(files):
    # pathlib, json and re: a fifth of its start-up budget (bench/cli_startup.py)
    code = ("import sys\nfrom skillbank.console import main\n"
            f"try:\n    main(['validate', {SKILL!r}, 'train', {str(files / 'valid.json')!r}])\n"
            "except SystemExit as exit_:\n    assert exit_.code == 0, exit_.code\n"
            "print(sorted({'click', 'yaml', 'torch', 'jsonschema', 'pathlib', 'json', 're'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
