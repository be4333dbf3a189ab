"""Map the spec's num_gpus / gpu_ids / num_nodes to Lightning's accelerator and devices (or a torch device)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from skillbank.runtime.config.loading import ConfigError

log = logging.getLogger("skillbank.action_recognition")


def _gpu_ids(num_gpus: int, gpu_ids: Sequence[int], section: str) -> list[int]:
    ids = [int(i) for i in gpu_ids or []]
    if len(ids) == num_gpus:
        return ids
    if ids in ([], [0]):  # the template default with a larger num_gpus: take the first GPUs
        return list(range(num_gpus))
    raise ConfigError(
        f"{section}.gpu_ids={ids} has {len(ids)} entries but {section}.num_gpus={num_gpus}; "
        f"give one GPU id per GPU"
    )


def trainer_devices(num_gpus: int, gpu_ids: Sequence[int], num_nodes: int, section: str = "train") -> dict[str, Any]:
    """Trainer keyword arguments: accelerator, devices, num_nodes, strategy.

    Without GPUs the same layout runs on the CPU, as Lightning's ``devices=N`` does: ``num_gpus`` processes
    per node (one warning), data-parallel over gloo when there are several.
    """
    import torch

    if not torch.cuda.is_available():
        processes = max(1, int(num_gpus))
        log.warning("No GPU is available: running %d process(es) per node on the CPU (%s.num_gpus=%d, "
                    "%s.num_nodes=%d).", processes, section, num_gpus, section, num_nodes)
        several = processes > 1 or num_nodes > 1
        return {"accelerator": "cpu", "devices": processes, "num_nodes": max(1, int(num_nodes)),
                "strategy": "ddp" if several else "auto"}
    ids = _gpu_ids(num_gpus, gpu_ids, section)
    available = torch.cuda.device_count()
    if max(ids) >= available:
        raise ConfigError(f"{section}.gpu_ids={ids}: this machine has {available} GPU(s) (ids 0..{available - 1})")
    several = len(ids) > 1 or num_nodes > 1
    return {"accelerator": "gpu", "devices": ids, "num_nodes": num_nodes, "strategy": "ddp" if several else "auto"}


def torch_device(num_gpus: int, gpu_ids: Sequence[int], section: str):
    """The one device evaluation, inference and export run on: the first GPU id, or the CPU."""
    import torch

    if not torch.cuda.is_available():
        log.warning("No GPU is available: running on the CPU (%s.num_gpus=%d is not used).", section, num_gpus)
        return torch.device("cpu")
    ids = _gpu_ids(max(1, num_gpus), gpu_ids, section)
    if ids[0] >= torch.cuda.device_count():
        raise ConfigError(f"{section}.gpu_ids={ids}: this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", ids[0])
