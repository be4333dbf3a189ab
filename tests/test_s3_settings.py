"""S3 endpoints and credentials: documented where agents read, and shown by --dry-run (never the values)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.sdk.s3 import describe_connection

REPO = Path(__file__).resolve().parent.parent
SKILL = "tao-train-action-recognition"
SKILL_MD = REPO / "skills" / "models" / SKILL / "SKILL.md"
SKILLBANK = Path(sys.executable).with_name("skillbank")
LOCAL_SERVER = {"endpoint": "http://127.0.0.1:9000", "endpoint_from": "AWS_ENDPOINT_URL", "region": "us-east-1",
                "addressing_style": "path", "credentials": "env", "profile": None}


def _overrides(tmp_path: Path, train: str, test: str) -> Path:
    path = tmp_path / "s3-train.json"
    path.write_text(json.dumps({"dataset.train_dataset_dir": train, "dataset.val_dataset_dir": test,
                                "dataset.label_map": {"catch": 0, "smile": 1}}))
    return path


def _generate(tmp_path: Path, overrides: Path) -> Path:
    runner = tmp_path / "runner.py"
    result = CliRunner().invoke(main, ["generate", SKILL, "train", str(overrides), "--automl-policy", "off",
                                       "-o", str(runner)])
    assert result.exit_code == 0, result.output
    return runner


def test_dry_run_shows_the_s3_endpoint_region_and_credential_source(moto_s3, tmp_path):
    overrides = _overrides(tmp_path, "s3://action-data/action/train.tar.gz", "s3://action-data/action/test.tar.gz")
    done = subprocess.run([sys.executable, str(_generate(tmp_path, overrides)), "--dry-run", "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    settings = json.loads(done.stdout)["s3"]
    assert settings == {"endpoint": moto_s3.endpoint, "endpoint_from": "AWS_ENDPOINT_URL", "region": "us-east-1",
                        "addressing_style": "path", "credentials": "env", "profile": None}
    assert f"# S3 endpoint {moto_s3.endpoint} (from AWS_ENDPOINT_URL), region us-east-1" in done.stderr
    assert moto_s3.secret_access_key not in done.stdout + done.stderr

    # the AutoML route's plan says the same (`skillbank run` executes the same runner)
    planned = subprocess.run([str(SKILLBANK), "run", SKILL, "train", str(overrides), "--dry-run"],
                             capture_output=True, text=True, timeout=120)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"# S3 endpoint {moto_s3.endpoint} (from AWS_ENDPOINT_URL)" in planned.stdout


def test_dry_run_of_local_data_says_nothing_about_s3(sample_data, tmp_path):
    overrides = _overrides(tmp_path, str(sample_data / "train"), str(sample_data / "test"))
    done = subprocess.run([sys.executable, str(_generate(tmp_path, overrides)), "--dry-run", "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["s3"] is None and "S3 endpoint" not in done.stderr


def test_skill_md_and_readme_say_how_s3_settings_are_found():
    line = describe_connection(LOCAL_SERVER)  # what --dry-run prints for the documented local server
    for doc in (SKILL_MD, REPO / "README.md"):
        text = doc.read_text()
        flat = " ".join(text.split())
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "~/.aws/credentials", "--dry-run"):
            assert name in text, f"{doc.name} does not mention {name}"
        assert re.search(r"export AWS_ENDPOINT_URL=http://127\.0\.0\.1:9000", text), doc.name  # local server
        assert line in flat, f"{doc.name} shows another --dry-run line than: {line}"
