"""The read-only CLI: list, schema, validate, spec (exit codes, JSON output, no torch)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from skillbank.cli import main

SKILL = "tao-train-action-recognition"
DATA = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test"}


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def overrides_file(tmp_path):
    def write(data, suffix=".json"):
        path = tmp_path / f"overrides{suffix}"
        path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
        return str(path)

    return write


def test_list_shows_skills_actions_and_automl(tmp_path):
    result = run("list", "--format", "json")
    assert result.exit_code == 0
    rows = {row["skill"]: row for row in json.loads(result.output)}
    model = rows[SKILL]
    assert set(model["actions"]) == {"train", "evaluate", "inference", "export"}
    assert model["actions"]["train"]["automl"] is True
    assert model["actions"]["evaluate"]["automl"] is False


def test_schema_lists_popular_and_automl_parameters():
    result = run("schema", SKILL, "train", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    keys = {row["key"]: row for row in data["parameters"]}
    assert keys["train.optim.lr"]["automl_default"] is True
    assert keys["train.num_epochs"]["default"] == 10 and keys["train.num_epochs"]["minimum"] == 1
    assert keys["dataset.train_dataset_dir"]["data_source"] is True
    assert data["shorthand_keys"]["learning_rate"] == "train.optim.lr"
    text = run("schema", SKILL, "train").output
    assert "train.optim.lr = 0.0005" in text and "AutoML default" in text


def test_validate_exit_codes(overrides_file):
    assert run("validate", SKILL, "train", overrides_file({**DATA, "num_epochs": 2})).exit_code == 0
    bad = run("validate", SKILL, "train", overrides_file({**DATA, "train.optim.lr": "x"}))
    assert bad.exit_code == 1 and "train.optim.lr" in bad.output
    assert run("validate", "no-such-skill", "train", overrides_file(DATA)).exit_code == 2
    assert run("validate", SKILL, "dance", overrides_file(DATA)).exit_code == 2
    missing = run("validate", SKILL, "train", "/nonexistent/overrides.yaml")
    assert missing.exit_code == 2 and "/nonexistent/overrides.yaml" in missing.output


def test_validate_reads_yaml_and_stdin_and_prints_json(overrides_file):
    assert run("validate", SKILL, "train", overrides_file({**DATA, "batch_size": 4}, ".yaml")).exit_code == 0
    result = run("validate", SKILL, "train", "-", "--format", "json",
                 input=json.dumps({**DATA, "model.backbone": "resnet_19"}))
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["valid"] is False
    assert data["problems"][0]["key"] == "model.backbone"
    assert "resnet_18" in data["problems"][0]["message"]


def test_validate_rejects_non_mapping_overrides():
    result = run("validate", SKILL, "train", "-", input="- just\n- a list\n")
    assert result.exit_code == 2 and "mapping" in result.output


def test_spec_prints_the_merged_spec_with_secrets_masked(overrides_file):
    result = run("spec", SKILL, "train", overrides_file({**DATA, "num_epochs": 3, "encryption_key": "s3cr3t-k3y"}))
    assert result.exit_code == 0
    spec = yaml.safe_load(result.output)
    assert spec["train"]["num_epochs"] == 3 and spec["train"]["optim"]["lr"] == 0.0005
    assert "s3cr3t-k3y" not in result.output
    assert run("spec", SKILL, "train", overrides_file({"num_epochs": 0})).exit_code == 1


def test_read_only_commands_do_not_import_torch(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps(DATA))
    code = (
        "import sys\nfrom skillbank.cli import main\n"
        f"sys.argv = ['skillbank', 'validate', {SKILL!r}, 'train', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'optuna', 'boto3', 'jsonschema', 'matplotlib')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


@pytest.mark.parametrize("action", ["evaluate", "inference", "export"])
def test_schema_lists_only_the_fields_the_action_reads(action):
    for extra in ([], ["--all"]):
        data = json.loads(run("schema", SKILL, action, "--format", "json", *extra).output)
        keys = [row["key"] for row in data["parameters"]]
        assert not [k for k in keys if k.startswith(("train.", "wandb.", "dataset.train_dataset_dir"))], keys
        assert f"{action}.checkpoint" in keys
        assert data["automl_default_parameters"] == [] and "learning_rate" not in data["shorthand_keys"]
    everything = {row["key"]: row for row in data["parameters"]}
    assert everything["model.input_width"]["inherited"] is True  # from the parent train job
    assert everything[f"{action}.checkpoint"]["inherited"] is False
    assert data["fields_read"] == len(everything)
    text = run("schema", SKILL, action, "--all").output
    assert "train.optim.lr" not in text and "model.backbone = 'resnet_18'" in text
    assert "from the parent train job" in text


def test_train_schema_reads_every_section_it_trains_with():
    data = json.loads(run("schema", SKILL, "train", "--all", "--format", "json").output)
    keys = {row["key"] for row in data["parameters"]}
    assert {"train.optim.lr", "model.rgb_pretrained_model_path", "dataset.train_dataset_dir", "wandb.enable"} <= keys
    assert not any(key.startswith(("evaluate.", "export.")) for key in keys)
