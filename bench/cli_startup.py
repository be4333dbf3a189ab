"""Cold-start wall time of `skillbank validate` against `python -c pass`, interleaved in one run."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 15


def _wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def run() -> list[dict]:
    skillbank = Path(sys.executable).with_name("skillbank")
    with tempfile.TemporaryDirectory() as tmp:
        overrides = Path(tmp) / "overrides.json"
        overrides.write_text(json.dumps({
            "dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test",
            "num_epochs": 3, "train.optim.lr": 0.001, "model.backbone": "resnet_34",
        }))
        validate = [str(skillbank), "validate", "tao-train-action-recognition", "train", str(overrides)]
        bare = [sys.executable, "-c", "pass"]
        _wall(validate), _wall(bare)  # warm the page cache for both
        ours, base = [], []
        for _ in range(ROUNDS):  # interleaved so machine noise hits both alike
            ours.append(_wall(validate))
            base.append(_wall(bare))
    value, baseline = statistics.median(ours), statistics.median(base)
    return [{"name": "skillbank validate cold start vs python -c pass (goal < 4x)", "value": value * 1000,
             "baseline": baseline * 1000, "ratio": value / baseline, "unit": "ms"}]
