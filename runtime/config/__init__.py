"""Experiment-config dataclasses (the source of truth for schemas and runtime)."""
