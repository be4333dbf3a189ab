"""Data-parallel training on the CPU: ``train.num_gpus: 2`` without GPUs runs two gloo processes.

Only the global rank zero writes the log lines, status.json and checkpoints; validation metrics are the
whole validation set's (the set here has an odd number of videos, so an unequal split or a padded
sampler would show).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ar_cli import template

from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms.base import COMPLETE
from skillbank.runtime.sdk.status_file import read_status_events

SKILL = "tao-train-action-recognition"
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("few_torch_threads")]


@pytest.fixture
def odd_val_set(sample_data, tmp_path) -> Path:
    """The sample test set less one video: 15 videos, split 8 + 7 between two processes."""
    folder = tmp_path / "val15"
    for cls in ("catch", "smile"):
        shutil.copytree(sample_data / "test" / cls, folder / cls)
    shutil.rmtree(sorted((folder / "smile").iterdir())[-1])
    return folder


def test_two_processes_on_the_cpu_train_as_one(sample_data, odd_val_set, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    overrides = {
        "dataset.train_dataset_dir": str(sample_data / "train"), "dataset.val_dataset_dir": str(odd_val_set),
        "dataset.label_map": {"catch": 0, "smile": 1}, "dataset.batch_size": 4, "dataset.workers": 0,
        "model.input_width": 32, "model.input_height": 32, "dataset.augmentation_config.crop_smaller_edge": 32,
        "train.num_epochs": 2, "train.num_gpus": 2, "train.gpu_ids": [0, 1],
    }
    job = jobs.create_job(SKILL, "train", overrides)
    assert jobs.wait(job, timeout=300, poll=0.5) == COMPLETE, jobs.get_failure_analysis(job)
    record = jobs.get_job(job)
    log = jobs.get_job_logs(job)
    assert re.findall(r"distributed: world_size=\d+ backend=\w+", log) == ["distributed: world_size=2 backend=gloo"]
    assert log.count("Epoch 1/2:") == 1 and log.count("Epoch 2/2:") == 1
    assert log.count("Saved checkpoint") == 2 and "GLOBAL_RANK: 1" not in log
    train_dir = Path(record["results_dir"]) / "train"
    events = read_status_events(train_dir)
    assert [e["message"] for e in events].count("Starting Training Loop.") == 1
    assert [e["message"] for e in events].count("Starting Action Recognition train.") == 1
    assert sorted(p.name for p in train_dir.glob("model_epoch_*.pth")) == [
        "model_epoch_000_step_00002.pth", "model_epoch_001_step_00004.pth"]  # 16 videos / (2 x 4) a step

    # The reported val_acc is the whole set's: one process validating the final checkpoint agrees.
    reported = [e["kpi"] for e in events if e["message"] == "Eval metrics generated."][-1]
    single = validate_in_one_process(overrides, train_dir / "model_epoch_001_step_00004.pth")
    assert reported["val_acc"] == pytest.approx(single["val_acc"], abs=1e-6)
    assert reported["val_acc"] * 15 == pytest.approx(round(reported["val_acc"] * 15), abs=1e-4)
    assert reported["val_loss"] == pytest.approx(single["val_loss"], rel=1e-4)


def validate_in_one_process(overrides: dict, checkpoint: Path) -> dict[str, float]:
    import pytorch_lightning as pl

    from skillbank.runtime.action_recognition.data.datamodule import ActionDataModule
    from skillbank.runtime.action_recognition.lightning_module import ActionRecognitionModule
    from skillbank.runtime.action_recognition.spec_io import load_config

    settings = {**overrides, "train.num_gpus": 1, "train.gpu_ids": [0], "results_dir": str(checkpoint.parent)}
    cfg = load_config(str(template("train")), [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                                                 for k, v in settings.items()], "train")
    label_map = dict(cfg.dataset.label_map)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    results = trainer.validate(ActionRecognitionModule(cfg, label_map), datamodule=ActionDataModule(cfg, label_map),
                               ckpt_path=str(checkpoint), weights_only=False, verbose=False)
    return {k: float(v) for k, v in results[0].items()}
