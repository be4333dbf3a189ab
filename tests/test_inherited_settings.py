"""evaluate / inference / export take the model settings of the train job (or checkpoint) they run.

The rule (skill_info ``inherited_settings``) is a pure function; the SDK applies it while it builds the
spec, so --dry-run, the job record and spec.yaml all show the inherited values, and a value that
contradicts the checkpoint's network stops the job before anything is recorded.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.inherited_settings import InheritanceRule, InheritedSettingsError, inherit_settings
from skillbank.runtime.sdk.platforms.base import COMPLETE
from skillbank.runtime.sdk.store import JobStore
from skillbank.runtime.skills import Skill

SKILL = "tao-train-action-recognition"
MODEL = Skill.load(SKILL)
RULE = InheritanceRule.from_info(MODEL.info["inherited_settings"])
TRAINED = {  # what the parent train job ran with: a small joint 2d model
    "model.model_type": "joint", "model.input_type": "2d", "model.backbone": "resnet_34",
    "model.rgb_seq_length": 4, "model.of_seq_length": 5, "model.num_fc": 32,
    "model.input_width": 32, "model.input_height": 48,
    "dataset.label_map": {"catch": 0, "smile": 1, "wave": 2},
    "dataset.augmentation_config.crop_smaller_edge": 64,
    "dataset.augmentation_config.val_center_crop": True,
    "dataset.augmentation_config.rgb_input_mean": [0.5, 0.5, 0.5],
}


def _nested(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _get(spec: dict, key: str):
    for part in key.split("."):
        spec = spec[part]
    return spec


# -- the pure rule ----------------------------------------------------------------------------

def test_unset_keys_are_taken_from_the_source_and_reported():
    template = MODEL.template("evaluate")
    source = _nested(TRAINED)
    spec, inherited = inherit_settings(template, source, keys=RULE.keys, network_keys=RULE.network_keys_of(source))
    for key, value in TRAINED.items():
        assert _get(spec, key) == value and inherited[key] == value
    assert _get(template, "model.input_width") == 224  # the input is not changed
    assert "evaluate.checkpoint" not in inherited and "train.num_epochs" not in inherited


@pytest.mark.parametrize(
    ("explicit", "value", "error"),
    [
        ("model.backbone", "resnet_18", True),  # another network: an error naming both values
        ("model.rgb_seq_length", 3, True),  # 2d joint: the rgb stream's channels
        ("model.of_seq_length", 10, True),
        ("model.num_fc", 64, True),  # joint: the fusion layer
        ("model.model_type", "rgb", True),
        ("model.input_type", "3d", True),
        ("model.input_width", 64, False),  # not the network: the user's value stands
        ("dataset.label_map", {"a": 0, "b": 1, "c": 2}, False),
        ("model.backbone", "resnet_34", False),  # the same value is no contradiction
    ],
)
def test_explicit_values_win_unless_they_contradict_the_network(explicit, value, error):
    from skillbank.runtime.spec_builder import build_spec

    source = _nested(TRAINED)
    spec = build_spec(MODEL.template("evaluate"), {explicit: value})
    call = {"keys": RULE.keys, "network_keys": RULE.network_keys_of(source), "explicit": [explicit],
            "source_name": "parent job abc"}
    if error:
        with pytest.raises(InheritedSettingsError) as err:
            inherit_settings(spec, source, **call)
        message = str(err.value)
        assert f"{explicit}={value!r}" in message and f"{explicit}={TRAINED[explicit]!r}" in message
        assert "parent job abc" in message
    else:
        out, inherited = inherit_settings(spec, source, **call)
        assert _get(out, explicit) == value and explicit not in inherited


def test_seq_lengths_and_num_fc_matter_only_where_they_shape_the_network():
    rgb_3d = _nested({**TRAINED, "model.model_type": "rgb", "model.input_type": "3d"})
    assert RULE.network_keys_of(rgb_3d) == ["model.model_type", "model.backbone", "model.input_type"]
    spec, _ = inherit_settings(_nested({"model": {"num_fc": 8, "rgb_seq_length": 16}}), rgb_3d, keys=RULE.keys,
                               network_keys=RULE.network_keys_of(rgb_3d),
                               explicit=["model.num_fc", "model.rgb_seq_length"])
    assert spec["model"]["num_fc"] == 8 and spec["model"]["rgb_seq_length"] == 16


@pytest.mark.parametrize(("model_type", "input_type"), list(itertools.product(["rgb", "of", "joint"], ["2d", "3d"])))
def test_network_keys_are_the_runtime_architecture_keys(model_type, input_type):
    """skill_info's network_keys say what trained_model.architecture_keys checks, for every network kind."""
    from skillbank.runtime.action_recognition.trained_model import architecture_keys
    from skillbank.runtime.config.action_recognition import ModelConfig

    cfg = ModelConfig(model_type=model_type, input_type=input_type)
    source = {"model": {"model_type": model_type, "input_type": input_type}}
    assert RULE.network_keys_of(source) == [f"model.{k}" for k in architecture_keys(cfg)]


@pytest.mark.parametrize("action", ["evaluate", "inference", "export"])
def test_inherited_keys_are_fields_the_action_reads(action):
    reads = MODEL.fields_read(action)
    keys = MODEL.inherited_keys(action)
    assert keys and all(any(k == r or k.startswith(r + ".") for r in reads) for k in keys)
    assert {"model.input_width", "model.backbone", "dataset.label_map"} <= set(keys)
    if action == "export":  # ONNX holds no normalisation: export does not read the augmentation settings
        assert not any(k.startswith("dataset.augmentation_config") for k in keys)
    assert MODEL.inherited_keys("train") == []


# -- the SDK: a parent train job's spec ------------------------------------------------------

def _parent(tmp_path: Path, **extra) -> str:
    """A Complete train job in the store, with one checkpoint file and the TRAINED spec."""
    results = tmp_path / "parent"
    (results / "train").mkdir(parents=True)
    (results / "train" / "model_epoch_001_step_00010.pth").write_bytes(b"weights")
    spec = MODEL.template("train")
    for key, value in {**TRAINED, **extra}.items():
        node = spec
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return JobStore().insert(skill=SKILL, network_arch="action_recognition", action="train", platform="local",
                             spec=spec, results_dir=results, status=COMPLETE)


def test_prepare_job_takes_the_parent_settings_and_records_them(tmp_path):
    parent = _parent(tmp_path)
    prepared = jobs.prepare_job(SKILL, "evaluate", {"evaluate.test_dataset_dir": str(tmp_path)}, parent)
    assert prepared.spec["model"]["input_width"] == 32 and prepared.spec["model"]["input_height"] == 48
    assert prepared.spec["dataset"]["label_map"] == TRAINED["dataset.label_map"]
    assert prepared.spec["evaluate"]["checkpoint"].endswith("model_epoch_001_step_00010.pth")
    assert prepared.inherited["from"] == f"parent job {parent}"
    assert prepared.inherited["values"]["model.backbone"] == "resnet_34"
    assert "dataset.augmentation_config.rgb_input_mean" in prepared.inherited["values"]


def test_a_contradicting_value_stops_the_job_before_it_is_recorded(tmp_path):
    parent = _parent(tmp_path)
    with pytest.raises(InheritedSettingsError, match="model.backbone='resnet_18'.*model.backbone='resnet_34'"):
        jobs.create_job(SKILL, "export", {"model.backbone": "resnet_18"}, parent)
    assert [r["id"] for r in jobs.list_jobs()] == [parent]


def test_runner_dry_run_shows_the_inherited_values_and_errors_exit_2(tmp_path):
    parent = _parent(tmp_path)
    overrides = tmp_path / "eval.yaml"
    overrides.write_text(yaml.safe_dump({"evaluate.test_dataset_dir": str(tmp_path)}))
    result = CliRunner().invoke(main, ["generate", SKILL, "evaluate", str(overrides), "--parent-job-id", parent,
                                       "-o", str(tmp_path / "runner.py")])
    assert result.exit_code == 0, result.output
    dry = subprocess.run([sys.executable, str(tmp_path / "runner.py"), "--dry-run", "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert summary["inherited"]["values"]["model.input_width"] == 32
    assert summary["spec"]["model"]["input_height"] == 48
    assert f"# model settings from parent job {parent}" in dry.stderr and "#   model.input_width: 32" in dry.stderr

    overrides.write_text(yaml.safe_dump({"evaluate.test_dataset_dir": str(tmp_path), "model.num_fc": 64}))
    skillbank = Path(sys.executable).with_name("skillbank")
    bad = subprocess.run([str(skillbank), "run", SKILL, "evaluate", str(overrides), "--parent-job-id", parent,
                          "--dry-run"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "model.num_fc=64 but the checkpoint's network has model.num_fc=32" in bad.stdout


def test_jobs_show_lists_what_a_job_inherited(tmp_path):
    parent = _parent(tmp_path)
    prepared = jobs.prepare_job(SKILL, "export", {}, parent)  # recorded as create_job records it (no launch)
    JobStore().insert(skill=SKILL, network_arch="action_recognition", action="export", platform="local",
                      spec=prepared.spec, results_dir=tmp_path / "child", parent_job_id=parent,
                      inherited=prepared.inherited, job_id=prepared.job_id)
    record = jobs.get_job(prepared.job_id)
    assert record["inherited"]["values"]["model.input_height"] == 48
    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "job_record.schema.json").read_text())
    jsonschema.validate(jobs.describe_job(prepared.job_id), schema)  # inherited and outputs, as documented
    text = CliRunner().invoke(main, ["jobs", "show", prepared.job_id]).output
    assert f"inherited from parent job {parent}: model.model_type='joint'" in text


# -- without a parent: the config our checkpoints store -------------------------------------------

def _checkpoint(path: Path, config: dict | None) -> Path:
    torch = pytest.importorskip("torch")
    from collections import OrderedDict

    data = {"epoch": 0, "global_step": 3, "pytorch-lightning_version": "2.5.0",
            "state_dict": OrderedDict([("model.fc.weight", torch.zeros(2, 4)), ("model.fc.bias", torch.zeros(2))]),
            "optimizer_states": [{"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": [{"lr": 0.1}]}],
            "loops": {"fit_loop": {"epoch_progress": {"current": {"processed": 1}}}}}
    if config is not None:
        data["skillbank"] = {"format": "skillbank-action-recognition/1", "config": config,
                             "label_map": {"catch": 0, "smile": 1}, "rng": {"torch": torch.get_rng_state()}}
    torch.save(data, path)
    return path


def test_stored_config_is_read_without_torch(tmp_path):
    config = _nested({k: v for k, v in TRAINED.items() if k != "dataset.label_map"})
    ours = _checkpoint(tmp_path / "ours.pth", config)
    tao = _checkpoint(tmp_path / "tao.pth", None)
    code = (f"import sys; from skillbank.runtime.sdk.stored_config import stored_config; "
            f"c = stored_config({str(ours)!r}); print(c['model']['backbone'], c['dataset']['label_map'], "
            f"stored_config({str(tao)!r}), stored_config({str(tmp_path / 'none.pth')!r}), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["resnet_34", "{'catch':", "0,", "'smile':", "1}", "None", "None", "False"], out.stderr


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    import pickle
    import zipfile

    from skillbank.runtime.sdk.stored_config import stored_config

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    bad = tmp_path / "evil.pth"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"skillbank": {"config": Evil()}}, protocol=2))
    assert stored_config(bad) is None and not (tmp_path / "pwned").exists()


def test_without_a_parent_the_checkpoint_config_fills_the_spec(tmp_path):
    config = _nested({k: v for k, v in TRAINED.items() if k != "dataset.label_map"})
    ours = _checkpoint(tmp_path / "ours.pth", config)
    prepared = jobs.prepare_job(SKILL, "inference", {"inference.checkpoint": str(ours),
                                                     "inference.inference_dataset_dir": str(tmp_path)})
    assert prepared.spec["model"]["backbone"] == "resnet_34" and prepared.spec["model"]["input_height"] == 48
    assert prepared.spec["dataset"]["label_map"] == {"catch": 0, "smile": 1}  # the map it trained with
    assert prepared.inherited["from"] == f"the config stored in {ours}"
    with pytest.raises(InheritedSettingsError, match=str(ours)):
        jobs.prepare_job(SKILL, "export", {"export.checkpoint": str(ours), "model.input_type": "3d"})

    tao = _checkpoint(tmp_path / "tao.pth", None)  # TAO's checkpoints store no config: the spec's values stand
    prepared = jobs.prepare_job(SKILL, "export", {"export.checkpoint": str(tao), "model.input_type": "3d"})
    assert prepared.inherited == {} and prepared.spec["model"]["input_type"] == "3d"


def test_skill_md_names_every_inherited_and_network_key():
    text = (MODEL.path / "SKILL.md").read_text()
    section = " ".join(text.split("## Inherited model settings", 1)[1].split("\n## ", 1)[0].split())
    assert all(f"`{key}`" in section for key in RULE.keys)
    assert all(f"`{key}`" in section for key, _ in RULE.network_keys)


def test_a_checkpoint_you_name_yourself_wins_over_the_parent_spec(tmp_path):
    parent = _parent(tmp_path)  # resnet_34
    ours = _checkpoint(tmp_path / "ours.pth", _nested({"model.backbone": "resnet_50", "model.input_width": 64}))
    prepared = jobs.prepare_job(SKILL, "export", {"export.checkpoint": str(ours)}, parent)
    assert prepared.spec["model"]["backbone"] == "resnet_50" and prepared.inherited["from"].endswith("ours.pth")
    tao = _checkpoint(tmp_path / "tao.pth", None)  # stores nothing: the parent's spec is all there is
    prepared = jobs.prepare_job(SKILL, "export", {"export.checkpoint": str(tao)}, parent)
    assert prepared.spec["model"]["backbone"] == "resnet_34" and prepared.inherited["from"] == f"parent job {parent}"
