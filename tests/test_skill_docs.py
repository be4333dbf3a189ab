"""SKILL.md files cannot rot: their spec_overrides examples validate and their commands exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from skillbank.cli import COMMANDS, main
from skillbank.runtime.overrides import parse_overrides
from skillbank.runtime.skills import Skill

REPO = Path(__file__).resolve().parent.parent
SKILL_DOCS = sorted((REPO / "skills").glob("*/*/SKILL.md"))
MODEL = Skill.load("tao-train-action-recognition")
SKILL_NAMES = {p.parent.name for p in SKILL_DOCS}
# ```yaml spec_overrides <action>   (or json); the body is the overrides document
BLOCK = re.compile(r"^```(?:yaml|json) spec_overrides (\w+)\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"^\s*skillbank ([a-z-]+)(?: ([a-z-]+))?", re.M)


def blocks():
    for doc in SKILL_DOCS:
        for i, match in enumerate(BLOCK.finditer(doc.read_text())):
            yield pytest.param(match.group(1), match.group(2), id=f"{doc.parent.name}-{i}-{match.group(1)}")


def test_every_skill_has_a_skill_md():
    assert {p.parent.name for p in SKILL_DOCS} >= {"tao-train-action-recognition", "tao-run-automl"}


def test_model_skill_md_has_an_example_per_action():
    text = (MODEL.path / "SKILL.md").read_text()
    assert {m.group(1) for m in BLOCK.finditer(text)} == set(MODEL.actions)


@pytest.mark.parametrize(("action", "body"), list(blocks()))
def test_spec_overrides_examples_validate(action, body):
    from skillbank.runtime.validation import validate_overrides

    problems = validate_overrides(MODEL, action, parse_overrides(body))
    assert [str(p) for p in problems] == []


@pytest.mark.parametrize("doc", SKILL_DOCS, ids=lambda p: p.parent.name)
def test_commands_named_in_skill_md_exist(doc):
    for match in COMMAND.finditer(doc.read_text()):
        name, sub = match.groups()
        assert name in COMMANDS, f"{doc}: skillbank {name} is not a command"
        command = main.get_command(None, name)
        assert command is not None, f"{doc}: skillbank {name} is not built"
        subcommands = getattr(command, "commands", None)
        if sub and subcommands and sub not in SKILL_NAMES:
            assert sub in subcommands, f"{doc}: skillbank {name} {sub} is not a command"


def test_model_skill_md_names_the_onnx_inputs_and_output():
    from skillbank.runtime.action_recognition import export

    text = (MODEL.path / "SKILL.md").read_text()
    assert f"`{export.OUTPUT_NAME}`" in text
    assert "`input_rgb`" in text and "`input_of`" in text


def test_pretrained_num_classes_is_explained_beside_the_pretrained_paths():
    """TAO's rule (runtime/action_recognition/pretrained.py), where an agent sets the pretrained paths: not 0
    means the file's classifier is for that many classes and is replaced by a fresh one; 0 keeps it."""
    lines = (MODEL.path / "SKILL.md").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| `model.rgb_pretrained_model_path`"))
    row = lines[at + 1]
    assert row.startswith("| `model.rgb_pretrained_num_classes` / `model.of_pretrained_num_classes` |")
    model = MODEL.template("train")["model"]
    assert f"| {model['rgb_pretrained_num_classes']} / {model['of_pretrained_num_classes']} |" in row
    assert "not 0" in row and "replaced by a fresh one for your `dataset.label_map`" in row
    assert "0 keeps the file's classifier" in row
    inference_row = next(line for line in lines if "| `ptm_if_no_resume_model` |" in line)
    assert "`model.*_pretrained_num_classes`" in inference_row
