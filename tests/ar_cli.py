"""Helpers of the action-recognition entry-point tests: run the CLI in-process on TAO's templates, small and fast."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCES = REPO / "skills" / "models" / "tao-train-action-recognition" / "references"
TAO_TEMPLATES = REPO / "tests" / "fixtures" / "tao" / "reference"  # TAO's own templates, kept as fixtures

# Keys overridden to keep tests fast, and why:
#   model.input_width/height=32 and crop_smaller_edge=32: the sample frames are 32x32 (the 224 default
#     costs ~50x the compute); of_seq_length=3: the default 10 only makes flow inputs wider;
#   dataset.workers=0: no worker processes to start per run; batch_size=8: 2 steps per epoch on 16 videos.
TINY = [
    "model.input_width=32", "model.input_height=32", "dataset.augmentation_config.crop_smaller_edge=32",
    "model.of_seq_length=3", "dataset.workers=0", "dataset.batch_size=8",
]


def template(action: str) -> Path:
    """TAO's own spec template of ``action`` (tests/fixtures/tao/reference)."""
    return TAO_TEMPLATES / f"spec_template_{action}.yaml"


def run_cli(action: str, *overrides: str, spec: Path | None = None) -> int:
    from skillbank.runtime.action_recognition.entrypoint import main

    return main([action, "-e", str(spec or template(action)), *overrides])


def data_paths(sample_data: Path) -> list[str]:
    return [f"dataset.train_dataset_dir={sample_data / 'train'}", f"dataset.val_dataset_dir={sample_data / 'test'}",
            "dataset.label_map={catch: 0, smile: 1}"]
