"""Shared fixtures: an isolated job store and results root per test, and one sample data set per session."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SKILL = "tao-train-action-recognition"

pytest_plugins = ["engines"]  # real SLURM, PostgreSQL and podman, started by the tests that ask for them


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
def skill_dir() -> Path:
    return REPO / "skills" / "models" / SKILL
