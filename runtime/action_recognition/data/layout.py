"""Find the videos of a data set on disk and check them before any training starts (torch-free).

Layout (frames in sorted name order, PNG or JPEG)::

    labelled:    <root>/<class>/<video>/rgb/<frame>   <root>/<class>/<video>/u/<frame>   .../v/<frame>
    unlabelled:  <root>/<video>/rgb/<frame> ...       (inference; a labelled tree is accepted too)

``u``/``v`` hold the horizontal/vertical optical flow as 8-bit grayscale, with
the same file names in both folders. Only the streams the model reads are
required: ``rgb`` for model_type rgb, ``u``+``v`` for of, all three for joint.
Every folder read needs at least one frame; a video shorter than a clip is fine
(sampling repeats its frames, as TAO does, see ``sampling``).

Entry points:

- ``scan_labelled(root, label_map, clip, key=...) -> list[Video]``
- ``scan_unlabelled(root, clip, key=...) -> list[Video]``
- ``check_folder(root, key) -> Path``

Every problem found becomes one line of a single ``DataError`` that names the
path and what to change; a folder that cannot be read (permissions) is one too.
A labelled root that holds a single folder whose sub-folders are the classes
(an archive ``data.tar.gz`` holding ``train/<class>/...``) is read from that folder.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .errors import DataError, is_archive
from .sampling import ClipSpec

log = logging.getLogger("skillbank.action_recognition")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
STREAM_FOLDERS = {"rgb": ("rgb",), "of": ("u", "v")}
FULL_IMAGE_CHECK_LIMIT = 20000
"""Up to this many frames in a data set every image is verified; above it, the first and last of each folder."""


@dataclass(frozen=True)
class Video:
    """One video: its id, label (-1 when unlabelled) and frame files per folder (rgb, u, v)."""

    path: Path
    video_id: str
    label: int = -1
    class_name: str = ""
    frames: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def num_frames(self, stream: str) -> int:
        """Frames usable by ``stream`` ("rgb" or "of")."""
        return min(len(self.frames[name]) for name in STREAM_FOLDERS[stream])

    def frame_counts(self) -> dict[str, int]:
        """Frames per folder ({"rgb": n, "u": n, "v": n}, the folders the model reads): what sampling counts."""
        return {name: len(files) for name, files in self.frames.items()}


@contextlib.contextmanager
def _readable(key: str, root: str | Path | None) -> Iterator[None]:
    """A folder or frame that cannot be read (permissions, I/O) becomes a DataError naming it and the key."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or root
        raise DataError(f"{key}: cannot read {where} ({exc.strerror or exc}); check that it exists and that "
                        "this user may read it") from None


def check_folder(root: str | Path | None, key: str = "dataset folder") -> Path:
    """``root`` as a Path when it is an existing, non-empty folder; a DataError naming it otherwise."""
    with _readable(key, root):
        return _check_folder(root, key)


def _check_folder(root: str | Path | None, key: str) -> Path:
    text = "" if root is None else str(root)
    if not text.strip():
        raise DataError(f"{key} is not set: give the path of a data folder")
    path = Path(text).expanduser()
    if is_archive(text):
        extracted = text[: -len(next(s for s in (".tar.gz", ".tgz", ".tar") if text.lower().endswith(s)))]
        there = f" ({extracted} exists already: set {key} to it)" if Path(extracted).is_dir() else ""
        raise DataError(
            f"{key}: {path} is an archive, but the model reads a folder. Extract it first "
            f"(mkdir -p {extracted} && tar xf {path} -C {extracted}) and set {key} to that folder{there}, "
            "or launch through the generated runner / `skillbank run`, which extracts archives."
        )
    if not path.exists():
        raise DataError(f"{key}: {path} does not exist")
    if not path.is_dir():
        raise DataError(f"{key}: {path} is not a folder")
    if not any(_children(path)):
        raise DataError(f"{key}: {path} is empty (no sub-folders); expected <class>/<video>/rgb/<frame>.png "
                        "inside (inference: <video>/rgb/<frame>.png)")
    return path


def scan_labelled(
    root: str | Path, label_map: dict[str, int] | None, clip: ClipSpec, key: str = "dataset folder",
    check_images: str = "auto",
) -> list[Video]:
    """Every video under ``root/<class>/``, labelled through ``label_map``; a DataError lists all problems."""
    path = check_folder(root, key)
    with _readable(key, path):
        return _scan_labelled(path, label_map, clip, key, check_images)


def _single_top_folder(path: Path, label_map: dict[str, int]) -> Path:
    """``path/<top>`` when ``path`` holds only that folder, it is no class, and its sub-folders are classes."""
    children = _children(path)
    if len(children) == 1 and children[0].name not in label_map:
        inner = _children(children[0])
        if inner and any(c.name in label_map for c in inner):
            log.info("%s holds the single folder %r whose sub-folders are classes: reading the data from %s",
                     path, children[0].name, children[0])
            return children[0]
    return path


def _scan_labelled(path: Path, label_map: dict[str, int] | None, clip: ClipSpec, key: str,
                   check_images: str) -> list[Video]:
    if label_map:
        path = _single_top_folder(path, label_map)
    if not label_map:
        found = ", ".join(f"{c.name}: {i}" for i, c in enumerate(_children(path)))
        raise DataError(f"dataset.label_map is empty; set it to map the class folders of {path} "
                        f"to indices, e.g. {{{found}}}")
    problems: list[str] = []
    videos: list[Video] = []
    known = ", ".join(sorted(label_map))
    for class_dir in _children(path):
        if class_dir.name not in label_map:
            problems.append(f"{class_dir}: class folder {class_dir.name!r} is not in dataset.label_map "
                            f"(known labels: {known})")
            continue
        video_dirs = list(_children(class_dir))
        if not video_dirs:
            problems.append(f"{class_dir}: class folder has no video folders (<video>/rgb/<frame>.png)")
        for video_dir in video_dirs:
            video = _scan_video(video_dir, f"{class_dir.name}/{video_dir.name}", int(label_map[class_dir.name]),
                                class_dir.name, clip, problems)
            if video is not None:
                videos.append(video)
    _check_images(videos, check_images, problems)
    if problems:
        raise DataError.from_problems(f"{key} {path}", problems)
    return videos


def scan_unlabelled(
    root: str | Path, clip: ClipSpec, key: str = "inference folder", check_images: str = "auto"
) -> list[Video]:
    """Every video of an inference folder: ``root/<video>/rgb`` (or a labelled tree ``root/<x>/<video>/rgb``)."""
    path = check_folder(root, key)
    with _readable(key, path):
        return _scan_unlabelled(path, clip, key, check_images)


def _scan_unlabelled(path: Path, clip: ClipSpec, key: str, check_images: str) -> list[Video]:
    problems: list[str] = []
    videos: list[Video] = []
    for child in _children(path):
        if _looks_like_video(child):
            video = _scan_video(child, child.name, -1, "", clip, problems)
            if video is not None:
                videos.append(video)
            continue
        nested = [d for d in _children(child) if _looks_like_video(d)]
        if not nested:
            problems.append(f"{child}: not a video folder: expected {child}/rgb/<frame>.png "
                            f"(or {child}/u and {child}/v for optical flow)")
        for video_dir in nested:
            video = _scan_video(video_dir, f"{child.name}/{video_dir.name}", -1, "", clip, problems)
            if video is not None:
                videos.append(video)
    _check_images(videos, check_images, problems)
    if problems:
        raise DataError.from_problems(f"{key} {path}", problems)
    return videos


def list_frames(folder: Path) -> list[Path]:
    """Image files of ``folder`` in sorted name order (other files are ignored)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: p.name)


def _scan_video(video_dir: Path, video_id: str, label: int, class_name: str, clip: ClipSpec,
                problems: list[str]) -> Video | None:
    folders = [name for stream in clip.streams for name in STREAM_FOLDERS[stream]]
    frames: dict[str, tuple[Path, ...]] = {}
    for name in folders:
        folder = video_dir / name
        if not folder.is_dir():
            problems.append(f"{folder}: missing; model.model_type={clip.model_type} reads "
                            f"{', '.join(folders)} frames of every video")
            continue
        files = list_frames(folder)
        if not files:
            problems.append(f"{folder}: no PNG or JPEG frames")
            continue
        frames[name] = tuple(files)
    if len(frames) != len(folders):
        return None
    if "u" in frames:
        u_names = [p.name for p in frames["u"]]
        v_names = [p.name for p in frames["v"]]
        if u_names != v_names:
            only_u = sorted(set(u_names) - set(v_names))[:3]
            only_v = sorted(set(v_names) - set(u_names))[:3]
            problems.append(
                f"{video_dir}: u and v folders disagree ({len(u_names)} vs {len(v_names)} frames; "
                f"only in u: {only_u or 'none'}, only in v: {only_v or 'none'}); they need the same file names"
            )
            return None
    return Video(video_dir, video_id, label, class_name, frames)


def _check_images(videos: list[Video], mode: str, problems: list[str]) -> None:
    """Open (and verify) frames so an unreadable image stops the run before training."""
    if mode == "none":
        return
    total = sum(len(files) for v in videos for files in v.frames.values())
    check_all = mode == "all" or (mode == "auto" and total <= FULL_IMAGE_CHECK_LIMIT)
    for video in videos:
        for files in video.frames.values():
            for frame in files if check_all else dict.fromkeys((files[0], files[-1])):
                reason = unreadable_reason(frame)
                if reason:
                    problems.append(f"{frame}: unreadable image ({reason}); replace or delete it")


def unreadable_reason(path: Path) -> str:
    """Why ``path`` is not a readable image, or "" when it is."""
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # PIL raises many types for broken files; each means "unreadable"
        return f"{type(exc).__name__}: {exc}"
    return ""


def _children(folder: Path) -> list[Path]:
    """Sub-folders in name order, skipping hidden ones (.DS_Store, .ipynb_checkpoints...)."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _looks_like_video(folder: Path) -> bool:
    return (folder / "rgb").is_dir() or ((folder / "u").is_dir() and (folder / "v").is_dir())
