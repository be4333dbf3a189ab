"""Spatial augmentation and normalisation of clips (torch-free: PIL in, numpy float32 out).

One ``Geometry`` (crop box + flip) is drawn per sample and applied to every
frame of the clip and to both streams of a joint sample, so motion between
frames and the rgb/flow correspondence survive augmentation. The box is kept
as fractions of the frame, so flow frames stored at another resolution than
the RGB frames still get the same region.

Training (``dataset.augmentation_config.train_crop_type``):

- ``random_crop``: resize the smaller edge to ``crop_smaller_edge``, then crop
  ``model.input_height x model.input_width`` at a random place;
- ``multi_scale_crop``: a square crop of ``scale * smaller edge`` (``scale``
  drawn from ``scales``) at a random place, resized to the input size;
- ``no_crop``: resize to the input size;

then a horizontal flip with ``horizontal_flip_prob``. Flipping optical flow
also negates its horizontal component: ``u' = 255 - u`` (mirror around 128).
Validation: resize to the input size, or with ``val_center_crop`` resize the
smaller edge to ``crop_smaller_edge`` and crop the centre.

Normalisation: ``(x / 255 - mean) / std`` per channel; a one-value optical-flow
mean/std applies to both u and v.
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
    """The spatial augmentation of one sample: crop box (fractions: left, top, right, bottom) and flip."""

    box: tuple[float, float, float, float] = FULL_BOX
    flip: bool = False


class ClipTransform:
    """Draws one Geometry per sample and turns frames into normalised float arrays.

    ``rgb(images, geometry)`` -> float32 [T, 3, H, W]; ``flow(us, vs, geometry)`` -> float32 [T, 2, H, W].
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
        self.rgb_scale, self.rgb_shift = _affine(aug.rgb_input_mean, aug.rgb_input_std, 3, "rgb")
        self.of_scale, self.of_shift = _affine(aug.of_input_mean, aug.of_input_std, 2, "of")

    @classmethod
    def from_config(cls, cfg, train: bool) -> ClipTransform:
        """From an ExperimentConfig."""
        return cls(cfg.dataset.augmentation_config, cfg.model.input_height, cfg.model.input_width, train)

    # -- drawing -------------------------------------------------------------------------------------
    def draw(self, source_size: tuple[int, int], rng: np.random.Generator) -> Geometry:
        """The crop and flip of one sample whose frames are ``source_size`` (width, height)."""
        width, height = source_size
        if not self.train:
            if self.val_center_crop:
                return Geometry(self._smaller_edge_crop(width, height, None))
            return Geometry()
        if self.crop_type == "random_crop":
            box = self._smaller_edge_crop(width, height, rng)
        elif self.crop_type == "multi_scale_crop":
            side = min(width, height) * float(rng.choice(self.scales))
            left = float(rng.integers(0, int(width - side) + 1))
            top = float(rng.integers(0, int(height - side) + 1))
            box = (left / width, top / height, (left + side) / width, (top + side) / height)
        else:
            box = FULL_BOX
        return Geometry(box, bool(rng.random() < self.flip_prob))

    def _smaller_edge_crop(self, width: int, height: int, rng: np.random.Generator | None):
        """Box of an input-sized crop of the frame resized to smaller edge ``crop_smaller_edge``."""
        factor = self.crop_smaller_edge / min(width, height)
        resized_w, resized_h = max(1, round(width * factor)), max(1, round(height * factor))
        if resized_w < self.width or resized_h < self.height:
            raise DataError(
                f"dataset.augmentation_config.crop_smaller_edge={self.crop_smaller_edge} resizes {width}x{height} "
                f"frames to {resized_w}x{resized_h}, smaller than the {self.width}x{self.height} crop "
                "(model.input_width x model.input_height); raise crop_smaller_edge or lower the input size"
            )
        if rng is None:  # centre crop
            left, top = (resized_w - self.width) // 2, (resized_h - self.height) // 2
        else:
            left = int(rng.integers(0, resized_w - self.width + 1))
            top = int(rng.integers(0, resized_h - self.height + 1))
        return (left / resized_w, top / resized_h, (left + self.width) / resized_w, (top + self.height) / resized_h)

    # -- applying ------------------------------------------------------------------------------------
    def rgb(self, images: Sequence[Image.Image], geometry: Geometry) -> np.ndarray:
        """RGB frames -> float32 [T, 3, H, W], cropped, flipped and normalised."""
        frames = np.stack([self._spatial(_in_mode(im, "RGB"), geometry) for im in images])  # T,H,W,3 uint8
        return _normalised(frames.transpose(0, 3, 1, 2), self.rgb_scale, self.rgb_shift)

    def flow(self, us: Sequence[Image.Image], vs: Sequence[Image.Image], geometry: Geometry) -> np.ndarray:
        """u/v frames -> float32 [T, 2, H, W]; a flip mirrors the images and negates u (255 - u)."""
        u = np.stack([self._spatial(_in_mode(im, "L"), geometry) for im in us])  # T,H,W uint8
        v = np.stack([self._spatial(_in_mode(im, "L"), geometry) for im in vs])
        if geometry.flip:
            u = 255 - u
        return _normalised(np.stack([u, v], axis=1), self.of_scale, self.of_shift)

    def _spatial(self, image: Image.Image, geometry: Geometry) -> np.ndarray:
        width, height = image.size
        left, top, right, bottom = geometry.box
        target = (self.width, self.height)
        if geometry.box != FULL_BOX or image.size != target:
            image = image.resize(target, Image.BILINEAR,
                                 box=(left * width, top * height, right * width, bottom * height))
        array = np.asarray(image)
        return array[:, ::-1] if geometry.flip else array


def _affine(mean, std, channels: int, stream: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) so that x * scale + shift == (x / 255 - mean) / std, per channel."""
    mean = [float(m) for m in mean]
    std = [float(s) for s in std]
    for key, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise DataError(f"dataset.augmentation_config.{stream}_input_{key}: {values!r} needs 1 or {channels} "
                            "values (one per channel)")
    if any(s <= 0 for s in std):
        raise DataError(f"dataset.augmentation_config.{stream}_input_std: {std!r}; every value must be > 0")
    mean_arr = np.broadcast_to(np.asarray(mean, np.float32), (channels,))
    std_arr = np.broadcast_to(np.asarray(std, np.float32), (channels,))
    return (1.0 / (255.0 * std_arr)).astype(np.float32), (-mean_arr / std_arr).astype(np.float32)


def _normalised(frames: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """uint8 [T, C, H, W] -> float32 ``frames * scale + shift`` per channel, in one output buffer."""
    out = np.empty(frames.shape, np.float32)
    np.multiply(frames, scale[None, :, None, None], out=out)
    out += shift[None, :, None, None]
    return out


def _in_mode(image: Image.Image, mode: str) -> Image.Image:
    return image if image.mode == mode else image.convert(mode)
