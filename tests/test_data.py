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
    ClipBatch,
    ClipDataset,
    EvalClipDataset,
    collate_clips,
    sample_shapes,
)
from skillbank.runtime.action_recognition.data.errors import DataError
from skillbank.runtime.action_recognition.data.layout import scan_labelled, scan_unlabelled
from skillbank.runtime.action_recognition.data.normaliser import ClipNormaliser
from skillbank.runtime.action_recognition.data.sampling import (
    ClipSpec,
    eval_clip_indices,
    subset,
    train_clip_indices,
    train_indices,
)
from skillbank.runtime.action_recognition.data.transforms import (
    ClipTransform,
    Geometry,
    Normalisation,
    flow_clip,
    normalise,
    rgb_clip,
)
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
    for unset in ("", None):  # (a spec may say null)
        cfg.dataset.train_dataset_dir = unset
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
    "model",
    [{"rgb_seq_length": 9}, {"sample_strategy": "consecutive", "sample_rate": 3},
     {"model_type": "joint", "of_seq_length": 9, "input_type": "3d"}],
)
def test_videos_shorter_than_a_clip_are_used(data: Path, model):
    video = data / "train" / "catch" / "catch_train_000"
    for frame in video.glob("*/00000[5-7].png"):
        frame.unlink()  # 5 frames left
    cfg = config(data, **model)
    module = ActionDataModule(cfg)
    module.setup()
    assert [v.path for v in module.videos["train"]].count(video) == 1
    clip = module.clip
    expected = sample_shapes(clip, 12, 14)
    (short,) = [i for i, v in enumerate(module.videos["train"]) if v.path == video]
    torch.manual_seed(0)
    for _ in range(5):  # its frames repeat (wrap or duplicate), as TAO does
        inputs, _ = module.train_dataloader().dataset[short]
        assert {k: tuple(v.shape) for k, v in inputs.items()} == expected
    dataset = build_eval_dataset(cfg, str(data / "train"), mode="conv", num_segments=2)
    picks = [dataset.frames(i) for i in range(len(dataset)) if dataset[i][2] == "catch/catch_train_000"]
    assert picks and all(max(ids) <= 4 for pick in picks for ids in pick.values())


def test_a_video_folder_without_frames_is_an_error(data: Path):
    folder = data / "train" / "catch" / "catch_train_000" / "rgb"
    for frame in folder.glob("*.png"):
        frame.unlink()
    message = error_of(config(data))
    assert f"{folder}: no PNG or JPEG frames" in message
    validate_dataset(config(data, model_type="of"))  # flow models do not read rgb/


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
    flat = scan_unlabelled(tiny / "inference", clip)  # the sample set's unlabelled videos
    assert [v.video_id for v in flat] == ["video_000", "video_001"] and {v.label for v in flat} == {-1}
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


def test_training_on_short_videos_wraps_or_repeats_frames():
    rng = np.random.default_rng(2)
    assert train_indices(5, 4, "consecutive", 2, rng) == [0, 2, 4, 1]  # start 0, mod 5 (TAO)
    assert train_indices(1, 3, "consecutive", 1, rng) == [0, 0, 0]
    draws = [train_indices(3, 8, "random_interval", 1, rng) for _ in range(50)]
    assert all(d == sorted(d) and len(d) == 8 and set(d) <= {0, 1, 2} for d in draws)
    assert len({tuple(d) for d in draws}) > 1  # random picks with repeats, sorted


def test_eval_clips_follow_tao():
    def clips(n, mode="center", segments=1, **spec):
        clip = ClipSpec(**spec)
        return [p[clip.streams[0]] for p in eval_clip_indices({"rgb": n, "u": n, "v": n}, clip, mode, segments)]

    assert clips(16, rgb_seq_length=4) == [[2, 6, 10, 14]]  # middle of each interval
    assert clips(10, rgb_seq_length=4) == [[1, 3, 6, 8]]  # int(1.25), int(3.75), int(6.25), int(8.75)
    assert clips(16, rgb_seq_length=3, sample_strategy="consecutive", sample_rate=2) == [[5, 7, 9]]
    assert clips(5, rgb_seq_length=4, sample_strategy="consecutive", sample_rate=2) == [[0, 2, 4, 1]]  # wraps
    assert clips(3, rgb_seq_length=5) == [[0, 0, 1, 2, 2]]  # int(0.3), int(0.9), int(1.5)...
    # all: n // T clips of interleaved frames; consecutive: back-to-back blocks x rate phases
    assert clips(10, "all", rgb_seq_length=4) == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert clips(13, "all", rgb_seq_length=3, sample_strategy="consecutive", sample_rate=2) == \
        [[0, 2, 4], [1, 3, 5], [6, 8, 10], [7, 9, 11]]
    assert clips(10, "all", rgb_seq_length=8, input_type="3d", sample_strategy="consecutive") == [list(range(10))]
    # conv: offsets int(tick/2 + tick*s), duplicates kept; random_interval conv is the 2d "all" list
    assert clips(10, "conv", 3, rgb_seq_length=4, sample_strategy="consecutive") == \
        [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]]
    assert clips(5, "conv", 4, rgb_seq_length=4, sample_strategy="consecutive") == \
        [[0, 1, 2, 3], [0, 1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]]
    assert clips(10, "conv", 7, rgb_seq_length=4) == clips(10, "all", rgb_seq_length=4)
    with pytest.raises(ValueError, match="'middle' is not one of center, conv, all"):
        clips(10, "middle")


def test_flow_frames_are_counted_where_tao_counts_them():
    clip = ClipSpec(model_type="of", of_seq_length=2, sample_strategy="consecutive")
    counts = {"u": 10, "v": 4}  # (a scan rejects u/v that disagree; this shows which count each mode reads)
    assert eval_clip_indices(counts, clip, "center") == [{"of": [1, 2]}]  # v/
    assert len(eval_clip_indices(counts, clip, "all")) == 5  # u/


def test_joint_streams_share_frames():
    assert subset([0, 4, 8, 12, 16, 20], 3, "random_interval") == [4, 12, 20]  # middle of each pair
    assert subset([3, 4, 5, 6, 7], 3, "consecutive") == [4, 5, 6]
    assert subset([1, 2], 3, "consecutive") == [1, 2]
    joint = ClipSpec(model_type="joint", rgb_seq_length=3, of_seq_length=5, sample_strategy="consecutive")
    assert eval_clip_indices({"rgb": 10, "u": 10, "v": 10}, joint) == [{"rgb": [4, 5, 6], "of": [3, 4, 5, 6, 7]}]
    pick = train_clip_indices({"rgb": 10, "u": 10, "v": 10}, joint, np.random.default_rng(0))
    assert set(pick["rgb"]) <= set(pick["of"]) and len(pick["rgb"]) == 3 and len(pick["of"]) == 5


def test_joint_rgb_indices_stop_at_the_last_rgb_frame():
    joint = ClipSpec(model_type="joint", rgb_seq_length=4, of_seq_length=4)
    (pick,) = eval_clip_indices({"rgb": 5, "u": 10, "v": 10}, joint)  # clips come from u/ (10 frames)
    assert pick == {"rgb": [1, 3, 4, 4], "of": [1, 3, 6, 8]}
    pick = train_clip_indices({"rgb": 2, "u": 10, "v": 10}, joint, np.random.default_rng(0))
    assert max(pick["rgb"]) <= 1 and max(pick["of"]) > 1


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
    clip = ClipSpec.from_model_config(cfg.model)
    videos = scan_labelled(root, {"catch": 0}, clip)
    dataset = ClipDataset(videos, clip, ClipTransform.from_config(cfg, train=True), train=True, clips_per_video=24)
    torch.manual_seed(0)
    outcomes = set()
    for index in range(len(dataset)):
        inputs, _ = dataset[index]
        rgb, flow = inputs["rgb"].view(3, 2, 12, 14), inputs["of"].view(2, 4, 12, 14)  # channel-major
        assert torch.equal(rgb[:, 0], rgb[:, 1]) and all(torch.equal(flow[:, 0], flow[:, t]) for t in range(4))
        v = flow[1, 0]
        assert torch.equal(rgb[0, 0], v)  # same region, same flip in both streams
        u = flow[0, 0]
        flipped = torch.equal(u, 255 - v)  # a flip mirrors u and negates it: u' = 255 - u
        assert flipped or torch.equal(u, v)
        outcomes.add((flipped, int(v.sum())))
    assert {f for f, _ in outcomes} == {True, False}  # both flips happen
    assert len(outcomes) > 2 or crop == "no_crop"  # crops differ between draws


def test_flip_mirrors_and_negates_flow_u():
    cfg = ExperimentConfig()
    cfg.model.input_height, cfg.model.input_width = 2, 3
    transform = ClipTransform.from_config(cfg, train=True)
    u = Image.fromarray(np.array([[100, 150, 200], [0, 128, 255]], np.uint8))
    v = Image.fromarray(np.array([[10, 20, 30], [40, 50, 60]], np.uint8))
    flip = Geometry(flip=True)
    out = flow_clip([transform.frame(u, flip)], [transform.frame(v, flip)], flip)[:, 0]
    assert out.dtype == np.uint8
    assert np.array_equal(out[0], [[55, 105, 155], [0, 127, 255]])  # 255 - mirrored u
    assert np.array_equal(out[1], [[30, 20, 10], [60, 50, 40]])  # mirrored v only


def test_eval_transform_resizes_like_tao():
    cfg = ExperimentConfig()
    cfg.model.input_height, cfg.model.input_width = 5, 7
    aug = cfg.dataset.augmentation_config
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (9, 16, 3), dtype=np.uint8))  # 16 x 9
    transform = ClipTransform.from_config(cfg, train=False)
    assert transform.draw((16, 9), np.random.default_rng(0)) == Geometry()  # nothing random in evaluation
    expected = np.asarray(image.resize((7, 5), Image.BILINEAR))  # aspect not kept
    assert np.array_equal(rgb_clip([transform.frame(image)])[:, 0], expected.transpose(2, 0, 1))
    # val_center_crop: shorter edge to crop_smaller_edge (long edge int(12 * 16 / 9) = 21), then centre crop
    # at int(round((21 - 7) / 2)) = 7, int(round((12 - 5) / 2)) = round(3.5) = 4
    aug.val_center_crop, aug.crop_smaller_edge = True, 12
    transform = ClipTransform.from_config(cfg, train=False)
    resized = image.resize((21, 12), Image.BILINEAR)
    expected = np.asarray(resized.crop((7, 4, 14, 9)))
    assert np.array_equal(np.asarray(transform.frame(image)), expected)
    aug.crop_smaller_edge = 3
    with pytest.raises(DataError, match="crop_smaller_edge=3 resizes 16x9 frames to 5x3.*val_center_crop=true"):
        ClipTransform.from_config(cfg, train=False).check_frame_size(16, 9)
    training = ClipTransform.from_config(cfg, train=True)  # random_crop crops from the same resize
    with pytest.raises(DataError, match="crop_smaller_edge=3 .*train_crop_type=random_crop"):
        training.draw((16, 9), np.random.default_rng(0))


def test_a_crop_on_whole_pixels_is_the_resampled_crop(tmp_path: Path):
    """Frames stored with their smaller edge at crop_smaller_edge: random crops are cut out, same pixels as PIL's
    bilinear resize of the box (which the crop replaces)."""
    cfg = ExperimentConfig()
    cfg.model.input_height, cfg.model.input_width = 12, 14
    cfg.dataset.augmentation_config.crop_smaller_edge = 16
    transform = ClipTransform.from_config(cfg, train=True)
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (16, 37, 3), dtype=np.uint8))  # 37 x 16
    rng = np.random.default_rng(0)
    for _ in range(50):
        geometry = transform.draw(image.size, rng)
        left, top, right, bottom = geometry.box
        box = (left * 37, top * 16, right * 37, bottom * 16)
        expected = np.asarray(image.resize((14, 12), Image.BILINEAR, box=box))
        ours = np.asarray(transform.frame(image, geometry))
        assert np.array_equal(ours, expected[:, ::-1] if geometry.flip else expected)


def _jpeg_and_png(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    """The same smooth picture (gradients and a disc) as a JPEG and a PNG frame."""
    ys, xs = np.mgrid[0:size[1], 0:size[0]]
    disc = (xs - size[0] / 3) ** 2 + (ys - size[1] / 2) ** 2 < (size[1] / 4) ** 2
    picture = np.stack([xs * 255 // size[0], ys * 255 // size[1], np.where(disc, 230, 40)], -1).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "frame.jpg", folder / "frame.png"
    for path in paths:
        Image.fromarray(picture).save(path)
    return paths


def test_large_jpeg_frames_are_decoded_at_a_reduced_scale(tmp_path: Path):
    jpeg, png = _jpeg_and_png(tmp_path, (128, 96))
    cfg = ExperimentConfig()
    cfg.model.input_width, cfg.model.input_height = 28, 21  # a quarter of the frame: libjpeg decodes at 1/4
    transform = ClipTransform.from_config(cfg, train=False)
    assert transform.decode_size((128, 96)) == (28, 21)
    with Image.open(jpeg) as image:
        _, box = image.draft("RGB", (28, 21))
        assert image.size == (32, 24)
        drafted = np.asarray(image.resize((28, 21), Image.BILINEAR, box=box))
    with Image.open(jpeg) as image:
        whole = np.asarray(image.resize((28, 21), Image.BILINEAR))  # TAO: every pixel decoded, then resized
    ours = np.asarray(transform.load(jpeg, "rgb"))
    assert np.array_equal(ours, drafted) and not np.array_equal(ours, whole)
    assert np.abs(ours.astype(int) - whole).mean() < 2  # the two downscalings differ by little
    with Image.open(png) as image:  # PNG has no reduced decode: TAO's pixels
        expected = np.asarray(image.resize((28, 21), Image.BILINEAR))
        assert np.array_equal(np.asarray(transform.load(png, "rgb")), expected)
    cfg.model.input_width, cfg.model.input_height = 70, 50  # under 2x smaller: decoded whole, as TAO
    with Image.open(jpeg) as image:
        whole = np.asarray(image.resize((70, 50), Image.BILINEAR))
    assert np.array_equal(np.asarray(ClipTransform.from_config(cfg, train=False).load(jpeg, "rgb")), whole)
    gray = ClipTransform.from_config(cfg, train=False).load(jpeg, "u")  # u/v frames are read as L
    assert (gray.mode, gray.size) == ("L", (70, 50))


def test_draft_keeps_what_a_training_crop_uses(tmp_path: Path):
    jpeg, _ = _jpeg_and_png(tmp_path, (128, 96))
    cfg = ExperimentConfig()
    cfg.model.input_width, cfg.model.input_height = 14, 12
    aug = cfg.dataset.augmentation_config
    aug.crop_smaller_edge = 24  # random_crop: 32 x 24 resized frame, a 14 x 12 crop of it
    transform = ClipTransform.from_config(cfg, train=True)
    geometry = transform.draw((128, 96), np.random.default_rng(0))
    assert transform.decode_size((128, 96), geometry) == (32, 24)  # decoded at 1/4, not below
    assert transform.load(jpeg, "rgb", geometry).size == (14, 12)
    aug.train_crop_type, aug.scales = "multi_scale_crop", [0.25]  # a 24 x 24 square of the frame at 14 x 12
    transform = ClipTransform.from_config(cfg, train=True)
    geometry = transform.draw((128, 96), np.random.default_rng(0))
    assert transform.decode_size((128, 96), geometry) == (75, 48)  # 14 / (24/128), 12 / (24/96): 1/1 decode


def test_eval_does_not_alter_flow():
    cfg = ExperimentConfig()
    cfg.model.input_height, cfg.model.input_width = 2, 3
    transform = ClipTransform.from_config(cfg, train=False)
    u = Image.fromarray(np.array([[100, 150, 200], [0, 128, 255]], np.uint8))
    v = Image.fromarray(np.array([[10, 20, 30], [40, 50, 60]], np.uint8))
    out = flow_clip([transform.frame(u), transform.frame(v)], [transform.frame(v), transform.frame(u)])  # [2, T, H, W]
    assert np.array_equal(out, [[np.asarray(u), np.asarray(v)], [np.asarray(v), np.asarray(u)]])


def test_normalisation_settings():
    aug = ExperimentConfig().dataset.augmentation_config

    def rgb_of(value: int) -> list[float]:
        return Normalisation.from_augmentation(aug).rgb[:, value].tolist()

    aug.rgb_input_mean, aug.rgb_input_std = [0.0, 0.5, 1.0], [1.0, 0.5, 0.25]
    assert np.allclose(rgb_of(255), [1.0, 1.0, 0.0])
    aug.rgb_input_mean, aug.rgb_input_std = [], [0.5]  # empty mean: no subtraction
    assert np.allclose(rgb_of(255), [2.0] * 3)
    aug.rgb_input_mean, aug.rgb_input_std = [0.25], []  # empty std: no division
    assert np.allclose(rgb_of(255), [0.75] * 3)
    aug.rgb_input_mean, aug.rgb_input_std = [0.485], [0.229]  # TAO's float32 steps: x/255, -mean, /std
    x = (np.float32(77) / np.float32(255) - np.float32(0.485)) / np.float32(0.229)
    assert rgb_of(77) == [x] * 3
    aug.of_input_mean = [0.1, 0.2, 0.3]
    with pytest.raises(DataError, match=r"of_input_mean: \[0.1, 0.2, 0.3\] needs 1 or 2 values"):
        Normalisation.from_augmentation(aug)
    aug.of_input_mean, aug.of_input_std = [0.5], [0.0]
    with pytest.raises(DataError, match="of_input_std.*must be > 0"):
        Normalisation.from_augmentation(aug)


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
    cfg.model.sample_strategy = "consecutive"
    dataset = build_eval_dataset(cfg, str(tiny / "test"), mode="conv", num_segments=3)
    assert isinstance(dataset, EvalClipDataset) and len(dataset) == 12
    assert set(dataset.clips_per_video.values()) == {3}
    (batch,) = next(iter(build_eval_loader(cfg, dataset, batch_size=2)))
    assert isinstance(batch, ClipBatch)
    assert {k: tuple(v.shape) for k, v in batch.inputs.items()} == {k: (2, *s) for k, s in expected.items()}
    assert batch.labels.tolist() == [0, 0] and batch.video_ids == ["catch/catch_test_000"] * 2
    assert batch.clip_index.tolist() == [0, 1]


def test_validation_takes_the_tao_center_clip(tiny: Path):
    cfg = config(tiny, model_type="joint", sample_strategy="consecutive")
    module = ActionDataModule(cfg)
    val = module.val_dataloader().dataset
    inputs, label = val[1]
    evaluation = build_eval_dataset(cfg, str(tiny / "test"))
    ours, eval_label, video_id, clip_index = evaluation[1]
    assert video_id == "catch/catch_test_001" and clip_index == 0 and label == eval_label == 0
    assert all(torch.equal(inputs[s], ours[s]) for s in ("rgb", "of"))
    assert evaluation.frames(1) == {"rgb": [3, 4, 5], "of": [2, 3, 4, 5]}


@pytest.mark.parametrize("input_type", ["2d", "3d"])
def test_normaliser_gives_taos_float32_steps_for_every_value(input_type: str):
    cfg = ExperimentConfig()
    cfg.model.input_type = input_type
    aug = cfg.dataset.augmentation_config
    aug.rgb_input_mean, aug.rgb_input_std, aug.of_input_mean, aug.of_input_std = [0.1, 0.2, 0.3], [0.7, 0.11, 0.013], \
        [0.5], []
    normaliser = ClipNormaliser.from_config(cfg)
    values = np.random.default_rng(0).permuted(np.tile(np.arange(256, dtype=np.uint8), (2, 5, 3, 2, 4, 1)), axis=-1)
    for stream, channels in (("rgb", 3), ("of", 2)):
        clips = values[:, :, :channels].reshape(2, 5, channels, 2, 4, 256)  # [B, N, C, T, H, W]: every value
        mean, std = (np.asarray(aug.rgb_input_mean, np.float32), np.asarray(aug.rgb_input_std, np.float32)) \
            if stream == "rgb" else (np.float32([0.5, 0.5]), None)
        expected = np.stack([normalise(clip, mean, std) for clip in clips.reshape(10, channels, 2, 4, 256)])
        tensor = torch.from_numpy(clips.copy())
        if input_type == "2d":
            tensor = tensor.reshape(2, 5, channels * 2, 4, 256)  # [B, N, C*T, H, W], channel-major
        for leading in (tensor, tensor[0]):  # [B, N, ...] and [B, ...]
            out = normaliser.normalise(stream, leading)
            assert out.dtype == torch.float32 and out.shape == leading.shape
            assert np.array_equal(out.numpy().reshape(-1), expected[:leading.numel() // expected[0].size].reshape(-1))
    floats = torch.rand(2, 3)
    assert normaliser({"rgb": floats})["rgb"] is floats  # already the network's input


def test_loaders_yield_uint8_that_the_module_normalises_after_the_transfer(tiny: Path):
    from skillbank.runtime.action_recognition.lightning_module import ActionRecognitionModule

    cfg = config(tiny, model_type="joint")
    module = ActionDataModule(cfg)
    inputs, labels = next(iter(module.train_dataloader()))
    assert {s: t.dtype for s, t in inputs.items()} == {"rgb": torch.uint8, "of": torch.uint8}
    (batch,) = next(iter(build_eval_loader(cfg, build_eval_dataset(cfg, str(tiny / "test")), batch_size=2)))
    assert batch.inputs["rgb"].dtype == torch.uint8
    normalised, same_labels = ActionRecognitionModule(cfg, LABELS).on_after_batch_transfer([inputs, labels], 0)
    assert same_labels is labels
    aug = cfg.dataset.augmentation_config
    rgb = normalise(inputs["rgb"].numpy().reshape(2, 3, 3, 12, 14)[0], np.float32(aug.rgb_input_mean),
                    np.float32(aug.rgb_input_std))
    assert np.array_equal(normalised["rgb"][0].numpy(), rgb.reshape(9, 12, 14))
    assert normalised["of"].dtype == torch.float32


@pytest.mark.parametrize("input_type", ["2d", "3d"])
def test_channel_major_layout(tiny: Path, input_type: str):
    cfg = config(tiny, model_type="joint", input_type=input_type)
    cfg.model.input_height = cfg.model.input_width = 16  # no resize: compare with the files
    dataset = build_eval_dataset(cfg, str(tiny / "test" / "smile"), labelled=False)
    inputs, label, video_id, _ = dataset[0]
    video = tiny / "test" / "smile" / video_id

    def read(folder: str, frames: list[int]) -> np.ndarray:
        return np.stack([np.asarray(Image.open(video / folder / f"{i:06d}.png")) for i in frames])

    picks = dataset.frames(0)
    assert picks == {"rgb": [1, 5, 7], "of": [1, 3, 5, 7]}  # rgb: positions 0, 2, 3 of the of clip, as TAO
    rgb = read("rgb", picks["rgb"]).transpose(3, 0, 1, 2)  # C, T, H, W
    flow = np.stack([read("u", picks["of"]), read("v", picks["of"])])
    if input_type == "2d":  # R0 R1 R2 G0 G1 G2 B0 B1 B2; U0..U3 V0..V3
        rgb, flow = rgb.reshape(9, 16, 16), flow.reshape(8, 16, 16)
    assert label == -1
    assert np.array_equal(inputs["rgb"].numpy(), rgb) and np.array_equal(inputs["of"].numpy(), flow)


def test_clips_of_different_shapes_are_batched_in_runs(data: Path):
    for frame in (data / "test" / "catch" / "catch_test_001").glob("*/00000[5-7].png"):
        frame.unlink()  # 5 frames: its 3d "all" consecutive clip is 5 frames long, the others 8
    cfg = config(data, input_type="3d", sample_strategy="consecutive")
    dataset = build_eval_dataset(cfg, str(data / "test"), mode="all")
    assert dataset.clips_per_video == {"catch/catch_test_000": 1, "catch/catch_test_001": 1,
                                       "smile/smile_test_000": 1, "smile/smile_test_001": 1}
    batches = list(build_eval_loader(cfg, dataset, batch_size=4))
    assert len(batches) == 1
    runs = batches[0]
    assert [tuple(run.inputs["rgb"].shape) for run in runs] == [(1, 3, 8, 12, 14), (1, 3, 5, 12, 14),
                                                                  (2, 3, 8, 12, 14)]
    assert [run.video_ids for run in runs] == [["catch/catch_test_000"], ["catch/catch_test_001"],
                                               ["smile/smile_test_000", "smile/smile_test_001"]]
    assert [run.labels.tolist() for run in runs] == [[0], [0], [1, 1]]
    item = ({"rgb": torch.zeros(2)}, 3, "v", 4)
    (single,) = collate_clips([item, item])
    assert single.clip_index.tolist() == [4, 4] and single.labels.dtype == torch.long


def test_eval_mode_errors_name_the_key(tiny: Path):
    cfg = config(tiny)
    with pytest.raises(DataError, match="evaluate.video_eval_mode: 'every' is not one of center, conv, all"):
        build_eval_dataset(cfg, str(tiny / "test"), mode="every")
    with pytest.raises(DataError, match="inference.video_num_segments: must be >= 1, got 0"):
        build_eval_dataset(cfg, str(tiny / "test"), mode="conv", num_segments=0, labelled=False)


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
