"""The synthetic sample data set of the action-recognition model.

Each class is a direction of motion: class ``i`` of ``n`` moves at
``-90 + 180*i/(n-1)`` degrees from the horizontal (image y grows downwards, so
with two classes the first moves up and the second down), mirrored left/right
at random per video. The class thus lies in the vertical part of the motion,
which a horizontal flip (the training augmentation) keeps. Every
video shows one object of random colour, size and shape crossing a noisy
background whose noise is drawn afresh for every frame, so a single still
frame carries no class information: only the order of positions over time
does. The ``u``/``v`` frames hold the true optical flow, ``128 + FLOW_GAIN *
velocity`` inside the object and 128 elsewhere (8-bit grayscale, the frame's
displacement to the next one).

Layout written under ``outdir`` (and the same trees as archives whose members
are relative to the folder, so ``tar xzf train.tar.gz -C train`` recreates
``train/``). Archives lie beside the folders, never inside a labelled split
(TAO's loader reads every entry of a split folder as a class)::

    train/<class>/<video>/{rgb,u,v}/<frame>.png     train.tar.gz
    test/<class>/<video>/{rgb,u,v}/<frame>.png      test.tar.gz
    inference/<video>/{rgb,u,v}/<frame>.png         inference.tar.gz
    inference_labels.csv                            (video,class: the answers, outside inference/)

Frames are lossless PNG by default; ``frame_format="jpeg"`` writes every frame as
``<frame>.jpg`` (quality ``JPEG_QUALITY``), as real data sets hold them: lossy, so
the flow values blur a little at the object's edges.

``videos_per_class`` videos per class go to each of train and test, and
``max(1, videos_per_class // 2)`` per class to inference: an unlabelled set of
mixed classes in a shuffled order, named ``video_000`` ... (no class in the
name). All are different draws (``<class>_train_000``, ``<class>_test_000``).
Output bytes (frames, archives, the CSV) depend only on the arguments: archive
metadata (mtime, owner, order) is fixed.
"""
from __future__ import annotations

import gzip
import io
import math
import shutil
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

FLOW_GAIN = 16.0
"""Flow pixel value per pixel of displacement per frame (u = 128 + FLOW_GAIN * dx)."""

ARCHIVE_MTIME = 946684800  # 2000-01-01T00:00:00Z: a fixed stamp keeps archives byte-identical
FRAME_NAME = "{:06d}{}"
FRAME_SUFFIXES = {"png": ".png", "jpeg": ".jpg"}
"""File suffix of each frame format."""
JPEG_QUALITY = 90
SPLITS = ("train", "test")
INFERENCE = "inference"
INFERENCE_LABELS = "inference_labels.csv"


def make_sample_data(
    outdir: str | Path,
    classes: Sequence[str] = ("catch", "smile"),
    videos_per_class: int = 8,
    frames: int = 16,
    size: tuple[int, int] = (32, 32),
    seed: int = 0,
    *,
    overwrite: bool = False,
    frame_format: str = "png",
) -> Path:
    """Write the sample data set under ``outdir`` and return it as a Path.

    ``size`` is (width, height). ``videos_per_class`` videos per class are made
    for each of train and test, half as many for inference. ``frame_format`` is
    "png" or "jpeg". Existing ``train/``/``test/``/``inference/`` folders are an
    error unless ``overwrite`` (then they are replaced).
    """
    classes = _check_args(classes, videos_per_class, frames, size)
    if frame_format not in FRAME_SUFFIXES:
        raise ValueError(f"frame_format: must be one of {', '.join(FRAME_SUFFIXES)}, got {frame_format!r}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for split in (*SPLITS, INFERENCE):
        target = out / split
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"{target} exists and is not empty; choose an empty OUTDIR or pass overwrite=True "
                    "(CLI: --overwrite) to replace it"
                )
            shutil.rmtree(target)

    written: dict[str, dict[str, bytes]] = {}
    for split_index, split in enumerate(SPLITS):
        files: dict[str, bytes] = {}  # path relative to the split folder -> image file bytes
        for class_index, name in enumerate(classes):
            for video_index in range(videos_per_class):
                rng = np.random.default_rng([seed, split_index, class_index, video_index])
                video = f"{name}_{split}_{video_index:03d}"
                frames_by_kind = render_video(rng, class_index, len(classes), frames, size)
                for kind, images in frames_by_kind.items():
                    for t, image in enumerate(images):
                        files[f"{name}/{video}/{kind}/{_frame_name(t, frame_format)}"] = \
                            _image_bytes(image, frame_format)
        _write_tree(out / split, files)
        _write_archive(out / f"{split}.tar.gz", files)
        written[split] = files
    files, labels = _inference_videos(classes, max(1, videos_per_class // 2), frames, size, seed, frame_format)
    _write_tree(out / INFERENCE, files)
    _write_archive(out / f"{INFERENCE}.tar.gz", files)
    (out / INFERENCE_LABELS).write_text("video,class\n" + "".join(f"{v},{c}\n" for v, c in labels))
    return out


def _inference_videos(classes: list[str], per_class: int, frames: int, size: tuple[int, int],
                      seed: int, frame_format: str) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """Unlabelled videos of every class in a shuffled order: (files by path, [(video, true class)])."""
    draws = [(class_index, video_index) for class_index in range(len(classes)) for video_index in range(per_class)]
    order = np.random.default_rng([seed, len(SPLITS)]).permutation(len(draws))
    files: dict[str, bytes] = {}
    labels = []
    for number, at in enumerate(order):
        class_index, video_index = draws[int(at)]
        rng = np.random.default_rng([seed, len(SPLITS), class_index, video_index])
        video = f"video_{number:03d}"
        for kind, images in render_video(rng, class_index, len(classes), frames, size).items():
            for t, image in enumerate(images):
                files[f"{video}/{kind}/{_frame_name(t, frame_format)}"] = _image_bytes(image, frame_format)
        labels.append((video, classes[class_index]))
    return files, labels


def render_video(
    rng: np.random.Generator, class_index: int, num_classes: int, frames: int, size: tuple[int, int]
) -> dict[str, list[np.ndarray]]:
    """One video: {"rgb": [H,W,3 uint8]*frames, "u": [H,W uint8]*frames, "v": [...]}."""
    width, height = size
    edge = min(width, height)
    # A horizontal flip maps angle a to 180-a: classes differ only in the vertical component and each
    # video picks left or right at random, so flip augmentation never turns one class into another.
    angle = -math.pi / 2 + math.pi * class_index / (num_classes - 1)
    # The object crosses ~90% of the frame over the video; at least 1 px/frame so
    # consecutive frames differ, at most 3 so nearby sampled frames still overlap.
    speed = float(np.clip(0.9 * edge / max(frames - 1, 1), 1.0, 3.0))
    vx, vy = speed * math.cos(angle), speed * math.sin(angle)
    if rng.integers(0, 2):
        vx = -vx
    # The trajectory is centred on the frame (plus jitter), so the object's
    # position in any one frame is equally likely for every class.
    cx = width / 2 + rng.uniform(-0.15, 0.15) * width
    cy = height / 2 + rng.uniform(-0.15, 0.15) * height
    half_span = (frames - 1) / 2
    radius = rng.uniform(0.12, 0.18) * edge
    square = bool(rng.integers(0, 2))
    colour = rng.uniform(150, 255, size=3)
    colour[rng.integers(0, 3)] = 255.0  # one saturated channel keeps it clearly above the background
    background = rng.uniform(20, 80, size=3)

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    rgb, u, v = [], [], []
    for t in range(frames):
        x = cx + (t - half_span) * vx
        y = cy + (t - half_span) * vy
        # wrapped distance: an object that reaches an edge re-enters on the other side
        dx = (xs - x + width / 2) % width - width / 2
        dy = (ys - y + height / 2) % height - height / 2
        if square:
            mask = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
        else:
            mask = dx * dx + dy * dy <= radius * radius
        noise = rng.normal(0.0, 14.0, size=(height, width, 3))
        image = background + noise
        image[mask] = colour + noise[mask] * 0.3
        rgb.append(np.clip(image, 0, 255).astype(np.uint8))
        flow_u = np.full((height, width), 128.0)
        flow_v = np.full((height, width), 128.0)
        flow_u[mask] = 128.0 + FLOW_GAIN * vx
        flow_v[mask] = 128.0 + FLOW_GAIN * vy
        u.append(np.clip(np.rint(flow_u), 0, 255).astype(np.uint8))
        v.append(np.clip(np.rint(flow_v), 0, 255).astype(np.uint8))
    return {"rgb": rgb, "u": u, "v": v}


MAX_SIDE = 1024  # pixels: frames are held in memory while a video is drawn (sample data, not a benchmark)
MAX_FRAMES = 1000


def check_class_names(classes: Iterable[str]) -> list[str]:
    """The class names as folder names: at least two, distinct, plain (no path separators, not hidden,
    no control characters, since the data loader skips hidden folders); a ValueError names the bad ones."""
    names = [str(c).strip() for c in classes]
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise ValueError(f"classes: need at least two distinct non-empty names, got {list(classes)!r}")
    bad = [n for n in names if "/" in n or "\\" in n or n in (".", "..") or n.startswith(".")
           or not n.isprintable() or len(n.encode()) > 255]
    if bad:
        raise ValueError(f"classes: names must be plain folder names (no / or \\, not starting with '.', "
                         f"printable, at most 255 bytes), got {bad!r}")
    return names


def _check_args(classes: Iterable[str], videos_per_class: int, frames: int, size: tuple[int, int]) -> list[str]:
    names = check_class_names(classes)
    if videos_per_class < 1:
        raise ValueError(f"videos_per_class: must be >= 1, got {videos_per_class!r}")
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames: must be from 2 to {MAX_FRAMES}, got {frames!r}")
    if len(size) != 2 or min(size) < 8 or max(size) > MAX_SIDE:
        raise ValueError(f"size: must be (width, height) with both from 8 to {MAX_SIDE}, got {size!r}")
    return names


def _frame_name(index: int, frame_format: str) -> str:
    return FRAME_NAME.format(index, FRAME_SUFFIXES[frame_format])


def _image_bytes(image: np.ndarray, frame_format: str) -> bytes:
    buffer = io.BytesIO()
    if frame_format == "jpeg":
        Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _write_archive(path: Path, files: dict[str, bytes]) -> None:
    """A .tar.gz whose bytes depend only on ``files`` (sorted members, fixed metadata)."""
    dirs = sorted({parent for rel in files for parent in _parents(rel)})
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in dirs:
            tar.addfile(_tar_info(name, tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(files):
            data = files[name]
            tar.addfile(_tar_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _tar_info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
