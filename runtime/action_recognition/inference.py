"""``action_recognition inference``: the predicted class and its confidence for every video of a folder."""
from __future__ import annotations

import csv
import json
import logging

from skillbank.runtime.config.action_recognition import ExperimentConfig

from .spec_io import results_dir
from .status_log import SUCCESS, StatusWriter

log = logging.getLogger("skillbank.action_recognition")
CSV_FILE = "predictions.csv"
JSON_FILE = "predictions.json"


def infer(cfg: ExperimentConfig) -> list[dict]:
    """Classify the videos of ``inference.inference_dataset_dir``; returns the rows written."""
    from .data.datamodule import build_eval_dataset, build_eval_loader
    from .devices import torch_device
    from .trained_model import check_no_engine, load_trained_model
    from .video_scoring import score_videos

    i = cfg.inference
    check_no_engine("inference", i.trt_engine)
    out = results_dir(cfg, "inference")
    out.mkdir(parents=True, exist_ok=True)
    model, label_map = load_trained_model(cfg, i.checkpoint, "inference.checkpoint")
    dataset = build_eval_dataset(cfg, i.inference_dataset_dir, i.video_inf_mode, i.video_num_segments,
                                 labelled=False, key="inference.inference_dataset_dir")
    loader = build_eval_loader(cfg, dataset, batch_size=i.batch_size)
    device = torch_device(i.num_gpus, i.gpu_ids, "inference")
    log.info("Inference with %s on %d videos of %s", i.checkpoint, len(dataset), i.inference_dataset_dir)
    scores = score_videos(model, loader, device)
    names = {index: name for name, index in label_map.items()}
    rows = []
    for video, probs in zip(scores["video_ids"], scores["probs"], strict=True):
        confidence, index = probs.max(dim=0)
        rows.append({"video": video, "class": names[int(index)], "class_index": int(index),
                     "confidence": round(float(confidence), 6)})
        log.info("%s: %s (confidence %.4f)", video, names[int(index)], float(confidence))
    with (out / CSV_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["video", "class", "class_index", "confidence"])
        writer.writeheader()
        writer.writerows(rows)
    (out / JSON_FILE).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    log.info("Predictions written to %s and %s", out / CSV_FILE, out / JSON_FILE)
    return rows


def run(cfg: ExperimentConfig) -> int:
    from .action_errors import run_reported

    status = StatusWriter(results_dir(cfg, "inference"))
    code, rows = run_reported(status, "Inference", lambda: infer(cfg))
    if code:
        return code
    status.write(SUCCESS, f"Inference finished: {len(rows)} videos", kpi={"num_videos": len(rows)})
    return 0
