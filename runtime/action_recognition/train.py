"""``action_recognition train``: fit the model with Lightning, write checkpoints and TAO's status.json lines.

Resuming follows TAO (``initialize_train_experiment``): the checkpoint is
``train.resume_training_checkpoint_path`` when set, else the real path of the first ``*_latest.pth`` in
the train results folder (the newest ``model_epoch_<EEE>_step_<SSSSS>.pth`` when that link is broken),
else none. It must be a ``.pth`` or ``.tlt`` file; a RUNNING line "Resuming training from checkpoint:
<path>" is written and Lightning restores weights, optimiser, scheduler and loop counters from it, so a
rerun on the same results folder continues (status.json is appended). A rerun that already reached
``train.num_epochs`` ends at once, successfully, and says so.
"""
from __future__ import annotations

import copy
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from skillbank.runtime.config.action_recognition import ExperimentConfig, TrainConfig

from .spec_io import SpecError, results_dir
from .status_log import RUNNING, StatusWriter, is_rank_zero

log = logging.getLogger("skillbank.action_recognition")
RESUME_KEY = "train.resume_training_checkpoint_path"
RESUME_SUFFIXES = (".pth", ".tlt")
_PERIODIC = re.compile(r"^model_epoch_(\d+)_step_(\d+)\.pth$")
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
"""The loggers Lightning writes through (both package layouts, the trainer's and Fabric's)."""


# -- settings checks and resume lookup (no torch) ------------------------------------------------

def interval_problems(train: TrainConfig) -> list[str]:
    """TAO's assertions: validation_interval and (epoch unit) checkpoint_interval must not exceed num_epochs."""
    problems = []
    n = train.num_epochs
    if train.validation_interval > n:
        problems.append(f"train.validation_interval={train.validation_interval} is above train.num_epochs={n}; "
                        f"set train.validation_interval <= {n} (or raise train.num_epochs)")
    if train.checkpoint_interval_unit == "epoch" and train.checkpoint_interval > n:
        problems.append(f"train.checkpoint_interval={train.checkpoint_interval} is above train.num_epochs={n}; "
                        f"set train.checkpoint_interval <= {n} (or raise train.num_epochs)")
    return problems


def newest_periodic(folder: Path) -> Path | None:
    """The ``model_epoch_<EEE>_step_<SSSSS>.pth`` of ``folder`` with the highest (epoch, step)."""
    found = [(int(m.group(1)), int(m.group(2)), p) for p in folder.glob("model_epoch_*_step_*.pth")
             if (m := _PERIODIC.match(p.name)) and p.is_file()]
    return max(found)[2] if found else None


def resume_checkpoint(spec_value: str, folder: str | os.PathLike) -> str | None:
    """The checkpoint to resume from, as TAO finds it (see the module docstring); None to start fresh."""
    path = spec_value or None
    if path is None:
        folder = Path(folder)
        links = sorted(folder.glob("*_latest.pth")) if folder.is_dir() else []
        if links:
            real = os.path.realpath(links[0])
            if os.path.isfile(real):
                path = real
            else:
                newest = newest_periodic(folder)
                path = str(newest.absolute()) if newest else None
                log.info("%s is a broken link; resuming from the newest periodic checkpoint instead: %s",
                         links[0], path)
    if path is not None and not str(path).endswith(RESUME_SUFFIXES):
        raise SpecError([f"{RESUME_KEY}={path!r}: a resume checkpoint must be a .pth or .tlt file"])
    return path


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """How many epochs the checkpoint's run completed (Lightning's loop counters, else ``epoch + 1``)."""
    try:
        processed = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
        if isinstance(processed, int):
            return processed
    except (KeyError, TypeError):
        pass
    epoch = checkpoint.get("epoch")
    return epoch + 1 if isinstance(epoch, int) else 0


def _announce_ignored(cfg: ExperimentConfig) -> None:
    if cfg.encryption_key:
        log.info("encryption_key is set: this runtime writes plain .pth checkpoints; the key is not used.")
    c = cfg.train.checkpointer
    if c.replace_periodic and not c.enable_topk:
        log.info("train.checkpointer.replace_periodic has no effect without train.checkpointer.enable_topk")


# -- Lightning -----------------------------------------------------------------------------------

class _DropLightningTips(logging.Filter):
    """Lightning's advertising lines are noise in a job log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("\U0001f4a1 Tip")


def quiet_lightning() -> None:
    """Drop Lightning's tips and a torch deprecation warning that Lightning triggers on every step."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    # A TAO checkpoint names TAO's ModelCheckpoint callback; its state is not needed to resume here.
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint need to be provided")
    # The LightningModule normalises clips after the device transfer, by design, beside the DataModule.
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule` but")
    for name in ("pytorch_lightning", "lightning.pytorch"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _DropLightningTips) for f in handler.filters):
                handler.addFilter(_DropLightningTips())
    if not is_rank_zero():  # the other data-parallel processes share the log: only their errors belong there
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


def _seed_and_flags(cfg: ExperimentConfig) -> None:
    import pytorch_lightning as pl
    import torch

    if cfg.train.seed >= 0:
        pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    torch.backends.cudnn.benchmark = cfg.train.cudnn.benchmark
    torch.backends.cudnn.deterministic = cfg.train.cudnn.deterministic


def build_trainer(cfg: ExperimentConfig, out: Path, steps_per_epoch: int, extra_callbacks=(), validate: bool = True,
                  status: StatusWriter | None = None):
    """The Lightning Trainer of a spec: devices, epochs, validation and checkpoint intervals, loggers."""
    import pytorch_lightning as pl

    from skillbank.runtime.rung_gates import gate_plan

    from .callbacks import CheckpointSaver, DirectCheckpointIO, RungGate, TrainStatus
    from .devices import trainer_devices
    from .experiment_loggers import build_loggers

    t = cfg.train
    saver = CheckpointSaver(out, t.checkpoint_interval, t.checkpoint_interval_unit, checkpointer=t.checkpointer)
    callbacks = [saver, TrainStatus(status or StatusWriter(out), t.num_epochs, saver), *extra_callbacks]
    gate = gate_plan()  # an AutoML trial that pauses at its rungs (after its status lines: listed last)
    if gate is not None:
        callbacks.append(RungGate(gate, t.num_epochs))
    return pl.Trainer(
        **trainer_devices(t.num_gpus, t.gpu_ids, t.num_nodes),
        max_epochs=t.num_epochs,
        check_val_every_n_epoch=t.validation_interval,
        limit_val_batches=None if validate else 0,
        gradient_clip_val=t.clip_grad_norm or None,
        gradient_clip_algorithm="norm",
        callbacks=callbacks,
        plugins=[DirectCheckpointIO()],
        logger=build_loggers(cfg, out),
        enable_checkpointing=False,  # our CheckpointSaver writes the exact file names
        enable_progress_bar=sys.stdout.isatty(),
        enable_model_summary=True,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
        benchmark=t.cudnn.benchmark,
        default_root_dir=str(out),
    )


def train(cfg: ExperimentConfig, status: StatusWriter | None = None) -> dict[str, Any]:
    """Train per ``cfg``, writing TAO's training lines to ``status``; returns KPIs and checkpoints.

    Raises on any failure (the caller, :func:`run`, turns it into a FAILURE line and an exit code).
    """
    from skillbank.runtime.config.loading import ConfigError

    from .callbacks import CheckpointSaver, best_checkpoint_name, monitor_and_mode
    from .checkpoint_io import checkpoint_model_config, read_checkpoint
    from .data.datamodule import ActionDataModule
    from .lightning_module import ActionRecognitionModule
    from .pretrained import load_pretrained_weights
    from .trained_model import check_architecture, check_label_map

    out = results_dir(cfg, "train")
    out.mkdir(parents=True, exist_ok=True)
    status = status or StatusWriter(out)
    problems = interval_problems(cfg.train)
    if problems:
        raise SpecError(problems)
    checkpointer = cfg.train.checkpointer
    if checkpointer.enable_topk:  # bad best-checkpoint settings fail before any data is read
        monitor_and_mode(checkpointer.monitor, checkpointer.mode)
        best_checkpoint_name(checkpointer.filename, epoch=0, step=0, metrics={},
                             auto_insert_metric_name=checkpointer.auto_insert_metric_name)
    _announce_ignored(cfg)
    quiet_lightning()
    optim = cfg.train.optim
    if optim.lr_scheduler == "AutoReduce" and optim.lr_decay >= 1.0:
        raise ConfigError(f"train.optim.lr_decay={optim.lr_decay}: AutoReduce multiplies the learning rate by "
                          "it on a plateau, so it must be below 1 (e.g. 0.1)")
    label_map = dict(cfg.dataset.label_map or {})
    if label_map:
        check_label_map(label_map)
    resume = resume_checkpoint(cfg.train.resume_training_checkpoint_path, out)
    if resume:
        log.info("Resuming training from checkpoint: %s", resume)
        status.write(RUNNING, f"Resuming training from checkpoint: {resume}")
        stored = read_checkpoint(resume, RESUME_KEY, cfg.encryption_key)
        check_architecture(cfg.model, checkpoint_model_config(stored), RESUME_KEY, resume)
        done = epochs_done(stored)
        del stored
        if done >= cfg.train.num_epochs:
            message = (f"Training already reached train.num_epochs={cfg.train.num_epochs} ({done} epochs done in "
                       f"{resume}); nothing to train. Raise train.num_epochs to train further.")
            log.info("%s", message)
            status.write(RUNNING, message)
            return {"kpi": {}, "checkpoint": resume, "best_checkpoint": None, "results_dir": str(out),
                    "epoch": done - 1, "global_step": None, "is_global_zero": True, "trained": False}
    _seed_and_flags(cfg)
    datamodule = ActionDataModule(cfg, label_map)
    datamodule.setup("fit")  # bad data fails here, before any model is built
    cfg = copy.deepcopy(cfg)
    if cfg.train.optim.lr_scheduler == "AutoReduce" and cfg.train.optim.lr_monitor == "val_loss" \
            and not datamodule.has_val:
        log.info("train.optim.lr_monitor=val_loss but dataset.val_dataset_dir is empty: AutoReduce monitors "
                 "train_loss instead")
        cfg.train.optim.lr_monitor = "train_loss"
    if checkpointer.enable_topk and not datamodule.has_val and monitor_and_mode(
            checkpointer.monitor, checkpointer.mode)[0].startswith("val_"):
        log.info("train.checkpointer monitors a validation metric but dataset.val_dataset_dir is empty: no best "
                 "checkpoint will be kept (set train.checkpointer.monitor=train_loss or give a validation set)")
    module = ActionRecognitionModule(cfg, label_map)
    if not resume:
        load_pretrained_weights(module.model, cfg.model, cfg.encryption_key)
    # full batches per epoch (a last batch of one clip may be dropped): Lightning's logging interval must fit
    steps = max(1, len(datamodule.videos["train"]) * cfg.dataset.clips_per_video // cfg.dataset.batch_size)
    trainer = build_trainer(cfg, out, steps, validate=datamodule.has_val, status=status)
    log.info("Training %s/%s/%s on %d videos (%d classes) for %d epochs; results in %s",
             cfg.model.model_type, cfg.model.input_type, cfg.model.backbone, len(datamodule.videos["train"]),
             len(label_map), cfg.train.num_epochs, out)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume or None, weights_only=True)
    saver = next(c for c in trainer.callbacks if isinstance(c, CheckpointSaver))
    checkpoint = saver.newest or (Path(resume) if resume else None)
    kpi = {k: (float(v) if (v := trainer.callback_metrics.get(k)) is not None else None)
           for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    return {"kpi": kpi, "checkpoint": str(checkpoint) if checkpoint else None,
            "best_checkpoint": saver.relative_best(), "results_dir": str(out),
            "epoch": trainer.current_epoch, "global_step": trainer.global_step,
            "is_global_zero": trainer.is_global_zero, "trained": True}


def final_fields(result: dict[str, Any]) -> dict[str, Any]:
    """Our extra fields on the "Train finished successfully." line (TAO's readers ignore them)."""
    return {k: result[k] for k in ("checkpoint", "best_checkpoint") if result.get(k)}


def run(cfg: ExperimentConfig) -> int:
    """Entry of the ``train`` action: 0 on success, 1 on failure (a FAILURE status line), 2 on bad settings."""
    from .action_errors import run_action

    code, result = run_action(cfg, "train", lambda status: train(cfg, status), final_fields=final_fields)
    if code == 0 and result is not None and result["trained"] and result["is_global_zero"]:
        log.info("Training finished; newest checkpoint: %s%s", result["checkpoint"],
                 f"; best: {result['best_checkpoint']}" if result.get("best_checkpoint") else "")
    return code
