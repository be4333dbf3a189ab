"""Data of the action-recognition model: layout scan and checks, clip sampling, transforms, datasets.

Evaluation, inference and validation reproduce NVIDIA TAO's loaders (frame picking,
resize / centre crop, float32 normalisation, channel-major 2d layout), except that
JPEG frames at least twice the target size are draft-decoded (Pillow's DCT scaling:
pixel values differ slightly from TAO's full decode; see ``transforms``); training
draws its own random clips and augmentation in the same layout.

Torch-free: ``errors`` (DataError), ``layout`` (Video, scan_labelled, scan_unlabelled,
check_folder), ``sampling`` (ClipSpec, eval_clip_indices, train_clip_indices and TAO's
samplers), ``transforms`` (ClipTransform, Geometry, Normalisation). Need torch:
``datasets`` (ClipDataset, EvalClipDataset, ClipBatch, collate_clips, sample_shapes),
``normaliser`` (ClipNormaliser: uint8 clips to the network's input on the device) and
``datamodule`` (ActionDataModule, validate_dataset, build_eval_dataset,
build_eval_loader, loader_workers). See each module's docstring.
"""
from .errors import DataError

__all__ = ["DataError"]
