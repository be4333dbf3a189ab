"""`make demo` (``python -m skillbank.demo``): the whole pipeline on a fresh machine, through generated runners.

1. the sample data set into ``demo-output/data``;
2. a train runner generated for the local platform: the AutoML policy routes
   it to the AutoML engine (tao-run-automl), which runs a small study
   (``DEMO_AUTOML`` below: a baseline plus a few trials, a few epochs, 32x32);
3. evaluate, inference and export runners, each with the best trial's train
   job as parent, so they use its exact checkpoint and its model settings
   (input size, label map ...: the job SDK takes them from the parent);
4. a summary: baseline vs best accuracy, the chosen hyperparameters, and where
   the checkpoint, the ONNX file, predictions, plots and logs are.

Everything (job store, results, runners) stays under ``demo-output/``; a
second ``make demo`` resumes the same study (already finished: no retraining)
and runs evaluate/inference/export again.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from skillbank.runtime.errors import SkillbankError

SKILL = "tao-train-action-recognition"
CLASSES = ("catch", "smile")
# Small enough for a few minutes on 2 CPU cores: the baseline + 3 trials, 4 epochs each, two at a time.
DEMO_AUTOML = {"algorithm": "bayesian", "max_trials": 4, "max_epochs": 4,  # the runner's --algorithm ... options
               "max_concurrent": 2}  # an engine option (--automl-option max_concurrent=2)


class DemoError(SkillbankError, RuntimeError):
    """A step of the demo that failed; the message says which and where its output is."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="folder for everything the demo writes")
    parser.add_argument("--trials", type=int, default=DEMO_AUTOML["max_trials"],
                        help="AutoML trials, the baseline included")
    parser.add_argument("--epochs", type=int, default=DEMO_AUTOML["max_epochs"], help="epochs per trial")
    args = parser.parse_args(argv)
    try:
        summary = run_demo(Path(args.output), trials=args.trials, epochs=args.epochs)
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0 if summary["best_accuracy"] >= summary["baseline_accuracy"] else 1


def run_demo(out: Path, *, trials: int, epochs: int) -> dict[str, Any]:
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    out = out.absolute()
    started = time.monotonic()
    # The demo keeps its job store and results to itself (and runners read these from the environment).
    os.environ["SKILLBANK_STATE_DIR"] = str(out / "state")
    os.environ["SKILLBANK_RESULTS_ROOT"] = str(out / "results")
    data = out / "data"
    step(f"1/5 sample data set -> {data}")
    make_sample_data(data, classes=CLASSES, videos_per_class=8, frames=16, size=(32, 32), seed=0, overwrite=True)

    train_overrides = {
        "dataset.train_dataset_dir": str(data / "train"),
        "dataset.val_dataset_dir": str(data / "test"),
        "dataset.label_map": {name: i for i, name in enumerate(CLASSES)},
        # 32x32 frames: crop from a 32-pixel smaller edge (the template's 256 would crop a tiny patch),
        # several clips per video and batch 8 so that a few epochs learn the motion.
        "dataset.batch_size": 8,
        "dataset.clips_per_video": 4,
        "dataset.workers": 0,
        "dataset.augmentation_config.crop_smaller_edge": 32,
        "model.input_width": 32,
        "model.input_height": 32,
        "train.num_epochs": epochs,
        # Keep the best checkpoint of each train job (by val_acc) and only the newest periodic one (for
        # resuming), not one file per epoch: the study's jobs would otherwise keep ~1.4 GB of checkpoints.
        "train.checkpointer.enable_topk": True,
        "train.checkpointer.replace_periodic": True,
    }
    automl_options = {**DEMO_AUTOML, "max_trials": trials, "max_epochs": epochs}
    step(f"2/5 train through the AutoML route: {automl_options['algorithm']}, {trials} trials "
         f"(baseline included), {epochs} epochs each")
    train = run_runner(out, "train", train_overrides, automl=automl_options)
    automl = train.get("automl") or {}
    if automl.get("state") != "finished" or not automl.get("best"):
        raise DemoError(f"the AutoML study did not finish: {json.dumps(automl, default=str)[:2000]}")
    best, baseline = automl["best"], automl["baseline"] or {}
    best_job = best["train_job"]

    # The checkpoint and the model settings (input size, label map ...) come from the parent train job.
    step(f"3/5 evaluate the best checkpoint (trial {best['trial']}, train job {best_job})")
    evaluate = run_runner(out, "evaluate", {"evaluate.test_dataset_dir": str(data / "test"), "dataset.workers": 0},
                          parent=best_job)
    step("4/5 inference on unlabelled videos")
    inference = run_runner(out, "inference", {"inference.inference_dataset_dir": str(data / "inference"),
                                              "dataset.workers": 0}, parent=best_job)
    step("5/5 export to ONNX")
    export = run_runner(out, "export", {}, parent=best_job)

    results = {name: Path(job["results_dir"]) for name, job in
               (("evaluate", evaluate), ("inference", inference), ("export", export))}
    eval_results = json.loads(Path(evaluate["main_output"]).read_text())
    if not export.get("main_output"):
        raise DemoError(f"export wrote no .onnx file under {results['export']}")
    files = automl.get("files") or {}
    return {
        "metric": automl["metric"],
        "algorithm": automl["algorithm"],
        "trials": automl["finished"],
        "counts": automl["counts"],
        "baseline_accuracy": baseline.get("value"),
        "baseline_values": baseline.get("values"),
        "best_accuracy": best["value"],
        "best_trial": best["trial"],
        "hyperparameters": best["values"],
        "best_train_job": best_job,
        "checkpoint": best["checkpoint"],
        "evaluate_accuracy": eval_results.get("accuracy"),
        "onnx": export["main_output"],
        "predictions": inference["main_output"],
        "inference_right": _inference_right(Path(inference["main_output"]), data / "inference_labels.csv"),
        "workspace": files.get("workspace"),
        "best_rec": files.get("best_rec"),
        "history": files.get("history_csv"),
        "plots": files.get("plot_files") or [files.get("plots")],
        "logs": {"train (best trial)": str(Path(best["checkpoint"]).parent.parent / "log.txt"),
                 **{name: str(path / "log.txt") for name, path in results.items()}},
        "runners": str(out / "runners"),
        "minutes": round((time.monotonic() - started) / 60, 1),
    }


def _inference_right(predictions: Path, answers: Path) -> str:
    """"7/8": inference's predicted classes against the sample set's answers (inference_labels.csv)."""
    import csv

    with answers.open() as handle:
        truth = {row["video"]: row["class"] for row in csv.DictReader(handle)}
    with predictions.open() as handle:
        rows = list(csv.DictReader(handle))
    return f"{sum(truth.get(row['video']) == row['class'] for row in rows)}/{len(rows)}"


def run_runner(out: Path, action: str, overrides: dict[str, Any], *, parent: str | None = None,
               automl: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate the action's runner (local platform), run it, and return its JSON summary."""
    from skillbank.generator.runner_gen import generate_runner

    folder = out / "runners"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{action}_overrides.json").write_text(json.dumps(overrides, indent=2) + "\n")
    generated = generate_runner(SKILL, action, overrides, parent_job_id=parent, platform="local",
                                results_root=str(out / "results"), overrides_label=f"{action}_overrides.json",
                                output_name=f"{action}_runner.py", automl_options=automl)
    if action == "train" and generated.route != "automl":
        raise DemoError(f"the train runner routes to {generated.route!r}, not AutoML: {generated.policy}")
    runner = folder / f"{action}_runner.py"
    runner.write_text(generated.text)
    print(f"   runner: {runner} (route: {generated.route})", flush=True)
    # Progress lines go to stderr (shown as they come); stdout carries the runner's JSON summary.
    result = subprocess.run([sys.executable, str(runner), "--format", "json"], stdout=subprocess.PIPE, text=True,
                            check=False)
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise DemoError(f"{action} runner printed no JSON summary (exit {result.returncode}): "
                        f"{result.stdout[-2000:]}") from exc
    if result.returncode != 0:
        raise DemoError(f"{action} runner exited {result.returncode}: {json.dumps(summary, default=str)[:3000]}")
    return summary


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def format_summary(s: dict[str, Any]) -> str:
    def values(v: dict[str, Any] | None) -> str:
        return ", ".join(f"{k}={x:.4g}" if isinstance(x, float) else f"{k}={x}" for k, x in (v or {}).items())

    verdict = "best >= baseline" if s["best_accuracy"] >= s["baseline_accuracy"] else "BEST BELOW BASELINE"
    lines = [
        "",
        "== demo summary",
        f"AutoML ({s['algorithm']}, {s['trials']} trials: {s['counts'].get('COMPLETE', 0)} complete, "
        f"{s['counts'].get('PRUNED', 0)} pruned, {s['counts'].get('FAIL', 0)} failed) on the sample data, "
        f"metric {s['metric']} (evaluate job on each trial's checkpoint):",
        f"  baseline accuracy: {s['baseline_accuracy']:.3f}%   ({values(s['baseline_values'])})",
        f"  best accuracy:     {s['best_accuracy']:.3f}%   (trial {s['best_trial']}: {values(s['hyperparameters'])})"
        f"   [{verdict}]",
        f"  evaluate runner on the best checkpoint: accuracy {s['evaluate_accuracy']:.3f}%",
        f"  best checkpoint:   {s['checkpoint']}",
        f"  ONNX file:         {s['onnx']}",
        f"  predictions:       {s['predictions']}  ({s['inference_right']} videos right)",
        f"  AutoML workspace:  {s['workspace']}  (skillbank automl status <workspace>)",
        f"  best_rec.json:     {s['best_rec']}",
        f"  history:           {s['history']}",
        "  plots:             " + "\n                     ".join(map(str, s["plots"])),
        "  logs:              " + "\n                     ".join(f"{k}: {v}" for k, v in s["logs"].items()),
        f"  runners:           {s['runners']}",
        f"  took {s['minutes']} min",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
