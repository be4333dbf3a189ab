"""Spec-param inference: each registered function, the user-wins rule and the parent-job errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from skillbank.runtime.sdk.spec_params import (
    INFERENCE_FUNCTIONS,
    InferenceContext,
    SpecParamError,
    apply_spec_params,
    inference_function,
)

PARENT_ID = "11111111-2222-3333-4444-555555555555"


def _ctx(tmp_path: Path, action: str = "train", parent: dict | None = None, parent_id: str | None = None,
         env: dict | None = None) -> InferenceContext:
    return InferenceContext(job_id="job-1", action=action, network_arch="action_recognition",
                            results_dir=tmp_path / "job-1", parent_job_id=parent_id, parent=parent, env=env or {})


def _parent(tmp_path: Path, status: str = "Complete", action: str = "train", best: str | None = None,
            files: tuple[str, ...] = ("train/model_epoch_000_step_00010.pth", "train/model_epoch_001_step_00020.pth",
                                      "train/ar_model_latest.pth")) -> dict:
    results = tmp_path / "parent"
    for name in files:
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_bytes(b"w")
    return {"id": PARENT_ID, "status": status, "action": action, "results_dir": str(results),
            "results_uri": None, "uploaded": False, "best_checkpoint": best}


def test_registry_holds_every_skill_info_function():
    assert {"key", "output_dir", "parent_model", "parent_model_folder", "resume_model",
            "ptm_if_no_resume_model", "create_onnx_file"} <= set(INFERENCE_FUNCTIONS)
    with pytest.raises(ValueError, match="already registered"):
        inference_function("key")(lambda ctx, value: value)


def test_output_dir_and_onnx_file(tmp_path):
    spec = apply_spec_params({"results_dir": "", "export": {"onnx_file": ""}},
                             {"results_dir": "output_dir", "export.onnx_file": "create_onnx_file"}, _ctx(tmp_path))
    assert spec["results_dir"] == str(tmp_path / "job-1")
    assert spec["export"]["onnx_file"] == str(tmp_path / "job-1" / "action_recognition.onnx")


def test_user_value_wins_unless_empty_or_missing_marker(tmp_path):
    params = {"results_dir": "output_dir", "export.onnx_file": "create_onnx_file"}
    given = {"results_dir": "/mine", "export": {"onnx_file": "???"}}
    spec = apply_spec_params(given, params, _ctx(tmp_path))
    assert spec["results_dir"] == "/mine"
    assert spec["export"]["onnx_file"].endswith("action_recognition.onnx")
    assert given["export"]["onnx_file"] == "???"  # the input spec is not changed


def test_only_named_fields_are_touched(tmp_path):
    spec = apply_spec_params({"results_dir": "", "train": {"results_dir": ""}}, {"results_dir": "output_dir"},
                             _ctx(tmp_path))
    assert spec["train"]["results_dir"] == ""


def test_key_from_overrides_then_environment(tmp_path, monkeypatch):
    params = {"encryption_key": "key"}
    assert apply_spec_params({"encryption_key": "given"}, params, _ctx(tmp_path))["encryption_key"] == "given"
    ctx = _ctx(tmp_path, env={"SKILLBANK_ENCRYPTION_KEY": "from-env-arg"})
    assert apply_spec_params({"encryption_key": ""}, params, ctx)["encryption_key"] == "from-env-arg"
    monkeypatch.setenv("SKILLBANK_ENCRYPTION_KEY", "from-process")
    assert apply_spec_params({"encryption_key": ""}, params, _ctx(tmp_path))["encryption_key"] == "from-process"
    monkeypatch.delenv("SKILLBANK_ENCRYPTION_KEY")
    assert apply_spec_params({"encryption_key": ""}, params, _ctx(tmp_path))["encryption_key"] == ""


def test_resume_model_and_pretrained_model(tmp_path):
    params = {"train.resume_training_checkpoint_path": "resume_model",
              "model.rgb_pretrained_model_path": "ptm_if_no_resume_model"}
    given = {"train": {"resume_training_checkpoint_path": ""}, "model": {"rgb_pretrained_model_path": "/ptm.pth"}}
    fresh = apply_spec_params(given, params, _ctx(tmp_path))
    assert fresh["train"]["resume_training_checkpoint_path"] == ""
    assert fresh["model"]["rgb_pretrained_model_path"] == "/ptm.pth"

    own = tmp_path / "job-1" / "train"
    own.mkdir(parents=True)
    for name in ("model_epoch_002_step_00030.pth", "model_epoch_003_step_00040.pth", "ar_model_latest.pth"):
        (own / name).write_bytes(b"w")
    resumed = apply_spec_params(given, params, _ctx(tmp_path))
    assert resumed["train"]["resume_training_checkpoint_path"] == str(own / "model_epoch_003_step_00040.pth")
    assert resumed["model"]["rgb_pretrained_model_path"] == ""  # resuming: the pretrained path is dropped


def test_parent_model_and_folder(tmp_path):
    parent = _parent(tmp_path)
    params = {"evaluate.checkpoint": "parent_model", "evaluate.folder": "parent_model_folder"}
    spec = apply_spec_params({"evaluate": {"checkpoint": "???", "folder": ""}}, params,
                             _ctx(tmp_path, "evaluate", parent, PARENT_ID))
    assert spec["evaluate"]["checkpoint"] == str(tmp_path / "parent" / "train" / "model_epoch_001_step_00020.pth")
    assert spec["evaluate"]["folder"] == str(tmp_path / "parent" / "train")


def test_parent_model_uses_recorded_best(tmp_path):
    parent = _parent(tmp_path, best="model_epoch_000_step_00010.pth")
    spec = apply_spec_params({"c": ""}, {"c": "parent_model"}, _ctx(tmp_path, "evaluate", parent, PARENT_ID))
    assert spec["c"].endswith("model_epoch_000_step_00010.pth")


def test_parent_model_of_an_export_parent_is_its_onnx(tmp_path):
    parent = _parent(tmp_path, action="export", files=("action_recognition.onnx",))
    spec = apply_spec_params({"c": ""}, {"c": "parent_model"}, _ctx(tmp_path, "inference", parent, PARENT_ID))
    assert spec["c"].endswith("action_recognition.onnx")


@pytest.mark.parametrize("case, message", [
    ("no_parent_id", "no parent job was given"),
    ("missing", f"parent job '{PARENT_ID}' not found"),
    ("running", f"parent job '{PARENT_ID}' is Running, not Complete"),
    ("error", f"parent job '{PARENT_ID}' is Error"),
    ("no_checkpoint", f"parent job '{PARENT_ID}' has no usable checkpoint"),
])
def test_parent_errors_name_the_parent(tmp_path, case, message):
    parent, parent_id = None, PARENT_ID
    if case == "no_parent_id":
        parent_id = None
    elif case in ("running", "error"):
        parent = _parent(tmp_path, status={"running": "Running", "error": "Error"}[case])
    elif case == "no_checkpoint":
        parent = _parent(tmp_path, files=("train/ar_model_latest.pth", "log.txt"))
    with pytest.raises(SpecParamError, match=message):
        apply_spec_params({"evaluate": {"checkpoint": "???"}}, {"evaluate.checkpoint": "parent_model"},
                          _ctx(tmp_path, "evaluate", parent, parent_id))


def test_given_checkpoint_needs_no_parent(tmp_path):
    spec = apply_spec_params({"c": "/my/model.pth"}, {"c": "parent_model"}, _ctx(tmp_path, "evaluate"))
    assert spec["c"] == "/my/model.pth"


def test_unknown_function_is_named(tmp_path):
    with pytest.raises(SpecParamError, match="'guess_model'.*allowed: create_onnx_file"):
        apply_spec_params({"x": ""}, {"x": "guess_model"}, _ctx(tmp_path))
