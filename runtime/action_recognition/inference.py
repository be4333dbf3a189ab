"""``action_recognition inference``: the class of every video of a folder, and of each of its clips.

As TAO: each clip is classified by the argmax of its logits, and one line per video is printed,
``<inference_dataset_dir>/<video> : ['class', ...]`` (one name per clip, in TAO's clip order). Beyond
TAO (which writes no file): ``predictions.csv`` and ``predictions.json`` hold one row per video, its
class from the mean of its clips' softmax probabilities, that probability as ``confidence``, and (JSON)
the per-clip classes.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from typing import Any

from skillbank.runtime.config.action_recognition import ExperimentConfig

from .spec_io import results_dir

log = logging.getLogger("skillbank.action_recognition")
CSV_FILE = "predictions.csv"
JSON_FILE = "predictions.json"
CSV_COLUMNS = ["video", "class", "class_index", "confidence", "num_clips"]


def infer(cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """Classify the videos of ``inference.inference_dataset_dir``; returns the rows written."""
    from .data.datamodule import build_eval_dataset, build_eval_loader
    from .data.normaliser import ClipNormaliser
    from .devices import torch_device
    from .trained_model import check_no_engine, load_trained_model
    from .video_scoring import pool_videos, score_clips

    i = cfg.inference
    check_no_engine("inference", i.trt_engine)
    out = results_dir(cfg, "inference")
    out.mkdir(parents=True, exist_ok=True)
    # bad means/stds (dataset.augmentation_config) fail now, before the checkpoint is read or the data scanned
    normalise = ClipNormaliser.from_config(cfg)
    model, label_map = load_trained_model(cfg, i.checkpoint, "inference.checkpoint")
    dataset = build_eval_dataset(cfg, i.inference_dataset_dir, i.video_inf_mode, i.video_num_segments,
                                 labelled=False, key="inference.inference_dataset_dir")
    loader = build_eval_loader(cfg, dataset, batch_size=i.batch_size)
    device = torch_device(i.num_gpus, i.gpu_ids, "inference")
    log.info("Inference with %s on %d clips of %d videos of %s (video_inf_mode=%s)", i.checkpoint, len(dataset),
             len(dataset.videos), i.inference_dataset_dir, i.video_inf_mode)
    clips = score_clips(model, loader, device, normalise)
    videos = pool_videos(clips)
    names = {index: name for name, index in label_map.items()}
    per_clip: dict[str, list[str]] = {}
    for video, pred in zip(clips.video_ids, clips.predictions(), strict=True):
        per_clip.setdefault(video, []).append(names[pred])
    rows = []
    for video, count, probs in zip(videos.video_ids, videos.num_clips, videos.probs, strict=True):
        confidence, index = probs.max(dim=0)
        rows.append({"video": video, "class": names[int(index)], "class_index": int(index),
                     "confidence": round(float(confidence), 6), "num_clips": count,
                     "clip_classes": per_clip[video]})
        print(f"{os.path.join(str(i.inference_dataset_dir), video)} : {per_clip[video]}", flush=True)  # TAO's line
    with (out / CSV_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / JSON_FILE).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    log.info("Predictions for %d videos written to %s and %s", len(rows), out / CSV_FILE, out / JSON_FILE)
    return rows


def run(cfg: ExperimentConfig) -> int:
    """Entry of the ``inference`` action: exit 0 on success, 1 on failure, 2 on bad settings."""
    from .action_errors import run_action

    code, _ = run_action(cfg, "inference", lambda status: infer(cfg),
                         final_fields=lambda rows: {"num_videos": len(rows)})
    return code
