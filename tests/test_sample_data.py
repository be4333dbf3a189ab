"""The synthetic sample data set: layout, archives, determinism, motion and flow, CLI."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from skillbank.runtime.action_recognition.sample_data import FLOW_GAIN, make_sample_data

SMALL = {"classes": ("catch", "smile"), "videos_per_class": 2, "frames": 6, "size": (16, 12)}


def _videos(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.glob("*/*") if p.is_dir())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_of_the_default_set(sample_data: Path):
    for name in ("train.tar.gz", "test.tar.gz", "inference.tar.gz", "inference_labels.csv"):
        assert (sample_data / name).is_file(), name
    for split in ("train", "test"):
        assert sorted(p.name for p in (sample_data / split).iterdir() if p.is_dir()) == ["catch", "smile"]
        videos = _videos(sample_data / split)
        assert len(videos) == 16
        for video in videos:
            names = {kind: sorted(p.name for p in (video / kind).iterdir()) for kind in ("rgb", "u", "v")}
            assert names["rgb"] == names["u"] == names["v"] == [f"{t:06d}.png" for t in range(16)]
            with Image.open(video / "rgb" / "000000.png") as rgb, Image.open(video / "u" / "000000.png") as u:
                assert (rgb.mode, rgb.size, u.mode, u.size) == ("RGB", (32, 32), "L", (32, 32))
    # a labelled split holds class folders only: no archive inside it (TAO's loader would take it for a class)
    for split in ("train", "test"):
        assert all(p.is_dir() for p in (sample_data / split).iterdir())


def test_inference_set_is_unlabelled_and_mixed(sample_data: Path):
    """inference/ is <video>/rgb|u|v of every class, shuffled, with no class in any name; answers beside it."""
    folder = sample_data / "inference"
    videos = sorted(p.name for p in folder.iterdir())
    assert videos == [f"video_{i:03d}" for i in range(8)]  # 8 videos per class and split -> 4 per class
    assert all(sorted(q.name for q in (folder / v).iterdir()) == ["rgb", "u", "v"] for v in videos)
    rows = (sample_data / "inference_labels.csv").read_text().splitlines()
    assert rows[0] == "video,class"
    answers = dict(row.split(",") for row in rows[1:])
    assert sorted(answers) == videos
    assert sorted(answers.values()) == ["catch"] * 4 + ["smile"] * 4
    order = [answers[v] for v in videos]
    assert order != sorted(order) and order != sorted(order, reverse=True)  # mixed, not grouped by class
    assert not any(name in str(p) for p in folder.rglob("*") for name in ("catch", "smile"))
    # a different draw from every test video
    test_frames = {_digest(v / "rgb" / "000000.png") for v in _videos(sample_data / "test")}
    assert not {_digest(folder / v / "rgb" / "000000.png") for v in videos} & test_frames


def test_train_and_test_are_disjoint(sample_data: Path):
    train = {v.name: _digest(v / "rgb" / "000000.png") for v in _videos(sample_data / "train")}
    test = {v.name: _digest(v / "rgb" / "000000.png") for v in _videos(sample_data / "test")}
    assert not set(train) & set(test)
    assert not set(train.values()) & set(test.values())


def test_archives_hold_the_folders(sample_data: Path, tmp_path: Path):
    for archive, folder in (("train.tar.gz", "train"), ("inference.tar.gz", "inference")):
        target = tmp_path / folder
        with tarfile.open(sample_data / archive) as tar:
            assert all(not m.name.startswith(("/", "..")) for m in tar.getmembers())
            tar.extractall(target, filter="data")
        ours = sorted(p.relative_to(target) for p in target.rglob("*.png"))
        theirs = sorted(p.relative_to(sample_data / folder) for p in (sample_data / folder).rglob("*.png"))
        assert ours == theirs and ours
        assert all((target / rel).read_bytes() == (sample_data / folder / rel).read_bytes() for rel in ours[:50])
    with tarfile.open(sample_data / "inference.tar.gz") as tar:
        assert tar.getnames()[0] == "video_000"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path):
    first = make_sample_data(tmp_path / "a", seed=3, **SMALL)
    second = make_sample_data(tmp_path / "b", seed=3, **SMALL)
    other = make_sample_data(tmp_path / "c", seed=4, **SMALL)
    for name in ("train.tar.gz", "test.tar.gz", "inference.tar.gz"):
        assert _digest(first / name) == _digest(second / name), name
        assert _digest(first / name) != _digest(other / name), name
    assert _digest(first / "inference_labels.csv") == _digest(second / "inference_labels.csv")


def test_motion_is_the_class_and_flow_is_true(sample_data: Path):
    """The object's centre moves by the encoded flow each frame; catch moves up, smile down."""
    for video in _videos(sample_data / "train"):
        u = np.stack([np.asarray(Image.open(video / "u" / f"{t:06d}.png"), np.float32) for t in range(16)])
        v = np.stack([np.asarray(Image.open(video / "v" / f"{t:06d}.png"), np.float32) for t in range(16)])
        mask = (u != 128) | (v != 128)
        assert mask[5:11].any(axis=(1, 2)).all()  # the object is visible in the middle of the video
        vy = (v[mask] - 128).mean() / FLOW_GAIN
        vx = (u[mask] - 128).mean() / FLOW_GAIN
        assert (vy < -1.0) if video.parent.name == "catch" else (vy > 1.0)
        # centroid shift between two middle frames (no wrap-around there) matches the flow
        ys, xs = np.nonzero(mask[7])
        ys2, xs2 = np.nonzero(mask[9])
        assert abs((ys2.mean() - ys.mean()) / 2 - vy) < 0.6
        assert abs((xs2.mean() - xs.mean()) / 2 - vx) < 0.6


def test_a_single_frame_carries_no_class_position(sample_data: Path):
    """Trajectories are centred: the object's mean height over a video is the same for both classes."""
    heights = {"catch": [], "smile": []}
    for video in _videos(sample_data / "train"):
        v = np.stack([np.asarray(Image.open(video / "v" / f"{t:06d}.png")) for t in range(16)])
        ys = np.nonzero(v != 128)[1]
        heights[video.parent.name].append(ys.mean())
    assert abs(np.mean(heights["catch"]) - np.mean(heights["smile"])) < 3.0


def test_jpeg_frames_hold_the_same_videos(tmp_path: Path):
    png = make_sample_data(tmp_path / "png", **SMALL)
    jpeg = make_sample_data(tmp_path / "jpeg", frame_format="jpeg", **SMALL)
    video = "train/catch/catch_train_000"
    assert sorted(p.name for p in (jpeg / video / "rgb").iterdir()) == [f"{t:06d}.jpg" for t in range(6)]
    for kind, mode in (("rgb", "RGB"), ("u", "L"), ("v", "L")):
        with Image.open(jpeg / video / kind / "000002.jpg") as lossy, \
                Image.open(png / video / kind / "000002.png") as exact:
            assert (lossy.format, lossy.mode, lossy.size) == ("JPEG", mode, (16, 12))
            assert np.abs(np.asarray(lossy, np.int16) - np.asarray(exact, np.int16)).mean() < 16  # lossy, same picture
    with tarfile.open(jpeg / "inference.tar.gz") as archive:
        assert "video_000/u/000005.jpg" in archive.getnames()
    assert _digest(jpeg / "train.tar.gz") == _digest(make_sample_data(tmp_path / "again", frame_format="jpeg",
                                                                      **SMALL) / "train.tar.gz")
    with pytest.raises(ValueError, match="frame_format: must be one of png, jpeg, got 'gif'"):
        make_sample_data(tmp_path / "gif", frame_format="gif", **SMALL)


def test_existing_output_needs_overwrite(tmp_path: Path):
    make_sample_data(tmp_path, **SMALL)
    with pytest.raises(FileExistsError, match="overwrite"):
        make_sample_data(tmp_path, **SMALL)
    make_sample_data(tmp_path, overwrite=True, **SMALL)


@pytest.mark.parametrize(
    "kwargs, key",
    [({"classes": ("a",)}, "classes"), ({"videos_per_class": 0}, "videos_per_class"), ({"frames": 1}, "frames"),
     ({"size": (4, 32)}, "size")],
)
def test_bad_arguments_name_the_argument(tmp_path: Path, kwargs, key):
    with pytest.raises(ValueError, match=key):
        make_sample_data(tmp_path, **kwargs)


def test_cli_writes_the_set_and_reports_errors(tmp_path: Path):
    from skillbank.cli import main

    runner = CliRunner()
    args = ["sample-data", str(tmp_path / "out"), "--classes", "up,flat,down", "--videos-per-class", "1",
            "--frames", "4", "--size", "20x16", "--seed", "7"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "dataset.label_map: {up: 0, flat: 1, down: 2}" in result.output
    assert (tmp_path / "out" / "inference.tar.gz").is_file()
    assert not (tmp_path / "out" / "test" / "down.tar.gz").exists()  # nothing inside a labelled split
    assert "inference: " in result.output and "inference_labels.csv" in result.output
    with Image.open(next((tmp_path / "out" / "train" / "flat").glob("*/rgb/000000.png"))) as image:
        assert image.size == (20, 16)
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    jpeg = runner.invoke(main, ["sample-data", str(tmp_path / "jpeg"), "--videos-per-class", "1", "--frames", "2",
                                "--frame-format", "jpeg"])
    assert jpeg.exit_code == 0, jpeg.output
    assert [p.name for p in (tmp_path / "jpeg" / "test" / "catch" / "catch_test_000" / "v").iterdir()] \
        and all(p.suffix == ".jpg" for p in (tmp_path / "jpeg" / "test").rglob("*.*"))
    bad = runner.invoke(main, ["sample-data", str(tmp_path / "x"), "--size", "32"])
    assert bad.exit_code != 0 and "WIDTHxHEIGHT" in bad.output
