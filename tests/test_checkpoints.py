"""Checkpoint selection: exact files, never *_latest links, deterministic ties, best-scored, export parents."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from skillbank.runtime.sdk.checkpoints import (
    CheckpointError,
    list_checkpoints,
    newest_checkpoint,
    parse_epoch_step,
    select_checkpoint,
)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_parse_epoch_step():
    assert parse_epoch_step("model_epoch_004_step_00120.pth") == (4, 120)
    assert parse_epoch_step("train/epoch=7-step=300.ckpt") == (7, 300)
    assert parse_epoch_step("weights.pth") == (None, None)


def test_newest_exact_checkpoint_skips_latest_links_logs_and_inputs(tmp_path):
    _touch(tmp_path, "train/model_epoch_000_step_00010.pth", "train/model_epoch_001_step_00020.pth",
           "train/lightning_logs/version_0/checkpoints/model_epoch_009_step_99999.ckpt",
           "inputs/export.checkpoint/model_epoch_050_step_00500.pth", "train/notes.txt")
    (tmp_path / "train" / "ar_model_latest.pth").symlink_to("model_epoch_001_step_00020.pth")
    _touch(tmp_path, "train/model_epoch_099_latest.pth")
    chosen = select_checkpoint(tmp_path)
    assert chosen.name == "model_epoch_001_step_00020.pth"
    assert chosen.location == str(tmp_path / "train" / "model_epoch_001_step_00020.pth")
    assert chosen.folder == str(tmp_path / "train")
    assert [c.name for c in list_checkpoints(tmp_path)] == [
        "model_epoch_001_step_00020.pth", "model_epoch_000_step_00010.pth"]


def test_step_breaks_epoch_ties_and_numbers_beat_unnumbered(tmp_path):
    _touch(tmp_path, "model_epoch_003_step_00100.pth", "model_epoch_003_step_00150.pth", "final.pth")
    assert select_checkpoint(tmp_path).name == "model_epoch_003_step_00150.pth"


def test_exact_ties_are_broken_deterministically(tmp_path):
    # Same (epoch, step): .pth beats .ckpt; then the shorter path; then alphabetical.
    _touch(tmp_path, "b/model_epoch_002_step_00020.ckpt", "b/model_epoch_002_step_00020.pth",
           "a/model_epoch_002_step_00020.pth", "deeper/x/model_epoch_002_step_00020.pth")
    picks = {select_checkpoint(tmp_path).relative for _ in range(3)}
    assert picks == {"a/model_epoch_002_step_00020.pth"}
    order = [c.relative for c in list_checkpoints(tmp_path)]
    assert order == ["a/model_epoch_002_step_00020.pth", "b/model_epoch_002_step_00020.pth",
                     "deeper/x/model_epoch_002_step_00020.pth", "b/model_epoch_002_step_00020.ckpt"]


def test_best_scored_checkpoint_wins_over_newest(tmp_path):
    _touch(tmp_path, "train/model_epoch_000_step_00010.pth", "train/model_epoch_001_step_00020.pth")
    assert select_checkpoint(tmp_path, best="model_epoch_000_step_00010.pth").name == \
        "model_epoch_000_step_00010.pth"
    assert select_checkpoint(tmp_path, best="train/model_epoch_000_step_00010.pth").relative == \
        "train/model_epoch_000_step_00010.pth"
    with pytest.raises(CheckpointError, match="model_epoch_007"):
        select_checkpoint(tmp_path, best="model_epoch_007_step_00070.pth")


def test_export_parent_offers_onnx_and_engine(tmp_path):
    _touch(tmp_path, "action_recognition.onnx", "spec.yaml")
    with pytest.raises(CheckpointError, match="no checkpoint artifacts"):
        select_checkpoint(tmp_path, action="train")
    assert select_checkpoint(tmp_path, action="export").name == "action_recognition.onnx"


def test_empty_or_missing_folder(tmp_path):
    assert newest_checkpoint(tmp_path / "nothing") is None
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        select_checkpoint(tmp_path)


def test_symlinked_folders_are_not_followed(tmp_path):
    other = tmp_path / "other"
    _touch(other, "model_epoch_009_step_00900.pth")
    results = tmp_path / "results"
    _touch(results, "model_epoch_001_step_00010.pth")
    os.symlink(other, results / "linked")
    assert select_checkpoint(results).name == "model_epoch_001_step_00010.pth"


def test_best_files_of_train_checkpointer_are_selectable_but_never_newest(tmp_path):
    _touch(tmp_path, "train/model_epoch_003_step_00040.pth", "train/model_best_001.pth",
           "train/best/model_best_epoch=002.pth")
    (tmp_path / "train" / "ar_model_latest.pth").symlink_to("model_epoch_003_step_00040.pth")
    assert {c.relative for c in list_checkpoints(tmp_path)} == {
        "train/model_epoch_003_step_00040.pth", "train/model_best_001.pth", "train/best/model_best_epoch=002.pth"}
    assert newest_checkpoint(tmp_path).name == "model_epoch_003_step_00040.pth"  # what resume_model takes
    # best_checkpoint as train reports it: relative to the train folder (or a base name)
    assert select_checkpoint(tmp_path, best="model_best_001.pth").relative == "train/model_best_001.pth"
    assert select_checkpoint(tmp_path, best="best/model_best_epoch=002.pth").relative == \
        "train/best/model_best_epoch=002.pth"


def test_best_outside_the_results_folder_is_taken_by_absolute_path(tmp_path):
    _touch(tmp_path, "results/train/model_epoch_001_step_00020.pth", "elsewhere/model_best_000.pth")
    outside = str(tmp_path / "elsewhere" / "model_best_000.pth")
    chosen = select_checkpoint(tmp_path / "results", best=outside)
    assert chosen.location == outside and chosen.name == "model_best_000.pth"
    with pytest.raises(CheckpointError, match="model_best_009"):
        select_checkpoint(tmp_path / "results", best=str(tmp_path / "elsewhere" / "model_best_009.pth"))
