"""The network's input from uint8 clips: TAO's normalisation, applied where the clips are.

Loaders yield uint8 clips, a quarter of float32's bytes through the DataLoader's
collate, pinned memory and the copy to the GPU. ``ClipNormaliser`` turns them into
float32 on their device, after the transfer, by looking every value up in
``transforms.Normalisation``'s tables: ``transforms.normalise`` of each uint8 value
per channel. So the network sees TAO's float32 steps (``x / 255``, ``- mean``,
``/ std``) bit for bit on any device; a GPU's own arithmetic may round a division
otherwise. Float tensors are taken as normalised already and pass unchanged.

The LightningModule applies it to training and validation batches
(``on_after_batch_transfer``), ``video_scoring.score_clips`` to evaluation and
inference clips. Export is unaffected: the ONNX takes normalised float32, as TAO's.
"""
from __future__ import annotations

import math

import torch

from .datasets import SAMPLE_DIMS
from .transforms import Normalisation


class ClipNormaliser:
    """``{stream: uint8 clips in the model's layout}`` -> the same dict in float32, normalised, on the same device.

    Clips may carry any leading axes (``[B, ...]`` or ``[B, N, ...]``); each sample is channel-major in
    both layouts (2d ``[C*T, H, W]``, 3d ``[C, T, H, W]``), which is how a value's channel is found.
    """

    def __init__(self, normalisation: Normalisation, input_type: str):
        self.normalisation = normalisation
        self.sample_dims = SAMPLE_DIMS[input_type]
        self._tables: dict[tuple[str, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_config(cls, cfg) -> ClipNormaliser:
        """From an ExperimentConfig (``dataset.augmentation_config`` means/stds, ``model.input_type``)."""
        return cls(Normalisation.from_augmentation(cfg.dataset.augmentation_config), cfg.model.input_type)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {stream: self.normalise(stream, clips) for stream, clips in inputs.items()}

    def normalise(self, stream: str, clips: torch.Tensor) -> torch.Tensor:
        """One stream's clips (``"rgb"`` or ``"of"``): uint8 -> float32 table values; float passes unchanged."""
        if clips.dtype != torch.uint8:
            return clips
        table, offsets = self._table(stream, clips.device)
        channels = offsets.shape[0]
        per_channel = math.prod(clips.shape[clips.dim() - self.sample_dims:]) // channels
        index = clips.reshape(-1, channels, per_channel).to(torch.int32)
        index += offsets  # channel c's values start at row c of the flattened table
        return table.index_select(0, index.view(-1)).view(clips.shape)

    def _table(self, stream: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The stream's table flattened ([C*256] float32) and the row offset of each channel ([C, 1] int32)."""
        key = (stream, device)
        if key not in self._tables:
            table = torch.from_numpy(self.normalisation.table(stream))
            offsets = torch.arange(table.shape[0], dtype=torch.int32).mul_(table.shape[1]).view(-1, 1)
            self._tables[key] = (table.reshape(-1).to(device), offsets.to(device))
        return self._tables[key]
