"""Video-level classification metrics (pure; no torch): accuracy, mean class accuracy, confusion matrix."""
from __future__ import annotations

from collections.abc import Sequence


def classification_metrics(labels: Sequence[int], predictions: Sequence[int], class_names: Sequence[str]) -> dict:
    """accuracy (top-1 over videos), m_accuracy (mean of per-class accuracy over classes with videos),
    per_class_accuracy (None for a class without videos) and confusion_matrix (rows: true, columns: predicted)."""
    n = len(class_names)
    matrix = [[0] * n for _ in range(n)]
    for true, pred in zip(labels, predictions, strict=True):
        matrix[int(true)][int(pred)] += 1
    total = len(labels)
    correct = sum(matrix[i][i] for i in range(n))
    per_class = {}
    for i, name in enumerate(class_names):
        count = sum(matrix[i])
        per_class[name] = matrix[i][i] / count if count else None
    present = [v for v in per_class.values() if v is not None]
    return {
        "accuracy": correct / total if total else 0.0,
        "m_accuracy": sum(present) / len(present) if present else 0.0,
        "per_class_accuracy": per_class,
        "confusion_matrix": {"labels": list(class_names), "matrix": matrix},
        "num_videos": total,
    }


def plot_confusion_matrix(confusion: dict, path) -> None:
    """Write the confusion matrix as a PNG (matplotlib, headless Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = confusion["labels"], confusion["matrix"]
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
        ax.set_title("Confusion matrix")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
