"""`jobs list` an agent can read: filters, AutoML trial jobs hidden by default and labelled, --name/--tag."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.cli.jobs import jobs as jobs_cli
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.job_labels import LabelError, automl_info, automl_label, check_tags, parse_since
from skillbank.runtime.sdk.store import JobStore, now_iso


def _insert(store: JobStore, action: str = "train", **labels) -> str:
    return store.insert(skill="tao-train-action-recognition", network_arch="action_recognition", action=action,
                        platform="local", spec={}, results_dir="/tmp/none", **labels)


def test_trial_labels_name_study_trial_and_rung(tmp_path):
    info = automl_info(tmp_path / "ws", "automl", 3, 2)
    assert info == {"workspace": str(tmp_path / "ws"), "study": "automl", "trial": 3, "rung": 2}
    assert automl_label(info) == f"automl: {tmp_path / 'ws'} #3 rung 2"
    assert automl_label(automl_info(tmp_path / "ws", "automl", 0), short=True) == "automl: ws #0"


def test_since_and_tags_are_checked():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2h", now) == "2026-05-01T10:00:00.000000+00:00"
    assert parse_since("1d 30m", now) == "2026-04-30T11:30:00.000000+00:00"
    assert parse_since("2026-04-01", now) == "2026-04-01T00:00:00.000000+00:00"
    assert parse_since("2026-04-01T14:30+02:00", now) == "2026-04-01T12:30:00.000000+00:00"
    with pytest.raises(LabelError, match=r"--since 'yesterday': allowed: a duration .*30m"):
        parse_since("yesterday", now)
    assert check_tags(["a", "b", "a"]) == ["a", "b"]
    with pytest.raises(LabelError, match=r"job tag 'has space': allowed: 1-64 characters"):
        check_tags(["has space"])


def test_list_filters_and_hides_trial_jobs():
    store = JobStore()
    old = _insert(store, name="first try", tags=["nightly"])
    since = now_iso()
    plain = _insert(store, tags=["nightly", "rgb"])
    trial = _insert(store, automl=automl_info("/tmp/ws-a", "automl", 3, 2))
    evaluate = _insert(store, action="evaluate", automl=automl_info("/tmp/ws-a", "automl", 3))
    other = _insert(store, automl=automl_info("/tmp/ws-b", "automl", 0, 1))
    resumed = _insert(store, resumed_from=old)

    def ids(*args: str) -> list[str]:
        result = CliRunner().invoke(jobs_cli, ["list", "--format", "json", *args])
        assert result.exit_code == 0, result.output
        return [r["id"] for r in json.loads(result.output)]

    assert ids() == [resumed, plain, old]  # trial jobs are hidden by default
    assert ids("--trials") == [resumed, other, evaluate, trial, plain, old]
    assert ids("--automl", "/tmp/ws-a") == [evaluate, trial]
    assert ids("--automl", "/tmp/ws-a", "--action", "train") == [trial]
    assert ids("--tag", "nightly") == [plain, old]
    assert ids("--since", since) == [resumed, plain]
    assert ids("--since", "1h") == [resumed, plain, old]
    assert ids("--status", "Running") == []

    rows = {r["id"]: r for r in json.loads(CliRunner().invoke(jobs_cli, ["list", "--trials", "--format",
                                                                         "json"]).output)}
    assert rows[trial]["automl"]["trial"] == 3 and rows[trial]["label"] == "automl: /tmp/ws-a #3 rung 2"
    assert rows[old]["name"] == "first try" and rows[old]["label"] == "first try  #nightly"
    assert rows[resumed]["resumed_from"] == old and rows[resumed]["label"] == f"resumes {old}"
    text = CliRunner().invoke(jobs_cli, ["list", "--trials"]).output
    assert "automl: ws-a #3 rung 2" in text and "first try  #nightly" in text and "LABEL" in text
    hidden = CliRunner().invoke(jobs_cli, ["list", "--action", "evaluate"]).output
    assert hidden.strip() == "no jobs (AutoML trial jobs are hidden: add --trials)"

    bad = CliRunner().invoke(jobs_cli, ["list", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "--since 'last tuesday'" in bad.output


def test_generate_and_run_give_the_job_its_name_and_tags(fake_skill, tmp_path):
    overrides = tmp_path / "o.json"
    overrides.write_text(json.dumps({"dataset.train_dir": str(tmp_path), "num_epochs": 1}))
    runner = tmp_path / "runner.py"
    result = CliRunner().invoke(main, ["generate", str(fake_skill), "train", str(overrides), "-o", str(runner),
                                       "--name", "baseline rgb", "--tag", "sweep-1", "--tag", "rgb"])
    assert result.exit_code == 0, result.output
    labels = next(ast.literal_eval(node.value) for node in ast.parse(runner.read_text()).body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LABELS")
    assert labels == {"name": "baseline rgb", "tags": ["sweep-1", "rgb"]}
    assert "--name 'baseline rgb'" in runner.read_text() and "--tag sweep-1" in runner.read_text()  # regenerate

    done = subprocess.run([sys.executable, str(runner), "--format", "json"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    record = jobs.get_job(json.loads(done.stdout)["job_id"])
    assert (record["name"], record["tags"]) == ("baseline rgb", ["sweep-1", "rgb"])
    listed = CliRunner().invoke(jobs_cli, ["list", "--tag", "rgb"]).output
    assert record["id"] in listed and "baseline rgb  #sweep-1  #rgb" in listed

    bad = CliRunner().invoke(main, ["generate", str(fake_skill), "train", str(overrides), "--tag", "a b"])
    assert bad.exit_code == 2 and "job tag 'a b': allowed:" in bad.output
