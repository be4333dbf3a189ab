"""S3 data I/O against a moto server over HTTP: round trips, staging, and one-line errors."""
from __future__ import annotations

import io
import socket
import tarfile
import time
from pathlib import Path

import pytest
from s3_server import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY

from skillbank.runtime.sdk import s3
from skillbank.runtime.sdk.data_staging import stage_inputs, upload_outputs

TRAIN_INPUTS = {
    "dataset.train_dataset_dir": {"type": "folder"},
    "dataset.val_dataset_dir": {"type": "folder"},
    "model.rgb_pretrained_model_path": {"type": "file", "optional": True},
    "model.of_pretrained_model_path": {"type": "file", "optional": True},
    "train.resume_training_checkpoint_path": {"type": "file", "optional": True},
}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _dataset_archive(path: Path, top: str = "train") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((f"{top}/catch/v1/rgb/000.png", b"c0"), (f"{top}/smile/v2/rgb/000.png", b"s0")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _results_folder(root: Path) -> Path:
    files = {
        "train/model_epoch_001_step_00004.pth": b"w1",
        "train/status.json": b"{}\n",
        "log.txt": b"log\n",
        "spec.yaml": b"a: 1\n",
        "inputs/dataset.train_dataset_dir/train/x.png": b"input",
        "train/scratch.tmp": b"tmp",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_parse_s3_uri():
    assert s3.parse_s3_uri("s3://bucket/a/b.tar.gz") == ("bucket", "a/b.tar.gz")
    assert s3.parse_s3_uri("s3://bucket") == ("bucket", "")
    for bad in ("/local/path", "s3:///key", "http://x/y"):
        with pytest.raises(s3.S3Error, match="S3 URI"):
            s3.parse_s3_uri(bad)


def test_upload_list_download_round_trip(moto_s3, tmp_path):
    bucket = moto_s3.create_bucket("results")
    local = _results_folder(tmp_path / "job")
    uploaded = s3.upload_dir(local, f"s3://{bucket}/jobs/123", excludes=["inputs/", "*.tmp"])
    expected = sorted(f"s3://{bucket}/jobs/123/{rel}" for rel in
                      ("log.txt", "spec.yaml", "train/model_epoch_001_step_00004.pth", "train/status.json"))
    assert sorted(uploaded) == expected
    assert s3.list_objects(f"s3://{bucket}/jobs/123") == expected
    assert s3.list_objects(f"s3://{bucket}/jobs/12") == []  # a folder, not a string prefix
    back = s3.download_prefix(f"s3://{bucket}/jobs/123/", tmp_path / "back")
    want = {k: v for k, v in _tree(local).items() if not k.startswith("inputs/") and not k.endswith(".tmp")}
    assert _tree(back) == want
    one = s3.download_file(f"s3://{bucket}/jobs/123/train/status.json", tmp_path / "one")
    assert one.read_bytes() == b"{}\n"
    assert s3.upload_file(local / "log.txt", f"s3://{bucket}/copies/") == f"s3://{bucket}/copies/log.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back", "job", "one"]  # no temporary leftovers


def test_upload_outputs_skips_excludes_and_links_out(moto_s3, tmp_path):
    bucket = moto_s3.create_bucket("out")
    local = _results_folder(tmp_path / "job")
    secret_file = tmp_path / "elsewhere.txt"
    secret_file.write_text("not results")
    (local / "leak.txt").symlink_to(secret_file)
    (local / "train" / "ar_model_latest.pth").symlink_to(local / "train" / "model_epoch_001_step_00004.pth")
    uploaded = upload_outputs(local, f"s3://{bucket}/r", ["inputs/"])
    names = sorted(u.split("/r/", 1)[1] for u in uploaded)
    assert "leak.txt" not in names and not any(n.startswith("inputs/") for n in names)
    assert "train/ar_model_latest.pth" in names and "train/scratch.tmp" in names


def test_stage_inputs_downloads_extracts_and_keeps_local(moto_s3, tmp_path):
    bucket = moto_s3.create_bucket("data")
    s3.upload_file(_dataset_archive(tmp_path / "train.tar.gz"), f"s3://{bucket}/sets/train.tar.gz")
    val = tmp_path / "val-src"
    (val / "catch" / "v9" / "rgb").mkdir(parents=True)
    (val / "catch" / "v9" / "rgb" / "000.png").write_bytes(b"v")
    s3.upload_dir(val, f"s3://{bucket}/sets/val")
    (tmp_path / "w.pth").write_bytes(b"weights")
    s3.upload_file(tmp_path / "w.pth", f"s3://{bucket}/models/rgb.pth")
    local_ptm = tmp_path / "local_of.pth"
    local_ptm.write_bytes(b"of")
    spec = {
        "dataset": {"train_dataset_dir": f"s3://{bucket}/sets/train.tar.gz",
                    "val_dataset_dir": f"s3://{bucket}/sets/val"},
        "model": {"rgb_pretrained_model_path": f"s3://{bucket}/models/rgb.pth",
                  "of_pretrained_model_path": str(local_ptm)},
        "train": {"resume_training_checkpoint_path": "", "num_epochs": 2},
    }
    before = repr(spec)
    inputs_dir = tmp_path / "results" / "job" / "inputs"
    staged = stage_inputs(spec, TRAIN_INPUTS, inputs_dir)
    assert repr(spec) == before  # the given spec is not changed
    train = Path(staged["dataset"]["train_dataset_dir"])
    assert train == inputs_dir / "dataset.train_dataset_dir" / "train"
    assert _tree(train) == {"catch/v1/rgb/000.png": b"c0", "smile/v2/rgb/000.png": b"s0"}
    assert _tree(Path(staged["dataset"]["val_dataset_dir"])) == {"catch/v9/rgb/000.png": b"v"}
    rgb = Path(staged["model"]["rgb_pretrained_model_path"])
    assert rgb == inputs_dir / "model.rgb_pretrained_model_path" / "rgb.pth" and rgb.read_bytes() == b"weights"
    assert staged["model"]["of_pretrained_model_path"] == str(local_ptm)
    assert staged["train"] == {"resume_training_checkpoint_path": "", "num_epochs": 2}
    assert sorted(p.name for p in inputs_dir.iterdir()) == [
        "dataset.train_dataset_dir", "dataset.val_dataset_dir", "model.rgb_pretrained_model_path"]
    # Staging again (a retried job) replaces the copies instead of failing.
    assert stage_inputs(spec, TRAIN_INPUTS, inputs_dir) == staged


def test_stage_inputs_extracts_local_archive_without_s3(tmp_path):
    archive = _dataset_archive(tmp_path / "test.tar.gz", top="test")
    spec = {"evaluate": {"test_dataset_dir": str(archive), "checkpoint": "/m/model_epoch_001_step_00001.pth"}}
    inputs = {"evaluate.test_dataset_dir": {"type": "folder"}, "evaluate.checkpoint": {"type": "file"}}
    staged = stage_inputs(spec, inputs, tmp_path / "inputs")
    assert staged["evaluate"]["test_dataset_dir"] == str(tmp_path / "inputs" / "evaluate.test_dataset_dir" / "test")
    assert staged["evaluate"]["checkpoint"] == spec["evaluate"]["checkpoint"]


def test_missing_bucket_and_key_name_the_uri(moto_s3, tmp_path):
    bucket = moto_s3.create_bucket("present")
    cases = [
        (lambda: s3.download_file("s3://absent/a/b.pth", tmp_path / "x"), "bucket 'absent' not found"),
        (lambda: s3.download_prefix("s3://absent/data/", tmp_path / "y"), "bucket 'absent' not found"),
        (lambda: s3.list_objects("s3://absent/data/"), "bucket 'absent' not found"),
        (lambda: s3.download_file(f"s3://{bucket}/nope.pth", tmp_path / "x"),
         f"S3 object not found: s3://{bucket}/nope.pth"),
        (lambda: s3.download_prefix(f"s3://{bucket}/empty/", tmp_path / "y"), f"no S3 objects under s3://{bucket}/"),
    ]
    for call, words in cases:
        with pytest.raises(s3.S3Error) as caught:
            call()
        message = str(caught.value)
        assert words in message and "\n" not in message
        error = caught.value  # no chained boto traceback (which could carry request details)
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_no_credentials_is_one_clear_line(moto_s3, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(s3.S3Error, match=r"^no AWS credentials found to list s3://b/x: set AWS_ACCESS_KEY_ID"):
        s3.list_objects("s3://b/x")


def test_unreachable_endpoint_fails_fast_and_clearly(monkeypatch, tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("SKILLBANK_S3_MAX_ATTEMPTS", "2")
    start = time.monotonic()
    with pytest.raises(s3.S3Error) as caught:
        s3.download_file("s3://data/train.tar.gz", tmp_path / "t.tar.gz")
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert message.startswith(f"cannot reach S3 endpoint {endpoint} to download s3://data/train.tar.gz")
    assert FAKE_SECRET_ACCESS_KEY not in message and FAKE_ACCESS_KEY_ID not in message
    assert list(tmp_path.iterdir()) == []


def test_access_denied_and_rejected_keys_never_echo_secrets(monkeypatch):
    from botocore.exceptions import ClientError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_ACCESS_KEY)
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
    assert s3._message(denied, "s3://b/k", "download") == (
        "access denied to s3://b/k (trying to download); check the credentials' permissions")
    odd = ClientError({"Error": {"Code": "Weird", "Message": f"key {FAKE_ACCESS_KEY_ID}\nsecret "
                                 f"{FAKE_SECRET_ACCESS_KEY}"}}, "GetObject")
    text = s3._message(odd, "s3://b/k", "download")
    assert FAKE_ACCESS_KEY_ID not in text and FAKE_SECRET_ACCESS_KEY not in text and "\n" not in text


def test_keys_that_climb_out_of_the_download_folder_are_refused(moto_s3, tmp_path):
    bucket = moto_s3.create_bucket("tricky")
    moto_s3.client().put_object(Bucket=bucket, Key="data/../../escape.txt", Body=b"x")
    with pytest.raises(s3.S3Error, match="would leave the download folder"):
        s3.download_prefix(f"s3://{bucket}/data", tmp_path / "dl")
    assert not (tmp_path.parent / "escape.txt").exists() and list(tmp_path.iterdir()) == []


def test_stage_the_sample_data_set_from_s3(moto_s3, sample_data, tmp_path):
    bucket = moto_s3.create_bucket("samples")
    for name in ("train.tar.gz", "test.tar.gz"):
        s3.upload_file(sample_data / name, f"s3://{bucket}/ar/{name}")
    spec = {"dataset": {"train_dataset_dir": f"s3://{bucket}/ar/train.tar.gz",
                        "val_dataset_dir": f"s3://{bucket}/ar/test.tar.gz"}}
    staged = stage_inputs(spec, {k: v for k, v in TRAIN_INPUTS.items() if k.startswith("dataset.")}, tmp_path)
    train = Path(staged["dataset"]["train_dataset_dir"])
    assert _tree(train) == _tree(sample_data / "train")
    assert _tree(Path(staged["dataset"]["val_dataset_dir"])) == _tree(sample_data / "test")
