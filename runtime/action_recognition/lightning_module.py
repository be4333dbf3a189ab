"""The LightningModule: owns the network, the loss, the metrics and the optimiser/scheduler.

Batches are ``(inputs, labels)`` (or a dict with ``inputs``/``label(s)``), where ``inputs`` maps
stream name ("rgb", "of") to a tensor. A tensor with one more axis than the network takes holds
several clips per video (``[B, N, ...]``): their softmax scores are averaged, as evaluation does.
Clips arrive as uint8 and are normalised on the device, after the transfer (``ClipNormaliser``).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.config.action_recognition import ExperimentConfig
from skillbank.runtime.config.loading import to_dict

from .action_errors import TrainingDiverged
from .checkpoint_io import CHECKPOINT_FORMAT, decrypt
from .data.datasets import SAMPLE_DIMS
from .data.normaliser import ClipNormaliser
from .networks import build_model
from .spec_io import redacted


def split_batch(batch: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """``(inputs, labels)`` from the data pipeline's batch (tuple/list or dict)."""
    if isinstance(batch, dict):
        labels = batch.get("label", batch.get("labels"))
        inputs = batch.get("inputs", {k: v for k, v in batch.items() if k in ("rgb", "of")})
        return inputs, labels
    inputs, labels = batch[0], batch[1] if len(batch) > 1 else None
    return inputs, labels


def video_scores(model: nn.Module, inputs: dict[str, torch.Tensor], input_type: str) -> torch.Tensor:
    """Per-video log-probabilities ``[B, classes]``; clips of a video (``[B, N, ...]``) are averaged."""
    tensors = [inputs[name] for name in model.input_names]
    if tensors[0].dim() == SAMPLE_DIMS[input_type] + 2:
        batch, clips = tensors[0].shape[:2]
        logits = model(*[t.flatten(0, 1) for t in tensors])
        probs = F.softmax(logits, dim=1).view(batch, clips, -1).mean(dim=1)
        return torch.log(probs.clamp_min(1e-12))
    return F.log_softmax(model(*tensors), dim=1)


def rng_states() -> dict[str, Any]:
    """Every RNG the data pipeline and the model draw from, in types ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class ActionRecognitionModule(pl.LightningModule):
    """Trains ``build_model(cfg.model, len(label_map))`` with SGD and a MultiStep or AutoReduce schedule."""

    def __init__(self, cfg: ExperimentConfig, label_map: dict[str, int]):
        super().__init__()
        self.cfg = cfg
        self.label_map = dict(label_map)
        self.model = build_model(cfg.model, len(self.label_map))
        self.normaliser = ClipNormaliser.from_config(cfg)
        self.last_val_epoch = -1
        self._train_sums: torch.Tensor | None = None  # the epoch's [loss, accuracy, clips] so far (weighted sums)

    @property
    def _sync(self) -> bool:
        """Reduce logged metrics across processes only when there are several (saves a step's overhead)."""
        return self.trainer.world_size > 1

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(*tensors)

    # -- steps -------------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[dict[str, torch.Tensor], Any]:
        """The batch's uint8 clips, now on the device, as the network's normalised float32 input."""
        inputs, labels = split_batch(batch)
        return self.normaliser(inputs), labels

    def on_train_epoch_start(self) -> None:
        self._train_sums = None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        inputs, labels = split_batch(batch)
        logits = self.model(*[inputs[name] for name in self.model.input_names])
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):  # a NaN/inf loss would train nothing and still end "successfully"
            raise TrainingDiverged(float(loss.detach()), self.current_epoch + 1, self.global_step,
                                   self.cfg.train.optim.lr)
        acc = (logits.argmax(dim=1) == labels).float().mean()
        self._add_train_batch(loss.detach(), acc, labels.shape[0])
        # the epoch's last batch, as Lightning's epoch loop decides it (all batches, or the loader is done)
        progress = self.trainer.fit_loop.epoch_loop.batch_progress
        if progress.is_last_batch or batch_idx + 1 >= self.trainer.num_training_batches:
            self._log_train_epoch()
        return loss

    def _add_train_batch(self, loss: torch.Tensor, acc: torch.Tensor, size: int) -> None:
        """Sum the batch into the epoch's [loss, accuracy, clips], weighted by its size.

        Lightning's ``self.log(on_epoch=True)`` would do the same sums, at a fraction of a millisecond per call
        and step (half of what Lightning adds to a step); the epoch's figures are logged once, at its end.
        The arithmetic is Lightning's (float32 ``sum + value * size``), so the logged means are the same bits.
        """
        batch = torch.stack([loss, acc, torch.ones_like(acc)]) * size
        self._train_sums = batch if self._train_sums is None else self._train_sums + batch

    def _log_train_epoch(self) -> None:
        """train_loss and train_acc of the epoch: sums over every process, then one division.

        Logged from the epoch's last step, so the callbacks' ``on_train_epoch_end`` (status.json, the best
        checkpoint) and an AutoReduce scheduler find them in ``trainer.callback_metrics``, as before.
        """
        sums = self._train_sums
        if self._sync:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        for name, value in (("train_loss", sums[0] / sums[2]), ("train_acc", sums[1] / sums[2])):
            # batch_size=1: the mean of one value is that value; sync_dist as in on_validation_epoch_end
            self.log(name, value, on_step=False, on_epoch=True, prog_bar=True, batch_size=1, sync_dist=self._sync)

    def on_validation_epoch_start(self) -> None:
        # [summed loss, correct videos, videos] of this process; summed over processes at the epoch's end
        self._val_totals = torch.zeros(3, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        inputs, labels = split_batch(batch)
        log_probs = video_scores(self.model, inputs, self.cfg.model.input_type)
        loss_sum = F.nll_loss(log_probs, labels, reduction="sum")
        correct = (log_probs.argmax(dim=1) == labels).sum()
        self._val_totals += torch.stack([loss_sum.detach().double(), correct.double(),
                                         torch.tensor(float(labels.shape[0]), dtype=torch.float64,
                                                      device=loss_sum.device)])

    def on_validation_epoch_end(self) -> None:
        """val_loss and val_acc of the whole validation set: sums over every process, then one division.

        (A mean of per-process means would weigh unequal shares wrongly; the validation sampler pads nothing.)
        """
        totals = self._val_totals
        if self._sync:
            totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        if totals[2] > 0:
            for name, value in (("val_loss", totals[0] / totals[2]), ("val_acc", totals[1] / totals[2])):
                # equal on every process already; sync_dist only keeps Lightning's epoch-level bookkeeping quiet
                self.log(name, value.float(), on_epoch=True, prog_bar=True, sync_dist=self._sync)
        if not self.trainer.sanity_checking:
            self.last_val_epoch = self.current_epoch

    # -- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optim = self.cfg.train.optim
        optimizer = torch.optim.SGD(
            self.parameters(), lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
        )
        if optim.lr_scheduler == "MultiStep":
            scheduler = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=list(optim.lr_steps), gamma=optim.lr_decay
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=optim.lr_decay, patience=optim.patience, min_lr=optim.min_lr
        )
        # val_loss exists only in epochs that validate: step the plateau scheduler on those epochs only.
        frequency = self.cfg.train.validation_interval if optim.lr_monitor == "val_loss" else 1
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler, "interval": "epoch", "frequency": frequency,
                "monitor": optim.lr_monitor, "strict": True,
            },
        }

    # -- checkpoints -------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["skillbank"] = {
            "format": CHECKPOINT_FORMAT,
            "config": redacted(to_dict(self.cfg)),
            "label_map": self.label_map,
            "rng": rng_states(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before it loads the weights: an encrypted TAO checkpoint is decrypted
        # here, as TAO's own LightningModule does.
        decrypt(checkpoint, self.cfg.encryption_key, "train.resume_training_checkpoint_path")
        # Restored now: Lightning creates the resumed epoch's data iterator (drawing the shuffle seed)
        # right after restoring, before any training hook, exactly where the saved run drew it.
        states = (checkpoint.get("skillbank") or {}).get("rng")
        if states is not None:
            set_rng_states(states)
