"""The models whose packaged schemas are generated: skill folder -> config dataclass."""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSource:
    """Where a model skill's schemas come from."""

    skill: str  # folder name under skills/models/
    config: str  # "module:Class" of the experiment-config dataclass
    actions: tuple[str, ...]
    common_sections: tuple[str, ...]
    network_arch: str
    core_module: str
    action_reads: str = ""  # "module:NAME" of {action: fields it reads}; "" when not declared

    def config_class(self) -> type:
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)

    def reads(self) -> dict[str, tuple[str, ...]]:
        """The fields each action reads (empty when the model does not declare them)."""
        if not self.action_reads:
            return {}
        module, _, name = self.action_reads.partition(":")
        return dict(getattr(importlib.import_module(module), name))


MODELS = (
    ModelSource(
        skill="tao-train-action-recognition",
        config="skillbank.runtime.config.action_recognition:ExperimentConfig",
        actions=("train", "evaluate", "inference", "export"),
        common_sections=("model_name", "encryption_key", "results_dir", "wandb", "model", "dataset", "train"),
        network_arch="action_recognition",
        core_module="action_recognition",
        action_reads="skillbank.runtime.config.action_recognition:ACTION_READS",
    ),
)
