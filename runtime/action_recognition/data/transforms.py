"""Frame decoding and spatial transforms of clips, and the numbers of their normalisation (torch-free:
frame files or PIL images in, uint8 numpy arrays out).

Evaluation, inference and validation transform every frame as NVIDIA TAO's
loaders do (``val_center_crop`` from ``dataset.augmentation_config``); exactly so
but for JPEG frames at least twice the target size, which every split draft-decodes
(Pillow's DCT scaling, see Decoding below: pixel values differ slightly from a full
decode). TAO's parity fixtures are small PNG frames, which are decoded whole:

- ``false``: resize the frame to ``model.input_height x model.input_width`` (PIL
  bilinear, aspect ratio not kept);
- ``true``: resize the shorter edge to ``crop_smaller_edge``, the other edge to
  ``int(crop_smaller_edge * long / short)`` (torchvision's ``Resize(int)``), then
  crop the centre ``input_height x input_width`` at offsets ``round((h - H) / 2)``,
  ``round((w - W) / 2)`` (Python rounding, half to even): two steps, as TAO.

Training draws one ``Geometry`` (crop box + flip) per sample and applies it to
every frame of the clip and to both streams of a joint sample, so motion between
frames and the rgb/flow correspondence survive augmentation. The box is kept as
fractions of the frame, so flow frames stored at another resolution than the RGB
frames still get the same region (``dataset.augmentation_config.train_crop_type``):

- ``random_crop``: resize the smaller edge to ``crop_smaller_edge``, then crop
  ``model.input_height x model.input_width`` at a random place;
- ``multi_scale_crop``: a square crop of ``scale * smaller edge`` (``scale``
  drawn from ``scales``) at a random place, resized to the input size;
- ``no_crop``: resize to the input size;

then a horizontal flip with ``horizontal_flip_prob``. Flipping optical flow
also negates its horizontal component: ``u' = 255 - u`` (mirror around 128), which
is what a mirrored motion field is (TAO mirrors the images only). A crop box that
falls on whole pixels at the input size (frames stored with their smaller edge at
``crop_smaller_edge``) is cut out, not resampled: the same pixels, without the cost.

Decoding: each frame file is decoded once per clip, rgb as ``RGB`` and u/v as ``L``
(a file already in that mode is not converted). A JPEG frame at least twice the size
the transform keeps of it (the resize target above; for a training crop, the whole
frame at the crop's scale) is decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's
draft mode), never below that size, and resized from there. TAO decodes every pixel
first, so such frames differ from TAO's by the difference of the two downscalings
(about one level of 255 on average), for a decode up to 8x cheaper. PNG frames, and
JPEG frames smaller than that, are decoded whole, as TAO does.

Normalisation, as TAO computes it in float32: ``x = uint8 / 255``, then per
channel ``x - mean``, then ``/ std``. A one-value mean/std applies to every
channel; an empty list skips that part (``[]`` mean: no subtraction; ``[]`` std:
no division). Evaluation does not alter flow values. Clips stay uint8 through the
loaders; ``Normalisation`` holds ``normalise`` of every uint8 value per channel, and
``normaliser.ClipNormaliser`` looks the clip's values up on the device after the
transfer, so the network sees these float32 numbers bit for bit on any device.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError

FULL_BOX = (0.0, 0.0, 1.0, 1.0)
CROP_TYPES = ("random_crop", "multi_scale_crop", "no_crop")
FOLDER_MODES = {"rgb": "RGB", "u": "L", "v": "L"}
"""The PIL mode each frame folder is decoded in."""
_UNREADABLE = (OSError, ValueError, SyntaxError)
_WHOLE_PIXEL = 1e-6  # a crop box this close to whole pixels is cut out (fractions carry float rounding)


@dataclass(frozen=True)
class Geometry:
    """The spatial augmentation of one training sample: crop box (fractions: left, top, right, bottom) and flip.

    Evaluation uses ``Geometry()`` (no box, no flip): its transform depends only on each frame's size.
    """

    box: tuple[float, float, float, float] = FULL_BOX
    flip: bool = False


def smaller_edge_size(width: int, height: int, edge: int) -> tuple[int, int]:
    """(width, height) after resizing the shorter edge to ``edge``; the long edge truncated, as ``Resize(int)``."""
    if width <= height:
        return int(edge), int(int(edge) * height / width)
    return int(int(edge) * width / height), int(edge)


def center_crop_offsets(width: int, height: int, crop_width: int, crop_height: int) -> tuple[int, int]:
    """(left, top) of torchvision's ``CenterCrop``: ``int(round(...))`` of the centred offset, half to even."""
    return int(round((width - crop_width) / 2.0)), int(round((height - crop_height) / 2.0))


def frame_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of a frame file, from its header (nothing decoded)."""
    with _frame_file(path) as image:
        return image.size


class ClipTransform:
    """Decodes and transforms the frames of a clip; in training, draws its augmentation.

    ``load(path, folder, geometry)`` -> one transformed frame (PIL, ``RGB`` for rgb, ``L`` for u and v);
    ``rgb_clip`` / ``flow_clip`` stack such frames into uint8 [C, T, H, W] (``flow_clip`` negates a flipped u).
    """

    def __init__(self, aug, input_height: int, input_width: int, train: bool):
        self.train = train
        self.height = int(input_height)
        self.width = int(input_width)
        self.crop_type = aug.train_crop_type
        self.scales = [float(s) for s in (aug.scales or [1.0])]
        self.flip_prob = float(aug.horizontal_flip_prob)
        self.val_center_crop = bool(aug.val_center_crop)
        self.crop_smaller_edge = int(aug.crop_smaller_edge)
        if self.crop_type not in CROP_TYPES:
            raise DataError(f"dataset.augmentation_config.train_crop_type: {self.crop_type!r} is not one of "
                            f"{', '.join(CROP_TYPES)}")
        if not all(0.0 < s <= 1.0 for s in self.scales):
            raise DataError(f"dataset.augmentation_config.scales: {self.scales!r}; each scale must be in (0, 1]")

    @classmethod
    def from_config(cls, cfg, train: bool) -> ClipTransform:
        """From an ExperimentConfig."""
        return cls(cfg.dataset.augmentation_config, cfg.model.input_height, cfg.model.input_width, train)

    # -- checking and drawing ----------------------------------------------------------------------------
    def check_frame_size(self, width: int, height: int) -> None:
        """A DataError when frames of ``width x height`` cannot give an input-sized crop (smaller-edge crops)."""
        smaller_edge_crop = self.crop_type == "random_crop" if self.train else self.val_center_crop
        if not smaller_edge_crop:
            return
        resized_w, resized_h = smaller_edge_size(width, height, self.crop_smaller_edge)
        if resized_w < self.width or resized_h < self.height:
            used = ("dataset.augmentation_config.train_crop_type=random_crop" if self.train
                    else "dataset.augmentation_config.val_center_crop=true")
            raise DataError(
                f"dataset.augmentation_config.crop_smaller_edge={self.crop_smaller_edge} resizes {width}x{height} "
                f"frames to {resized_w}x{resized_h}, smaller than the {self.width}x{self.height} crop "
                f"(model.input_width x model.input_height) that {used} takes; raise crop_smaller_edge "
                "or lower the input size"
            )

    def draw(self, source_size: tuple[int, int], rng) -> Geometry:
        """The crop and flip of one training sample whose frames are ``source_size`` (width, height).

        Evaluation draws nothing: ``Geometry()``.
        """
        if not self.train:
            return Geometry()
        width, height = source_size
        if self.crop_type == "random_crop":
            self.check_frame_size(width, height)
            resized_w, resized_h = smaller_edge_size(width, height, self.crop_smaller_edge)
            left = int(rng.integers(0, resized_w - self.width + 1))
            top = int(rng.integers(0, resized_h - self.height + 1))
            box = (left / resized_w, top / resized_h, (left + self.width) / resized_w,
                   (top + self.height) / resized_h)
        elif self.crop_type == "multi_scale_crop":
            side = min(width, height) * float(rng.choice(self.scales))
            left = float(rng.integers(0, int(width - side) + 1))
            top = float(rng.integers(0, int(height - side) + 1))
            box = (left / width, top / height, (left + side) / width, (top + side) / height)
        else:
            box = FULL_BOX
        return Geometry(box, bool(rng.random() < self.flip_prob))

    # -- applying ----------------------------------------------------------------------------------------
    def load(self, path: str | Path, folder: str, geometry: Geometry = Geometry()) -> Image.Image:
        """One frame file of ``folder`` (rgb, u or v), decoded once and transformed (see ``frame``).

        A JPEG much larger than what the transform keeps is decoded at a reduced scale (module docstring);
        a file that cannot be decoded is a DataError naming it.
        """
        mode = FOLDER_MODES[folder]
        with _frame_file(path) as image:
            source = image.size
            box = _draft(image, self.decode_size(source, geometry))
            try:
                image.load()
                decoded = image if image.mode == mode else image.convert(mode)
            except _UNREADABLE as exc:
                raise _unreadable(path, exc) from None
            return self.frame(decoded, geometry, source, box)  # leaving closes the file; the pixels stay

    def decode_size(self, source_size: tuple[int, int], geometry: Geometry = Geometry()) -> tuple[int, int]:
        """The smallest (width, height) a frame of ``source_size`` can be decoded at without losing what the
        transform keeps: its resize target, or for a training crop the whole frame at the crop's scale."""
        if self.train:
            left, top, right, bottom = geometry.box
            # less the float rounding of the fractions: 14 / (14 / 32) is 32, not 33
            return (math.ceil(self.width / (right - left) - _WHOLE_PIXEL),
                    math.ceil(self.height / (bottom - top) - _WHOLE_PIXEL))
        if self.val_center_crop:
            return smaller_edge_size(*source_size, self.crop_smaller_edge)
        return self.width, self.height

    def frame(self, image: Image.Image, geometry: Geometry = Geometry(), source_size: tuple[int, int] | None = None,
              box: tuple[float, float, float, float] | None = None) -> Image.Image:
        """One decoded frame, spatially transformed (cropped, resized, mirrored).

        ``source_size`` is the frame file's size and ``box`` where that whole frame lies in ``image`` when it was
        decoded at a reduced scale; by default ``image`` is the whole frame at its own size.
        """
        source_size = source_size or image.size
        box = box or (0.0, 0.0, float(image.width), float(image.height))
        if not self.train:
            return self._eval_frame(image, source_size, box)
        left, top, right, bottom = geometry.box
        width, height = box[2] - box[0], box[3] - box[1]
        region = (box[0] + left * width, box[1] + top * height, box[0] + right * width, box[1] + bottom * height)
        image = _resized(image, (self.width, self.height), region)
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if geometry.flip else image

    def _eval_frame(self, image: Image.Image, source_size: tuple[int, int],
                    box: tuple[float, float, float, float]) -> Image.Image:
        """TAO's eval transform of one frame: resize to the input size, or resize the smaller edge + centre crop."""
        if not self.val_center_crop:
            return _resized(image, (self.width, self.height), box)
        # the resize target follows the file's size, as in TAO, which decodes it whole
        image = _resized(image, smaller_edge_size(*source_size, self.crop_smaller_edge), box)
        width, height = image.size
        if (width, height) == (self.width, self.height):
            return image
        # torchvision pads a frame smaller than the crop with zeros, centred; PIL's crop outside the frame does too
        left = center_crop_offsets(width, height, self.width, self.height)[0] if width >= self.width \
            else -((self.width - width) // 2)
        top = center_crop_offsets(width, height, self.width, self.height)[1] if height >= self.height \
            else -((self.height - height) // 2)
        return image.crop((left, top, left + self.width, top + self.height))


def rgb_clip(frames: Sequence[Image.Image]) -> np.ndarray:
    """Transformed ``RGB`` frames -> one uint8 clip [3, T, H, W]."""
    clip = np.empty((3, len(frames), frames[0].height, frames[0].width), np.uint8)
    for t, frame in enumerate(frames):
        for channel, plane in enumerate(_planes(frame)):
            clip[channel, t] = plane
    return clip


def flow_clip(us: Sequence[Image.Image], vs: Sequence[Image.Image], geometry: Geometry = Geometry()) -> np.ndarray:
    """Transformed ``L`` frames of u and v -> one uint8 clip [2, T, H, W] (channel 0 = u).

    Under a flip, u is negated: a mirrored motion field is ``u' = 255 - u``.
    """
    clip = np.empty((2, len(us), us[0].height, us[0].width), np.uint8)
    for t, (u, v) in enumerate(zip(us, vs, strict=True)):
        if geometry.flip:
            np.subtract(255, _planes(u)[0], out=clip[0, t])
        else:
            clip[0, t] = _planes(u)[0]
        clip[1, t] = _planes(v)[0]
    return clip


def _planes(frame: Image.Image) -> list[np.ndarray]:
    """The frame's channels as uint8 [H, W] arrays, each packed by PIL on its own (cheaper than an
    [H, W, 3] array and a strided transpose)."""
    return [np.frombuffer(frame.tobytes("raw", band), np.uint8).reshape(frame.height, frame.width)
            for band in frame.getbands()]


def normalise(frames: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """uint8 [C, T, H, W] -> float32 ``(x / 255 - mean) / std`` per channel, in TAO's float32 steps.

    ``None`` mean or std skips that step.
    """
    out = frames.astype(np.float32, order="C")
    out /= np.float32(255.0)
    if mean is not None:
        out -= mean[:, None, None, None]
    if std is not None:
        out /= std[:, None, None, None]
    return out


@dataclass(frozen=True, eq=False)
class Normalisation:
    """TAO's normalisation of each stream as tables: ``rgb[c, v]`` / ``of[c, v]`` is ``normalise`` of uint8 value
    ``v`` in channel ``c`` (float32 [3, 256] and [2, 256])."""

    rgb: np.ndarray
    of: np.ndarray

    @classmethod
    def from_augmentation(cls, aug) -> Normalisation:
        """From ``dataset.augmentation_config``'s rgb/of input means and stds; bad values are a DataError."""
        return cls(rgb=_table(3, *_channel_values(aug.rgb_input_mean, aug.rgb_input_std, 3, "rgb")),
                   of=_table(2, *_channel_values(aug.of_input_mean, aug.of_input_std, 2, "of")))

    def table(self, stream: str) -> np.ndarray:
        """The table of ``stream`` ("rgb" or "of")."""
        return self.rgb if stream == "rgb" else self.of


def _table(channels: int, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    values = np.broadcast_to(np.arange(256, dtype=np.uint8), (channels, 1, 1, 256))
    return normalise(values, mean, std).reshape(channels, 256)


def _channel_values(mean, std, channels: int, stream: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-channel float32 mean and std (None for an empty list: that step is skipped), checked."""
    out = []
    for key, values in (("mean", mean), ("std", std)):
        values = [float(v) for v in (values or [])]
        if len(values) not in (0, 1, channels):
            raise DataError(f"dataset.augmentation_config.{stream}_input_{key}: {values!r} needs 1 or {channels} "
                            "values (one per channel), or [] to skip it")
        if key == "std" and any(v <= 0 for v in values):
            raise DataError(f"dataset.augmentation_config.{stream}_input_std: {values!r}; every value must be > 0")
        out.append(np.broadcast_to(np.asarray(values, np.float32), (channels,)).copy() if values else None)
    return out[0], out[1]


@contextmanager
def _frame_file(path: str | Path) -> Iterator[Image.Image]:
    """The frame file opened (header read, nothing decoded yet); a DataError naming it when it is no image."""
    try:
        image = Image.open(path)
    except _UNREADABLE as exc:
        raise _unreadable(path, exc) from None
    with image:
        yield image


def _unreadable(path: str | Path, exc: BaseException) -> DataError:
    return DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc}); replace or delete it")


def _draft(image: Image.Image, size: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Ask libjpeg to decode ``image`` (a JPEG, not loaded yet) at the smallest 1/2, 1/4 or 1/8 scale that is still
    at least ``size``; the whole frame's box in the decoded pixels, or None when it is decoded whole."""
    if image.format != "JPEG" or min(image.width // max(1, size[0]), image.height // max(1, size[1])) < 2:
        return None
    drafted = image.draft(image.mode, size)  # the file's own mode: any conversion stays PIL's, as without draft
    return drafted[1] if drafted else None


def _resized(image: Image.Image, size: tuple[int, int], region: tuple[float, float, float, float]) -> Image.Image:
    """``region`` of ``image`` (pixels: left, top, right, bottom) at ``size``, PIL bilinear; a region already on
    whole pixels at that size is cut out (PIL's bilinear resize of it gives the same pixels)."""
    whole = tuple(round(v) for v in region)
    if all(abs(v - w) < _WHOLE_PIXEL for v, w in zip(region, whole, strict=True)) \
            and (whole[2] - whole[0], whole[3] - whole[1]) == size:
        return image if whole == (0, 0, *image.size) else image.crop(whole)
    return image.resize(size, Image.BILINEAR, box=region)
