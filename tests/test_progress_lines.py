"""Progress lines show every epoch, also when several epochs end between two looks at status.json.

TAO's train status.json spreads an epoch over three lines ("Eval metrics generated.", "Training loop in
progress" with 0-based ``epoch`` and ``max_epoch`` = num_epochs - 1, "Train metrics generated."); the
followers (``wait(on_progress=...)``, ``skillbank jobs wait``, generated runners) show one line per epoch.
"""
from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner
from fake_skill import make_fake_skill

from skillbank.cli.jobs import jobs as jobs_cli
from skillbank.runtime.sdk import jobs

# A train action that writes TAO's lines: STARTED, then (after `train.sleep` s) every epoch at once, so that
# all of them end between two looks of a follower polling every 0.5 s, then the final line.
TAO_LINES_MODEL = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    import yaml

    spec = yaml.safe_load(open(sys.argv[3]))
    out = Path(spec["results_dir"]) / "train"
    out.mkdir(parents=True, exist_ok=True)
    epochs, pause = spec["train"]["num_epochs"], spec["train"]["sleep"]

    def write(status, message, **fields):
        with open(out / "status.json", "a") as handle:
            handle.write(json.dumps({"status": status, "verbosity": "INFO", "message": message, **fields}) + "\\n")

    write("STARTED", "Starting Action Recognition train.")
    time.sleep(pause)
    for epoch in range(epochs):
        write("RUNNING", "Eval metrics generated.", kpi={"val_acc": 0.5 + epoch / 10})
        write("RUNNING", "Training loop in progress", epoch=epoch, max_epoch=epochs - 1, step=4 * (epoch + 1),
              kpi={"val_acc": 0.5 + epoch / 10})
        write("RUNNING", "Train metrics generated.", kpi={"train_loss": 1.0 / (epoch + 1)})
    time.sleep(pause)
    write("RUNNING", "Train finished successfully.")
''')


@pytest.fixture
def tao_lines_skill(tmp_path):
    folder = make_fake_skill(tmp_path / "bank", "tao-lines-skill")
    (folder / "fake_model.py").write_text(TAO_LINES_MODEL)
    return folder


def _events(epochs: int) -> list[dict]:
    out = [{"status": "STARTED", "message": "Starting Action Recognition train."}]
    for epoch in range(epochs):
        out += [{"status": "RUNNING", "message": "Eval metrics generated.", "kpi": {"val_acc": 0.5}},
                {"status": "RUNNING", "message": "Training loop in progress", "epoch": epoch,
                 "max_epoch": epochs - 1, "kpi": {"val_acc": 0.5}},
                {"status": "RUNNING", "message": "Train metrics generated.", "kpi": {"train_loss": 1.0 + epoch}}]
    return out


def test_epochs_that_end_between_two_looks_each_get_a_view():
    events = _events(3)
    views, seen = jobs.progress_updates(events[:1], None)
    assert [v["message"] for v in views] == ["Starting Action Recognition train."]
    views, seen = jobs.progress_updates(events, seen)
    assert [v["epoch"] for v in views] == [0, 1, 2]
    assert [v["kpi"] for v in views] == [{"val_acc": 0.5, "train_loss": 1.0 + e} for e in range(3)]
    assert jobs.progress_updates(events, seen) == ([], seen)  # nothing new, nothing shown twice


def test_an_epoch_waits_for_its_train_metrics_unless_the_job_ended():
    events = _events(1)
    views, seen = jobs.progress_updates(events[:-1], None)  # the loop line came, its train metrics not yet
    assert all("epoch" not in v for v in views)
    views, _ = jobs.progress_updates(events, seen)
    assert [(v["epoch"], v["kpi"]["train_loss"]) for v in views] == [(0, 1.0)]
    views, _ = jobs.progress_updates(events[:-1], seen, final=True)  # killed after the loop line
    assert [v["epoch"] for v in views] == [0]


def test_wait_reports_every_epoch_when_they_end_between_two_polls(tao_lines_skill, tmp_path):
    job = jobs.create_job(str(tao_lines_skill), "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 3,
                                                          "train.sleep": 1.5})
    seen: list[dict] = []
    assert jobs.wait(job, timeout=60, poll=0.5, on_progress=seen.append) == "Complete"
    epochs = [e["epoch"] for e in seen if e.get("message") == "Train metrics generated."]
    assert epochs == [0, 1, 2]
    assert seen[0]["status"] == "STARTED" and seen[-1]["message"] == "Train finished successfully."


def test_jobs_wait_prints_one_line_per_epoch(tao_lines_skill, tmp_path):
    job = jobs.create_job(str(tao_lines_skill), "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 2,
                                                          "train.sleep": 1.5})
    result = CliRunner().invoke(jobs_cli, ["wait", job, "--poll", "0.5", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "Complete"
    lines = [line.split("] ", 1)[1] for line in result.stderr.splitlines()]
    assert [line.split(" val_acc")[0] for line in lines if line.startswith("RUNNING epoch")] == \
        ["RUNNING epoch 1/2", "RUNNING epoch 2/2"]
    assert lines[-1].startswith("finished epoch 2/2")
