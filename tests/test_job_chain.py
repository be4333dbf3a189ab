"""Job chains through create_job: train -> evaluate/export with parent_job_id, locally and on S3; secrets.

The fake-skill chains prove the SDK works for any skill following the
skill_info contract and run in seconds; the action-recognition chains run the
real model on the sample data set (marked slow).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from skillbank.cli.jobs import jobs as jobs_cli
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.checkpoints import select_checkpoint
from skillbank.runtime.sdk.platforms.base import COMPLETE, RUNNING
from skillbank.runtime.sdk.status_file import read_status_events

REPO = Path(__file__).resolve().parent.parent
SKILL = "tao-train-action-recognition"
ENTRYPOINT = REPO / "runtime" / "action_recognition" / "entrypoint.py"
needs_model = pytest.mark.skipif(not ENTRYPOINT.is_file(), reason="action_recognition entry point not built yet")


def _spec_on_disk(job_id: str) -> dict:
    return yaml.safe_load((Path(jobs.get_job(job_id)["results_dir"]) / "spec.yaml").read_text())


def _train_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "sample.txt").write_text("frames")
    return data


def test_fake_chain_train_evaluate_export(fake_skill, tmp_path):
    train = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(_train_data(tmp_path))})
    events = []
    assert jobs.wait(train, timeout=30, poll=0.1, on_progress=events.append) == COMPLETE
    assert events and events[-1]["status"] == "SUCCESS"
    record = jobs.get_job(train)
    train_dir = Path(record["results_dir"]) / "train"
    assert record["checkpoints"] == [str(train_dir / "model_epoch_001_step_00020.pth"),
                                     str(train_dir / "model_epoch_000_step_00010.pth")]
    assert _spec_on_disk(train)["results_dir"] == record["results_dir"]
    assert record["results_dir"] == str(Path(os.environ["SKILLBANK_RESULTS_ROOT"]) / train)

    evaluate = jobs.create_job(str(fake_skill), "evaluate", {}, parent_job_id=train)
    export = jobs.create_job(str(fake_skill), "export", {}, parent_job_id=train)
    assert jobs.wait(evaluate, timeout=30, poll=0.1) == COMPLETE
    assert jobs.wait(export, timeout=30, poll=0.1) == COMPLETE
    spec = _spec_on_disk(evaluate)
    assert spec["evaluate"]["checkpoint"] == str(train_dir / "model_epoch_001_step_00020.pth")
    assert spec["evaluate"]["checkpoint_folder"] == str(train_dir)
    export_record = jobs.get_job(export)
    onnx = Path(export_record["results_dir"]) / "fake_net.onnx"
    assert _spec_on_disk(export)["export"]["onnx_file"] == str(onnx) and onnx.is_file()
    assert export_record["checkpoints"] == [str(onnx)] and export_record["parent_job_id"] == train
    assert [r["id"] for r in jobs.list_jobs(action="evaluate")] == [evaluate]


def test_recorded_best_checkpoint_is_used_by_children(fake_skill, tmp_path):
    train = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(_train_data(tmp_path)),
                                                       "num_epochs": 3, "train.best_epoch": 1})
    assert jobs.wait(train, timeout=30, poll=0.1) == COMPLETE
    assert jobs.get_job(train)["best_checkpoint"] == "model_epoch_001_step_00020.pth"
    evaluate = jobs.create_job(str(fake_skill), "evaluate", {}, parent_job_id=train)
    assert _spec_on_disk(evaluate)["evaluate"]["checkpoint"].endswith("model_epoch_001_step_00020.pth")
    assert jobs.wait(evaluate, timeout=30, poll=0.1) == COMPLETE


def test_parent_problems_are_clear_errors(fake_skill, tmp_path):
    with pytest.raises(jobs.JobError, match="parent job 'no-such-parent' not found"):
        jobs.create_job(str(fake_skill), "evaluate", {}, parent_job_id="no-such-parent")
    slow = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(_train_data(tmp_path)),
                                                      "train.sleep": 30.0})
    with pytest.raises(ValueError, match=f"parent job '{slow}' is Running, not Complete"):
        jobs.create_job(str(fake_skill), "evaluate", {}, parent_job_id=slow)
    with pytest.raises(ValueError, match="no parent job was given"):
        jobs.create_job(str(fake_skill), "evaluate", {})
    jobs.cancel_job(slow)
    assert [r["id"] for r in jobs.list_jobs()] == [slow]  # refused requests leave no job behind


def test_preview_and_dry_run_record_nothing(fake_skill, tmp_path):
    overrides = {"dataset.train_dir": str(_train_data(tmp_path)), "encryption_key": "preview-secret-77"}
    text = jobs.preview_job(str(fake_skill), "train", overrides, job_id="fixed-id")
    assert "fake_model.py train -e" in text and "fixed-id/spec.yaml" in text
    assert "SKILLBANK_ENCRYPTION_KEY" in text and "preview-secret-77" not in text
    assert jobs.create_job(str(fake_skill), "train", overrides, dry_run=True, job_id="fixed-id") == text
    assert jobs.list_jobs() == [] and not (Path(os.environ["SKILLBANK_RESULTS_ROOT"]) / "fixed-id").exists()


def test_validation_errors_surface_before_any_record(fake_skill, tmp_path):
    from skillbank.runtime.validation import SpecValidationError

    with pytest.raises(SpecValidationError, match="train.num_epoch"):
        jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.num_epoch": 2})
    assert jobs.list_jobs() == []


def test_overrides_validated_at_the_edge_are_not_validated_again(fake_skill, tmp_path, monkeypatch):
    """A ValidatedSpec is carried to the job as it is: create_job does not check the same overrides twice,
    and the encryption key in it still reaches the job only through its environment."""
    from skillbank.runtime import validation
    from skillbank.runtime.skills import Skill

    skill = Skill.load(str(fake_skill))
    key = "edge-validated-Key-4417"
    checked = validation.validated_spec(skill, "train", {"dataset.train_dir": str(_train_data(tmp_path)),
                                                         "num_epochs": 1, "encryption_key": key})
    calls = []
    monkeypatch.setattr(validation, "_checked", lambda *args: calls.append(args) or pytest.fail("validated again"))
    job = jobs.create_job(skill, "train", checked)
    assert jobs.wait(job, timeout=60, poll=0.1) == COMPLETE and not calls
    record = jobs.get_job(job)
    assert record["spec"]["train"]["num_epochs"] == 1 and record["spec"]["encryption_key"] == ""
    seen = json.loads((Path(record["results_dir"]) / "train" / "env.json").read_text())
    assert seen["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert checked.spec["encryption_key"] == key  # the caller's ValidatedSpec is left as it was
    with pytest.raises(jobs.JobError, match="validated for fake-skill train, not fake-skill evaluate"):
        jobs.create_job(skill, "evaluate", checked)


def test_secrets_never_reach_disk_records_or_cli(fake_skill, tmp_path, monkeypatch):
    key = "KEY-zq81-unique-encryption-secret"
    aws_id, aws_secret = "AKIAFAKEID0123456789", "fake/aws+secret-value-ZZ9"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
    env = {"AWS_ACCESS_KEY_ID": aws_id, "AWS_SECRET_ACCESS_KEY": aws_secret}
    train = jobs.create_job(str(fake_skill), "train",
                            {"dataset.train_dir": str(_train_data(tmp_path)), "encryption_key": key}, env=env)
    assert jobs.wait(train, timeout=30, poll=0.1) == COMPLETE
    evaluate = jobs.create_job(str(fake_skill), "evaluate", {"encryption_key": key}, parent_job_id=train, env=env)
    failing = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 1,
                                                         "train.fail_code": 2, "encryption_key": key}, env=env)
    assert jobs.wait(evaluate, timeout=30, poll=0.1) == COMPLETE
    assert jobs.wait(failing, timeout=30, poll=0.1) == "Error"
    # The key did reach the process, through its environment.
    seen = json.loads((Path(jobs.get_job(train)["results_dir"]) / "train" / "env.json").read_text())
    assert seen["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert _spec_on_disk(train)["encryption_key"] == ""

    runner = CliRunner()
    outputs = [runner.invoke(jobs_cli, args).output for args in (
        ["list"], ["list", "--format", "json"], ["show", train, "--format", "json"], ["show", train, "--spec"],
        ["show", failing], ["logs", train], ["wait", evaluate, "--format", "json"],
        ["wait", failing, "--format", "json"],
    )]
    outputs.append(jobs.preview_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path),
                                                               "encryption_key": key}, env=env))
    roots = [Path(os.environ["SKILLBANK_RESULTS_ROOT"]), Path(os.environ["SKILLBANK_STATE_DIR"])]
    files = [p for root in roots for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "jobs.db" for p in files) and any(p.name == "spec.yaml" for p in files)
    for secret in (key, aws_id, aws_secret):
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret!r} leaked into {path}"
        for text in outputs:
            assert secret not in text


def test_fake_chain_with_results_on_s3(fake_skill, tmp_path, moto_s3):
    bucket = moto_s3.create_bucket()
    client = moto_s3.client()
    client.put_object(Bucket=bucket, Key="data/train/sample.txt", Body=b"frames")
    root = f"s3://{bucket}/results"
    train = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": f"s3://{bucket}/data/train"},
                            results_root=root)
    record = jobs.get_job(train)
    assert record["results_uri"] == f"{root}/{train}"
    assert Path(record["results_dir"]).is_relative_to(Path(os.environ["SKILLBANK_STATE_DIR"]))
    staged = Path(_spec_on_disk(train)["dataset"]["train_dir"])
    assert staged.is_relative_to(Path(record["results_dir"]) / "inputs") and (staged / "sample.txt").is_file()
    assert jobs.wait(train, timeout=30, poll=0.1) == COMPLETE
    record = jobs.get_job(train)
    assert record["uploaded"]
    best = f"{root}/{train}/train/model_epoch_001_step_00020.pth"
    assert record["checkpoints"][0] == best
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"results/{train}/")["Contents"]}
    assert f"results/{train}/spec.yaml" in keys and f"results/{train}/log.txt" in keys
    assert not any("/inputs/" in k for k in keys)  # upload_excludes

    export = jobs.create_job(str(fake_skill), "export", {}, parent_job_id=train, results_root=root)
    assert jobs.wait(export, timeout=30, poll=0.1) == COMPLETE
    checkpoint = Path(_spec_on_disk(export)["export"]["checkpoint"])
    assert checkpoint.name == "model_epoch_001_step_00020.pth" and checkpoint.is_file()
    client.head_object(Bucket=bucket, Key=f"results/{export}/fake_net.onnx")
    assert jobs.get_job(export)["checkpoints"] == [f"{root}/{export}/fake_net.onnx"]
    state = Path(os.environ["SKILLBANK_STATE_DIR"])  # the staging folders and the store
    for path in (p for p in state.rglob("*") if p.is_file() and not p.is_symlink()):
        assert moto_s3.secret_access_key.encode() not in path.read_bytes(), path


# -- the real model ----------------------------------------------------------------------------

TINY = {
    "model.input_width": 32, "model.input_height": 32, "model.rgb_seq_length": 3,
    "dataset.augmentation_config.crop_smaller_edge": 32, "dataset.workers": 0, "dataset.batch_size": 4,
}


def _run_chain(data: dict[str, str], results_root: str | None) -> tuple[str, str, str]:
    overrides = {**TINY, "num_epochs": 2, "dataset.train_dataset_dir": data["train"],
                 "dataset.val_dataset_dir": data["test"]}
    train = jobs.create_job(SKILL, "train", overrides, results_root=results_root)
    assert jobs.get_job(train)["status"] == RUNNING
    status = jobs.wait(train, timeout=240, poll=0.5)
    assert status == COMPLETE, jobs.get_failure_analysis(train)
    evaluate = jobs.create_job(SKILL, "evaluate", {**TINY, "evaluate.test_dataset_dir": data["test"]},
                               parent_job_id=train, results_root=results_root)
    export = jobs.create_job(SKILL, "export", TINY, parent_job_id=train, results_root=results_root)
    for job in (evaluate, export):
        assert jobs.wait(job, timeout=240, poll=0.5) == COMPLETE, jobs.get_failure_analysis(job)
    return train, evaluate, export


@pytest.mark.slow
@needs_model
def test_action_recognition_chain_local(sample_data):
    train, evaluate, export = _run_chain({"train": str(sample_data / "train"), "test": str(sample_data / "test")},
                                         None)
    train_record = jobs.get_job(train)
    expected = select_checkpoint(train_record["results_dir"], action="train",
                                 best=train_record["best_checkpoint"]).location
    checkpoint = _spec_on_disk(evaluate)["evaluate"]["checkpoint"]
    assert checkpoint == expected and Path(checkpoint).is_file()
    assert re.fullmatch(r"model_epoch_\d{3}_step_\d{5}\.pth", Path(checkpoint).name)
    assert Path(train_record["checkpoints"][0]).name.startswith("model_epoch_001_step_")  # 2 epochs: 000, 001
    assert _spec_on_disk(export)["export"]["checkpoint"] == expected
    results = json.loads((Path(jobs.get_job(evaluate)["results_dir"]) / "evaluate" / "results.json").read_text())
    onnx = Path(jobs.get_job(export)["results_dir"]) / "action_recognition.onnx"
    assert onnx.is_file() and _spec_on_disk(export)["export"]["onnx_file"] == str(onnx)
    # `jobs show --format json` carries the KPIs the text form shows: evaluate's accuracy, in percent (TAO's unit)
    shown = json.loads(CliRunner().invoke(jobs_cli, ["show", evaluate, "--format", "json"]).output)
    kpi = shown["progress"]["kpi"]
    assert kpi["accuracy"] == results["accuracy"] and kpi["m_accuracy"] == results["m_accuracy"]
    assert 0 <= kpi["accuracy"] <= 100
    assert f"accuracy={kpi['accuracy']:.4g}" in CliRunner().invoke(jobs_cli, ["show", evaluate]).output


@pytest.mark.slow
@needs_model
def test_action_recognition_chain_on_s3(sample_data, moto_s3):
    bucket = moto_s3.create_bucket()
    client = moto_s3.client()
    for name in ("train.tar.gz", "test.tar.gz"):
        client.upload_file(str(sample_data / name), bucket, f"data/{name}")
    root = f"s3://{bucket}/results"
    train, evaluate, export = _run_chain(
        {"train": f"s3://{bucket}/data/train.tar.gz", "test": f"s3://{bucket}/data/test.tar.gz"}, root)
    checkpoint = Path(_spec_on_disk(evaluate)["evaluate"]["checkpoint"])
    assert checkpoint.is_file() and re.fullmatch(r"model_epoch_001_step_\d{5}\.pth", checkpoint.name)
    assert jobs.get_job(train)["checkpoints"][0].startswith(f"{root}/{train}/")
    client.head_object(Bucket=bucket, Key=f"results/{export}/action_recognition.onnx")
    client.head_object(Bucket=bucket, Key=f"results/{evaluate}/evaluate/results.json")


@pytest.mark.slow
@needs_model
def test_sdk_rerun_resumes_from_the_newest_and_children_take_the_best(sample_data, capsys):
    """train.checkpointer through the SDK: children get the recorded best file; a rerun of the job into its
    results folder gets resume_model = the newest periodic checkpoint and continues from it."""
    from ar_cli import run_cli

    overrides = {**TINY, "dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test"), "num_epochs": 3, "train.optim.lr": 0.01,
                 "train.checkpointer.enable_topk": True, "train.checkpointer.replace_periodic": True}
    train = jobs.create_job(SKILL, "train", overrides)
    assert jobs.wait(train, timeout=240, poll=0.5) == COMPLETE, jobs.get_failure_analysis(train)
    record = jobs.get_job(train)
    folder = Path(record["results_dir"]) / "train"
    best = record["best_checkpoint"]
    assert re.fullmatch(r"model_best_00[012]\.pth", best) and (folder / best).is_file()
    periodic = sorted(p.name for p in folder.glob("model_epoch_*.pth"))
    assert periodic == ["model_epoch_002_step_00012.pth"]  # replace_periodic: only the newest is kept
    evaluate = jobs.prepare_job(SKILL, "evaluate", {**TINY, "evaluate.test_dataset_dir": str(sample_data / "test")},
                                parent_job_id=train)
    assert evaluate.spec["evaluate"]["checkpoint"] == str(folder / best)

    # The same job again, into its own results folder, with more epochs.
    rerun = jobs.prepare_job(SKILL, "train", {**overrides, "num_epochs": 4}, job_id=train)
    assert rerun.results_dir == Path(record["results_dir"])
    assert rerun.spec["train"]["resume_training_checkpoint_path"] == str(folder / periodic[0])
    spec = Path(record["results_dir"]) / "rerun.yaml"
    spec.write_text(yaml.safe_dump(rerun.spec))
    assert run_cli("train", spec=spec) == 0, capsys.readouterr().out
    events = read_status_events(folder)
    assert f"Resuming training from checkpoint: {folder / periodic[0]}" in [e["message"] for e in events]
    assert [e["epoch"] for e in events if e["message"] == "Training loop in progress"] == [0, 1, 2, 3]
    assert sorted(p.name for p in folder.glob("model_epoch_*.pth")) == ["model_epoch_003_step_00016.pth"]
    assert (folder / events[-1]["best_checkpoint"]).is_file()
