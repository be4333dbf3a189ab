"""Training-clip loading throughput (clips/s) against raw decoding of the same frames, interleaved in one run.

Ours: ``ClipDataset[i]`` (sampling, decoding, crop/flip, normalisation, tensor layout).
Baseline: for the same videos and clip indices, only ``np.asarray(Image.open(p).convert(mode))`` per frame.
The ratio says what the pipeline costs on top of decoding (1.0 = free). One process, no workers.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROUNDS = 5
CLIPS_PER_ROUND = 150
CASES = (
    # name, model settings, crop type (frames 64x64, input 64x64)
    ("rgb 2d T=3, no_crop + flip", {"model_type": "rgb", "input_type": "2d", "rgb_seq_length": 3}, "no_crop"),
    ("joint 3d rgb T=3 + of T=5, random_crop + flip",
     {"model_type": "joint", "input_type": "3d", "rgb_seq_length": 3, "of_seq_length": 5}, "random_crop"),
)


def _config(root: Path, model: dict, crop: str):
    from skillbank.runtime.config.action_recognition import ExperimentConfig

    cfg = ExperimentConfig()
    cfg.dataset.train_dataset_dir = str(root / "train")
    cfg.dataset.label_map = {"catch": 0, "smile": 1}
    cfg.dataset.augmentation_config.train_crop_type = crop
    cfg.dataset.augmentation_config.crop_smaller_edge = 72
    cfg.model.input_height = cfg.model.input_width = 64
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def _ours(dataset, count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        dataset[index % len(dataset)]
    return count / (time.perf_counter() - start)


def _raw(videos, clip, count: int, seed: int) -> float:
    from skillbank.runtime.action_recognition.data.layout import STREAM_FOLDERS
    from skillbank.runtime.action_recognition.data.sampling import train_clip_indices

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for index in range(count):
        video = videos[index % len(videos)]
        for stream, frames in train_clip_indices(video.frame_counts(), clip, rng).items():
            for folder in STREAM_FOLDERS[stream]:
                mode = "RGB" if folder == "rgb" else "L"
                for frame in frames:
                    with Image.open(video.frames[folder][frame]) as image:
                        np.asarray(image.convert(mode))
    return count / (time.perf_counter() - start)


def run() -> list[dict]:
    import torch

    from skillbank.runtime.action_recognition.data.datamodule import validate_dataset
    from skillbank.runtime.action_recognition.data.datasets import ClipDataset
    from skillbank.runtime.action_recognition.data.sampling import ClipSpec
    from skillbank.runtime.action_recognition.data.transforms import ClipTransform
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_sample_data(Path(tmp), videos_per_class=8, frames=16, size=(64, 64), seed=0)
        for name, model, crop in CASES:
            cfg = _config(root, model, crop)
            videos = validate_dataset(cfg)["train"]
            clip = ClipSpec.from_model_config(cfg.model)
            dataset = ClipDataset(videos, clip, ClipTransform.from_config(cfg, train=True), train=True)
            _ours(dataset, 20), _raw(videos, clip, 20, 0)  # warm the page cache for both
            ours, base = [], []
            for round_index in range(ROUNDS):  # interleaved so machine noise hits both alike
                ours.append(_ours(dataset, CLIPS_PER_ROUND))
                base.append(_raw(videos, clip, CLIPS_PER_ROUND, round_index))
            value, baseline = statistics.median(ours), statistics.median(base)
            rows.append({"name": f"data loading vs raw decode ({name})", "value": value, "baseline": baseline,
                         "ratio": value / baseline, "unit": "clips/s"})
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
