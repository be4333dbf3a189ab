"""Score the clips of an evaluation or inference loader, and pool them per video.

``score_clips`` runs the network over every clip (TAO's order: videos sorted, each video's clips in
the order TAO's samplers give them), normalising the loader's uint8 clips on the device, and keeps
the logits. ``pool_videos`` averages each video's clip
probabilities (softmax) into one row per video, the well-defined form of TAO's ``conv`` pooling.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

log = logging.getLogger("skillbank.action_recognition")


@dataclass
class ClipScores:
    """Per clip, in loader order: video id, position in its video, label (-1 unlabelled), logits [N, C]."""

    video_ids: list[str]
    clip_index: list[int]
    labels: list[int]
    logits: torch.Tensor

    def predictions(self) -> list[int]:
        return self.logits.argmax(dim=1).tolist()


@dataclass
class VideoScores:
    """Per video, in order of first appearance: id, label, clip count, mean clip probabilities [V, C]."""

    video_ids: list[str]
    labels: list[int]
    num_clips: list[int]
    probs: torch.Tensor

    def predictions(self) -> list[int]:
        return self.probs.argmax(dim=1).tolist()


Inputs = dict[str, torch.Tensor]


@torch.no_grad()
def score_clips(model: torch.nn.Module, loader: Any, device: torch.device,
                normalise: Callable[[Inputs], Inputs]) -> ClipScores:
    """Logits of every clip of a loader of ``list[ClipBatch]``; logs progress every 10 seconds.

    ``normalise`` (a ``data.normaliser.ClipNormaliser``) turns each batch's clips into the network's input
    once they are on ``device``.
    """
    model = model.to(device).eval()
    ids: list[str] = []
    positions: list[int] = []
    labels: list[int] = []
    logits: list[torch.Tensor] = []
    total = len(loader.dataset)
    started = last = time.monotonic()
    for batches in loader:
        for batch in batches:
            inputs = normalise({name: batch.inputs[name].to(device, non_blocking=True) for name in model.input_names})
            logits.append(model(*[inputs[name] for name in model.input_names]).float().cpu())
            ids += [str(v) for v in batch.video_ids]
            positions += [int(i) for i in batch.clip_index]
            labels += [int(v) for v in batch.labels]
        if time.monotonic() - last > 10:
            last = time.monotonic()
            log.info("Scored %d/%d clips (%.1f clips/s)", len(ids), total, len(ids) / (last - started))
    stacked = torch.cat(logits) if logits else torch.zeros(0, 0)
    return ClipScores(ids, positions, labels, stacked)


def pool_videos(scores: ClipScores) -> VideoScores:
    """Each video's clip probabilities averaged (softmax of the logits, then the mean over its clips)."""
    order: dict[str, list[int]] = {}
    for row, video in enumerate(scores.video_ids):
        order.setdefault(video, []).append(row)
    probs = F.softmax(scores.logits, dim=1) if len(scores.video_ids) else scores.logits
    pooled = [probs[rows].mean(dim=0) for rows in order.values()]
    return VideoScores(
        video_ids=list(order),
        labels=[scores.labels[rows[0]] for rows in order.values()],
        num_clips=[len(rows) for rows in order.values()],
        probs=torch.stack(pooled) if pooled else torch.zeros(0, 0),
    )
