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
TAO = REPO / "tests" / "fixtures" / "tao" / "reference"  # TAO's templates, train schema and manifest
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
    assert first == second and len(first) == 16  # 9 per model, JSON twins of 4 templates and 2 skill_info, platforms


def test_check_names_drifted_files(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(REPO / "skills", tmp_path / "skills")
    shutil.copytree(REPO / "references", tmp_path / "references")  # references/platforms.yaml is generated too
    template = tmp_path / "skills/models/tao-train-action-recognition/references/spec_template_train.yaml"
    template.write_text(template.read_text().replace("num_epochs: 10", "num_epochs: 11"))
    (tmp_path / "skills/models/tao-train-action-recognition/schemas/export.schema.json").unlink()
    drift = regen.check_all(tmp_path)
    assert drift == [
        "skills/models/tao-train-action-recognition/references/spec_template_train.yaml",
        "skills/models/tao-train-action-recognition/schemas/export.schema.json",
    ]


CHECKPOINTER = {  # tao-core's CheckpointerConfig: key -> (type, default)
    "enable_topk": ("boolean", False), "replace_periodic": ("boolean", False), "monitor": (["string", "null"], None),
    "mode": (["string", "null"], None), "save_top_k": ("integer", 1), "filename": ("string", "model_best_{epoch:03d}"),
    "dirpath": (["string", "null"], None), "auto_insert_metric_name": ("boolean", False),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_checkpointer_section_is_in_every_schema_but_no_template(action):
    schema = SKILL.schema(action)
    section = schema["properties"]["train"]["properties"]["checkpointer"]
    assert {k: (v["type"], v["default"]) for k, v in section["properties"].items()} == CHECKPOINTER
    assert section["properties"]["save_top_k"]["minimum"] == 1
    assert section["properties"]["mode"]["enum"] == ["min", "max", None]
    assert "checkpointer" not in schema["default"]["train"]
    assert "checkpointer" not in yaml.safe_load(SKILL.template_path(action).read_text())["train"]
    assert not any("checkpointer" in k for k in [*schema["automl_disabled_parameters"], *schema["popular"]["train"]])
    validator = jsonschema.Draft202012Validator(schema)
    good = {"train": {"checkpointer": {"enable_topk": True, "mode": None, "monitor": "val_loss", "save_top_k": 2}}}
    assert list(validator.iter_errors(good)) == []
    for bad in ({"save_top_k": 0}, {"mode": "avg"}, {"enable_topk": "yes"}, {"every_n": 1}):
        assert list(validator.iter_errors({"train": {"checkpointer": bad}})), bad


@pytest.mark.parametrize("action", ACTIONS)
def test_tao_optional_fields_take_null_in_the_schemas(action):
    """tao-core's Optional[str] fields (and label_map) are nullable; the rest is not."""
    schema = SKILL.schema(action)
    props = schema["properties"]
    nullable = {"model_name", "encryption_key", "results_dir", "model.of_pretrained_model_path",
                "model.rgb_pretrained_model_path", "model.joint_pretrained_model_path", "dataset.train_dataset_dir",
                "dataset.val_dataset_dir", "dataset.label_map", "train.resume_training_checkpoint_path",
                "train.results_dir", "train.checkpointer.monitor", "train.checkpointer.mode",
                "train.checkpointer.dirpath"}
    nullable |= {"evaluate": {"evaluate.trt_engine", "evaluate.results_dir"},
                 "inference": {"inference.trt_engine", "inference.results_dir"},
                 "export": {"export.results_dir", "export.onnx_file"}}.get(action, set())

    def walk(node, prefix=""):
        for name, prop in node["properties"].items():
            if "properties" in prop:
                yield from walk(prop, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", prop

    found = {key for key, prop in walk({"properties": props}) if isinstance(prop["type"], list)}
    assert found == nullable
    spec = {"model_name": None, "results_dir": None, "train": {"resume_training_checkpoint_path": None}}
    jsonschema.Draft202012Validator(schema).validate(spec)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"train": {"num_epochs": None}})


def test_each_action_schema_declares_the_fields_its_code_reads():
    """x_action_reads comes from ACTION_READS and names only fields of the schema."""
    from skillbank.runtime.config.action_recognition import ACTION_READS
    from skillbank.runtime.skills import Skill

    skill = Skill.load("tao-train-action-recognition")
    for action, reads in ACTION_READS.items():
        assert skill.fields_read(action) == sorted(reads)
    assert "train" not in skill.fields_read("inference") and "model.rgb_pretrained_model_path" not in str(
        skill.fields_read("evaluate"))


def test_reads_that_name_no_field_fail_generation():
    from skillbank.generator import schema_gen
    from skillbank.runtime.config.action_recognition import ExperimentConfig

    with pytest.raises(ValueError, match="model.nope"):
        schema_gen.action_schema(ExperimentConfig, "evaluate", sections=("model", "dataset", "train"),
                                 reads=("model.backbone", "model.nope"), model="m", network_arch="n",
                                 core_module="c")
