"""Training-clip loading throughput (clips/s) against raw decoding of the same frames, interleaved in one run.

Ours: the training DataLoader of ``ActionDataModule`` as training builds it (batch 8, no workers: one
process): sampling, decoding, crop/flip, stacking in the model's layout and collating the batch. The clips
stay uint8; normalisation happens on the device, after the transfer, and is not part of loading.
Baseline: for the same videos, as many clips of the same frame indices' kind, only
``np.asarray(Image.open(p).convert(mode))`` per frame, the least any loader does with these files.
TAO's loader (not installable here) decodes the same way and then transforms and normalises in
float32, so it is slower than the baseline; the ratio says what our pipeline costs on top of decoding
(1.0 = free). Frames are JPEG (``sample-data --frame-format jpeg``), as real data sets hold them.
Each case runs ``ROUNDS`` rounds of ours and the baseline alternately and reports each side's best
round in clips per CPU-second of this process: both sides run on one thread (no loader workers, one
torch thread), so on an idle machine that is their wall-clock throughput, and other processes on a busy
machine disturb it far less than wall time. Other load only ever slows a round down, so the best round
is the least disturbed.

Cases, all at a 224x224 network input:

- rgb 2d T=8 from 224x224 frames, ``no_crop`` + flip (goal >= 0.8);
- joint 3d, rgb T=8 + flow T=8, from 320x240 frames (UCF101's size) with ``crop_smaller_edge=240``,
  ``random_crop`` + flip: the crop is cut from the stored frame (goal >= 0.8);
- the same joint case from 640x480 frames: JPEG draft mode decodes them at half size (no goal: it
  shows what draft mode saves; the baseline decodes every pixel).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .rows import row

ROUNDS = 7
GOAL = 0.8
CLIPS_PER_VIDEO = 6  # 8 training videos: 48 clips, 6 batches of 8 per round
RGB_2D = {"model_type": "rgb", "input_type": "2d", "rgb_seq_length": 8}
JOINT_3D = {"model_type": "joint", "input_type": "3d", "rgb_seq_length": 8, "of_seq_length": 8}
CASES = (
    # name, frame size, model settings, crop type, crop_smaller_edge, goal
    ("rgb 2d T=8, 224x224 frames, no_crop + flip", (224, 224), RGB_2D, "no_crop", 224, GOAL),
    ("joint 3d T=8+8, 320x240 frames, random_crop + flip", (320, 240), JOINT_3D, "random_crop", 240, GOAL),
    ("joint 3d T=8+8, 640x480 frames: draft 1/2", (640, 480), JOINT_3D, "random_crop", 240, None),
)


def _config(root: Path, model: dict, crop: str, smaller_edge: int):
    from skillbank.runtime.config.action_recognition import ExperimentConfig

    cfg = ExperimentConfig()
    cfg.dataset.train_dataset_dir = str(root / "train")
    cfg.dataset.label_map = {"catch": 0, "smile": 1}
    cfg.dataset.batch_size = 8
    cfg.dataset.workers = 0
    cfg.dataset.clips_per_video = CLIPS_PER_VIDEO
    cfg.dataset.augmentation_config.train_crop_type = crop
    cfg.dataset.augmentation_config.crop_smaller_edge = smaller_edge
    cfg.model.input_height = cfg.model.input_width = 224
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def _ours(loader) -> float:
    start, clips = time.process_time(), 0
    for _, labels in loader:
        clips += labels.shape[0]
    return clips / (time.process_time() - start)


def _raw(videos, clip, count: int, seed: int) -> float:
    from skillbank.runtime.action_recognition.data.layout import STREAM_FOLDERS
    from skillbank.runtime.action_recognition.data.sampling import train_clip_indices

    rng = np.random.default_rng(seed)
    start = time.process_time()
    for index in range(count):
        video = videos[index % len(videos)]
        for stream, frames in train_clip_indices(video.frame_counts(), clip, rng).items():
            for folder in STREAM_FOLDERS[stream]:
                mode = "RGB" if folder == "rgb" else "L"
                for frame in frames:
                    with Image.open(video.frames[folder][frame]) as image:
                        np.asarray(image.convert(mode))
    return count / (time.process_time() - start)


def run() -> list[dict]:
    from skillbank.runtime.action_recognition.data.datamodule import ActionDataModule
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    from .torch_threads import one_torch_thread

    rows = []
    with one_torch_thread(), tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        roots: dict[tuple[int, int], Path] = {}
        for name, size, model, crop, smaller_edge, goal in CASES:
            if size not in roots:
                roots[size] = make_sample_data(Path(tmp) / f"{size[0]}x{size[1]}", videos_per_class=4, frames=16,
                                               size=size, seed=0, frame_format="jpeg")
            cfg = _config(roots[size], model, crop, smaller_edge)
            datamodule = ActionDataModule(cfg, cfg.dataset.label_map)
            datamodule.setup("fit")
            loader = datamodule.train_dataloader()
            videos, clip, count = datamodule.videos["train"], datamodule.clip, len(loader.dataset)
            _ours(loader), _raw(videos, clip, count, 0)  # warm the page cache for both
            ours, base = [], []
            for round_index in range(ROUNDS):
                ours.append(_ours(loader))
                base.append(_raw(videos, clip, count, round_index))
            value, baseline = max(ours), max(base)
            rows.append(row(f"loader vs raw JPEG decode, 224 px ({name})", value, baseline, "clips/CPU-s",
                            goal=f">= {goal}" if goal else ""))
    return rows


if __name__ == "__main__":
    for result in run():
        print(result)
