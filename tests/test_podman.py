"""``--platform docker`` on a real docker-compatible engine: podman (tests/engines.py), offline.

The image is built here from nothing (its /usr is the host's, mounted read-only); the interpreter,
this checkout with its venv, the data and the results folder are mounted at their own paths, so the
job runs this installation's ``action_recognition`` inside the container.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from engines import wait_until

from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms.base import CANCELED, COMPLETE, RUNNING

pytestmark = [pytest.mark.engine]
SKILL = "tao-train-action-recognition"
REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 240


@pytest.fixture
def options(podman_engine) -> dict:
    mounts = ["/usr:/usr:ro", f"{sys.base_prefix}:{sys.base_prefix}:ro", f"{REPO}:{REPO}:ro"]
    return {"cli": "podman", "image": podman_engine.image, "network": "none", "gpus": "0",
            "mounts": ",".join(dict.fromkeys(mounts))}


@pytest.fixture
def overrides(sample_overrides, monkeypatch) -> dict:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return {**sample_overrides, "train.num_epochs": 1}


SECRET = "enc-key-Podman-4711-do-not-print"


def test_a_train_job_runs_in_a_podman_container(podman_engine, options, overrides):
    job = jobs.create_job(SKILL, "train", overrides, platform="docker", platform_options=options,
                          env={"SKILLBANK_ENCRYPTION_KEY": SECRET})
    record = jobs.get_job(job)
    container = record["backend_id"]
    inspect = podman_engine.run("inspect", "--format", "{{.Config.Image}} {{.HostConfig.NetworkMode}}", container)
    assert podman_engine.image in inspect.stdout and "none" in inspect.stdout
    env = podman_engine.run("inspect", "--format", "{{json .Config.Env}}", container).stdout
    assert f"SKILLBANK_ENCRYPTION_KEY={SECRET}" in json.loads(env)  # passed by name, from the CLI's environment
    assert jobs.wait(job, timeout=TIMEOUT, poll=0.5) == COMPLETE, jobs.get_failure_analysis(job)
    assert "Training finished; newest checkpoint:" in jobs.get_job_logs(job)
    assert jobs.get_job(job)["checkpoints"]  # written in the container, to the mounted results folder
    state = jobs.platform_of(jobs.get_job(job)).status(container, Path(record["results_dir"]))
    assert (state.state, state.exit_code) == (COMPLETE, 0)
    leaked = [p for p in Path(record["results_dir"]).rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == [] and SECRET not in json.dumps(jobs.get_job(job))


def test_a_podman_job_is_canceled_with_its_container(podman_engine, options, overrides):
    job = jobs.create_job(SKILL, "train", {**overrides, "train.num_epochs": 200}, platform="docker",
                          platform_options=options)
    wait_until(lambda: jobs.get_job_status(job) == RUNNING and "Epoch 1/200" in jobs.get_job_logs(job), 120,
               "the containerized training")
    assert jobs.cancel_job(job) == CANCELED
    record = jobs.get_job(job)
    state = podman_engine.run("inspect", "--format", "{{.State.Status}}", record["backend_id"]).stdout.strip()
    assert state in ("exited", "stopped")
    assert jobs.platform_of(record).status(record["backend_id"], Path(record["results_dir"])).state == CANCELED
