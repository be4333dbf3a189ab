"""AutoML efficiency: hyperband and ASHA against random search, same trials, same seed, on the sample data.

Each study runs real train jobs through the job SDK (local platform) on the
sample data set (32x32, two classes): the baseline plus ``TRIALS - 1``
sampled trials, ``MAX_EPOCHS`` epochs for a fully trained trial, rungs of
``REDUCTION_FACTOR``. Random search trains every trial fully; hyperband and
ASHA sample the same way (random, same seed) but stop trials at rungs.

The studies optimise ``val_acc`` with the demo's learnable settings (32x32
crops from a 32-pixel edge, 4 clips per video, batch 8), so accuracy moves
from epoch to epoch and the pruners have something to compare. Reported as
ratios to random: total epochs trained (lower is cheaper), the best final
``val_acc`` among fully trained trials (higher is better), and wall time
(each rung segment is a new train job, so start-up costs count at this
scale).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

SKILL = "tao-train-action-recognition"
TRIALS = 6
MAX_EPOCHS = 4
REDUCTION_FACTOR = 2
CONCURRENT = 2
METRIC = "val_acc"


def _study(algorithm: str, root: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from skillbank.runtime.automl.engine import run_automl

    started = time.perf_counter()
    summary = run_automl(SKILL, overrides, algorithm=algorithm, metric=METRIC, max_trials=TRIALS,
                         max_epochs=MAX_EPOCHS, reduction_factor=REDUCTION_FACTOR, max_concurrent=CONCURRENT,
                         workspace=root / f"ws-{algorithm}", seed=7, poll_interval=0.5)
    summary["wall_s"] = time.perf_counter() - started
    return summary


def run() -> list[dict]:
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    saved = {k: os.environ.get(k) for k in ("SKILLBANK_STATE_DIR", "SKILLBANK_RESULTS_ROOT", "OMP_NUM_THREADS")}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-automl-") as tmp:
        root = Path(tmp)
        os.environ.update({"SKILLBANK_STATE_DIR": str(root / "state"),
                           "SKILLBANK_RESULTS_ROOT": str(root / "results"),
                           "OMP_NUM_THREADS": "1"})  # concurrent trials share the cores
        try:
            data = make_sample_data(root / "data", videos_per_class=8, frames=16, size=(32, 32), seed=0)
            overrides = {
                "dataset.train_dataset_dir": str(data / "train"), "dataset.val_dataset_dir": str(data / "test"),
                "dataset.label_map": {"catch": 0, "smile": 1}, "dataset.batch_size": 8, "dataset.workers": 0,
                "dataset.clips_per_video": 4, "dataset.augmentation_config.crop_smaller_edge": 32,
                "model.input_width": 32, "model.input_height": 32,
            }
            studies = {name: _study(name, root, overrides) for name in ("random", "hyperband", "asha")}
            for summary in studies.values():  # read while the workspaces still exist
                summary["best_val_acc"] = _best_accuracy(summary)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    base = studies["random"]
    for name in ("hyperband", "asha"):
        ours = studies[name]
        pruned = ours["counts"].get("PRUNED", 0)
        rows.append(_row(f"{name} vs random: epochs trained ({TRIALS} trials, {pruned} pruned)",
                         ours["epochs_trained"], base["epochs_trained"], "epochs"))
        rows.append(_row(f"{name} vs random: best val_acc of complete trials", ours["best_val_acc"],
                         base["best_val_acc"], "val_acc"))
        if METRIC != "val_acc":
            rows.append(_row(f"{name} vs random: best {METRIC} (objective)", _best(ours), _best(base), METRIC))
        rows.append(_row(f"{name} vs random: wall time", ours["wall_s"], base["wall_s"], "s"))
    return rows


def _best_accuracy(summary: dict[str, Any]) -> float:
    """The highest final val_acc of a fully trained trial (from the study's history)."""
    import json

    rows = json.loads(Path(summary["files"]["history_json"]).read_text())
    values = [r["kpi"]["val_acc"] for r in rows if r["state"] == "COMPLETE" and "val_acc" in (r.get("kpi") or {})]
    return max(values) if values else float("nan")


def _best(summary: dict[str, Any]) -> float:
    best = summary.get("best") or {}
    return float(best["value"]) if best.get("value") is not None else float("nan")  # no complete trial


def _row(name: str, value: float, baseline: float, unit: str) -> dict[str, Any]:
    ratio = value / baseline if baseline else float("nan")
    return {"name": name, "value": float(value), "baseline": float(baseline), "ratio": ratio, "unit": unit}
