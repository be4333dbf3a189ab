"""Lightning callbacks of training: checkpoints (periodic and best), TAO's status.json lines, a log line per epoch.

Checkpoints (:class:`CheckpointSaver`):

* periodic: ``model_epoch_<EEE>_step_<SSSSS>.pth`` every ``train.checkpoint_interval`` epochs (or steps),
  plus the last epoch; ``ar_model_latest.pth`` links to the newest one (as TAO);
* best (``train.checkpointer.enable_topk``): the ``save_top_k`` best epochs ranked by ``monitor`` (unset:
  ``val_acc``; ``mode`` unset: ``min`` for a ``*loss`` monitor, else ``max``) as
  ``<dirpath or the train results folder>/<filename>.pth``; files that fall out of the top k are deleted;
* ``replace_periodic`` (with ``enable_topk``): older periodic files are deleted as soon as a newer one is
  written, so the folder keeps the newest periodic checkpoint (for resuming and the latest link) and the
  best ones.

Every file is written to a temporary name in its folder and renamed into place, so a process killed at
any moment leaves either the previous file or the new one, never a truncated checkpoint. That makes
Lightning's own atomic save (the whole checkpoint serialised in memory first, then copied to the file)
a second copy of a 90 MB file for nothing: :class:`DirectCheckpointIO` writes straight to the file.
"""
from __future__ import annotations

import logging
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.plugins import TorchCheckpointIO

from skillbank.runtime.config.loading import ConfigError

from .checkpoint_io import checkpoint_name, link_latest
from .status_log import RUNNING, STARTED, StatusWriter, format_duration

log = logging.getLogger("skillbank.action_recognition")
TRAIN_KPI = ("train_loss", "train_acc")
VAL_KPI = ("val_loss", "val_acc")
METRICS = VAL_KPI + TRAIN_KPI
DEFAULT_MONITOR = "val_acc"
PERIODIC_NAME = re.compile(r"^model_epoch_\d{3,}_step_\d{5,}\.pth$")
_TMP_SUFFIX = ".tmp"


# -- metric reading -------------------------------------------------------------------------------

def epoch_metric(metrics: dict[str, Any], key: str) -> float | None:
    """An epoch-level metric from ``trainer.callback_metrics`` as a float (None when absent or NaN)."""
    for name in (f"{key}_epoch", key, f"{key}_1_epoch", f"{key}_1"):
        value = metrics.get(name)
        if value is not None:
            value = float(value)
            return None if math.isnan(value) else value
    return None


# -- best-checkpoint settings ---------------------------------------------------------------------

def monitor_and_mode(monitor: str | None, mode: str | None) -> tuple[str, str]:
    """The effective ``(monitor, mode)`` of ``train.checkpointer`` (unset: val_acc, max; *loss: min)."""
    monitor = monitor or DEFAULT_MONITOR
    if monitor not in METRICS:
        raise ConfigError(f"train.checkpointer.monitor={monitor!r}: not a metric this model logs; "
                          f"allowed: {', '.join(METRICS)}")
    if mode and mode not in ("min", "max"):
        raise ConfigError(f"train.checkpointer.mode={mode!r}; allowed: min, max")
    return monitor, mode or ("min" if monitor.endswith("loss") else "max")


_FIELD = re.compile(r"\{([^{}:!]+)(?:[:!][^{}]*)?\}")


def best_checkpoint_name(pattern: str, *, epoch: int, step: int, metrics: dict[str, float],
                         auto_insert_metric_name: bool = False) -> str:
    """``model_best_{epoch:03d}`` -> ``model_best_004.pth`` (``epoch=004`` with ``auto_insert_metric_name``).

    Fields: ``epoch``, ``step`` and the logged metrics (``val_acc`` ...); ``.pth`` is appended.
    """
    if not pattern:
        raise ConfigError("train.checkpointer.filename is empty; e.g. model_best_{epoch:03d}")
    values: dict[str, Any] = {"epoch": epoch, "step": step, **{k: metrics.get(k, 0.0) for k in METRICS}}
    unknown = sorted({name for name in _FIELD.findall(pattern) if name not in values})
    if unknown:
        raise ConfigError(f"train.checkpointer.filename={pattern!r}: unknown field(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(values)}")
    text = pattern
    if auto_insert_metric_name:
        text = _FIELD.sub(lambda m: f"{m.group(1)}={m.group(0)}", text)
    try:
        name = text.format(**values)
    except (ValueError, IndexError, KeyError) as exc:
        raise ConfigError(f"train.checkpointer.filename={pattern!r}: not a valid pattern ({exc})") from exc
    return name if name.endswith(".pth") else f"{name}.pth"


def _better(score: float, than: float, mode: str) -> bool:
    return score > than if mode == "max" else score < than


# -- file writing ---------------------------------------------------------------------------------

def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TMP_SUFFIX}")


def remove_stale_temporaries(folder: Path) -> None:
    """Drop half-written checkpoints a killed run left behind (``.<name>.pth.tmp``)."""
    if folder.is_dir():
        for tmp in folder.glob(f".*.pth{_TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)


def _place_copy(source: Path, target: Path) -> None:
    """``target`` becomes the same content as ``source`` (a hard link where possible), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


class DirectCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, minus its in-memory copy: ``torch.save`` straight to the (temporary) file.

    Only :class:`CheckpointSaver` saves, always to a local temporary name that it renames into place.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        import torch

        if storage_options is not None or "://" in str(path):  # not ours: Lightning's way
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        torch.save(checkpoint, path)


class CheckpointSaver(pl.Callback):
    """Periodic and best checkpoints, written atomically (see the module docstring).

    ``saved`` lists the periodic files this run wrote; :attr:`best` is the current best file. The best
    ranking (``best_k``) is part of the checkpoint, so a resumed run keeps ranking against it.
    """

    def __init__(self, folder: str | Path, interval: int, unit: str = "epoch", *, checkpointer: Any = None):
        if unit not in ("epoch", "step"):
            raise ConfigError(f"train.checkpoint_interval_unit={unit!r}; allowed: epoch, step")
        self.folder = Path(folder)
        self.interval = max(1, int(interval))
        self.unit = unit
        self.saved: list[Path] = []
        c = checkpointer
        self.topk = bool(c is not None and c.enable_topk)
        self.replace_periodic = self.topk and bool(c.replace_periodic)
        if self.topk:
            self.monitor, self.mode = monitor_and_mode(c.monitor, c.mode)
            self.save_top_k = int(c.save_top_k)
            if self.save_top_k < 1:
                raise ConfigError(f"train.checkpointer.save_top_k={c.save_top_k}: must be >= 1")
            self.pattern = c.filename
            self.auto_insert = bool(c.auto_insert_metric_name)
            self.best_folder = Path(c.dirpath) if c.dirpath else self.folder
            best_checkpoint_name(self.pattern, epoch=0, step=0, metrics={}, auto_insert_metric_name=self.auto_insert)
        self.best_k: list[dict[str, Any]] = []  # [{"path", "score", "epoch", "step"}], best first
        self._val_epoch = -1

    # -- state kept in checkpoints (for resuming) -------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"best_k": [dict(entry) for entry in self.best_k]} if self.topk else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.topk:
            self.best_k = [dict(e) for e in state_dict.get("best_k", []) if Path(str(e.get("path"))).is_file()]

    @property
    def best(self) -> Path | None:
        """The best checkpoint file so far (top-k on), else None."""
        return Path(self.best_k[0]["path"]) if self.best_k else None

    @property
    def newest(self) -> Path | None:
        return self.saved[-1] if self.saved else None

    # -- hooks ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            remove_stale_temporaries(self.folder)
            if self.topk:
                remove_stale_temporaries(self.best_folder)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_epoch = trainer.current_epoch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.unit == "step" and trainer.global_step > 0 and trainer.global_step % self.interval == 0:
            self._save(trainer, periodic=True, best=None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        periodic = last or (self.unit == "epoch" and (epoch + 1) % self.interval == 0)
        best = self._rank(trainer) if self.topk else None
        if periodic or best is not None:
            self._save(trainer, periodic=periodic, best=best)

    # -- ranking and writing ----------------------------------------------------------------------
    def _rank(self, trainer: pl.Trainer) -> dict[str, Any] | None:
        """This epoch's entry when it enters the top k (the ranking is updated), else None."""
        metrics = trainer.callback_metrics
        if self.monitor.startswith("val_") and self._val_epoch != trainer.current_epoch:
            return None  # no validation this epoch: nothing to rank
        score = epoch_metric(metrics, self.monitor)
        if score is None:
            return None
        full = len(self.best_k) >= self.save_top_k
        if full and not _better(score, self.best_k[-1]["score"], self.mode):
            return None
        values = {k: v for k in METRICS if (v := epoch_metric(metrics, k)) is not None}
        name = best_checkpoint_name(self.pattern, epoch=trainer.current_epoch, step=trainer.global_step,
                                    metrics=values, auto_insert_metric_name=self.auto_insert)
        path = self._unique(self.best_folder / name)
        entry = {"path": str(path), "score": score, "epoch": trainer.current_epoch, "step": trainer.global_step}
        ranked = sorted([*self.best_k, entry], key=lambda e: e["score"], reverse=self.mode == "max")
        # A stable sort keeps the older of equal scores first: a tie does not replace a kept file.
        self.best_k, dropped = ranked[: self.save_top_k], ranked[self.save_top_k:]
        entry["dropped"] = [e["path"] for e in dropped]
        return entry

    def _unique(self, path: Path) -> Path:
        """``path``, or ``<stem>-v1.pth`` ... when a kept best file of another epoch has that name."""
        taken = {e["path"] for e in self.best_k}
        if str(path) not in taken or self.save_top_k == 1:
            return path
        version = 1
        while str(path.with_name(f"{path.stem}-v{version}{path.suffix}")) in taken:
            version += 1
        return path.with_name(f"{path.stem}-v{version}{path.suffix}")

    def _save(self, trainer: pl.Trainer, *, periodic: bool, best: dict[str, Any] | None) -> None:
        zero = trainer.is_global_zero
        dropped = [Path(p) for p in (best or {}).pop("dropped", [])]
        path: Path | None = None
        if periodic:
            path = self.folder / checkpoint_name(trainer.current_epoch, trainer.global_step)
            if path in self.saved and best is None:
                return
            self._write(trainer, path)
            if zero:
                link_latest(path)
                log.info("Saved checkpoint %s", path)
            if path not in self.saved:
                self.saved.append(path)
        if best is not None:
            target = Path(best["path"])
            if path is None:
                self._write(trainer, target)
            elif zero:
                _place_copy(path, target)  # the same bytes: a hard link, not a second save
            if zero:
                log.info("Saved best checkpoint %s (%s=%.6g)", target, self.monitor, best["score"])
        if not zero:
            return
        kept = {e["path"] for e in self.best_k}
        for old in dropped:
            if str(old) not in kept:
                old.unlink(missing_ok=True)
        if path is not None and self.replace_periodic:
            self._drop_superseded(path)

    def _write(self, trainer: pl.Trainer, path: Path) -> None:
        """``trainer.save_checkpoint`` to a temporary name in the same folder, then renamed into place."""
        tmp = _tmp_path(path)
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank calls it; rank zero writes
        if trainer.is_global_zero:
            os.replace(tmp, path)

    def _drop_superseded(self, newest: Path) -> None:
        """replace_periodic: every other periodic file of the folder goes (best files are separate names)."""
        keep = {newest.name} | {Path(e["path"]).name for e in self.best_k if Path(e["path"]).parent == self.folder}
        for candidate in self.folder.iterdir():
            if PERIODIC_NAME.match(candidate.name) and candidate.name not in keep:
                candidate.unlink(missing_ok=True)
        self.saved = [p for p in self.saved if p.exists()]

    def relative_best(self) -> str | None:
        """The best file as ``best_checkpoint`` reports it: relative to the train results folder when inside."""
        best = self.best
        if best is None:
            return None
        try:
            return best.absolute().relative_to(self.folder.absolute()).as_posix()
        except ValueError:
            return str(best.absolute())


# -- status.json and the log --------------------------------------------------------------------

def process_group_backend() -> str:
    """The torch.distributed backend of this run (``gloo`` on CPUs, ``nccl`` on GPUs), or ``none``."""
    import torch.distributed as dist

    return str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else "none"


class TrainStatus(pl.Callback):
    """TAO's training lines in status.json, and one flushed log line per epoch.

    STARTED "Starting Training Loop."; after each validation (not the sanity check) RUNNING
    "Eval metrics generated." with kpi {val_loss, val_acc}; at the end of each epoch RUNNING "Training
    loop in progress" (epoch 0-based, step, max_epoch = num_epochs - 1, max_step, time_per_epoch,
    time_per_step, eta) then RUNNING "Train metrics generated." with kpi {train_loss, train_acc};
    finally RUNNING "Training loop complete.". The writer repeats the last kpi on later lines.
    """

    def __init__(self, writer: StatusWriter, num_epochs: int, saver: CheckpointSaver | None = None):
        self.writer = writer
        self.num_epochs = num_epochs
        self.saver = saver
        self._epoch_start = 0.0
        self._durations: list[float] = []
        self._lr: float | None = None
        self._val_epoch = -1

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:  # the processes are connected by now: say what they really are
            log.info("distributed: world_size=%d backend=%s", trainer.world_size, process_group_backend())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.writer.write(STARTED, "Starting Training Loop.")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        # Lightning steps epoch schedulers after on_train_epoch_end: this is the lr the epoch used.
        self._lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._val_epoch = trainer.current_epoch
        if trainer.is_global_zero:
            kpi = {k: epoch_metric(trainer.callback_metrics, k) for k in VAL_KPI}
            self.writer.write(RUNNING, "Eval metrics generated.", kpi=kpi)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        took = time.monotonic() - self._epoch_start
        self._durations.append(took)
        epoch = trainer.current_epoch
        batches = max(1, int(trainer.num_training_batches)) if math.isfinite(trainer.num_training_batches) else 1
        per_epoch = sum(self._durations) / len(self._durations)
        eta = per_epoch * max(0, self.num_epochs - epoch - 1)
        extra: dict[str, Any] = {"lr": self._lr}
        if self.saver is not None and self.saver.relative_best():
            extra["best_checkpoint"] = self.saver.relative_best()
        self.writer.write(
            RUNNING, "Training loop in progress", epoch=epoch, step=trainer.global_step,
            max_epoch=self.num_epochs - 1, max_step=self.num_epochs * batches,
            time_per_epoch=format_duration(took), time_per_step=format_duration(took / batches),
            eta=format_duration(eta), **extra,
        )
        metrics = trainer.callback_metrics
        train_kpi = {k: epoch_metric(metrics, k) for k in TRAIN_KPI}
        self.writer.write(RUNNING, "Train metrics generated.", kpi=train_kpi)
        figures = {**train_kpi, **({k: epoch_metric(metrics, k) for k in VAL_KPI} if self._val_epoch == epoch else {})}
        text = " ".join(f"{k}={v:.4f}" for k, v in figures.items() if v is not None)
        log.info("Epoch %d/%d: %s lr=%.6g time_per_epoch=%s eta=%s", epoch + 1, self.num_epochs, text,
                 self._lr if self._lr is not None else float("nan"), format_duration(took), format_duration(eta))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.writer.write(RUNNING, "Training loop complete.")


# -- AutoML rung gates ----------------------------------------------------------------------------

class RungGate(pl.Callback):
    """An AutoML trial job that trains through its rungs (``runtime/rung_gates.py``): after a rung epoch's
    status.json lines and checkpoints, wait until the engine promotes the trial (or cancels the job).

    Listed after :class:`TrainStatus`, so the engine reads the epoch's ``val_acc`` before it judges.
    """

    def __init__(self, plan: Any, num_epochs: int):
        self.plan = plan
        self.num_epochs = num_epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from skillbank.runtime.rung_gates import wait_at_rung

        epochs = trainer.current_epoch + 1
        if epochs in self.plan.rungs and epochs < self.num_epochs:
            log.info("Epoch %d ends a rung: waiting for the AutoML runner to promote or prune this trial", epochs)
            started = time.monotonic()
            wait_at_rung(self.plan, epochs)
            log.info("Promoted at epoch %d after %.2f s; training on", epochs, time.monotonic() - started)

