"""Lightning callbacks of training: exact-name checkpoints, status.json events, one log line per epoch."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from .checkpoint_io import checkpoint_name, link_latest
from .status_log import FAILURE, RUNNING, STARTED, StatusWriter, format_duration

log = logging.getLogger("skillbank.action_recognition")
KPI_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


class PeriodicCheckpoint(pl.Callback):
    """Writes ``model_epoch_<EEE>_step_<SSSSS>.pth`` every ``interval`` epochs or steps, plus the last epoch.

    Epoch checkpoints are written at the end of the epoch, after validation (as Lightning's
    ModelCheckpoint does), so resuming from one starts the next epoch with the same optimiser,
    scheduler and counters. ``ar_model_latest.pth`` links to the newest file.
    """

    def __init__(self, folder: str | Path, interval: int, unit: str = "epoch"):
        if unit not in ("epoch", "step"):
            raise ValueError(f"train.checkpoint_interval_unit={unit!r}; allowed: epoch, step")
        self.folder = Path(folder)
        self.interval = max(1, int(interval))
        self.unit = unit
        self.saved: list[Path] = []

    def _save(self, trainer: pl.Trainer) -> None:
        path = self.folder / checkpoint_name(trainer.current_epoch, trainer.global_step)
        if path in self.saved:
            return
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            link_latest(path)
            log.info("Saved checkpoint %s", path)
        self.saved.append(path)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.unit == "step" and trainer.global_step > 0 and trainer.global_step % self.interval == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if last or (self.unit == "epoch" and (epoch + 1) % self.interval == 0):
            self._save(trainer)


def _scalar(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


class StatusAndLogLine(pl.Callback):
    """A STARTED event at the start, a RUNNING event and a flushed log line after every epoch."""

    def __init__(self, writer: StatusWriter, max_epoch: int):
        self.writer = writer
        self.max_epoch = max_epoch
        self._epoch_start = 0.0
        self._durations: list[float] = []
        self._lr: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.writer.write(STARTED, "Starting training", epoch=trainer.current_epoch, max_epoch=self.max_epoch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        # Lightning steps epoch schedulers on the last batch, before on_train_epoch_end: keep the lr used.
        self._lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        took = time.monotonic() - self._epoch_start
        self._durations.append(took)
        epoch = trainer.current_epoch
        per_epoch = sum(self._durations) / len(self._durations)
        eta = per_epoch * max(0, self.max_epoch - epoch - 1)
        metrics = trainer.callback_metrics
        validated = getattr(pl_module, "last_val_epoch", -1) == epoch
        kpi = {key: _scalar(metrics, key) for key in KPI_KEYS}
        if not validated:
            kpi["val_loss"] = kpi["val_acc"] = None
        lr = self._lr
        self.writer.write(
            RUNNING, "Training loop in progress", epoch=epoch, max_epoch=self.max_epoch,
            time_per_epoch=format_duration(took), eta=format_duration(eta), kpi=kpi, lr=lr,
        )
        figures = " ".join(f"{k}={v:.4f}" for k, v in kpi.items() if v is not None)
        log.info("Epoch %d/%d: %s lr=%.6g time_per_epoch=%s eta=%s", epoch + 1, self.max_epoch, figures,
                 lr if lr is not None else float("nan"), format_duration(took), format_duration(eta))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Ordinary errors get their FAILURE line from train.run; Ctrl+C and SIGTERM leave through
        # SystemExit, which nothing else sees.
        if trainer.is_global_zero and isinstance(exception, (KeyboardInterrupt, SystemExit)):
            self.writer.write(FAILURE, f"Training interrupted ({type(exception).__name__})",
                              epoch=trainer.current_epoch, max_epoch=self.max_epoch)
