"""Score whole videos with a trained network: per-video class probabilities (clip scores averaged)."""
from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F

log = logging.getLogger("skillbank.action_recognition")


@torch.no_grad()
def score_videos(model: torch.nn.Module, loader: Any, device: torch.device) -> dict[str, Any]:
    """``{"video_ids", "labels", "probs" [V, C]}`` over a loader of ``VideoBatch``es; logs progress."""
    from .data.datasets import average_clip_scores

    model = model.to(device).eval()
    ids: list[str] = []
    labels: list[int] = []
    probs: list[torch.Tensor] = []
    total = len(loader.dataset)
    started = last = time.monotonic()
    for batch in loader:
        tensors = [batch.inputs[name].to(device, non_blocking=True) for name in model.input_names]
        videos, clips = tensors[0].shape[:2]  # [B, N, ...]: N clips per video
        logits = model(*[t.flatten(0, 1) for t in tensors]).float()
        clip_probs = F.softmax(logits, dim=1).view(videos, clips, -1).cpu()
        probs.append(average_clip_scores(clip_probs, batch.clip_counts))
        ids += [str(v) for v in batch.video_ids]
        labels += [int(v) for v in batch.labels]
        if time.monotonic() - last > 10:
            last = time.monotonic()
            log.info("Scored %d/%d videos (%.1f videos/s)", len(ids), total, len(ids) / (last - started))
    return {"video_ids": ids, "labels": labels, "probs": torch.cat(probs) if probs else torch.zeros(0, 0)}
