"""Torch datasets of clips (training, validation) and of whole videos (evaluation, inference).

Tensor layout of one clip (``inputs`` is a dict with key "rgb" and/or "of"):

- input_type 2d: rgb ``[3*T, H, W]`` frame-major (t0 R G B, t1 R G B, ...), of ``[2*T, H, W]`` (u0 v0 u1 v1 ...)
- input_type 3d: rgb ``[3, T, H, W]``, of ``[2, T, H, W]``

with T = model.rgb_seq_length for rgb and model.of_seq_length for of.

- ``ClipDataset`` items: ``(inputs, label)``; one random clip per item in training
  (``clips_per_video`` items per video), the centre clip in validation.
- ``VideoDataset`` items: ``(inputs, label or -1, video_id)`` where every tensor of
  ``inputs`` has a leading clip axis N (center: 1, conv: num_segments, all: every
  non-overlapping clip). ``collate_videos`` stacks a batch into a ``VideoBatch``
  with tensors [B, N, ...] (the batch axis first, then clips) and ``clip_counts``;
  ``average_clip_scores(scores [B, N, C], clip_counts)`` gives one row per video.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import DataError
from .layout import Video
from .sampling import ClipSpec, eval_clips, subset, train_indices
from .transforms import ClipTransform, Geometry


def sample_shapes(clip: ClipSpec, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Shape of one clip per stream (no batch axis), e.g. {"rgb": (9, 224, 224)} for rgb 2d, T=3."""
    shapes = {}
    for stream in clip.streams:
        channels, length = (3 if stream == "rgb" else 2), clip.seq_length(stream)
        shapes[stream] = (channels * length, height, width) if clip.input_type == "2d" else (
            channels, length, height, width)
    return shapes


def clip_indices(video: Video, clip: ClipSpec, rng: TorchRandom | np.random.Generator | None = None,
                 mode: str = "center", num_segments: int = 1) -> list[dict[str, list[int]]]:
    """Frame indices per stream for each clip of ``video``: one random clip when ``rng`` is given, else ``mode``."""
    frames = video.usable_frames(clip.streams)
    length = clip.master_length
    if rng is not None:
        masters = [train_indices(frames, length, clip.sample_strategy, clip.sample_rate, rng)]
    else:
        masters = eval_clips(frames, length, clip.sample_strategy, clip.sample_rate, mode, num_segments)
    return [{s: subset(m, clip.seq_length(s), clip.sample_strategy) for s in clip.streams} for m in masters]


class _FrameReader:
    """Decodes the frames one item needs, each file once, and turns them into tensors."""

    def __init__(self, clip: ClipSpec, transform: ClipTransform):
        self.clip = clip
        self.transform = transform

    def clips(self, video: Video, picks: list[dict[str, list[int]]], rng) -> dict:
        """Tensors for ``picks`` (a list of clips): {stream: [N, ...]}; one Geometry for all of them."""
        cache: dict[tuple[str, int], Image.Image] = {}
        first = self._open(video, "rgb" if "rgb" in self.clip.streams else "u", picks[0][self.clip.streams[0]][0],
                           cache)
        geometry = self.transform.draw(first.size, rng)
        out: dict[str, list[torch.Tensor]] = {s: [] for s in self.clip.streams}
        for pick in picks:
            for stream, indices in pick.items():
                out[stream].append(self._stream(video, stream, indices, geometry, cache))
        return {s: torch.stack(tensors) for s, tensors in out.items()}

    def _stream(self, video: Video, stream: str, indices: list[int], geometry: Geometry, cache) -> torch.Tensor:
        if stream == "rgb":
            array = self.transform.rgb([self._open(video, "rgb", i, cache) for i in indices], geometry)
        else:
            array = self.transform.flow([self._open(video, "u", i, cache) for i in indices],
                                        [self._open(video, "v", i, cache) for i in indices], geometry)
        tensor = torch.from_numpy(array)  # T, C, H, W
        if self.clip.input_type == "2d":
            return tensor.reshape(-1, tensor.shape[2], tensor.shape[3])  # frame-major channels
        return tensor.permute(1, 0, 2, 3).contiguous()  # C, T, H, W

    @staticmethod
    def _open(video: Video, folder: str, index: int, cache) -> Image.Image:
        key = (folder, index)
        if key not in cache:
            path = video.frames[folder][index]
            try:
                with Image.open(path) as image:
                    cache[key] = image.convert("RGB" if folder == "rgb" else "L")
            except (OSError, ValueError, SyntaxError) as exc:
                raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc}); replace or delete it") \
                    from None
        return cache[key]


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
    """Training (random clip, random augmentation) or validation (centre clip) items ``(inputs, label)``."""

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
        rng = TorchRandom()  # evaluation draws nothing from it
        picks = clip_indices(video, self.clip, rng if self.train else None)
        inputs = self.reader.clips(video, picks, rng)
        return {s: t[0] for s, t in inputs.items()}, video.label


class VideoDataset(Dataset):
    """Evaluation / inference items ``(inputs with a leading clip axis N, label or -1, video_id)``."""

    def __init__(self, videos: list[Video], clip: ClipSpec, transform: ClipTransform, mode: str = "center",
                 num_segments: int = 1):
        if not videos:
            raise DataError("no videos to load")
        self.videos = list(videos)
        self.clip = clip
        self.mode = mode
        self.num_segments = int(num_segments)
        self.reader = _FrameReader(clip, transform)
        clip_indices(self.videos[0], clip, None, mode, num_segments)  # bad mode/num_segments fail here

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int):
        video = self.videos[index]
        picks = clip_indices(video, self.clip, None, self.mode, self.num_segments)
        return self.reader.clips(video, picks, TorchRandom()), video.label, video.video_id


class VideoBatch(NamedTuple):
    """A batch of whole videos: every tensor of ``inputs`` is [B, N, ...] (N = most clips in the batch)."""

    inputs: dict  # stream -> Tensor [B, N, ...]
    labels: torch.Tensor  # [B] int64, -1 when unlabelled
    video_ids: list  # [B] str
    clip_counts: torch.Tensor  # [B] int64: clips of each video; rows past it repeat that video's clips


def collate_videos(batch) -> VideoBatch:
    """Collate ``VideoDataset`` items into [B, N, ...] tensors.

    Videos with fewer clips than the batch's most (mode "all", different lengths) are filled up by
    repeating their own clips cyclically, so a plain mean over N still uses only that video's clips;
    ``average_clip_scores`` with ``clip_counts`` gives the exact per-video mean.
    """
    counts = [next(iter(item[0].values())).shape[0] for item in batch]
    most = max(counts)
    inputs = {}
    for stream in batch[0][0]:
        rows = []
        for item, count in zip(batch, counts, strict=True):
            tensor = item[0][stream]
            if count < most:
                tensor = tensor[torch.arange(most) % count]
            rows.append(tensor)
        inputs[stream] = torch.stack(rows)
    labels = torch.tensor([int(item[1]) for item in batch], dtype=torch.long)
    return VideoBatch(inputs, labels, [item[2] for item in batch], torch.tensor(counts, dtype=torch.long))


def average_clip_scores(scores: torch.Tensor, clip_counts: torch.Tensor) -> torch.Tensor:
    """Per-clip scores [B, N, C] -> per-video mean [B, C] over each video's first ``clip_counts`` clips."""
    steps = torch.arange(scores.shape[1], device=scores.device)
    mask = (steps[None, :] < clip_counts.to(scores.device)[:, None]).to(scores.dtype)  # B, N
    return (scores * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)
