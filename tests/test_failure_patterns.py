"""SKILL.md's "Error patterns" table is the failure analysis: every row maps a real error to a category and fix.

The test walks the table: for each row, the runtime code that raises that error produces its message, the
row's quoted symptom matches it, and the analysis of a log ending with it names the row's category, cause
and fix. The slow test checks it in a job record: a train job whose data has a class the label map lacks.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from skillbank.cli.jobs import jobs as jobs_cli
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.failure import analyze_failure, known_causes
from skillbank.runtime.sdk.platforms.base import ERROR

REPO = Path(__file__).resolve().parent.parent
SKILL_MD = REPO / "skills" / "models" / "tao-train-action-recognition" / "SKILL.md"
GENERIC = {"nonzero_exit", "unknown", "signal", "lost_process", "launch_failed", "missing_file", "invalid_spec"}


def _raised(call) -> str:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each call raises its own domain error
        call()
    return str(caught.value)


def _video(root: Path, folders: dict[str, list[str]]) -> Path:
    for name, frames in folders.items():
        (root / name).mkdir(parents=True)
        for frame in frames:
            (root / name / frame).write_bytes(b"")
    return root


def encrypted_checkpoint(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.checkpoint_io import ENCRYPTED_FLAG, decrypt

    return _raised(lambda: decrypt({ENCRYPTED_FLAG: True, "state_dict": b""}, "", "evaluate.checkpoint='tao.pth'"))


def checkpoint_mismatch(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.trained_model import check_architecture

    mine = SimpleNamespace(model_type="rgb", backbone="resnet_18", input_type="2d", rgb_seq_length=3)
    stored = {"model_type": "rgb", "backbone": "resnet_50", "input_type": "2d", "rgb_seq_length": 3}
    return _raised(lambda: check_architecture(mine, stored, "evaluate.checkpoint", "/r/model.pth"))


def label_map(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.data.layout import scan_labelled
    from skillbank.runtime.action_recognition.data.sampling import ClipSpec

    _video(tmp_path / "data" / "jump" / "v1", {"rgb": ["0.png"]})
    return _raised(lambda: scan_labelled(tmp_path / "data", {"catch": 0}, ClipSpec(), "dataset.train_dataset_dir"))


def optical_flow_mismatch(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.data.layout import scan_labelled
    from skillbank.runtime.action_recognition.data.sampling import ClipSpec

    _video(tmp_path / "data" / "catch" / "v1", {"u": ["0.png", "1.png"], "v": ["0.png", "2.png"]})
    return _raised(lambda: scan_labelled(tmp_path / "data", {"catch": 0}, ClipSpec(model_type="of"),
                                         "dataset.train_dataset_dir", check_images="none"))


def archive_not_extracted(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.data.layout import check_folder

    return _raised(lambda: check_folder(str(tmp_path / "train.tar.gz"), "dataset.train_dataset_dir"))


def out_of_memory(tmp_path: Path) -> str:  # the text PyTorch raises; no GPU here to run out of
    return "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"


def parent_not_complete(tmp_path: Path) -> str:
    from skillbank.runtime.sdk.spec_params import InferenceContext, parent_checkpoint

    context = InferenceContext(job_id="j2", action="evaluate", network_arch="action_recognition",
                               results_dir=tmp_path, parent_job_id="j1", parent={"status": "Running"},
                               field="evaluate.checkpoint")
    return _raised(lambda: parent_checkpoint(context))


def training_diverged(tmp_path: Path) -> str:  # the text lightning_module raises (test_job_faults.py trains into it)
    return ("training diverged: the loss became nan at epoch 1, step 3; lower train.optim.lr (now 100) or set "
            "train.clip_grad_norm, then train again")


def unreadable_checkpoint(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.checkpoint_io import read_checkpoint

    (tmp_path / "model.pth").write_bytes(b"not a checkpoint")
    return _raised(lambda: read_checkpoint(tmp_path / "model.pth", "evaluate.checkpoint"))


def unreadable_data(tmp_path: Path) -> str:
    from skillbank.runtime.action_recognition.data.layout import _readable

    def read() -> None:
        with _readable("dataset.train_dataset_dir", tmp_path):
            raise PermissionError(13, "Permission denied", str(tmp_path / "catch"))

    return _raised(read)


def archive_limit(tmp_path: Path) -> str:
    import tarfile

    from skillbank.runtime.sdk.archives import safe_extract

    (tmp_path / "frame.png").write_bytes(b"\0" * 10_000)
    with tarfile.open(tmp_path / "train.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "frame.png", arcname="catch/v1/rgb/frame.png")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SKILLBANK_ARCHIVE_MAX_BYTES", "4096")
        return _raised(lambda: safe_extract(tmp_path / "train.tar.gz", tmp_path / "out"))


def automl_runner_gone(tmp_path: Path) -> str:
    from skillbank.runtime.rung_gates import GatePlan, wait_at_rung

    plan = GatePlan(tmp_path, (1,), tmp_path / "nobody-reads.fifo", orphan_after_s=0.0)
    return _raised(lambda: wait_at_rung(plan, 1, sleep=lambda s: None))


REAL_MESSAGES = {f.__name__: f for f in (encrypted_checkpoint, checkpoint_mismatch, label_map, optical_flow_mismatch,
                                         archive_not_extracted, out_of_memory, parent_not_complete, training_diverged,
                                         unreadable_checkpoint, unreadable_data, archive_limit, automl_runner_gone)}


def _table_rows(text: str) -> list[str]:
    section = text[text.index("## Error patterns"):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| symptom")]


def test_every_row_of_the_error_table_is_a_pattern_with_its_own_category():
    text = SKILL_MD.read_text()
    rows, causes = _table_rows(text), known_causes(text)
    assert len(causes) == len(rows) >= 7  # no row is skipped by the parser
    categories = [c.category for c in causes]
    assert len(set(categories)) == len(categories) and not set(categories) & GENERIC
    assert set(categories) == set(REAL_MESSAGES)  # each row has its real message below


@pytest.mark.parametrize("row", known_causes(SKILL_MD.read_text()), ids=lambda row: row.category)
def test_the_real_error_of_each_row_gets_its_category_and_fix(row, tmp_path):
    message = REAL_MESSAGES[row.category](tmp_path)
    assert row.pattern.search(message), f"SKILL.md quotes {row.symptom}, the code says: {message}"
    log = f"Epoch 0: 100%\nTraceback (most recent call last):\nError: {message}\nFAILURE\n"
    analysis = analyze_failure(exit_code=1, log_text=log, known=known_causes(SKILL_MD.read_text()))
    assert analysis["category"] == row.category
    assert analysis["cause"] == row.cause
    fix = re.sub(r"\s+", " ", row.fix)
    assert analysis["suggestion"] == fix[0].upper() + fix[1:] + "."


def test_the_launch_error_detail_is_shown_as_text_and_json(tmp_path):
    bad = tmp_path / "train.tar.gz"
    bad.write_bytes(b"not a tar archive")
    with pytest.raises(jobs.JobError) as caught:
        jobs.create_job("tao-train-action-recognition", "train", {"dataset.train_dataset_dir": str(bad),
                                                                  "dataset.val_dataset_dir": str(bad)})
    job = re.search(r"job (\S+) could not be launched", str(caught.value)).group(1)
    shown = json.loads(CliRunner().invoke(jobs_cli, ["show", job, "--format", "json"]).output)
    assert shown["failure"]["category"] == "launch_failed" and shown["failure"]["detail"]
    text = CliRunner().invoke(jobs_cli, ["show", job]).output
    assert f"detail: {shown['failure']['detail']}" in text


def test_a_launch_error_the_table_names_keeps_its_category_and_fix(tmp_path, monkeypatch):
    message = archive_limit(tmp_path)  # writes train.tar.gz, which holds more than 4096 bytes
    monkeypatch.setenv("SKILLBANK_ARCHIVE_MAX_BYTES", "4096")
    archive = str(tmp_path / "train.tar.gz")
    with pytest.raises(jobs.JobError, match="holds more than 4096 bytes"):
        jobs.create_job("tao-train-action-recognition", "train", {"dataset.train_dataset_dir": archive,
                                                                  "dataset.val_dataset_dir": archive})
    failure = jobs.list_jobs()[0]["failure"]
    row = next(r for r in known_causes(SKILL_MD.read_text()) if r.category == "archive_limit")
    assert row.pattern.search(message) and failure["category"] == "archive_limit" and failure["cause"] == row.cause


@pytest.mark.slow
def test_a_class_missing_from_the_label_map_is_named_in_the_job_record(sample_data):
    overrides = {"dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test"), "dataset.label_map": {"catch": 0},
                 "dataset.workers": 0, "num_epochs": 1}
    job = jobs.create_job("tao-train-action-recognition", "train", overrides)
    assert jobs.wait(job, timeout=120, poll=0.5) == ERROR
    failure = jobs.get_job(job)["failure"]
    assert failure["category"] == "label_map"
    assert failure["suggestion"] == "Add every class folder name to `dataset.label_map`."
    text = CliRunner().invoke(jobs_cli, ["show", job]).output
    assert "failure: label_map" in text and "cause: missing or incomplete `label_map`" in text
