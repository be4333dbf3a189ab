"""``action_recognition evaluate``: TAO's accuracy and m_accuracy, the confusion matrix, per-video results.

Counted as TAO counts (``eval_metrics``): in ``center`` and ``all`` mode one count per clip (argmax of
its logits); in ``conv`` mode one count per video, from the mean of its clips' softmax
probabilities. (TAO pools ``conv`` clips only within a batch, so its figure depends on
``evaluate.batch_size`` and on directory order; at a batch holding every clip of a video it is this
one.) status.json gets TAO's "Test metrics generated." line with ``kpi`` {accuracy, m_accuracy} in
percent, rounded to 3 decimals; stdout gets TAO's printed block. ``results.json`` adds per-class and
per-video figures under names that say what they are.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from skillbank.runtime.config.action_recognition import ExperimentConfig

from .spec_io import results_dir

log = logging.getLogger("skillbank.action_recognition")
RESULTS_FILE = "results.json"
CONFUSION_PNG = "confusion_matrix.png"
METRICS_MESSAGE = "Test metrics generated."


def evaluate(cfg: ExperimentConfig) -> dict[str, Any]:
    """Evaluate ``evaluate.checkpoint`` on ``evaluate.test_dataset_dir``; returns the results written."""
    import numpy as np

    from .data.datamodule import build_eval_dataset, build_eval_loader
    from .data.normaliser import ClipNormaliser
    from .devices import torch_device
    from .eval_metrics import class_percentages, confusion_matrix, plot_confusion_matrix, tao_kpi, tao_report_lines
    from .trained_model import check_no_engine, load_trained_model
    from .video_scoring import pool_videos, score_clips

    e = cfg.evaluate
    check_no_engine("evaluate", e.trt_engine)
    out = results_dir(cfg, "evaluate")
    out.mkdir(parents=True, exist_ok=True)
    # bad means/stds (dataset.augmentation_config) fail now, before the checkpoint is read or the data scanned
    normalise = ClipNormaliser.from_config(cfg)
    model, label_map = load_trained_model(cfg, e.checkpoint, "evaluate.checkpoint")
    dataset = build_eval_dataset(cfg, e.test_dataset_dir, e.video_eval_mode, e.video_num_segments,
                                 labelled=True, label_map=label_map, key="evaluate.test_dataset_dir")
    loader = build_eval_loader(cfg, dataset, batch_size=e.batch_size)
    device = torch_device(e.num_gpus, e.gpu_ids, "evaluate")
    log.info("Evaluating %s on %d clips of %d videos of %s (video_eval_mode=%s)", e.checkpoint, len(dataset),
             len(dataset.videos), e.test_dataset_dir, e.video_eval_mode)
    clips = score_clips(model, loader, device, normalise)
    videos = pool_videos(clips)
    names = [name for name, _ in sorted(label_map.items(), key=lambda kv: kv[1])]
    per_video = e.video_eval_mode == "conv"
    if per_video:
        matrix = confusion_matrix(videos.labels, videos.predictions(), len(names))
    else:
        matrix = confusion_matrix(clips.labels, clips.predictions(), len(names))
    kpi = tao_kpi(matrix)
    video_matrix = confusion_matrix(videos.labels, videos.predictions(), len(names))
    clip_predictions: dict[str, list[str]] = {}
    for video, pred in zip(clips.video_ids, clips.predictions(), strict=True):
        clip_predictions.setdefault(video, []).append(names[pred])
    results = {
        **kpi,
        "counted": "videos" if per_video else "clips",
        "per_class_accuracy": {n: round(float(p), 3) for n, p in zip(names, class_percentages(matrix), strict=True)},
        "confusion_matrix": {"labels": names, "matrix": matrix.tolist()},
        "num_clips": len(clips.video_ids),
        "num_videos": len(videos.video_ids),
        "video_accuracy": tao_kpi(video_matrix)["accuracy"],
        "video_confusion_matrix": {"labels": names, "matrix": video_matrix.tolist()},
        "per_video": [
            {"video": video, "class": names[label], "predicted_class": names[int(np.argmax(probs))],
             "confidence": round(float(probs.max()), 6), "num_clips": count,
             "clip_predictions": clip_predictions[video]}
            for video, label, count, probs in zip(videos.video_ids, videos.labels, videos.num_clips,
                                                  videos.probs.numpy(), strict=True)
        ],
        "checkpoint": str(e.checkpoint),
        "test_dataset_dir": str(e.test_dataset_dir),
        "video_eval_mode": e.video_eval_mode,
        "units": "percent",
    }
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    title = f"Confusion matrix ({results['counted']}, video_eval_mode={e.video_eval_mode})"
    plot_confusion_matrix(names, matrix.tolist(), out / CONFUSION_PNG, title)
    for line in tao_report_lines(matrix, names):  # TAO's printed block, as TAO prints it
        print(line, flush=True)
    log.info("accuracy=%.3f m_accuracy=%.3f (percent, over %d %s); per-video accuracy %.3f over %d videos",
             kpi["accuracy"], kpi["m_accuracy"], int(matrix.sum()), results["counted"], results["video_accuracy"],
             results["num_videos"])
    log.info("confusion matrix (rows true, columns predicted; order %s): %s", names, matrix.tolist())
    log.info("Results written to %s and %s", out / RESULTS_FILE, out / CONFUSION_PNG)
    return results


def run(cfg: ExperimentConfig) -> int:
    """Entry of the ``evaluate`` action: exit 0 on success, 1 on failure, 2 on bad settings."""
    from .action_errors import run_action
    from .status_log import RUNNING

    def body(status) -> dict[str, Any]:
        results = evaluate(cfg)
        status.write(RUNNING, METRICS_MESSAGE, kpi={"accuracy": results["accuracy"],
                                                   "m_accuracy": results["m_accuracy"]})
        return results

    code, _ = run_action(cfg, "evaluate", body)
    return code
