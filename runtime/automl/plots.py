"""PNG plots of an AutoML history (matplotlib, Agg backend: no display needed).

``objective.png``: the objective of every finished trial in trial order, the
best-so-far line, the baseline marked, pruned trials at their last
intermediate value (hollow). ``param_<name>.png``: each hyperparameter against
the objective (log x axis for log-scale parameters, categories as positions).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from skillbank.runtime.automl.workspace import PLOTS_DIR


def write_plots(workspace: Path, rows: list[dict[str, Any]], space: list[dict[str, Any]], *, metric: str,
                direction: str) -> list[Path]:
    """Write every plot under ``<workspace>/plots``; returns their paths.

    Figures are drawn without pyplot (no GUI backend, no global figure state), which also spares the run
    pyplot's import at its end.
    """
    from matplotlib.figure import Figure

    folder = Path(workspace) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = [_objective(Figure(figsize=(7, 4)), folder, rows, metric, direction)]
    for spec in space:
        written.append(_parameter(Figure(figsize=(6, 4)), folder, rows, spec, metric))
    return written


def _objective(fig: Any, folder: Path, rows: list[dict[str, Any]], metric: str, direction: str) -> Path:
    ax = fig.subplots()
    done = [r for r in rows if r["state"] == "COMPLETE" and _finite(r["value"])]
    pruned = [r for r in rows if r["state"] == "PRUNED" and _finite(r["last_intermediate"])]
    failed = [r for r in rows if r["state"] == "FAIL"]
    if done:
        ax.scatter([r["trial"] for r in done], [r["value"] for r in done], color="tab:blue", zorder=3,
                   label=f"{metric} (complete)")
        best, xs, ys = None, [], []
        for r in sorted(done, key=lambda r: r["trial"]):
            if best is None or (r["value"] > best if direction == "maximize" else r["value"] < best):
                best = r["value"]
            xs.append(r["trial"])
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:green", label="best so far")
    if pruned:
        ax.scatter([r["trial"] for r in pruned], [r["last_intermediate"] for r in pruned], facecolors="none",
                   edgecolors="tab:orange", zorder=3, label="pruned (last intermediate)")
    for r in rows:
        if r["baseline"] and r["state"] == "COMPLETE" and _finite(r["value"]):
            ax.axhline(r["value"], color="grey", linestyle="--", linewidth=1, label="baseline")
            break
    if failed:
        ax.scatter([r["trial"] for r in failed], [_floor(done)] * len(failed), marker="x", color="tab:red",
                   zorder=3, label="failed")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(f"AutoML: {metric} per trial ({direction})")
    ax.grid(alpha=0.3)
    if done or pruned or failed:
        ax.legend(loc="best", fontsize="small")
    path = folder / "objective.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _parameter(fig: Any, folder: Path, rows: list[dict[str, Any]], spec: dict[str, Any], metric: str) -> Path:
    name = spec["name"]
    done = [r for r in rows if r["state"] == "COMPLETE" and _finite(r["value"]) and name in r["values"]]
    ax = fig.subplots()
    if spec.get("kind") == "categorical":
        labels = [str(c) for c in spec.get("choices", [])]
        index = {label: i for i, label in enumerate(labels)}
        xs = [index.get(str(r["values"][name]), -1) for r in done]
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right")
    else:
        xs = [r["values"][name] for r in done]
        if spec.get("log"):
            ax.set_xscale("log")
    colors = ["grey" if r["baseline"] else "tab:blue" for r in done]
    ax.scatter(xs, [r["value"] for r in done], c=colors, zorder=3)
    for x, r in zip(xs, done, strict=True):
        ax.annotate(f"#{r['trial']}", (x, r["value"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(name)
    ax.set_ylabel(metric)
    ax.set_title(f"{name} vs {metric} (grey: baseline)")
    ax.grid(alpha=0.3)
    path = folder / f"param_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _floor(done: list[dict[str, Any]]) -> float:
    return min((r["value"] for r in done), default=0.0)
