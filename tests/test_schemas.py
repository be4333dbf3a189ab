"""The generated schemas, manifest and templates: valid, deterministic, TAO-compatible."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from skillbank.generator import regen
from skillbank.runtime.overrides import flatten
from skillbank.runtime.skills import Skill
from skillbank.runtime.validation import validate_overrides

REPO = Path(__file__).resolve().parent.parent
TAO = REPO.parent / "shared" / "reference" / "tao-action-recognition"
ACTIONS = ("train", "evaluate", "inference", "export")
SKILL = Skill.load("tao-train-action-recognition")


@pytest.mark.parametrize("action", ACTIONS)
def test_schema_is_valid_draft_2020_12_without_infinity(action):
    text = SKILL.schema_path(action).read_text()
    assert "Infinity" not in text and "NaN" not in text
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    # the schema's own defaults are a valid spec
    jsonschema.Draft202012Validator(schema).validate(schema["default"])


@pytest.mark.parametrize("action", ACTIONS)
def test_schema_keeps_tao_metadata(action):
    schema = SKILL.schema(action)
    assert schema["automl_default_parameters"] == ["model.dropout_ratio", "train.optim.lr"]
    assert schema["automl_disabled_parameters"] == sorted(schema["automl_disabled_parameters"])
    assert {"default", "popular", "x_tao_schema"} <= set(schema)
    assert schema["x_tao_schema"]["schema_action"] == action
    # each action's schema keeps the train section beside its own (as TAO does)
    assert {"train", action} <= set(schema["properties"])
    lr = schema["properties"]["train"]["properties"]["optim"]["properties"]["lr"]
    assert lr["automl_enabled"] is True and lr["minimum"] == 0.0 and lr["default"] == 0.0005
    assert schema["properties"]["model"]["properties"]["dropout_ratio"]["maximum"] == 1.0
    assert schema["properties"]["train"]["properties"]["num_epochs"]["popular"] is True


@pytest.mark.parametrize("action", ACTIONS)
def test_templates_match_tao(action):
    ours = yaml.safe_load(SKILL.template_path(action).read_text())
    theirs = yaml.safe_load((TAO / f"spec_template_{action}.yaml").read_text())
    assert ours == theirs
    # field order is kept too
    assert list(ours) == list(theirs)


def test_manifest_matches_tao_and_meta_schema():
    manifest = SKILL.manifest()
    meta = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
    jsonschema.validate(manifest, meta)
    theirs = json.loads((TAO / "manifest.json").read_text())
    assert manifest["model"] == "tao-train-action-recognition"  # not TAO's "action-recognition" quirk
    assert manifest["actions"] == theirs["actions"]
    assert {k: v for k, v in manifest.items() if k != "model"} == {k: v for k, v in theirs.items() if k != "model"}


def test_tao_train_schema_fields_all_exist_with_same_defaults_and_enums():
    tao = json.loads((TAO / "train.schema.json").read_text().replace("Infinity", "1e308"))
    ours = SKILL.schema("train")

    def walk(node, prefix=""):
        for name, prop in (node.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            if "properties" in prop:
                yield from walk(prop, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", prop

    ours_leaves = dict(walk(ours))
    for key, prop in walk(tao):
        assert key in ours_leaves, key
        if "default" in prop:
            assert ours_leaves[key]["default"] == prop["default"], key
        if "enum" in prop:
            assert ours_leaves[key]["enum"] == prop["enum"], key
        if "minimum" in prop:
            assert ours_leaves[key]["minimum"] == prop["minimum"], key


@pytest.mark.parametrize("action", ACTIONS)
def test_a_tao_spec_validates_unchanged(action):
    """A spec written for TAO (its template, data paths filled in) is valid here."""
    spec = yaml.safe_load((TAO / f"spec_template_{action}.yaml").read_text())
    for key in SKILL.data_sources(action):
        section, field = key.split(".")
        spec[section][field] = "/data/somewhere"
    assert validate_overrides(SKILL, action, flatten(spec, SKILL.schema(action))) == []
    assert validate_overrides(SKILL, action, spec) == []


def test_regeneration_is_deterministic_and_committed(tmp_path):
    assert regen.check_all(REPO) == []
    first = {p.relative_to(tmp_path): p.read_bytes() for p in regen.write_all(REPO, tmp_path)}
    second = {p.relative_to(tmp_path): p.read_bytes() for p in regen.write_all(REPO, tmp_path)}
    assert first == second and len(first) == 9


def test_check_names_drifted_files(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(REPO / "skills", tmp_path / "skills")
    template = tmp_path / "skills/models/tao-train-action-recognition/references/spec_template_train.yaml"
    template.write_text(template.read_text().replace("num_epochs: 10", "num_epochs: 11"))
    (tmp_path / "skills/models/tao-train-action-recognition/schemas/export.schema.json").unlink()
    drift = regen.check_all(tmp_path)
    assert drift == [
        "skills/models/tao-train-action-recognition/references/spec_template_train.yaml",
        "skills/models/tao-train-action-recognition/schemas/export.schema.json",
    ]
