"""Torch datasets of clips: training / validation (``ClipDataset``) and evaluation / inference (``EvalClipDataset``).

Tensor layout of one clip (``inputs`` is a dict with key "rgb" and/or "of"), the
layout of TAO and DeepStream, in uint8 pixel values (``normaliser.ClipNormaliser``
makes them the network's float32 input once they are on the device):

- input_type 2d: rgb ``[3*T, H, W]`` channel-major, channel ``c*T + t`` (R0..R(T-1),
  G0..G(T-1), B0..B(T-1)); of ``[2*T, H, W]`` = U0..U(T-1), V0..V(T-1)
- input_type 3d: rgb ``[3, T, H, W]``, of ``[2, T, H, W]``

with T = model.rgb_seq_length for rgb and model.of_seq_length for of (3d ``all``
consecutive: T = the video's frame count, so clips of different videos differ).

- ``ClipDataset`` items: ``(inputs, label)``; one random clip per item in training
  (``clips_per_video`` items per video), TAO's ``center`` clip in validation.
- ``EvalClipDataset`` items: one per clip (not per video), videos in sorted order and
  each video's clips in TAO's order (``sampling.eval_clip_indices``):
  ``(inputs, label or -1, video_id, clip_index)``. ``collate_clips`` turns a list of
  items into ``list[ClipBatch]``: one ``ClipBatch(inputs [B, ...], labels, video_ids,
  clip_index)`` per run of clips of equal shape.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataError
from .layout import Video
from .sampling import ClipSpec, eval_clip_indices, train_clip_indices
from .transforms import ClipTransform, Geometry, flow_clip, frame_size, rgb_clip

if TYPE_CHECKING:
    from PIL import Image

SAMPLE_DIMS = {"2d": 3, "3d": 4}
"""Axes of one clip of one stream (no batch axis): 2d [C*T, H, W], 3d [C, T, H, W]."""


def sample_shapes(clip: ClipSpec, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Shape of one clip per stream (no batch axis), e.g. {"rgb": (9, 224, 224)} for rgb 2d, T=3."""
    shapes = {}
    for stream in clip.streams:
        channels, length = (3 if stream == "rgb" else 2), clip.seq_length(stream)
        shapes[stream] = (channels * length, height, width) if clip.input_type == "2d" else (
            channels, length, height, width)
    return shapes


def to_layout(array: np.ndarray, input_type: str) -> torch.Tensor:
    """A clip [C, T, H, W] in the model's layout: 2d [C*T, H, W] channel-major (index c*T + t), 3d unchanged."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if input_type == "2d":
        return tensor.reshape(-1, tensor.shape[2], tensor.shape[3])
    return tensor


class _FrameReader:
    """Decodes and transforms the frames one clip needs, each file once, and stacks them into tensors."""

    def __init__(self, clip: ClipSpec, transform: ClipTransform):
        self.clip = clip
        self.transform = transform

    def clip_tensors(self, video: Video, pick: dict[str, list[int]], geometry: Geometry) -> dict:
        """{stream: uint8 tensor in the model's layout} for one clip (``pick``: stream -> frame indices)."""
        frames: dict[tuple[str, int], Image.Image] = {}  # a frame repeated within the clip is decoded once

        def frame(folder: str, index: int) -> Image.Image:
            if (folder, index) not in frames:
                frames[folder, index] = self.transform.load(video.frames[folder][index], folder, geometry)
            return frames[folder, index]

        out = {}
        for stream, indices in pick.items():
            if stream == "rgb":
                array = rgb_clip([frame("rgb", i) for i in indices])
            else:
                array = flow_clip([frame("u", i) for i in indices], [frame("v", i) for i in indices], geometry)
            out[stream] = to_layout(array, self.clip.input_type)
        return out

    def first_size(self, video: Video, pick: dict[str, list[int]]) -> tuple[int, int]:
        """(width, height) of the clip's first frame (rgb when read, else u): what a training Geometry is drawn for."""
        stream = self.clip.streams[0]
        return frame_size(video.frames["rgb" if stream == "rgb" else "u"][pick[stream][0]])


class TorchRandom:
    """The numpy-Generator methods that sampling and transforms use, drawn from torch's global RNG.

    So ``seed_everything``, the DataLoader's per-worker seeds and a checkpoint's saved torch RNG state
    decide every training clip and augmentation (and it is much cheaper than a Generator per item).
    """

    def integers(self, low: int, high: int | None = None) -> int:
        if high is None:
            low, high = 0, low
        return int(torch.randint(int(low), int(high), (1,)).item())

    def random(self, size: int | None = None):
        if size is None:
            return float(torch.rand((), dtype=torch.float64).item())
        return torch.rand(int(size), dtype=torch.float64).numpy()

    def choice(self, options):
        return options[self.integers(0, len(options))]


class ClipDataset(Dataset):
    """Training (random clip, random augmentation) or validation (TAO's centre clip) items ``(inputs, label)``."""

    def __init__(self, videos: list[Video], clip: ClipSpec, transform: ClipTransform, train: bool,
                 clips_per_video: int = 1):
        if not videos:
            raise DataError("no videos to load")
        self.videos = list(videos)
        self.clip = clip
        self.train = train
        self.clips_per_video = int(clips_per_video) if train else 1
        self.reader = _FrameReader(clip, transform)

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    def __getitem__(self, index: int):
        video = self.videos[index // self.clips_per_video]
        if self.train:
            rng = TorchRandom()
            pick = train_clip_indices(video.frame_counts(), self.clip, rng)
            geometry = self.reader.transform.draw(self.reader.first_size(video, pick), rng)
        else:
            pick, geometry = eval_clip_indices(video.frame_counts(), self.clip, "center")[0], Geometry()
        return self.reader.clip_tensors(video, pick, geometry), video.label


class ClipBatch(NamedTuple):
    """Consecutive clips of an ``EvalClipDataset``, all of one shape: one row per clip."""

    inputs: dict[str, torch.Tensor]  # stream ("rgb" / "of") -> uint8 [B, ...]
    labels: torch.Tensor  # [B] int64, -1 when unlabelled
    video_ids: list[str]  # [B]
    clip_index: torch.Tensor  # [B] int64: the clip's position within its video (TAO's order)


class EvalClipDataset(Dataset):
    """Evaluation / inference clips, one item per clip: ``(inputs, label or -1, video_id, clip_index)``.

    Videos come in the order given (sorted by the scans), each video's clips in TAO's order for
    ``mode`` ("center", "conv" with ``num_segments``, "all"). ``clips_per_video`` maps video_id ->
    number of clips; ``frames(index)`` gives the frame indices per stream of an item.
    """

    def __init__(self, videos: list[Video], clip: ClipSpec, transform: ClipTransform, mode: str = "center",
                 num_segments: int = 1):
        if not videos:
            raise DataError("no videos to load")
        self.videos = list(videos)
        self.clip = clip
        self.mode = mode
        self.num_segments = int(num_segments)
        self.reader = _FrameReader(clip, transform)
        self._items: list[tuple[int, int, dict[str, list[int]]]] = []
        self.clips_per_video: dict[str, int] = {}
        for video_index, video in enumerate(self.videos):
            picks = eval_clip_indices(video.frame_counts(), clip, mode, self.num_segments)
            self.clips_per_video[video.video_id] = len(picks)
            self._items += [(video_index, clip_index, pick) for clip_index, pick in enumerate(picks)]

    def __len__(self) -> int:
        return len(self._items)

    def frames(self, index: int) -> dict[str, list[int]]:
        """Frame indices (into each folder's sorted frame list) per stream of item ``index``."""
        return {s: list(ids) for s, ids in self._items[index][2].items()}

    def __getitem__(self, index: int):
        video_index, clip_index, pick = self._items[index]
        video = self.videos[video_index]
        inputs = self.reader.clip_tensors(video, pick, Geometry())
        return inputs, video.label, video.video_id, clip_index


def collate_clips(items) -> list[ClipBatch]:
    """``EvalClipDataset`` items -> one ClipBatch per run of consecutive items whose tensors have equal shapes."""
    runs: list[list] = []
    for item in items:
        shapes = {s: tuple(t.shape) for s, t in item[0].items()}
        if runs and shapes == {s: tuple(t.shape) for s, t in runs[-1][0][0].items()}:
            runs[-1].append(item)
        else:
            runs.append([item])
    return [ClipBatch({s: torch.stack([item[0][s] for item in run]) for s in run[0][0]},
                      torch.tensor([int(item[1]) for item in run], dtype=torch.long),
                      [item[2] for item in run],
                      torch.tensor([int(item[3]) for item in run], dtype=torch.long))
            for run in runs]
