"""Benchmarks (`make bench`): each module's run() returns rows measured side by side in one run."""
