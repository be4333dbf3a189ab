"""Shared fixtures: an isolated job store and results root per test, one sample data set per session, torch threads.

The fixture modules beside this file are plugins (``pytest_plugins``): a test names their fixtures as
arguments and imports nothing for them (``fake_skill``, ``moto_s3``, the real engines).
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SKILL = "tao-train-action-recognition"

pytest_plugins = [
    "engines",  # real SLURM, PostgreSQL and podman, started by the tests that ask for them
    "fake_skill",  # fake_skill: a tiny skill whose model is a short script (fast SDK tests)
    "s3_server",  # moto_s3: a moto S3 server spoken to by real boto3
]


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """No test reads or writes the user's job store or results."""
    monkeypatch.setenv("SKILLBANK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SKILLBANK_RESULTS_ROOT", str(tmp_path / "results"))
    for name in ("SKILLBANK_ENCRYPTION_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> Path:
    """The sample data set (extracted folders and archives), small enough for tests.

    Layout: train/, test/ (labelled, <class>/<video>/), inference/ (unlabelled, <video>/, mixed classes),
    their archives beside them (train.tar.gz, test.tar.gz, inference.tar.gz) and inference_labels.csv.
    """
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    out = tmp_path_factory.mktemp("sample-data")
    make_sample_data(out, classes=("catch", "smile"), videos_per_class=8, frames=16, size=(32, 32), seed=0)
    return out


@pytest.fixture
def sample_overrides(sample_data) -> dict:
    """spec_overrides that train and evaluate on the sample data set in seconds: its 32x32 frames as they are,
    batches of 8, no loader worker processes."""
    return {
        "dataset.train_dataset_dir": str(sample_data / "train"),
        "dataset.val_dataset_dir": str(sample_data / "test"),
        "dataset.label_map": {"catch": 0, "smile": 1},
        "dataset.batch_size": 8, "dataset.workers": 0,
        "model.input_width": 32, "model.input_height": 32,
        "dataset.augmentation_config.crop_smaller_edge": 32,
    }


@pytest.fixture
def skill_dir() -> Path:
    return REPO / "skills" / "models" / SKILL


@pytest.fixture
def few_torch_threads():
    """Two torch threads for the test (the CI machine is shared). A module that trains or runs networks in
    this process asks for it with ``pytestmark = pytest.mark.usefixtures("few_torch_threads")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
