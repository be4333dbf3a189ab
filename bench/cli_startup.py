"""Cold start of `skillbank validate` against `python -c pass`, interleaved in one run (goal: at most 2x).

How it is measured: the venv's own ``skillbank`` console script validates a five-key overrides file
of the model's train action; the baseline is the same venv's ``python -c pass``. Both run once to warm
the page cache and write bytecode caches (``PYTHONDONTWRITEBYTECODE`` is dropped: an installed package
has its caches), then ``ROUNDS`` times alternately, so machine noise hits both alike; the row gives the
medians of wall time from process start to exit.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .rows import row

ROUNDS = 15
GOAL = 2.0  # issue 15, goal 3


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - start


def run() -> list[dict]:
    skillbank = Path(sys.executable).with_name("skillbank")
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        overrides = Path(tmp) / "overrides.json"
        overrides.write_text(json.dumps({
            "dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test",
            "num_epochs": 3, "train.optim.lr": 0.001, "model.backbone": "resnet_34",
        }))
        validate = [str(skillbank), "validate", "tao-train-action-recognition", "train", str(overrides)]
        bare = [sys.executable, "-c", "pass"]
        _wall(validate, env), _wall(bare, env)  # warm the page cache and the bytecode caches of both
        ours, base = [], []
        for _ in range(ROUNDS):  # interleaved so machine noise hits both alike
            ours.append(_wall(validate, env))
            base.append(_wall(bare, env))
    value, baseline = statistics.median(ours), statistics.median(base)
    return [row(f"skillbank validate cold start / python -c pass (goal <= {GOAL:g}x; medians of {ROUNDS})",
                value * 1000, baseline * 1000, "ms", goal=f"<= {GOAL:.1f}")]
