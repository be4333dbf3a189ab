"""Evaluation metrics as TAO computes them (pure; numpy, no torch): confusion matrix, accuracy, m_accuracy.

TAO's ``compute_metrics`` (``model/pl_ar_model.py``), reproduced to the last bit:

- the confusion matrix is [C, C] over every class of the label map, row = true label, column = prediction;
- ``accuracy`` = 100 * trace / total, in percent (float64);
- ``m_accuracy`` = the mean over ALL C classes of the per-class recall in percent; per-class values are
  float32 as TAO stores them, and a class without samples counts as 0;
- both are rounded with ``round(x, 3)`` for status.json (``kpi``) and for the printed totals.

``tao_report_lines`` gives the block TAO prints after an evaluation.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RULE = "*" * 31


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """[C, C] int32 counts; row = true label, column = prediction."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int32)
    for true, pred in zip(labels, predictions, strict=True):
        matrix[int(true), int(pred)] += 1
    return matrix


def class_percentages(matrix: np.ndarray) -> np.ndarray:
    """Per-class recall in percent, float32 as TAO keeps it (0 for a class without samples)."""
    rows = matrix.sum(axis=1)
    out = np.zeros(matrix.shape[0], dtype=np.float32)
    for i, total in enumerate(rows):
        if total:
            out[i] = np.float32(float(np.float32(matrix[i, i])) / float(total) * 100.0)
    return out


def tao_kpi(matrix: np.ndarray) -> dict[str, float]:
    """``{"accuracy", "m_accuracy"}`` in percent, rounded to 3 decimals, exactly as TAO reports them."""
    total = int(matrix.sum())
    trace = float(np.trace(matrix))
    accuracy = trace / total * 100.0 if total else 0.0
    m_accuracy = float(class_percentages(matrix).sum(dtype=np.float32)) / matrix.shape[0]
    return {"accuracy": round(accuracy, 3), "m_accuracy": round(m_accuracy, 3)}


def tao_report_lines(matrix: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """The lines TAO prints after an evaluation (per-class percentages, then the rounded totals)."""
    kpi = tao_kpi(matrix)
    lines = [RULE]
    lines += [f"{name:<14}{pct:.4}" for name, pct in zip(class_names, class_percentages(matrix), strict=True)]
    lines += [RULE, f"Total accuracy: {kpi['accuracy']}", f"Average class accuracy: {kpi['m_accuracy']}"]
    return lines


def plot_confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]], path, title: str) -> None:
    """Write the confusion matrix as a PNG (matplotlib, headless Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        peak = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center",
                        color="white" if peak and value > peak / 2 else "black")
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
