"""skill_info.yaml: valid against the bank's meta-schema, and every key it names exists."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from skillbank.runtime.skills import Skill
from skillbank.runtime.validation import leaf_schemas

REPO = Path(__file__).resolve().parent.parent
META = json.loads((REPO / "schemas" / "skill_info.schema.json").read_text())
SKILL = Skill.load("tao-train-action-recognition")


def test_meta_schema_is_valid_and_accepts_the_model_skill_info():
    jsonschema.Draft202012Validator.check_schema(META)
    jsonschema.validate(SKILL.info, META)


def test_meta_schema_rejects_an_unknown_inference_function():
    info = json.loads(json.dumps(SKILL.info))
    info["spec_params"]["evaluate"]["evaluate.checkpoint"] = "guess_checkpoint"
    with pytest.raises(jsonschema.ValidationError, match="guess_checkpoint"):
        jsonschema.validate(info, META)


@pytest.mark.parametrize("action", SKILL.actions)
def test_every_key_named_exists_in_the_action_schema(action):
    leaves = leaf_schemas(SKILL.schema(action))
    action_info = SKILL.action_info(action)
    named = [*action_info.get("inputs", {}), *action_info.get("outputs", {}), *SKILL.spec_params(action),
             *SKILL.data_sources(action)]
    missing = [key for key in named if key not in leaves]
    assert missing == []
    assert SKILL.info["gpu_spec_key"] in leaf_schemas(SKILL.schema("train"))
    assert SKILL.info["nodes_spec_key"] in leaf_schemas(SKILL.schema("train"))
    for target in SKILL.shorthand_keys().values():
        assert target in leaves


def test_data_sources_name_the_sample_archives():
    archives = {key: value["archive"] for action in SKILL.actions for key, value in SKILL.data_sources(action).items()}
    assert archives == {
        "dataset.train_dataset_dir": "train.tar.gz",
        "dataset.val_dataset_dir": "test.tar.gz",
        "evaluate.test_dataset_dir": "test.tar.gz",
        "inference.inference_dataset_dir": "inference.tar.gz",
    }


def test_inherited_settings_and_file_keys_exist_in_each_action_schema():
    rule = SKILL.info["inherited_settings"]
    for action in rule["actions"]:
        leaves = leaf_schemas(SKILL.schema(action))
        assert [key for key in rule["keys"] if key not in leaves] == []
        assert [e["key"] for e in rule["network_keys"] if e["key"] not in rule["keys"]] == []
        for entry in SKILL.action_info(action).get("files", []):
            assert "spec_key" not in entry or entry["spec_key"] in leaves


def test_meta_schema_rejects_a_file_entry_without_a_description():
    info = json.loads(json.dumps(SKILL.info))
    info["actions"]["evaluate"]["files"].append({"path": "evaluate/other.json"})
    with pytest.raises(jsonschema.ValidationError, match="description"):
        jsonschema.validate(info, META)
