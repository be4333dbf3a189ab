"""Which frames of a video make a clip (torch-free).

Strategies, as TAO's action recognition samples them:

- ``random_interval``: split the video into ``seq_len`` equal intervals and take
  one frame from each; a random frame of each interval in training, the middle
  one in evaluation.
- ``consecutive``: ``seq_len`` frames ``sample_rate`` apart; a random start in
  training, the centred start in evaluation.

Evaluation / inference video modes (``evaluate.video_eval_mode``,
``inference.video_inf_mode``) give several clips per video whose scores the
model averages:

- ``center``: one clip in the middle;
- ``conv``: ``num_segments`` evenly spaced clips;
- ``all``: every non-overlapping clip (consecutive: back-to-back windows;
  random_interval: every distinct offset inside the intervals, so no two clips
  share a frame).

A joint (two-stream) sample draws the indices of the longer stream and gives
the shorter one a subset of them (the centred run for consecutive, an evenly
spread subset for random_interval), so both streams see the same moments, as
TAO does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

STRATEGIES = ("random_interval", "consecutive")
VIDEO_MODES = ("center", "conv", "all")


@dataclass(frozen=True)
class ClipSpec:
    """The clip a model needs: streams, sequence lengths and how frames are picked."""

    model_type: str = "rgb"  # rgb | of | joint
    input_type: str = "2d"  # 2d | 3d
    rgb_seq_length: int = 3
    of_seq_length: int = 10
    sample_strategy: str = "random_interval"
    sample_rate: int = 1

    def __post_init__(self) -> None:
        if self.model_type not in ("rgb", "of", "joint"):
            raise ValueError(f"model.model_type: {self.model_type!r} is not one of rgb, of, joint")
        if self.input_type not in ("2d", "3d"):
            raise ValueError(f"model.input_type: {self.input_type!r} is not one of 2d, 3d")
        if self.sample_strategy not in STRATEGIES:
            raise ValueError(f"model.sample_strategy: {self.sample_strategy!r} is not one of {', '.join(STRATEGIES)}")
        for key in ("rgb_seq_length", "of_seq_length", "sample_rate"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"model.{key}: must be >= 1, got {getattr(self, key)!r}")

    @classmethod
    def from_model_config(cls, model) -> ClipSpec:
        """From ``ExperimentConfig.model`` (or anything with the same attributes)."""
        return cls(
            model_type=model.model_type,
            input_type=model.input_type,
            rgb_seq_length=int(model.rgb_seq_length),
            of_seq_length=int(model.of_seq_length),
            sample_strategy=model.sample_strategy,
            sample_rate=int(model.sample_rate),
        )

    @property
    def streams(self) -> tuple[str, ...]:
        """The input streams: ("rgb",), ("of",) or ("rgb", "of")."""
        return {"rgb": ("rgb",), "of": ("of",), "joint": ("rgb", "of")}[self.model_type]

    def seq_length(self, stream: str) -> int:
        return self.rgb_seq_length if stream == "rgb" else self.of_seq_length

    @property
    def master_length(self) -> int:
        """Frames in the longest stream's clip: the one whose indices are drawn."""
        return max(self.seq_length(s) for s in self.streams)

    def frames_needed(self) -> int:
        """The fewest frames a video must have for one clip."""
        return frames_needed(self.sample_strategy, self.master_length, self.sample_rate)

    def settings_hint(self) -> str:
        """Which settings make a clip shorter (for error messages)."""
        keys = [f"model.{s}_seq_length={self.seq_length(s)}" for s in self.streams]
        if self.sample_strategy == "consecutive":
            keys.append(f"model.sample_rate={self.sample_rate}")
        return f"lower {' or '.join(keys)} (model.sample_strategy={self.sample_strategy})"


def frames_needed(strategy: str, seq_len: int, sample_rate: int = 1) -> int:
    """Frames a video needs for one clip of ``seq_len`` frames."""
    if strategy == "consecutive":
        return (seq_len - 1) * sample_rate + 1
    return seq_len


def train_indices(num_frames: int, seq_len: int, strategy: str, sample_rate: int, rng) -> list[int]:
    """One training clip's frame indices, drawn with ``rng`` (a numpy Generator)."""
    _check(num_frames, seq_len, strategy, sample_rate)
    if strategy == "consecutive":
        span = frames_needed(strategy, seq_len, sample_rate)
        start = int(rng.integers(0, num_frames - span + 1))
        return [start + i * sample_rate for i in range(seq_len)]
    interval = num_frames / seq_len
    offsets = rng.random(seq_len)
    return [min(int(interval * (i + offsets[i])), num_frames - 1) for i in range(seq_len)]


def eval_clips(
    num_frames: int, seq_len: int, strategy: str, sample_rate: int, mode: str = "center", num_segments: int = 1
) -> list[list[int]]:
    """The clips (lists of frame indices) an evaluation takes from one video, in time order."""
    _check(num_frames, seq_len, strategy, sample_rate)
    if mode not in VIDEO_MODES:
        raise ValueError(f"video mode {mode!r} is not one of {', '.join(VIDEO_MODES)}")
    if num_segments < 1:
        raise ValueError(f"video_num_segments: must be >= 1, got {num_segments!r}")
    if strategy == "consecutive":
        span = frames_needed(strategy, seq_len, sample_rate)
        room = num_frames - span  # the last possible start
        if mode == "center":
            starts = [room // 2]
        elif mode == "conv":
            starts = [int(room * k / (num_segments - 1) + 0.5) if num_segments > 1 else room // 2
                      for k in range(num_segments)]
        else:
            starts = list(range(0, room + 1, span))
        return [[s + i * sample_rate for i in range(seq_len)] for s in starts]
    interval = num_frames / seq_len
    if mode == "center":
        fractions = [0.5]
    elif mode == "conv":
        fractions = [(k + 0.5) / num_segments for k in range(num_segments)]
    else:
        count = max(1, math.floor(interval))
        fractions = [(k + 0.5) / count for k in range(count)]
    return [[min(int(interval * (i + f)), num_frames - 1) for i in range(seq_len)] for f in fractions]


def subset(indices: list[int], length: int, strategy: str) -> list[int]:
    """The shorter stream's part of a joint clip: ``length`` of the longer stream's ``indices``.

    consecutive: the centred run (frames stay ``sample_rate`` apart); random_interval: evenly spread.
    """
    if length >= len(indices):
        return list(indices)
    if strategy == "consecutive":
        start = (len(indices) - length) // 2
        return list(indices[start:start + length])
    step = len(indices) / length
    return [indices[int(step * (k + 0.5))] for k in range(length)]


def _check(num_frames: int, seq_len: int, strategy: str, sample_rate: int) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"model.sample_strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    need = frames_needed(strategy, seq_len, sample_rate)
    if num_frames < need:
        raise ValueError(f"a clip needs {need} frames, the video has {num_frames}")
