"""Which frames of a video make a clip (torch-free).

Evaluation, inference and validation pick frames exactly as NVIDIA TAO's
action-recognition loaders do (``dataloader/frame_sampler.py`` and
``get_clips_list`` of ``build_data_loader.py``), so a TAO checkpoint scores the
same clips here as in TAO. ``n`` is the frame count of the folder TAO counts
(see ``eval_clip_indices``), ``T`` the sequence length, ``rate`` the
``model.sample_rate``; every index is taken modulo ``n`` where TAO wraps, so a
video shorter than a clip repeats its frames instead of being rejected.

Per strategy (``model.sample_strategy``) and video mode
(``evaluate.video_eval_mode`` / ``inference.video_inf_mode``):

- ``center`` (also validation during training): one clip.
  random_interval: frame ``int(n/T/2 + n/T*k)`` for k < T (``interval_sample``);
  consecutive: start ``int((n - T*rate + 1)/2)`` (0 when that is not positive),
  frames ``start + k*rate`` mod n (``consecutive_sample``).
- ``all``: 2d random_interval: ``n // T`` clips, clip j = ``k*(n//T) + j`` (n < T:
  one clip ``min(k, n-1)``); 2d consecutive: for each of ``n // (T*rate)`` blocks and
  each phase i < rate, ``block*T*rate + i + k*rate`` (none: one clip ``k*rate`` mod n);
  3d consecutive: ONE clip of all n frames (its length varies per video);
  3d random_interval: the ``center`` clip.
- ``conv`` (``video_num_segments`` = s): consecutive: ``tick = (n - T*rate + 1)/s``,
  offsets ``int(tick/2 + tick*j)`` for j < s (duplicates possible), clip
  ``offset + k*rate`` mod n (n < T*rate - 1: one clip at 0); random_interval: the
  2d ``all`` clips, for 2d and 3d alike.

Joint (two-stream) clips are drawn for the longer sequence; the shorter stream
takes entries of that id list (see ``eval_clip_indices``). Training draws random
clips of the same kind (``train_clip_indices``): a random offset per interval, or a
random consecutive start, wrapping or repeating frames when the video is short.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

STRATEGIES = ("random_interval", "consecutive")
VIDEO_MODES = ("center", "conv", "all")


class Random(Protocol):
    """The random draws training sampling needs (numpy's Generator has them; so does datasets.TorchRandom)."""

    def integers(self, low: int, high: int | None = None) -> int: ...

    def random(self, size: int | None = None): ...


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


# -- TAO's eval-time samplers (one list of frame indices per clip) --------------------------------------------
def interval_sample(n: int, seq_len: int) -> list[int]:
    """The middle frame of each of ``seq_len`` equal intervals (TAO ``test_interval_sample``)."""
    interval = n / float(seq_len)
    return [int(interval / 2.0 + interval * k) for k in range(seq_len)]


def consecutive_sample(n: int, seq_len: int, rate: int = 1) -> list[int]:
    """``seq_len`` frames ``rate`` apart from the centred start, mod ``n`` (TAO ``test_consecutive_sample``)."""
    room = n - seq_len * rate + 1
    start = int(room / 2.0) if room > 0 else 0
    return [(start + k * rate) % n for k in range(seq_len)]


def interval_clips(n: int, seq_len: int) -> list[list[int]]:
    """Every offset inside ``n // seq_len``-frame intervals, one clip each (TAO ``get_clips_list`` random_interval)."""
    step = n // seq_len
    if step == 0:
        return [[min(k, n - 1) for k in range(seq_len)]]
    return [[k * step + j for k in range(seq_len)] for j in range(step)]


def consecutive_all_clips(n: int, seq_len: int, rate: int = 1) -> list[list[int]]:
    """Back-to-back blocks of ``seq_len*rate`` frames, ``rate`` phases each (TAO ``get_clips_list`` consecutive all)."""
    span = seq_len * rate
    blocks = n // span
    if blocks == 0:
        return [[(k * rate) % n for k in range(seq_len)]]
    return [list(range(block * span + phase, (block + 1) * span, rate))
            for block in range(blocks) for phase in range(rate)]


def consecutive_conv_clips(n: int, seq_len: int, rate: int, segments: int) -> list[list[int]]:
    """``segments`` evenly spread consecutive clips, mod ``n`` (TAO ``get_clips_list`` consecutive conv)."""
    span = seq_len * rate
    if n > span - 1:
        tick = (n - span + 1) / float(segments)
        offsets = [int(tick / 2.0 + tick * s) for s in range(segments)]
    else:
        offsets = [0]
    return [[(offset + k * rate) % n for k in range(seq_len)] for offset in offsets]


def single_eval_clips(n: int, seq_len: int, strategy: str, rate: int, mode: str, num_segments: int,
                      input_type: str) -> list[list[int]]:
    """A single-stream (or a joint model's longer-stream) clip list of one video of ``n`` frames."""
    if mode == "center" or (mode == "all" and input_type == "3d" and strategy == "random_interval"):
        return [interval_sample(n, seq_len) if strategy == "random_interval"
                else consecutive_sample(n, seq_len, rate)]
    if mode == "all" and input_type == "3d":  # consecutive: every frame, T ignored
        return [list(range(n))]
    if strategy == "random_interval":  # 2d all; conv (2d and 3d)
        return interval_clips(n, seq_len)
    if mode == "all":
        return consecutive_all_clips(n, seq_len, rate)
    return consecutive_conv_clips(n, seq_len, rate, num_segments)


def joint_center(n: int, rgb_len: int, of_len: int, strategy: str, rate: int) -> dict[str, list[int]]:
    """TAO's ``joint_test_interval_sample`` / ``joint_test_consecutive_sample``: {"rgb": ids, "of": ids}."""
    if strategy == "random_interval":
        pick = interval_sample
    else:
        def pick(count: int, length: int) -> list[int]:
            return consecutive_sample(count, length, rate)
    if rgb_len == of_len:
        # TAO quirk, reproduced: equal lengths with consecutive sampling call test_consecutive_sample
        # without the sample rate, so the clip is taken with rate 1 whatever model.sample_rate says.
        ids = interval_sample(n, rgb_len) if strategy == "random_interval" else consecutive_sample(n, rgb_len, 1)
        return {"rgb": ids, "of": list(ids)}
    longer, shorter = ("of", "rgb") if of_len > rgb_len else ("rgb", "of")
    lengths = {"rgb": rgb_len, "of": of_len}
    master = pick(n, lengths[longer])
    return {longer: master, shorter: [master[i] for i in pick(len(master), lengths[shorter])]}


def joint_from_master(master: list[int], rgb_len: int, of_len: int) -> dict[str, list[int]]:
    """A joint clip from the longer stream's ids: the shorter takes ``interval_sample`` positions of them."""
    if rgb_len == of_len:
        return {"rgb": list(master), "of": list(master)}
    longer, shorter = ("of", "rgb") if of_len > rgb_len else ("rgb", "of")
    length = rgb_len if shorter == "rgb" else of_len
    return {longer: list(master), shorter: [master[i] for i in interval_sample(len(master), length)]}


def count_folder(clip: ClipSpec, mode: str) -> str:
    """The folder whose frame count TAO samples from: rgb/ (rgb), u/ (joint; flow clip lists), v/ (flow center)."""
    if clip.model_type == "rgb":
        return "rgb"
    if clip.model_type == "joint":
        return "u"
    per_video = mode == "center" or (mode == "all" and clip.input_type == "3d")  # TAO's MotionDataset counts v/
    return "v" if per_video else "u"


def eval_clip_indices(frame_counts: Mapping[str, int], clip: ClipSpec, mode: str = "center",
                      num_segments: int = 1) -> list[dict[str, list[int]]]:
    """The clips TAO evaluates for one video, in TAO's order: one {stream: frame indices} per clip.

    ``frame_counts`` maps folder ("rgb", "u", "v") -> number of frames; the count of
    ``count_folder(clip, mode)`` decides the clips. Joint: clips are drawn for the longer
    sequence (u/ count); the shorter stream takes positions ``consecutive_sample`` (consecutive
    center) or ``interval_sample`` (everything else) of that list; 3d ``all`` consecutive gives both
    streams every frame. rgb indices of a joint clip are clamped to the last rgb frame when rgb/
    has fewer frames than u/ (TAO would fail on such a video).
    """
    _check_mode(mode, num_segments)
    n = int(frame_counts[count_folder(clip, mode)])
    if n < 1:
        raise ValueError(f"a video needs at least 1 frame in {count_folder(clip, mode)}/, found {n}")
    strategy, rate = clip.sample_strategy, clip.sample_rate
    if clip.model_type != "joint":
        stream = clip.streams[0]
        return [{stream: ids} for ids in single_eval_clips(
            n, clip.seq_length(stream), strategy, rate, mode, num_segments, clip.input_type)]
    rgb_len, of_len = clip.rgb_seq_length, clip.of_seq_length
    if mode == "center" or (mode == "all" and clip.input_type == "3d" and strategy == "random_interval"):
        picks = [joint_center(n, rgb_len, of_len, strategy, rate)]
    elif mode == "all" and clip.input_type == "3d":
        picks = [{"rgb": list(range(n)), "of": list(range(n))}]
    else:
        masters = single_eval_clips(n, clip.master_length, strategy, rate, mode, num_segments, clip.input_type)
        picks = [joint_from_master(master, rgb_len, of_len) for master in masters]
    return [_clamped(pick, frame_counts) for pick in picks]


# -- training: random clips of the same kind ----------------------------------------------------------------
def train_indices(num_frames: int, seq_len: int, strategy: str, sample_rate: int, rng: Random) -> list[int]:
    """One training clip's frame indices (sorted, in time order), drawn with ``rng``.

    random_interval: a random frame of each of ``seq_len`` equal intervals; a video with fewer
    frames than ``seq_len`` gives ``seq_len`` sorted random frames with repeats (as TAO).
    consecutive: ``seq_len`` frames ``sample_rate`` apart from a random start; a video too short
    for that starts at 0 and wraps around (mod ``num_frames``), as TAO.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"model.sample_strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if num_frames < 1:
        raise ValueError(f"a video needs at least 1 frame, found {num_frames}")
    if strategy == "consecutive":
        room = num_frames - ((seq_len - 1) * sample_rate + 1)  # the last start that needs no wrap
        start = int(rng.integers(0, room + 1)) if room >= 0 else 0
        return [(start + i * sample_rate) % num_frames for i in range(seq_len)]
    if num_frames < seq_len:
        return sorted(int(rng.integers(0, num_frames)) for _ in range(seq_len))
    interval = num_frames / seq_len
    offsets = rng.random(seq_len)
    return [min(int(interval * (i + offsets[i])), num_frames - 1) for i in range(seq_len)]


def train_clip_indices(frame_counts: Mapping[str, int], clip: ClipSpec, rng: Random) -> dict[str, list[int]]:
    """One random training clip of a video: {stream: frame indices}.

    Frames are counted in the same folder as TAO's ``center`` mode; a joint clip's shorter stream
    takes a subset of the longer one's indices (``subset``), so both streams see the same moments.
    """
    n = int(frame_counts[count_folder(clip, "center")])
    master = train_indices(n, clip.master_length, clip.sample_strategy, clip.sample_rate, rng)
    pick = {s: subset(master, clip.seq_length(s), clip.sample_strategy) for s in clip.streams}
    return _clamped(pick, frame_counts)


def subset(indices: list[int], length: int, strategy: str) -> list[int]:
    """The shorter stream's part of a joint training clip: ``length`` of the longer stream's ``indices``.

    consecutive: the centred run (frames stay ``sample_rate`` apart); random_interval: evenly spread.
    """
    if length >= len(indices):
        return list(indices)
    if strategy == "consecutive":
        start = (len(indices) - length) // 2
        return list(indices[start:start + length])
    step = len(indices) / length
    return [indices[int(step * (k + 0.5))] for k in range(length)]


def _clamped(pick: dict[str, list[int]], frame_counts: Mapping[str, int]) -> dict[str, list[int]]:
    """Indices past a stream's last frame (rgb/ shorter than u/ in a joint video) become that last frame."""
    if "rgb" not in pick or "rgb" not in frame_counts:
        return pick
    last = int(frame_counts["rgb"]) - 1
    return {s: ([min(i, last) for i in ids] if s == "rgb" else ids) for s, ids in pick.items()}


def _check_mode(mode: str, num_segments: int) -> None:
    if mode not in VIDEO_MODES:
        raise ValueError(f"evaluate.video_eval_mode / inference.video_inf_mode: {mode!r} is not one of "
                         f"{', '.join(VIDEO_MODES)}")
    if int(num_segments) < 1:
        raise ValueError(f"video_num_segments: must be >= 1, got {num_segments!r}")
