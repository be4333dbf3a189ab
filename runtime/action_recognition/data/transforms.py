"""Spatial transforms and normalisation of clips (torch-free: PIL in, numpy float32 [C, T, H, W] out).

Evaluation, inference and validation transform every frame exactly as NVIDIA
TAO's loaders do (``val_center_crop`` from ``dataset.augmentation_config``):

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
is what a mirrored motion field is (TAO mirrors the images only).

Normalisation, as TAO computes it in float32: ``x = uint8 / 255``, then per
channel ``x - mean``, then ``/ std``. A one-value mean/std applies to every
channel; an empty list skips that part (``[]`` mean: no subtraction; ``[]`` std:
no division). Evaluation does not alter flow values.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import DataError

FULL_BOX = (0.0, 0.0, 1.0, 1.0)
CROP_TYPES = ("random_crop", "multi_scale_crop", "no_crop")


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


class ClipTransform:
    """Turns a clip's frames into normalised float32 arrays [C, T, H, W]; in training, draws its augmentation.

    ``rgb(images, geometry)`` -> [3, T, H, W]; ``flow(us, vs, geometry)`` -> [2, T, H, W] (u then v).
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
        self.rgb_mean, self.rgb_std = _channel_values(aug.rgb_input_mean, aug.rgb_input_std, 3, "rgb")
        self.of_mean, self.of_std = _channel_values(aug.of_input_mean, aug.of_input_std, 2, "of")

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
    def rgb(self, images: Sequence[Image.Image], geometry: Geometry = Geometry()) -> np.ndarray:
        """RGB frames -> float32 [3, T, H, W], transformed and normalised."""
        frames = np.stack([self.frame(_in_mode(im, "RGB"), geometry) for im in images])  # T,H,W,3 uint8
        return normalise(frames.transpose(3, 0, 1, 2), self.rgb_mean, self.rgb_std)

    def flow(self, us: Sequence[Image.Image], vs: Sequence[Image.Image], geometry: Geometry = Geometry()) \
            -> np.ndarray:
        """u/v frames -> float32 [2, T, H, W] (channel 0 = u); a training flip mirrors both and negates u (255 - u)."""
        u = np.stack([self.frame(_in_mode(im, "L"), geometry) for im in us])  # T,H,W uint8
        v = np.stack([self.frame(_in_mode(im, "L"), geometry) for im in vs])
        if geometry.flip:
            u = 255 - u
        return normalise(np.stack([u, v]), self.of_mean, self.of_std)

    def frame(self, image: Image.Image, geometry: Geometry = Geometry()) -> np.ndarray:
        """One frame, spatially transformed, as uint8 [H, W] or [H, W, 3]."""
        if not self.train:
            return np.asarray(self._eval_frame(image))
        width, height = image.size
        left, top, right, bottom = geometry.box
        target = (self.width, self.height)
        if geometry.box != FULL_BOX or image.size != target:
            image = image.resize(target, Image.BILINEAR,
                                 box=(left * width, top * height, right * width, bottom * height))
        array = np.asarray(image)
        return array[:, ::-1] if geometry.flip else array

    def _eval_frame(self, image: Image.Image) -> Image.Image:
        """TAO's eval transform of one frame: resize to the input size, or resize the smaller edge + centre crop."""
        if not self.val_center_crop:
            target = (self.width, self.height)
            return image if image.size == target else image.resize(target, Image.BILINEAR)
        size = smaller_edge_size(*image.size, self.crop_smaller_edge)
        if image.size != size:
            image = image.resize(size, Image.BILINEAR)
        width, height = image.size
        if (width, height) == (self.width, self.height):
            return image
        # torchvision pads a frame smaller than the crop with zeros, centred; PIL's crop outside the frame does too
        left = center_crop_offsets(width, height, self.width, self.height)[0] if width >= self.width \
            else -((self.width - width) // 2)
        top = center_crop_offsets(width, height, self.width, self.height)[1] if height >= self.height \
            else -((self.height - height) // 2)
        return image.crop((left, top, left + self.width, top + self.height))


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


def _in_mode(image: Image.Image, mode: str) -> Image.Image:
    return image if image.mode == mode else image.convert(mode)
