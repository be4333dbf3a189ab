"""``AutoMLOptions``: everything an AutoML run is told, in one frozen dataclass with its defaults and checks.

One home for the options: ``skillbank automl run`` builds it from its flags, ``skillbank generate`` (and
the MCP tools) embed the fields given in a runner as plain data (``AUTOML_OPTIONS``), the runner turns
that data back into an ``AutoMLOptions`` with :meth:`AutoMLOptions.from_dict`, and the engine reads
nothing else. A value that cannot be used fails when the object is built: one :class:`AutoMLError`
line naming the option, the value and what is allowed. What depends on the skill (``max_epochs``
from its template, a grid's size, whether ``metric`` needs an evaluate action) is resolved by the
engine when a run is prepared.

Pure: imports neither Optuna nor torch (the command line builds options on every call).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.runtime.automl.algorithms import DEFAULT_ALGORITHM, AlgorithmError, check_algorithm
from skillbank.runtime.errors import SkillbankError

KPI_METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")  # read from the train job's status.json
# Set by a generated runner from its own inputs (--platform, --platform-option, --results-root, --name,
# --tag): never embedded as AutoML options.
RUNNER_FIELDS = ("platform", "platform_options", "results_root", "job_name", "job_tags")
# Spelled as their own flags by `skillbank generate|run`; any other field is --automl-option KEY=VALUE.
BUDGET_FLAGS = ("algorithm", "max_trials", "max_epochs", "workspace")
DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


class AutoMLError(SkillbankError, RuntimeError):
    """A run that cannot start (bad options, a workspace holding another study)."""

    exit_code = 2


@dataclass(frozen=True)
class AutoMLOptions:
    """The options of one AutoML run (``run_automl``); every field has its default here and only here.

    Args:
        algorithm: bayesian, hyperband, asha, bohb, random or grid (``algorithms.py``).
        metric: the objective: ``accuracy``/``m_accuracy`` from an evaluate job on the trial's checkpoint,
            or a training KPI (``val_acc``, ``val_loss``, ``train_acc``, ``train_loss``).
        direction: maximize/minimize (max/min); None: minimise losses, maximise everything else.
        max_trials: trials in all, the baseline included.
        max_epochs: epochs of a fully trained trial; None: the overrides' ``train.num_epochs``, else the
            template's.
        min_epochs: the first rung (multi-fidelity algorithms).
        reduction_factor: hyperband/ASHA keep 1/N of the trials at each rung.
        max_concurrent: trials running at once.
        hyperparameters: schema leaves searched besides the schema's defaults.
        param_ranges: name -> custom range (``valid_min``, ``valid_max``, ``valid_options`` ...).
        override_disabled: allow parameters listed as AutoML-disabled.
        workspace: folder of the study, history, best_rec.json and plots; the same folder resumes.
            None: ``<results root>/automl/<skill>-<algorithm>-<hash of the overrides>``.
        storage: Optuna RDB URL shared by several workers (None: ``<workspace>/study.db``).
        study_name: the study's name inside ``storage`` (None: ``automl``).
        platform: where trial jobs run (local, docker, slurm, kubernetes).
        platform_options: the trial jobs' platform settings (slurm partition, gpus=0 ...).
        results_root: where the jobs' results folders go (None: the SDK's default).
        test_dataset: evaluate's test set (None: the train spec's ``dataset.val_dataset_dir``).
        baseline: run the base spec, no value changed, as trial 0.
        seed: the sampler's seed.
        poll_interval: seconds between looks at jobs that cannot be waited on (remote platforms) and
            between progress updates; the engine wakes at once when a local job ends.
        max_failures_in_a_row: stop after this many failed trials in a row with one cause.
        job_name: the name every trial job gets (``skillbank jobs list``).
        job_tags: tags every trial job gets.
    """

    algorithm: str = DEFAULT_ALGORITHM
    metric: str = "accuracy"
    direction: str | None = None
    max_trials: int = 6
    max_epochs: int | None = None
    min_epochs: int = 1
    reduction_factor: int = 3
    max_concurrent: int = 1
    hyperparameters: tuple[str, ...] = ()
    param_ranges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    override_disabled: bool = False
    workspace: str | None = None
    storage: str | None = None
    study_name: str | None = None
    platform: str = "local"
    platform_options: Mapping[str, Any] = field(default_factory=dict)
    results_root: str | None = None
    test_dataset: str | None = None
    baseline: bool = True
    seed: int = 0
    poll_interval: float = 1.0
    max_failures_in_a_row: int = 3
    job_name: str | None = None
    job_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalised once, here
        try:
            check_algorithm(self.algorithm)
        except AlgorithmError as exc:  # one wording for a bad name, as an option error (exit code 2)
            raise AutoMLError(str(exc)) from None
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise AutoMLError(f"metric={self.metric!r}; allowed: a metric name, e.g. accuracy or val_acc")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise AutoMLError(f"direction={self.direction!r}; allowed: maximize, minimize")
        for name in ("max_trials", "min_epochs", "max_concurrent", "max_failures_in_a_row"):
            _positive_int(name, getattr(self, name))
        if self.max_epochs is not None:
            _positive_int("max_epochs", self.max_epochs)
        if isinstance(self.reduction_factor, bool) or not isinstance(self.reduction_factor, int) \
                or self.reduction_factor < 2:
            raise AutoMLError(f"reduction_factor={self.reduction_factor!r}; allowed: an integer >= 2")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise AutoMLError(f"seed={self.seed!r}; allowed: an integer")
        if isinstance(self.poll_interval, bool) or not isinstance(self.poll_interval, (int, float)) \
                or not 0 < self.poll_interval <= 3600:
            raise AutoMLError(f"poll_interval={self.poll_interval!r}; allowed: seconds in (0, 3600]")
        set_(self, "poll_interval", float(self.poll_interval))
        for name in ("override_disabled", "baseline"):
            if not isinstance(getattr(self, name), bool):
                raise AutoMLError(f"{name}={getattr(self, name)!r}; allowed: true or false")
        set_(self, "hyperparameters", _names("hyperparameters", self.hyperparameters))
        if not isinstance(self.param_ranges, Mapping) or not all(
                isinstance(v, Mapping) for v in self.param_ranges.values()):
            raise AutoMLError(f"param_ranges={self.param_ranges!r}; allowed: parameter name -> range mapping, "
                              "e.g. {train.optim.lr: {valid_min: 0.0001, valid_max: 0.01}}")
        set_(self, "param_ranges", {str(k): dict(v) for k, v in self.param_ranges.items()})
        for name in ("workspace", "storage", "study_name", "results_root", "test_dataset"):
            set_(self, name, _path_text(name, getattr(self, name)))
        self._check_platform()
        self._check_labels()

    def _check_platform(self) -> None:
        from skillbank.runtime.sdk.platforms.options import check_platform_options

        try:
            checked = check_platform_options(self.platform, self.platform_options)
        except SkillbankError as exc:  # an unknown platform or option: the platform's own one line
            raise AutoMLError(str(exc)) from None
        object.__setattr__(self, "platform_options", checked)

    def _check_labels(self) -> None:
        from skillbank.runtime.sdk.job_labels import check_name, check_tags

        try:
            object.__setattr__(self, "job_name", check_name(self.job_name))
            object.__setattr__(self, "job_tags", tuple(check_tags(self.job_tags)))
        except SkillbankError as exc:
            raise AutoMLError(str(exc)) from None

    # -- derived values -----------------------------------------------------------------------------
    @property
    def resolved_direction(self) -> str:
        """``maximize``/``minimize``: as given, else minimise losses and maximise everything else."""
        if self.direction is None:
            return "minimize" if "loss" in self.metric else "maximize"
        return DIRECTIONS[self.direction]

    @property
    def needs_evaluate(self) -> bool:
        """Whether the objective comes from an evaluate job (not a KPI of the train job)."""
        return self.metric not in KPI_METRICS

    def replace(self, **changes: Any) -> AutoMLOptions:
        """A copy with ``changes`` (checked like a new object); unknown names are one AutoMLError line."""
        _refuse_unknown(changes, "option")
        return dataclasses.replace(self, **changes)

    # -- plain data (runners, request.json, MCP) ------------------------------------------------------
    def to_dict(self, *, changed_only: bool = False) -> dict[str, Any]:
        """The options as JSON-able data; ``changed_only`` keeps the fields that differ from the defaults."""
        defaults = AutoMLOptions()
        out = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if changed_only and value == getattr(defaults, item.name):
                continue
            out[item.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "AutoML options") -> AutoMLOptions:
        """Options from plain data (a runner's ``AUTOML_OPTIONS``, a request file, an MCP argument)."""
        if not isinstance(data, Mapping):
            raise AutoMLError(f"{where}: expected a mapping of option -> value, got {type(data).__name__}")
        _refuse_unknown(data, f"{where}: option")
        try:
            return cls(**dict(data))
        except AutoMLError as exc:  # a bad value: say which file or argument held it, as unknown names do
            raise AutoMLError(f"{where}: {exc}" if where else str(exc)) from None


def option_names() -> tuple[str, ...]:
    """Every option's name, in the dataclass's order."""
    return tuple(item.name for item in dataclasses.fields(AutoMLOptions))


def embeddable_names() -> tuple[str, ...]:
    """The options a generated runner embeds (the rest it sets from its own inputs: :data:`RUNNER_FIELDS`)."""
    return tuple(name for name in option_names() if name not in RUNNER_FIELDS)


def parse_option_items(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--automl-option KEY=VALUE`` items as a mapping (each value read as YAML: ``2``, ``val_acc``, ``[a, b]``).

    Only the names are checked here (AutoMLError for an unknown one); :class:`AutoMLOptions` checks the values.
    """
    given: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise AutoMLError(f"--automl-option {item!r}: expected KEY=VALUE, e.g. max_concurrent=2")
        from skillbank.runtime.yaml_io import safe_load  # yaml only when an option is given

        try:
            given[key.strip()] = safe_load(text) if text.strip() else None
        except Exception as exc:  # noqa: BLE001 - any YAML error is this one option's bad value
            raise AutoMLError(f"--automl-option {key.strip()}={text!r}: not a YAML value ({exc})") from None
    _refuse_unknown(given, "--automl-option")
    return given


def default_workspace(skill_name: str, algorithm: str, overrides: Mapping[str, Any],
                      results_root: str | os.PathLike | None) -> Path:
    """``<results root>/automl/<skill>-<algorithm>-<hash of the overrides>``: a rerun of the same request resumes."""
    from skillbank.runtime import settings

    root = str(results_root or settings.results_root())
    if root.startswith("s3://"):
        root = str(Path.cwd())
    digest = hashlib.sha256(json.dumps(dict(overrides), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return Path(root).expanduser() / "automl" / f"{skill_name}-{algorithm}-{digest}"


def _refuse_unknown(data: Mapping[str, Any], what: str) -> None:
    unknown = sorted(str(k) for k in data if k not in option_names())
    if unknown:
        raise AutoMLError(f"{what}(s) {', '.join(unknown)}: unknown; allowed: {', '.join(option_names())}")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutoMLError(f"{name}={value!r}; allowed: an integer >= 1")
    return value


def _names(name: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise AutoMLError(f"{name}={value!r}; allowed: a list of dotted schema keys")
    return tuple(n.strip() for item in items for n in item.split(",") if n.strip())


def _path_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise AutoMLError(f"{name}={value!r}; allowed: a non-empty text (a path, URL or name)")
    return value
