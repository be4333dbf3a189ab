"""The data pipeline: checks before training, clip sampling, augmentation, tensor layouts, loaders."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skillbank.runtime.action_recognition.data.datamodule import (
    ActionDataModule,
    build_eval_dataset,
    build_eval_loader,
    loader_workers,
    validate_dataset,
)
from skillbank.runtime.action_recognition.data.datasets import (
    ClipDataset,
    average_clip_scores,
    collate_videos,
    sample_shapes,
)
from skillbank.runtime.action_recognition.data.errors import DataError
from skillbank.runtime.action_recognition.data.layout import scan_labelled, scan_unlabelled
from skillbank.runtime.action_recognition.data.sampling import ClipSpec, eval_clips, subset, train_indices
from skillbank.runtime.action_recognition.data.transforms import ClipTransform, Geometry
from skillbank.runtime.action_recognition.sample_data import make_sample_data
from skillbank.runtime.config.action_recognition import ExperimentConfig

torch.set_num_threads(1)
LABELS = {"catch": 0, "smile": 1}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """2 classes x 2 videos x 8 frames of 16x16 per split."""
    return make_sample_data(tmp_path_factory.mktemp("tiny"), videos_per_class=2, frames=8, size=(16, 16))


@pytest.fixture
def data(tiny: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny set that a test may break."""
    return Path(shutil.copytree(tiny, tmp_path / "data"))


def config(root: Path, **model) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.dataset.train_dataset_dir = str(root / "train")
    cfg.dataset.val_dataset_dir = str(root / "test")
    cfg.dataset.label_map = dict(LABELS)
    cfg.dataset.workers = 0
    cfg.dataset.batch_size = 2
    cfg.model.input_height, cfg.model.input_width = 12, 14
    cfg.model.rgb_seq_length, cfg.model.of_seq_length = 3, 4
    cfg.dataset.augmentation_config.crop_smaller_edge = 16
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def error_of(cfg: ExperimentConfig) -> str:
    with pytest.raises(DataError) as info:
        validate_dataset(cfg)
    return str(info.value)


# -- bad data: clear errors before training -------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar"])
def test_archive_where_a_folder_is_expected(data: Path, suffix: str):
    cfg = config(data)
    cfg.dataset.train_dataset_dir = str(data / f"train{suffix}")
    message = error_of(cfg)
    assert f"train{suffix}" in message and "dataset.train_dataset_dir" in message
    assert "Extract it" in message and "skillbank run" in message and "runner" in message
    assert f"{data / 'train'} exists already" in message


def test_missing_and_empty_folders(data: Path):
    cfg = config(data)
    cfg.dataset.train_dataset_dir = str(data / "nope")
    assert f"{data / 'nope'} does not exist" in error_of(cfg)
    (data / "empty").mkdir()
    cfg.dataset.train_dataset_dir = str(data / "empty")
    assert f"{data / 'empty'} is empty" in error_of(cfg)
    cfg.dataset.train_dataset_dir = ""
    assert "dataset.train_dataset_dir is not set" in error_of(cfg)


def test_class_folder_not_in_label_map(data: Path):
    cfg = config(data)
    cfg.dataset.label_map = {"catch": 0}
    message = error_of(cfg)
    assert str(data / "train" / "smile") in message and "not in dataset.label_map" in message
    assert "known labels: catch" in message
    cfg.dataset.label_map = None
    assert "dataset.label_map is empty" in error_of(cfg) and "catch: 0, smile: 1" in error_of(cfg)


@pytest.mark.parametrize(
    "model, needed, hint",
    [({"rgb_seq_length": 9}, 9, "model.rgb_seq_length=9"),
     ({"sample_strategy": "consecutive", "sample_rate": 3}, 7, "model.sample_rate=3"),
     ({"model_type": "of", "of_seq_length": 9}, 9, "model.of_seq_length=9")],
)
def test_video_shorter_than_a_clip(data: Path, model, needed, hint):
    for frame in (data / "train" / "catch" / "catch_train_000").glob("*/00000[5-7].png"):
        frame.unlink()  # 5 frames left
    message = error_of(config(data, **model))
    assert str(data / "train" / "catch" / "catch_train_000") in message
    assert f"5 frames found, a clip needs {needed}" in message and hint in message and "lower" in message


def test_u_and_v_disagree(data: Path):
    video = data / "train" / "smile" / "smile_train_001"
    (video / "v" / "000003.png").rename(video / "v" / "000099.png")
    message = error_of(config(data, model_type="of"))
    assert str(video) in message and "u and v folders disagree" in message and "000099.png" in message
    validate_dataset(config(data, model_type="rgb"))  # rgb models do not read u/v


def test_missing_stream_folder(data: Path):
    video = data / "test" / "catch" / "catch_test_000"
    shutil.rmtree(video / "u")
    message = error_of(config(data, model_type="joint"))
    assert str(video / "u") in message and "missing" in message


def test_unreadable_image_before_training_and_while_loading(data: Path):
    frame = data / "train" / "catch" / "catch_train_001" / "rgb" / "000004.png"
    frame.write_bytes(b"not a png")
    message = error_of(config(data))
    assert str(frame) in message and "unreadable image" in message
    # with image checks off, the loader names the file when it meets it
    videos = scan_labelled(data / "train", LABELS, ClipSpec(rgb_seq_length=8), check_images="none")
    dataset = ClipDataset(videos, ClipSpec(rgb_seq_length=8), ClipTransform.from_config(config(data), False), False)
    with pytest.raises(DataError, match="000004.png: unreadable image"):
        [dataset[i] for i in range(len(dataset))]


def test_every_problem_is_listed_at_once(data: Path):
    (data / "train" / "dog").mkdir()
    (data / "train" / "dog" / "v0").mkdir()
    (data / "train" / "catch" / "catch_train_000" / "rgb" / "000000.png").write_bytes(b"")
    message = error_of(config(data))
    assert message.startswith("2 problems in dataset.train_dataset_dir")
    assert "'dog' is not in dataset.label_map" in message and "000000.png: unreadable" in message


def test_jpeg_frames_in_sorted_name_order(tmp_path: Path):
    video = tmp_path / "root" / "catch" / "v1" / "rgb"
    video.mkdir(parents=True)
    for name, value in (("b.jpg", 200), ("a.jpeg", 100), ("c.JPG", 50)):
        Image.new("RGB", (8, 8), (value,) * 3).save(video / name)
    (video / "notes.txt").write_text("ignored")
    (videos,) = [scan_labelled(tmp_path / "root", {"catch": 0}, ClipSpec(rgb_seq_length=3))]
    assert [p.name for p in videos[0].frames["rgb"]] == ["a.jpeg", "b.jpg", "c.JPG"]


def test_unlabelled_folders(tiny: Path):
    clip = ClipSpec()
    flat = scan_unlabelled(tiny / "test" / "smile", clip)
    assert [v.video_id for v in flat] == ["smile_test_000", "smile_test_001"] and {v.label for v in flat} == {-1}
    nested = scan_unlabelled(tiny / "test", clip)  # a labelled tree works for inference too
    assert [v.video_id for v in nested][:1] == ["catch/catch_test_000"] and len(nested) == 4


# -- clip sampling ----------------------------------------------------------------------------------------
def test_random_interval_training_takes_one_frame_per_interval():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        ids = train_indices(16, 4, "random_interval", 1, rng)
        assert [i // 4 for i in ids] == [0, 1, 2, 3]
        seen.update(ids)
    assert seen == set(range(16))  # the offset is random


def test_consecutive_training_random_start_with_stride():
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(200):
        ids = train_indices(16, 3, "consecutive", 2, rng)
        assert np.diff(ids).tolist() == [2, 2] and 0 <= ids[0] and ids[-1] <= 15
        starts.add(ids[0])
    assert starts == set(range(12))


def test_eval_modes():
    assert eval_clips(16, 4, "random_interval", 1, "center") == [[2, 6, 10, 14]]
    assert eval_clips(16, 3, "consecutive", 2, "center") == [[5, 7, 9]]
    conv = eval_clips(16, 3, "consecutive", 1, "conv", 3)
    assert conv == [[0, 1, 2], [7, 8, 9], [13, 14, 15]]
    assert len(eval_clips(16, 4, "random_interval", 1, "conv", 5)) == 5
    every = eval_clips(17, 3, "consecutive", 2, "all")  # span 5: starts 0, 5, 10 (15 would overrun)
    assert [c[0] for c in every] == [0, 5, 10]
    spread = eval_clips(16, 4, "random_interval", 1, "all")  # 4 offsets per interval, no frame shared
    assert len(spread) == 4 and sorted(i for c in spread for i in c) == list(range(16))
    with pytest.raises(ValueError, match="needs 5 frames"):
        eval_clips(4, 3, "consecutive", 2)


def test_joint_streams_share_frames():
    assert subset([0, 4, 8, 12, 16, 20], 3, "random_interval") == [4, 12, 20]  # middle of each pair
    assert subset([3, 4, 5, 6, 7], 3, "consecutive") == [4, 5, 6]
    assert subset([1, 2], 3, "consecutive") == [1, 2]


# -- augmentation ---------------------------------------------------------------------------------------------
def _pattern_video(root: Path, frames: int = 4, size=(20, 16)) -> Path:
    """One video whose rgb, u and v frames all show the same random gray pattern."""
    video = root / "catch" / "v0"
    pattern = np.random.default_rng(5).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    for folder in ("rgb", "u", "v"):
        (video / folder).mkdir(parents=True)
        for t in range(frames):
            image = Image.fromarray(pattern).convert("RGB" if folder == "rgb" else "L")
            image.save(video / folder / f"{t:03d}.png")
    return root


@pytest.mark.parametrize("crop", ["random_crop", "multi_scale_crop", "no_crop"])
def test_same_crop_and_flip_for_every_frame_and_both_streams(tmp_path: Path, crop: str):
    root = _pattern_video(tmp_path / "p")
    cfg = config(root, model_type="joint", rgb_seq_length=2, of_seq_length=4)
    aug = cfg.dataset.augmentation_config
    aug.train_crop_type, aug.scales, aug.horizontal_flip_prob = crop, [0.5, 0.75, 1.0], 0.5
    aug.rgb_input_mean, aug.rgb_input_std, aug.of_input_mean, aug.of_input_std = [0.5] * 3, [0.5] * 3, [0.5], [0.5]
    clip = ClipSpec.from_model_config(cfg.model)
    videos = scan_labelled(root, {"catch": 0}, clip)
    dataset = ClipDataset(videos, clip, ClipTransform.from_config(cfg, train=True), train=True, clips_per_video=24)
    torch.manual_seed(0)
    outcomes = set()
    for index in range(len(dataset)):
        inputs, _ = dataset[index]
        rgb, flow = inputs["rgb"].view(2, 3, 12, 14), inputs["of"].view(4, 2, 12, 14)
        assert torch.equal(rgb[0], rgb[1]) and all(torch.equal(flow[0], flow[t]) for t in range(4))
        v = flow[0, 1]
        assert torch.allclose(rgb[0, 0], v, atol=1e-6)  # same region, same flip in both streams
        u = flow[0, 0]
        flipped = torch.allclose(u, -v, atol=1e-6)  # u' = 255 - u is -x after (x/255-.5)/.5
        assert flipped or torch.allclose(u, v, atol=1e-6)
        outcomes.add((flipped, round(float(v.sum()), 3)))
    assert {f for f, _ in outcomes} == {True, False}  # both flips happen
    assert len(outcomes) > 2 or crop == "no_crop"  # crops differ between draws


def test_flip_mirrors_and_negates_flow_u():
    cfg = ExperimentConfig()
    cfg.model.input_height, cfg.model.input_width = 2, 3
    transform = ClipTransform.from_config(cfg, train=True)
    u = Image.fromarray(np.array([[100, 150, 200], [0, 128, 255]], np.uint8))
    v = Image.fromarray(np.array([[10, 20, 30], [40, 50, 60]], np.uint8))
    out = transform.flow([u], [v], Geometry(flip=True))[0] * 0.5 + 0.5  # back to x / 255
    assert np.allclose(out[0] * 255, [[55, 105, 155], [0, 127, 255]])  # 255 - mirrored u
    assert np.allclose(out[1] * 255, [[30, 20, 10], [60, 50, 40]])  # mirrored v only


def test_validation_resize_or_center_crop():
    cfg = ExperimentConfig()
    cfg.model.input_height, cfg.model.input_width = 4, 4
    aug = cfg.dataset.augmentation_config
    rng = np.random.default_rng(0)
    assert ClipTransform.from_config(cfg, train=False).draw((16, 8), rng) == Geometry()
    aug.val_center_crop, aug.crop_smaller_edge = True, 8
    geometry = ClipTransform.from_config(cfg, train=False).draw((16, 8), rng)
    assert geometry == Geometry((6 / 16, 2 / 8, 10 / 16, 6 / 8), False)
    aug.crop_smaller_edge = 2
    with pytest.raises(DataError, match="crop_smaller_edge=2"):
        ClipTransform.from_config(cfg, train=False).draw((16, 8), rng)


def test_normalisation_settings():
    cfg = ExperimentConfig()
    cfg.model.input_height = cfg.model.input_width = 1
    aug = cfg.dataset.augmentation_config
    aug.rgb_input_mean, aug.rgb_input_std = [0.0, 0.5, 1.0], [1.0, 0.5, 0.25]
    out = ClipTransform.from_config(cfg, train=False).rgb([Image.new("RGB", (1, 1), (255, 255, 255))], Geometry())
    assert np.allclose(out.ravel(), [1.0, 1.0, 0.0])
    aug.of_input_mean = [0.1, 0.2, 0.3]
    with pytest.raises(DataError, match="of_input_mean.*1 or 2 values"):
        ClipTransform.from_config(cfg, train=False)


# -- tensors and loaders -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", ["rgb", "of", "joint"])
@pytest.mark.parametrize("input_type", ["2d", "3d"])
def test_tensor_shapes(tiny: Path, model_type: str, input_type: str):
    cfg = config(tiny, model_type=model_type, input_type=input_type)
    module = ActionDataModule(cfg)
    module.setup("fit")
    expected = sample_shapes(module.clip, 12, 14)
    assert set(expected) == ({"rgb", "of"} if model_type == "joint" else {model_type})
    inputs, labels = next(iter(module.train_dataloader()))
    assert {k: tuple(v.shape[1:]) for k, v in inputs.items()} == expected and labels.shape == (2,)
    inputs, labels = next(iter(module.val_dataloader()))
    assert {k: tuple(v.shape[1:]) for k, v in inputs.items()} == expected
    dataset = build_eval_dataset(cfg, str(tiny / "test"), mode="conv", num_segments=3)
    batch = next(iter(build_eval_loader(cfg, dataset, batch_size=2)))
    assert {k: tuple(v.shape) for k, v in batch.inputs.items()} == {k: (2, 3, *s) for k, s in expected.items()}
    assert batch.labels.tolist() == [0, 0] and batch.video_ids == ["catch/catch_test_000", "catch/catch_test_001"]


def test_rgb_2d_channels_are_frame_major(tiny: Path):
    cfg = config(tiny)
    cfg.model.input_height = cfg.model.input_width = 16  # no resize: compare with the files
    aug = cfg.dataset.augmentation_config
    aug.rgb_input_mean, aug.rgb_input_std = [0.0] * 3, [1.0] * 3
    dataset = build_eval_dataset(cfg, str(tiny / "test" / "smile"), labelled=False)
    inputs, label, video_id = dataset[0]
    video = tiny / "test" / "smile" / video_id / "rgb"
    frames = [np.asarray(Image.open(video / f"{i:06d}.png"), np.float32) / 255 for i in (1, 4, 6)]
    expected = np.concatenate([f.transpose(2, 0, 1) for f in frames])  # t0 RGB, t1 RGB, t2 RGB
    assert label == -1 and np.allclose(inputs["rgb"][0].numpy(), expected, atol=1e-6)


def test_collate_and_average_with_different_clip_counts():
    item = lambda n, label: ({"rgb": torch.arange(n, dtype=torch.float32).view(n, 1)}, label, f"v{n}")  # noqa: E731
    batch = collate_videos([item(3, 0), item(1, 1)])
    assert batch.inputs["rgb"].shape == (2, 3, 1) and batch.clip_counts.tolist() == [3, 1]
    assert batch.inputs["rgb"][1].ravel().tolist() == [0, 0, 0]  # filled with its own clip
    scores = torch.tensor([[[1.0], [2.0], [6.0]], [[4.0], [100.0], [100.0]]])
    assert average_clip_scores(scores, batch.clip_counts).ravel().tolist() == [3.0, 4.0]


def test_training_clips_per_video_and_workers(tiny: Path):
    cfg = config(tiny)
    cfg.dataset.clips_per_video = 3
    cfg.dataset.workers = 1000
    module = ActionDataModule(cfg)
    module.setup()
    assert len(module.train_dataloader().dataset) == 12 and len(module.val_dataloader().dataset) == 4
    assert 1 <= module.workers <= (len(__import__("os").sched_getaffinity(0)))
    assert loader_workers(0) == 0


def test_label_map_from_a_checkpoint_overrides_the_spec(tiny: Path):
    cfg = config(tiny)
    cfg.dataset.label_map = None
    dataset = build_eval_dataset(cfg, str(tiny / "test"), label_map={"smile": 0, "catch": 1})
    assert [v.label for v in dataset.videos] == [1, 1, 0, 0]


def test_torch_free_modules_do_not_import_torch():
    code = ("import sys; import skillbank.runtime.action_recognition.data.layout, "
            "skillbank.runtime.action_recognition.data.sampling, skillbank.runtime.action_recognition.data.transforms, "
            "skillbank.runtime.action_recognition.sample_data, skillbank.cli.sample_data; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_randomness_follows_torch_seed(tiny: Path):
    cfg = config(tiny, sample_strategy="consecutive")
    cfg.dataset.augmentation_config.train_crop_type = "multi_scale_crop"
    cfg.dataset.augmentation_config.scales = [0.6, 0.8, 1.0]
    module = ActionDataModule(cfg)
    dataset = module.train_dataloader().dataset

    def draw(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [dataset[i][0]["rgb"] for i in range(4)]

    first, again, other = draw(1), draw(1), draw(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
