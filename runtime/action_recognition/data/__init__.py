"""Data of the action-recognition model: layout scan and checks, clip sampling, augmentation, datasets.

Torch-free: ``errors`` (DataError), ``layout`` (scan_labelled, scan_unlabelled, check_folder),
``sampling`` (ClipSpec, train_indices, eval_clips), ``transforms`` (ClipTransform, Geometry).
Need torch: ``datasets`` (ClipDataset, VideoDataset, collate_videos, average_clip_scores,
sample_shapes) and ``datamodule`` (ActionDataModule, validate_dataset, build_eval_dataset,
build_eval_loader). See each module's docstring.
"""
from .errors import DataError

__all__ = ["DataError"]
