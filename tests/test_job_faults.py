"""Faults around a job: a killed supervisor, S3 endpoints that hang or buckets that are missing, archives
that explode or are missing, data that cannot be read, checkpoints that are junk, a loss that diverges.

Each ends the way a user can act on: the record agrees with the machine, nothing blocks a listing,
nothing launches that cannot run, and every failure is one clear line.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import tarfile
import threading
from pathlib import Path

import pytest
from engines import wait_until

from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms.base import COMPLETE, ERROR, EXIT_MARKER, RUNNING
from skillbank.runtime.sdk.platforms.local import launch_record
from skillbank.runtime.sdk.status_file import read_status_events


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reaped-later zombie has already stopped running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# -- the local supervisor ----------------------------------------------------------------------------

def test_the_command_dies_with_its_supervisor(fake_skill, tmp_path):
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "train.sleep": 60.0})
    results = Path(jobs.get_job(job)["results_dir"])
    pids = wait_until(lambda: launch_record(results), 30, "the launch record")
    wait_until(lambda: "fake model" in jobs.get_job_logs(job), 30, "the model to start")
    os.kill(pids["wrapper_pid"], signal.SIGKILL)  # the supervisor alone, as `kill -9 <pid in .launch.json>`
    wait_until(lambda: not _running(pids["child_pid"]), 10, "the training to stop")
    assert jobs.wait(job, timeout=20, poll=0.1) == ERROR
    assert jobs.get_failure_analysis(job)["category"] == "lost_process"
    assert jobs.cancel_job(job) == ERROR  # record and machine agree: nothing left to cancel


# -- S3 results ----------------------------------------------------------------------------------------

class BlackHole:
    """A TCP endpoint that accepts connections and never answers (an S3 endpoint gone silent)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def _finished_s3_job(fake_skill: Path, tmp_path: Path, moto_s3) -> tuple[str, Path]:
    moto_s3.create_bucket("results")
    job = jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path), "num_epochs": 1},
                          results_root="s3://results/runs")
    results = Path(jobs.get_job(job)["results_dir"])
    wait_until(lambda: (results / EXIT_MARKER).exists(), 30, "the job to end")
    return job, results


def test_listing_never_waits_for_an_s3_upload(fake_skill, tmp_path, moto_s3, monkeypatch):
    job, results = _finished_s3_job(fake_skill, tmp_path, moto_s3)
    silent = BlackHole()
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent.url)
    monkeypatch.setenv("SKILLBANK_S3_READ_TIMEOUT", "20")  # were listing to upload, it would wait this long
    monkeypatch.setenv("SKILLBANK_S3_MAX_ATTEMPTS", "1")
    try:
        (listed,) = jobs.list_jobs()
        assert listed["id"] == job and listed["status"] == RUNNING  # answered; the upload goes on elsewhere
        from skillbank.runtime.sdk.background_upload import CLAIM

        uploader = int(wait_until(lambda: (results / CLAIM).exists() and (results / CLAIM).read_text(), 30,
                                  "the background uploader"))
        assert _running(uploader)
        os.kill(uploader, signal.SIGKILL)  # it hangs on the silent endpoint; wait() takes over
    finally:
        silent.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint)
    assert jobs.wait(job, timeout=60, poll=0.1) == COMPLETE and jobs.get_job(job)["uploaded"]


def test_a_background_upload_finishes_the_job(fake_skill, tmp_path, moto_s3):
    job, _ = _finished_s3_job(fake_skill, tmp_path, moto_s3)
    assert jobs.list_jobs()[0]["status"] == RUNNING
    record = wait_until(lambda: (r := jobs.get_job(job))["status"] != RUNNING and r, 60, "the background upload")
    assert record["status"] == COMPLETE and record["uploaded"]
    keys = [o["Key"] for o in moto_s3.client().list_objects_v2(Bucket="results")["Contents"]]
    assert f"runs/{job}/train/model_epoch_000_step_00010.pth" in keys


def test_a_missing_results_bucket_is_found_before_launch(fake_skill, tmp_path, moto_s3):
    with pytest.raises(jobs.JobError, match="S3 bucket 'no-such-bucket' not found.*nothing was launched"):
        jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path)},
                        results_root="s3://no-such-bucket/runs")
    assert jobs.list_jobs() == []


def test_a_failed_jobs_cause_is_in_the_runners_text_output(fake_skill, tmp_path, monkeypatch):
    """The runner's text output names the cause (detail) that --format json carries."""
    import subprocess
    import sys

    from skillbank.generator.runner_gen import generate_runner

    runner = tmp_path / "runner.py"
    runner.write_text(generate_runner(str(fake_skill), "train", {"dataset.train_dir": str(tmp_path),
                                                                 "train.fail_code": 3, "num_epochs": 1}).text)
    done = subprocess.run([sys.executable, str(runner)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "cause: exit code 3" in done.stdout


# -- data sources and archives ------------------------------------------------------------------------

def test_a_missing_archive_or_folder_is_refused_before_launch(fake_skill, tmp_path):
    for missing in (tmp_path / "benign.tar.gz", tmp_path / "no-folder"):
        with pytest.raises(jobs.JobError, match=f"dataset.train_dir: .* {missing} does not exist on this machine"):
            jobs.create_job(str(fake_skill), "train", {"dataset.train_dir": str(missing)})
    assert jobs.list_jobs() == []


def _zeros_archive(path: Path, size: int) -> Path:
    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("data/zeros.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros()))
    return path


def test_archives_that_expand_beyond_the_limits_are_refused(tmp_path, monkeypatch):
    from skillbank.runtime.sdk.archives import ArchiveLimitError, safe_extract

    bomb = _zeros_archive(tmp_path / "bomb.tar.gz", 80 * 2**20)  # ~80 KB that would write 80 MB
    with pytest.raises(ArchiveLimitError, match="more than 100 times its size.*SKILLBANK_ARCHIVE_MAX_RATIO"):
        safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("SKILLBANK_ARCHIVE_MAX_BYTES", str(2**20))
    monkeypatch.setenv("SKILLBANK_ARCHIVE_MAX_RATIO", "100000")
    with pytest.raises(ArchiveLimitError, match="SKILLBANK_ARCHIVE_MAX_BYTES=1048576"):
        safe_extract(bomb, tmp_path / "out")
    monkeypatch.delenv("SKILLBANK_ARCHIVE_MAX_BYTES")
    assert (safe_extract(bomb, tmp_path / "out") / "data" / "zeros.bin").stat().st_size == 80 * 2**20


def test_video_data_archives_fit_the_default_limits(sample_data, tmp_path):
    from skillbank.runtime.sdk.archives import safe_extract

    out = safe_extract(sample_data / "train.tar.gz", tmp_path / "train")
    assert sorted(p.name for p in out.iterdir()) == ["catch", "smile"]


def test_a_single_top_folder_of_another_name_is_read_as_the_data_set(sample_data, tmp_path):
    from skillbank.runtime.action_recognition.data.layout import scan_labelled
    from skillbank.runtime.action_recognition.data.sampling import ClipSpec
    from skillbank.runtime.sdk.archives import safe_extract

    archive = tmp_path / "benign.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(sample_data / "train", arcname="train")
    root = safe_extract(archive, tmp_path / "staged")
    videos = scan_labelled(root, {"catch": 0, "smile": 1}, ClipSpec(rgb_seq_length=3))
    assert len(videos) == 16 and {v.class_name for v in videos} == {"catch", "smile"}


def test_an_unreadable_class_folder_is_one_data_error(sample_data, tmp_path, monkeypatch):
    from skillbank.runtime.action_recognition.data.errors import DataError
    from skillbank.runtime.action_recognition.data.layout import scan_labelled
    from skillbank.runtime.action_recognition.data.sampling import ClipSpec

    root = tmp_path / "train"
    shutil.copytree(sample_data / "train", root)
    locked = root / "smile"
    real_iterdir = Path.iterdir

    def iterdir(self):  # the tests run as root, for whom chmod 000 locks nothing: refuse as the kernel would
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataError, match=f"dataset.train_dataset_dir: cannot read {locked} \\(Permission denied\\)"):
        scan_labelled(root, {"catch": 0, "smile": 1}, ClipSpec(rgb_seq_length=3), "dataset.train_dataset_dir")


@pytest.mark.parametrize("content", [b"just some text", b"PK\x03\x04" + b"\x00" * 64, json.dumps([1]).encode(), b""])
def test_a_junk_checkpoint_is_one_clear_line(tmp_path, content):
    pytest.importorskip("torch")
    from skillbank.runtime.action_recognition.checkpoint_io import CheckpointFileError, read_checkpoint

    junk = tmp_path / "model.pth"
    junk.write_bytes(content)
    with pytest.raises(CheckpointFileError) as failed:
        read_checkpoint(junk, "evaluate.checkpoint")
    message = str(failed.value)
    assert message.startswith(f"evaluate.checkpoint={str(junk)!r} is not a readable PyTorch checkpoint (not a file")
    assert "\n" not in message and "weights_only" not in message and "issue" not in message


# -- training ------------------------------------------------------------------------------------------

@pytest.fixture
def three_videos(sample_data, tmp_path) -> Path:
    """A training set of three videos: batch size 2 leaves a last batch of one."""
    root = tmp_path / "three"
    for cls, count in (("catch", 2), ("smile", 1)):
        for video in sorted((sample_data / "train" / cls).iterdir())[:count]:
            shutil.copytree(video, root / cls / video.name)
    return root


TINY_TRAIN = ["dataset.label_map={catch: 0, smile: 1}", "model.input_width=32", "model.input_height=32",
              "dataset.augmentation_config.crop_smaller_edge=32", "dataset.workers=0", "dataset.batch_size=2"]


@pytest.mark.slow
@pytest.mark.usefixtures("few_torch_threads")
def test_three_videos_at_batch_two_train(three_videos, tmp_path, capsys):
    from ar_cli import run_cli

    rc = run_cli("train", f"results_dir={tmp_path / 'r'}", f"dataset.train_dataset_dir={three_videos}",
                 *TINY_TRAIN, "train.num_epochs=1")
    log = capsys.readouterr().out
    assert rc == 0, log
    assert "leave a last batch of 1 clip" in log
    assert read_status_events(tmp_path / "r" / "train")[-1]["message"] == "Train finished successfully."


@pytest.mark.slow
@pytest.mark.usefixtures("few_torch_threads")
def test_a_nan_loss_stops_training_with_a_failure(three_videos, tmp_path, capsys):
    from ar_cli import run_cli

    rc = run_cli("train", f"results_dir={tmp_path / 'r'}", f"dataset.train_dataset_dir={three_videos}",
                 *TINY_TRAIN, "train.num_epochs=3", "train.optim.lr=1e30")
    log = capsys.readouterr().out
    assert rc == 1
    last = read_status_events(tmp_path / "r" / "train")[-1]
    assert last["status"] == "FAILURE" and last["message"].startswith("training diverged: the loss became nan")
    assert "lower train.optim.lr" in last["message"] and "Traceback" not in log
