"""``row()``: one benchmark row as ``python -m bench`` prints it (value, baseline, their ratio, unit, goal)."""
from __future__ import annotations

from typing import Any


def row(name: str, value: float, baseline: float, unit: str, goal: str = "") -> dict[str, Any]:
    """A row of ``name``; ``goal`` is of the ratio (``"<= 0.60"``), or of the value when it says so
    (``"value <= 1"``); a zero baseline gives a NaN ratio rather than a ZeroDivisionError."""
    ratio = value / baseline if baseline else float("nan")
    return {"name": name, "value": float(value), "baseline": float(baseline), "ratio": ratio, "unit": unit,
            "goal": goal}
