"""``action_recognition train``: fit the model with Lightning, write checkpoints and status.json events."""
from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

from skillbank.runtime.config.action_recognition import ExperimentConfig

from .spec_io import results_dir
from .status_log import FAILURE, SUCCESS, StatusWriter

log = logging.getLogger("skillbank.action_recognition")


def _announce_ignored(cfg: ExperimentConfig) -> None:
    if cfg.encryption_key:
        log.info("encryption_key is set: this runtime writes plain .pth checkpoints; the key is not used.")


class _DropLightningTips(logging.Filter):
    """Lightning's advertising lines are noise in a job log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("\U0001f4a1 Tip")


def quiet_lightning() -> None:
    """Drop Lightning's tips and a torch deprecation warning that Lightning triggers on every step."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    for name in ("pytorch_lightning", "lightning.pytorch"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _DropLightningTips) for f in handler.filters):
                handler.addFilter(_DropLightningTips())


def _seed_and_flags(cfg: ExperimentConfig) -> None:
    import pytorch_lightning as pl
    import torch

    if cfg.train.seed >= 0:
        pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    torch.backends.cudnn.benchmark = cfg.train.cudnn.benchmark
    torch.backends.cudnn.deterministic = cfg.train.cudnn.deterministic


def build_trainer(cfg: ExperimentConfig, out: Path, steps_per_epoch: int, extra_callbacks=(), validate: bool = True):
    """The Lightning Trainer of a spec: devices, epochs, validation and checkpoint intervals, loggers."""
    import pytorch_lightning as pl

    from .callbacks import PeriodicCheckpoint, StatusAndLogLine
    from .devices import trainer_devices
    from .experiment_loggers import build_loggers

    t = cfg.train
    callbacks = [
        PeriodicCheckpoint(out, t.checkpoint_interval, t.checkpoint_interval_unit),
        StatusAndLogLine(StatusWriter(out), t.num_epochs),
        *extra_callbacks,
    ]
    return pl.Trainer(
        **trainer_devices(t.num_gpus, t.gpu_ids, t.num_nodes),
        max_epochs=t.num_epochs,
        check_val_every_n_epoch=t.validation_interval,
        limit_val_batches=None if validate else 0,
        gradient_clip_val=t.clip_grad_norm or None,
        gradient_clip_algorithm="norm",
        callbacks=callbacks,
        logger=build_loggers(cfg, out),
        enable_checkpointing=False,  # our PeriodicCheckpoint writes the exact file names
        enable_progress_bar=sys.stdout.isatty(),
        enable_model_summary=True,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
        benchmark=t.cudnn.benchmark,
        default_root_dir=str(out),
    )


def train(cfg: ExperimentConfig) -> dict:
    """Train per ``cfg``; returns the final KPIs and the newest checkpoint. Raises on any failure."""
    from .callbacks import PeriodicCheckpoint
    from .checkpoint_io import checkpoint_model_config, read_checkpoint
    from .data.datamodule import ActionDataModule
    from .lightning_module import ActionRecognitionModule
    from .pretrained import load_pretrained_weights
    from .trained_model import check_architecture, check_label_map

    out = results_dir(cfg, "train")
    out.mkdir(parents=True, exist_ok=True)
    _announce_ignored(cfg)
    quiet_lightning()
    optim = cfg.train.optim
    if optim.lr_scheduler == "AutoReduce" and optim.lr_decay >= 1.0:
        from skillbank.runtime.config.loading import ConfigError

        raise ConfigError(f"train.optim.lr_decay={optim.lr_decay}: AutoReduce multiplies the learning rate by "
                          "it on a plateau, so it must be below 1 (e.g. 0.1)")
    label_map = dict(cfg.dataset.label_map or {})
    if label_map:
        check_label_map(label_map)
    resume = cfg.train.resume_training_checkpoint_path
    if resume:
        stored = read_checkpoint(resume, "train.resume_training_checkpoint_path")
        check_architecture(cfg.model, checkpoint_model_config(stored), "train.resume_training_checkpoint_path",
                           resume)
        del stored
    _seed_and_flags(cfg)
    datamodule = ActionDataModule(cfg, label_map)
    datamodule.setup("fit")  # bad data fails here, before any model is built
    cfg = copy.deepcopy(cfg)
    if cfg.train.optim.lr_scheduler == "AutoReduce" and cfg.train.optim.lr_monitor == "val_loss" \
            and not datamodule.has_val:
        log.info("train.optim.lr_monitor=val_loss but dataset.val_dataset_dir is empty: AutoReduce monitors "
                 "train_loss instead")
        cfg.train.optim.lr_monitor = "train_loss"
    module = ActionRecognitionModule(cfg, label_map)
    if not resume:
        load_pretrained_weights(module.model, cfg.model)
    steps = -(-len(datamodule.videos["train"]) * cfg.dataset.clips_per_video // cfg.dataset.batch_size)
    trainer = build_trainer(cfg, out, steps, validate=datamodule.has_val)
    log.info("Training %s/%s/%s on %d videos (%d classes) for %d epochs; results in %s",
             cfg.model.model_type, cfg.model.input_type, cfg.model.backbone, len(datamodule.videos["train"]),
             len(label_map), cfg.train.num_epochs, out)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume or None, weights_only=True)
    saver = next(c for c in trainer.callbacks if isinstance(c, PeriodicCheckpoint))
    checkpoint = saver.saved[-1] if saver.saved else None
    kpi = {k: (float(v) if (v := trainer.callback_metrics.get(k)) is not None else None)
           for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    return {"kpi": kpi, "checkpoint": str(checkpoint) if checkpoint else None, "results_dir": str(out),
            "epoch": trainer.current_epoch, "global_step": trainer.global_step,
            "is_global_zero": trainer.is_global_zero}


def run(cfg: ExperimentConfig) -> int:
    """Entry of the ``train`` action: 0 on success, 1 on failure (a FAILURE status line), 2 on bad settings."""
    from .action_errors import exit_code_for

    out = results_dir(cfg, "train")
    status = StatusWriter(out)
    try:
        result = train(cfg)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Ctrl+C or SIGTERM (a canceled job): the FAILURE line is already written by the status callback.
        log.error("Training interrupted (%s)", type(exc).__name__)
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure becomes a FAILURE event and an exit code
        code = exit_code_for(exc)
        status.write(FAILURE, f"Training failed: {exc}", max_epoch=cfg.train.num_epochs)
        log.error("Training failed: %s", exc, exc_info=code == 1 and not _expected(exc))
        return code
    if not result["is_global_zero"]:  # under DDP every rank returns here; rank 0 reports
        return 0
    status.write(SUCCESS, "Training finished", epoch=result["epoch"] - 1, max_epoch=cfg.train.num_epochs,
                 kpi=result["kpi"], checkpoint=result["checkpoint"])
    log.info("Training finished; newest checkpoint: %s", result["checkpoint"])
    return 0


def _expected(exc: Exception) -> bool:
    from .action_errors import is_user_error

    return is_user_error(exc)
