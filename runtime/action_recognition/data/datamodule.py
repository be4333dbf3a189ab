"""What the entry points call: the training DataModule and the evaluation / inference loaders.

- ``validate_dataset(cfg, label_map=None) -> dict`` scans and checks the train and
  val folders (raises ``DataError`` listing every problem) before any model is built.
- ``ActionDataModule(cfg, label_map=None)``: a LightningDataModule; ``setup()``
  validates, ``train_dataloader()`` yields ``(inputs, labels)`` random clips,
  ``val_dataloader()`` TAO's centre clip of each validation video.
- ``build_eval_dataset(cfg, root, mode="center", num_segments=1, labelled=True,
  label_map=None, key=None) -> EvalClipDataset`` (one item per clip, TAO's clips and
  transform) and ``build_eval_loader(cfg, dataset, batch_size=1, workers=None) ->
  DataLoader`` whose every iteration yields ``list[ClipBatch]``: ``batch_size``
  consecutive clips, split into runs of equal shape (3d ``all`` consecutive over
  videos of different lengths), one ``ClipBatch(inputs, labels, video_ids,
  clip_index)`` per run.

``inputs`` is a dict {"rgb": Tensor, "of": Tensor} holding the streams of
``model.model_type`` (layouts in ``datasets``) as uint8 pixel values;
``normaliser.ClipNormaliser`` makes them the network's input on the device. The
label map is ``dataset.label_map`` unless one is passed (e.g. the one stored in a
checkpoint).
"""
from __future__ import annotations

import logging
import os

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from .datasets import ClipDataset, EvalClipDataset, collate_clips
from .errors import DataError
from .layout import Video, scan_labelled, scan_unlabelled
from .sampling import VIDEO_MODES, ClipSpec
from .transforms import ClipTransform, Normalisation, frame_size

log = logging.getLogger("skillbank.action_recognition")


def loader_workers(requested: int) -> int:
    """``dataset.workers`` clamped to the CPUs this process may use (0 loads in the main process)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(0, min(int(requested), available))


def validate_dataset(cfg, label_map: dict[str, int] | None = None) -> dict[str, list[Video]]:
    """Scan and check the train (and, when set, val) folders; {"train": videos, "val": videos}."""
    label_map = dict(label_map or cfg.dataset.label_map or {})
    clip = ClipSpec.from_model_config(cfg.model)
    found = {"train": scan_labelled(cfg.dataset.train_dataset_dir, label_map, clip, "dataset.train_dataset_dir")}
    found["val"] = (scan_labelled(cfg.dataset.val_dataset_dir, label_map, clip, "dataset.val_dataset_dir")
                    if str(cfg.dataset.val_dataset_dir or "").strip() else [])
    # an impossible crop (crop_smaller_edge vs input size) or bad means/stds show now, not in the first batch
    for train, videos in ((True, found["train"]), (False, found["val"] or found["train"])):
        _check_geometry(ClipTransform.from_config(cfg, train=train), videos[0], clip)
    # checked only: training's normaliser is the LightningModule's, built later (after the network)
    Normalisation.from_augmentation(cfg.dataset.augmentation_config)
    return found


class ActionDataModule(pl.LightningDataModule):
    """Training and validation data of an ExperimentConfig (``cfg.dataset`` and ``cfg.model``)."""

    def __init__(self, cfg, label_map: dict[str, int] | None = None):
        super().__init__()
        self.cfg = cfg
        self.label_map = dict(label_map or cfg.dataset.label_map or {})
        self.clip = ClipSpec.from_model_config(cfg.model)
        self.videos: dict[str, list[Video]] | None = None
        self.workers = loader_workers(cfg.dataset.workers)

    @property
    def has_val(self) -> bool:
        """Whether dataset.val_dataset_dir is set (validation runs only then)."""
        return bool(str(self.cfg.dataset.val_dataset_dir or "").strip())

    def setup(self, stage: str | None = None) -> None:
        if self.videos is None:
            self.videos = validate_dataset(self.cfg, self.label_map)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        dataset = ClipDataset(self.videos["train"], self.clip, ClipTransform.from_config(self.cfg, train=True),
                              train=True, clips_per_video=self.cfg.dataset.clips_per_video)
        batch_size = int(self.cfg.dataset.batch_size)
        return self._loader(dataset, batch_size, shuffle=True,
                            drop_last=self._drop_last_single(len(dataset), batch_size))

    def _drop_last_single(self, clips: int, batch_size: int) -> bool:
        """Whether each epoch's last training batch would hold a single clip, which BatchNorm cannot train on
        (3 videos at batch size 2): then that batch is dropped (said once in the log; the shuffle puts other
        clips last in the next epoch). Too few clips for any batch of two is a DataError before training."""
        trainer = getattr(self, "trainer", None)
        processes = max(1, trainer.world_size) if trainer is not None else 1
        share = -(-clips // processes)  # clips each process trains on
        if batch_size < 2 or share % batch_size != 1:
            return False
        if share == 1:
            raise DataError(f"dataset.train_dataset_dir: {clips} training clip(s) for {processes} process(es) "
                            f"leave one clip per batch, which BatchNorm cannot train on; add videos or raise "
                            f"dataset.clips_per_video")
        log.info("%d training clips at dataset.batch_size=%d leave a last batch of 1 clip, which BatchNorm cannot "
                 "train on: it is dropped each epoch", share, batch_size)
        return True

    def val_dataloader(self):
        self.setup()
        if not self.videos["val"]:
            return []
        dataset = ClipDataset(self.videos["val"], self.clip, ClipTransform.from_config(self.cfg, train=False),
                              train=False)
        return self._loader(dataset, self.cfg.dataset.batch_size, shuffle=False, sampler=self._val_sampler(dataset))

    def _val_sampler(self, dataset):
        """Under data-parallel training each process validates its own share, none twice.

        Lightning's default DistributedSampler pads the last share with repeated videos, which would count
        them twice in val_acc; this sampler (a DistributedSampler, so Lightning keeps it) pads nothing.
        """
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.world_size <= 1:
            return None
        from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

        return UnrepeatedDistributedSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                            shuffle=False)

    def _loader(self, dataset, batch_size: int, shuffle: bool, sampler=None, drop_last: bool = False) -> DataLoader:
        return DataLoader(dataset, batch_size=int(batch_size), shuffle=shuffle, sampler=sampler,
                          num_workers=self.workers, persistent_workers=self.workers > 0,
                          pin_memory=torch.cuda.is_available(), drop_last=drop_last)


def build_eval_dataset(cfg, root: str, mode: str = "center", num_segments: int = 1, labelled: bool = True,
                       label_map: dict[str, int] | None = None, key: str | None = None) -> EvalClipDataset:
    """The clips of ``root`` for evaluate (labelled) or inference (``<root>/<video>/rgb``, labels -1)."""
    section = "evaluate.video_eval_mode" if labelled else "inference.video_inf_mode"
    if mode not in VIDEO_MODES:
        raise DataError(f"{section}: {mode!r} is not one of {', '.join(VIDEO_MODES)}")
    if int(num_segments) < 1:
        raise DataError(f"{section.split('.')[0]}.video_num_segments: must be >= 1, got {num_segments!r}")
    clip = ClipSpec.from_model_config(cfg.model)
    if labelled:
        videos = scan_labelled(root, dict(label_map or cfg.dataset.label_map or {}), clip,
                               key or "evaluate.test_dataset_dir")
    else:
        videos = scan_unlabelled(root, clip, key or "inference.inference_dataset_dir")
    transform = ClipTransform.from_config(cfg, train=False)
    _check_geometry(transform, videos[0], clip)
    return EvalClipDataset(videos, clip, transform, mode, num_segments)


def build_eval_loader(cfg, dataset: EvalClipDataset, batch_size: int = 1, workers: int | None = None) -> DataLoader:
    """Ordered loader over ``dataset``: each iteration is a ``list[ClipBatch]`` of ``batch_size`` clips."""
    count = loader_workers(cfg.dataset.workers if workers is None else workers)
    return DataLoader(dataset, batch_size=int(batch_size), shuffle=False, num_workers=count,
                      collate_fn=collate_clips, pin_memory=torch.cuda.is_available())


def _check_geometry(transform: ClipTransform, video: Video, clip: ClipSpec) -> None:
    """An impossible crop (crop_smaller_edge vs input size) fails now, naming the video, not in the first batch."""
    folder = "rgb" if "rgb" in clip.streams else "u"
    try:
        transform.check_frame_size(*frame_size(video.frames[folder][0]))
    except DataError as exc:
        raise DataError(f"{video.path}: {exc}") from None
