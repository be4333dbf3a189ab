"""Secret values: masked whole, only where shown or stored, never short or common ones; never altered on the way
to a job, refused where they would be embedded or stored outside a secret field."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms.base import COMPLETE
from skillbank.runtime.sdk.secrets import MASK, redact_text, secret_values

SKILL = "tao-train-action-recognition"
DATA = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test"}


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _state_and_results() -> list[Path]:
    return _files(Path(os.environ["SKILLBANK_STATE_DIR"]), Path(os.environ["SKILLBANK_RESULTS_ROOT"]))


def test_short_and_common_values_are_never_masked(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("SKILLBANK_ENCRYPTION_KEY", "tlt_encode")  # TAO's documented sample key: public
    assert secret_values() == []
    text = "downloading s3://action-data/action/test.tar.gz to /models/tlt_encode/test"
    assert redact_text(text) == text
    monkeypatch.setenv("NGC_API_KEY", "nvapi-Long-Real-Secret-42")
    assert redact_text("key=nvapi-Long-Real-Secret-42 /data/test") == f"key={MASK} /data/test"


def test_secrets_that_are_substrings_of_paths_reach_the_job_unchanged(fake_skill, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLBANK_ENCRYPTION_KEY", "data")  # short: a substring of every path below
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "train")
    folder = tmp_path / "data" / "train_data"
    folder.mkdir(parents=True)
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(folder), "num_epochs": 1})
    assert jobs.wait(job, timeout=60, poll=0.1) == COMPLETE
    record = jobs.get_job(job)
    on_disk = (Path(record["results_dir"]) / "spec.yaml").read_text()
    assert f"train_dir: {folder}" in on_disk and MASK not in on_disk
    assert record["spec"]["dataset"]["train_dir"] == str(folder)
    assert "fake model: train" in jobs.get_job_logs(job) and MASK not in jobs.get_job_logs(job)


def _dataset_archive(top: str = "test") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in (f"{top}/catch/v1/rgb/000.png", f"{top}/smile/v2/rgb/000.png"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"px"))
    return buffer.getvalue()


def test_s3_round_trip_with_the_usual_test_credentials(fake_skill, moto_s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = moto_s3.client()
    for bucket in ("action-data", "action-results"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="action-data", Key="action/test.tar.gz", Body=_dataset_archive())
    source = "s3://action-data/action/test.tar.gz"
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": source, "num_epochs": 1},
                          results_root="s3://action-results/runs")
    assert jobs.wait(job, timeout=60, poll=0.1) == COMPLETE
    record = jobs.get_job(job)
    staged = Path(record["spec"]["dataset"]["train_dir"])
    assert staged.name == "test" and sorted(p.name for p in staged.iterdir()) == ["catch", "smile"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="action-results")["Contents"]]
    assert f"runs/{job}/train/model_epoch_000_step_00010.pth" in keys and record["uploaded"]

    missing = "s3://action-data/action/test-missing.tar.gz"
    with pytest.raises(jobs.JobError) as failed:
        jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": missing})
    assert f"S3 object not found: {missing}" in str(failed.value)  # the user's URI, whole


def test_a_secret_pasted_into_another_field_is_refused_never_embedded(fake_skill, tmp_path, monkeypatch):
    secret = "nvapi-Pasted-Secret-Value-77"
    monkeypatch.setenv("NGC_API_KEY", secret)
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps({**DATA, "model_name": secret}))
    runner = tmp_path / "runner.py"
    result = CliRunner().invoke(main, ["generate", SKILL, "train", str(ov), "--automl-policy", "off",
                                       "-o", str(runner)])
    assert result.exit_code == 1 and not runner.exists()
    assert "model_name: holds the value of $NGC_API_KEY" in result.output and secret not in result.output

    shown = CliRunner().invoke(main, ["spec", SKILL, "train", str(ov)])  # spec shows it masked, never whole
    assert shown.exit_code == 0 and secret not in shown.output and f"model_name: '{MASK}'" in shown.output

    with pytest.raises(jobs.JobError, match=r"train\.pretrained holds the value of \$NGC_API_KEY") as refused:
        jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.pretrained": secret})
    assert secret not in str(refused.value) and jobs.list_jobs() == []


def test_an_override_key_keeps_the_callers_key_masked(fake_skill, tmp_path, monkeypatch):
    """An encryption_key in the overrides replaces $SKILLBANK_ENCRYPTION_KEY for the job only: the shell's key
    stays known (masked, refused in other fields) and neither key reaches a file."""
    from skillbank.cli.generate import _generate, runner_environment

    caller, given = "caller-Key-0f-the-Shell-1234", "override-Key-For-This-Job-5678"
    monkeypatch.setenv("SKILLBANK_ENCRYPTION_KEY", caller)
    data = tmp_path / "data"
    data.mkdir()
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps({"dataset.train_dir": str(data), "encryption_key": given, "train.pretrained": caller}))
    refused = CliRunner().invoke(main, ["run", str(fake_skill), "train", str(ov), "--automl-policy", "off"])
    assert refused.exit_code == 1 and "train.pretrained: holds the value of $SKILLBANK_ENCRYPTION_KEY" in refused.output

    ov.write_text(json.dumps({"dataset.train_dir": str(data), "encryption_key": given, "num_epochs": 1}))
    runner = _generate(str(fake_skill), "train", str(ov), None, "local", "off", None, None, "runner.py")
    env = runner_environment(runner)
    assert env["SKILLBANK_ENCRYPTION_KEY"] == given and env["SKILLBANK_CALLER_ENCRYPTION_KEY"] == caller
    assert set(secret_values(env)) >= {caller, given}

    result = CliRunner().invoke(main, ["run", str(fake_skill), "train", str(ov), "--automl-policy", "off", "--wait"])
    assert result.exit_code == 0, result.output
    (job,) = [r["id"] for r in jobs.list_jobs()]
    seen = json.loads((Path(jobs.get_job(job)["results_dir"]) / "train" / "env.json").read_text())
    assert seen["key_sha256"] == hashlib.sha256(given.encode()).hexdigest()  # the job got the override key
    for path in _state_and_results():
        content = path.read_bytes()
        assert caller.encode() not in content and given.encode() not in content, path
