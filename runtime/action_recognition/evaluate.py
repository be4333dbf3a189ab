"""``action_recognition evaluate``: accuracy, mean class accuracy, per-class accuracy, confusion matrix."""
from __future__ import annotations

import json
import logging

from skillbank.runtime.config.action_recognition import ExperimentConfig

from .spec_io import results_dir
from .status_log import SUCCESS, StatusWriter

log = logging.getLogger("skillbank.action_recognition")
RESULTS_FILE = "results.json"
CONFUSION_PNG = "confusion_matrix.png"


def evaluate(cfg: ExperimentConfig) -> dict:
    """Evaluate ``evaluate.checkpoint`` on ``evaluate.test_dataset_dir``; returns the metrics written."""
    from .data.datamodule import build_eval_dataset, build_eval_loader
    from .devices import torch_device
    from .eval_metrics import classification_metrics, plot_confusion_matrix
    from .trained_model import check_no_engine, load_trained_model
    from .video_scoring import score_videos

    e = cfg.evaluate
    check_no_engine("evaluate", e.trt_engine)
    out = results_dir(cfg, "evaluate")
    out.mkdir(parents=True, exist_ok=True)
    model, label_map = load_trained_model(cfg, e.checkpoint, "evaluate.checkpoint")
    dataset = build_eval_dataset(cfg, e.test_dataset_dir, e.video_eval_mode, e.video_num_segments,
                                 labelled=True, label_map=label_map, key="evaluate.test_dataset_dir")
    loader = build_eval_loader(cfg, dataset, batch_size=e.batch_size)
    device = torch_device(e.num_gpus, e.gpu_ids, "evaluate")
    log.info("Evaluating %s on %d videos of %s (video_eval_mode=%s)", e.checkpoint, len(dataset),
             e.test_dataset_dir, e.video_eval_mode)
    scores = score_videos(model, loader, device)
    names = [name for name, _ in sorted(label_map.items(), key=lambda kv: kv[1])]
    predictions = scores["probs"].argmax(dim=1).tolist()
    metrics = classification_metrics(scores["labels"], predictions, names)
    metrics.update(checkpoint=str(e.checkpoint), test_dataset_dir=str(e.test_dataset_dir),
                   video_eval_mode=e.video_eval_mode)
    (out / RESULTS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    plot_confusion_matrix(metrics["confusion_matrix"], out / CONFUSION_PNG)
    log.info("accuracy=%.4f m_accuracy=%.4f over %d videos", metrics["accuracy"], metrics["m_accuracy"],
             metrics["num_videos"])
    for name, acc in metrics["per_class_accuracy"].items():
        log.info("  %s: %s", name, "no videos" if acc is None else f"{acc:.4f}")
    log.info("confusion matrix (rows true, columns predicted; order %s): %s", names,
             metrics["confusion_matrix"]["matrix"])
    log.info("Results written to %s and %s", out / RESULTS_FILE, out / CONFUSION_PNG)
    return metrics


def run(cfg: ExperimentConfig) -> int:
    from .action_errors import run_reported

    status = StatusWriter(results_dir(cfg, "evaluate"))
    code, metrics = run_reported(status, "Evaluation", lambda: evaluate(cfg))
    if code:
        return code
    kpi = {k: metrics[k] for k in ("accuracy", "m_accuracy", "per_class_accuracy")}
    status.write(SUCCESS, "Evaluation finished", kpi=kpi)
    return 0
