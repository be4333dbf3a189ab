"""Every output named: skill_info declares each action's files, `jobs show` lists those that exist."""
from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.sdk.outputs import SDK_FILES, declared_files, job_outputs, main_output
from skillbank.runtime.sdk.platforms.base import COMPLETE
from skillbank.runtime.sdk.store import JobStore
from skillbank.runtime.skills import Skill

SKILL = "tao-train-action-recognition"
MODEL = Skill.load(SKILL)


def _globs(action: str) -> list[str]:
    return [entry["path"] for entry in declared_files(MODEL, action) if "path" in entry]


def _declares(action: str, relative: str) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in _globs(action))


def test_declared_files_are_the_files_the_code_writes():
    """The names come from the runtime's own constants, so a renamed output fails here."""
    from skillbank.runtime.action_recognition import evaluate, inference
    from skillbank.runtime.action_recognition.checkpoint_io import LATEST_LINK, checkpoint_name
    from skillbank.runtime.action_recognition.experiment_loggers import LOG_FOLDER
    from skillbank.runtime.action_recognition.status_log import STATUS_FILE
    from skillbank.runtime.config.action_recognition import CheckpointerConfig

    best = CheckpointerConfig().filename.format(epoch=4) + ".pth"
    assert _declares("train", f"train/{checkpoint_name(4, 120)}")
    assert _declares("train", f"train/{best}")
    assert _declares("train", f"train/{LATEST_LINK}")
    assert _declares("train", f"train/{LOG_FOLDER}/version_0/metrics.csv")
    assert _declares("evaluate", f"evaluate/{evaluate.RESULTS_FILE}")
    assert _declares("evaluate", f"evaluate/{evaluate.CONFUSION_PNG}")
    assert _declares("inference", f"inference/{inference.CSV_FILE}")
    assert _declares("inference", f"inference/{inference.JSON_FILE}")
    for action in MODEL.actions:
        assert _declares(action, f"{action}/{STATUS_FILE}") and _declares(action, f"{action}/experiment.yaml")
        assert _declares(action, "spec.yaml") and _declares(action, "log.txt")  # the SDK's own
        mains = [e for e in declared_files(MODEL, action) if e.get("main")]
        assert mains and all(e["description"] for e in declared_files(MODEL, action))
    assert [e["spec_key"] for e in declared_files(MODEL, "export") if "spec_key" in e] == ["export.onnx_file"]


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _record(tmp_path: Path, action: str, **extra) -> dict:
    results = tmp_path / action
    return {"id": "job-1", "skill": SKILL, "action": action, "results_dir": str(results), "results_uri": None,
            "uploaded": False, "spec": {}, "best_checkpoint": None, **extra}


def test_train_outputs_newest_checkpoint_is_main_and_inputs_are_not_outputs(tmp_path):
    record = _record(tmp_path, "train")
    results = Path(record["results_dir"])
    _touch(results, "train/model_epoch_000_step_00008.pth", "train/model_epoch_001_step_00016.pth",
           "train/status.json", "train/experiment.yaml", "train/lightning_logs/version_0/metrics.csv",
           "spec.yaml", "log.txt", "inputs/dataset.train_dataset_dir/x.pth", "train/.tmp-ckpt.pth")
    os.symlink("model_epoch_001_step_00016.pth", results / "train" / "ar_model_latest.pth")
    rows = job_outputs(record)
    relative = [row["relative"] for row in rows]
    assert relative == ["train/model_epoch_001_step_00016.pth", "train/model_epoch_000_step_00008.pth",
                        "train/ar_model_latest.pth", "train/status.json", "train/experiment.yaml",
                        "train/lightning_logs/version_0/metrics.csv", "spec.yaml", "log.txt"]
    assert [row["relative"] for row in rows if row["main"]] == ["train/model_epoch_001_step_00016.pth"]
    assert all(Path(row["path"]).is_absolute() and row["description"] for row in rows)


def test_train_main_output_is_the_recorded_best_as_a_child_job_takes_it(tmp_path):
    record = _record(tmp_path, "train", best_checkpoint="model_best_000.pth")
    _touch(Path(record["results_dir"]), "train/model_epoch_001_step_00016.pth", "train/model_best_000.pth")
    assert main_output(record)["relative"] == "train/model_best_000.pth"
    outside = tmp_path / "elsewhere" / "model_best_001.pth"  # train.checkpointer.dirpath outside the results
    _touch(outside.parent, outside.name)
    record["best_checkpoint"] = str(outside)
    rows = job_outputs(record)
    assert main_output(record)["path"] == str(outside) and str(outside) in [row["path"] for row in rows]


def test_evaluate_inference_export_outputs(tmp_path):
    evaluate = _record(tmp_path, "evaluate")
    _touch(Path(evaluate["results_dir"]), "evaluate/results.json", "evaluate/confusion_matrix.png",
           "evaluate/status.json")
    assert main_output(evaluate)["relative"] == "evaluate/results.json"
    assert [r["relative"] for r in job_outputs(evaluate)] == [
        "evaluate/results.json", "evaluate/confusion_matrix.png", "evaluate/status.json"]

    inference = _record(tmp_path, "inference")
    _touch(Path(inference["results_dir"]), "inference/predictions.json", "inference/predictions.csv")
    assert main_output(inference)["relative"] == "inference/predictions.csv"

    onnx = tmp_path / "export" / "action_recognition.onnx"
    export = _record(tmp_path, "export", spec={"export": {"onnx_file": str(onnx)}})
    assert main_output(export) is None  # not written (yet)
    _touch(onnx.parent, onnx.name, "export/status.json")
    assert main_output(export)["path"] == str(onnx) and main_output(export)["relative"] == onnx.name
    elsewhere = tmp_path / "models" / "ar.onnx"  # export.onnx_file outside the results folder
    _touch(elsewhere.parent, elsewhere.name)
    export["spec"]["export"]["onnx_file"] = str(elsewhere)
    assert main_output(export) == {"path": str(elsewhere), "relative": None, "main": True,
                                   "description": declared_files(MODEL, "export")[0]["description"]}


def test_a_skill_without_declared_files_lists_the_sdk_files(tmp_path):
    record = {**_record(tmp_path, "train"), "skill": "no-such-skill"}
    _touch(Path(record["results_dir"]), "spec.yaml", "log.txt", "train/whatever.bin")
    assert [r["relative"] for r in job_outputs(record)] == [e["path"] for e in SDK_FILES]
    assert main_output(record) is None


@pytest.mark.parametrize(("action", "files", "main_file"), [
    ("train", ["train/model_epoch_000_step_00004.pth", "train/status.json"], "train/model_epoch_000_step_00004.pth"),
    ("evaluate", ["evaluate/results.json", "evaluate/confusion_matrix.png"], "evaluate/results.json"),
    ("inference", ["inference/predictions.csv", "inference/predictions.json"], "inference/predictions.csv"),
    ("export", ["action_recognition.onnx", "export/status.json"], "action_recognition.onnx"),
])
def test_jobs_show_lists_the_outputs_of_every_action(tmp_path, action, files, main_file):
    results = tmp_path / "results" / action
    _touch(results, *files, "spec.yaml", "log.txt")
    spec = {"export": {"onnx_file": str(results / "action_recognition.onnx")}} if action == "export" else {}
    job_id = JobStore().insert(skill=SKILL, network_arch="action_recognition", action=action, platform="local",
                               spec=spec, results_dir=results, status=COMPLETE)
    shown = json.loads(CliRunner().invoke(main, ["jobs", "show", job_id, "--format", "json"]).output)
    assert [row["path"] for row in shown["outputs"] if row["main"]] == [str(results / main_file)]
    assert {str(results / f) for f in [*files, "spec.yaml", "log.txt"]} == {row["path"] for row in shown["outputs"]}
    text = CliRunner().invoke(main, ["jobs", "show", job_id]).output
    assert f"  {results / main_file}  (MAIN: " in text


def test_skill_md_outputs_table_names_every_declared_file():
    text = (MODEL.path / "SKILL.md").read_text()
    section = text.split("## Outputs", 1)[1].split("\n## ", 1)[0]
    for action in MODEL.actions:
        for entry in declared_files(MODEL, action):
            where = entry.get("path") or entry["spec_key"]
            assert f"`<results_dir>/{where}`" in section or f"`{where}`" in section, (action, where)
