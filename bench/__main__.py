"""Run every benchmark and print its figures as ratios measured side by side.

    python -m bench            # all
    python -m bench cli_startup training
"""
from __future__ import annotations

import importlib
import sys

SUITES = ("cli_startup", "data_loading", "training", "automl")


def main(argv: list[str]) -> int:
    names = argv or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    print(f"{'benchmark':<64} {'value':>12} {'baseline':>12} {'ratio':>8}  {'unit':<12} goal")
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            print(f"{name:<64} (not available)")
            continue
        print(f"# {name}", file=sys.stderr, flush=True)
        for row in module.run():
            # goal: of the ratio ("<= 0.60"), or of the value when it says so ("value <= 1")
            print(f"{row['name']:<64} {row['value']:>12.3f} {row['baseline']:>12.3f} {row['ratio']:>8.2f}  "
                  f"{row['unit']:<12} {row.get('goal', '')}".rstrip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
