"""AutoML algorithm names -> Optuna sampler and pruner, the epoch budget plan, and trial parameters.

==========  =====================  ==========================================
name        sampler                pruner (epochs are the budget)
==========  =====================  ==========================================
bayesian    TPESampler (default)   none: every trial trains max_epochs
hyperband   RandomSampler          HyperbandPruner
asha        RandomSampler          SuccessiveHalvingPruner (asynchronous)
bohb        TPESampler             HyperbandPruner
random      RandomSampler          none
grid        GridSampler            none (the space discretised, see grid_points)
==========  =====================  ==========================================

Multi-fidelity algorithms judge a trial at the pruner's rungs
(``min_epochs * reduction_factor**k``); its plan's segments end there and at
``max_epochs``. A trial that survives a rung is promoted: its job goes on
past the gate it waits at (local platform, runtime/rung_gates.py), or its
next segment is a new train job that resumes from the exact checkpoint of
the previous one (trials.py).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from skillbank.runtime.automl.search_space import (
    ParamSpec,
    SearchSpaceError,
    apply_relations,
    decode,
    grid_points,
    raw_value,
)
from skillbank.runtime.errors import SkillbankError

ALGORITHMS = ("bayesian", "hyperband", "asha", "bohb", "random", "grid")
MULTI_FIDELITY = ("hyperband", "asha", "bohb")
DEFAULT_ALGORITHM = "bayesian"


class AlgorithmError(SkillbankError, ValueError):
    """An unknown algorithm or a budget it cannot run with."""

    exit_code = 2


@dataclass(frozen=True)
class BudgetPlan:
    """How many epochs a trial trains, and where it stops to be judged."""

    max_epochs: int
    min_epochs: int
    reduction_factor: int
    rungs: tuple[int, ...] = ()  # epochs at which the pruner decides (multi-fidelity only)
    segments: tuple[int, ...] = field(default=())  # cumulative epoch count at the end of each train job

    @property
    def multi_fidelity(self) -> bool:
        return bool(self.rungs)

    def next_end(self, epochs_done: int) -> int | None:
        """The epoch count the next train job of a trial runs to, or None when the trial is fully trained."""
        return next((end for end in self.segments if end > epochs_done), None)

    def to_dict(self) -> dict[str, Any]:
        return {"max_epochs": self.max_epochs, "min_epochs": self.min_epochs,
                "reduction_factor": self.reduction_factor, "rungs": list(self.rungs),
                "segments": list(self.segments)}


def check_algorithm(name: str) -> str:
    """``name`` when it is one of :data:`ALGORITHMS`; else one AlgorithmError line (AutoMLOptions says the same)."""
    if name not in ALGORITHMS:
        raise AlgorithmError(f"algorithm={name!r}; allowed: {', '.join(ALGORITHMS)}")
    return name


def budget_plan(algorithm: str, max_epochs: int, reduction_factor: int = 3, min_epochs: int = 1) -> BudgetPlan:
    """The epoch plan of one trial for ``algorithm``."""
    check_algorithm(algorithm)
    if not isinstance(max_epochs, int) or max_epochs < 1:
        raise AlgorithmError(f"max_epochs={max_epochs!r}; allowed: an integer >= 1")
    if not isinstance(reduction_factor, int) or reduction_factor < 2:
        raise AlgorithmError(f"reduction_factor={reduction_factor!r}; allowed: an integer >= 2")
    if not isinstance(min_epochs, int) or not 1 <= min_epochs <= max_epochs:
        raise AlgorithmError(f"min_epochs={min_epochs!r}; allowed: an integer in [1, max_epochs={max_epochs}]")
    if algorithm not in MULTI_FIDELITY:
        return BudgetPlan(max_epochs, max_epochs, reduction_factor, (), (max_epochs,))
    rungs, k = [], 0
    while min_epochs * reduction_factor ** k < max_epochs:
        rungs.append(min_epochs * reduction_factor ** k)
        k += 1
    if not rungs:
        raise AlgorithmError(
            f"{algorithm} needs max_epochs > min_epochs to have a rung to prune at (max_epochs={max_epochs}, "
            f"min_epochs={min_epochs}); raise max_epochs or use bayesian/random"
        )
    return BudgetPlan(max_epochs, min_epochs, reduction_factor, tuple(rungs), (*rungs, max_epochs))


def make_sampler(algorithm: str, space: list[ParamSpec], *, seed: int | None = None, max_trials: int = 10,
                 max_concurrent: int = 1):
    """The Optuna sampler of ``algorithm`` (seeded, so a study can be replayed)."""
    import optuna

    check_algorithm(algorithm)
    if algorithm in ("bayesian", "bohb"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # A few random trials first, fewer when the budget is small; constant_liar spreads concurrent asks.
            startup = max(1, min(10, max_trials // 3))
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup,
                                              constant_liar=max_concurrent > 1)
    if algorithm == "grid":
        return _grid_sampler_class()(grid_search_space(space, max_trials), seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _grid_sampler_class():
    """Optuna's GridSampler without its ``study.stop()`` (which only works inside ``optimize``).

    The engine drives the study with ask/tell and stops at ``grid_size`` itself.
    """
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001 - Optuna's signature
            return None

    return AskTellGridSampler


def grid_size(space: list[ParamSpec], max_trials: int) -> int:
    """How many configurations the grid of ``grid_search_space`` holds."""
    size = 1
    for values in grid_search_space(space, max_trials).values():
        size *= len(values)
    return size


def make_pruner(algorithm: str, plan: BudgetPlan):
    """The Optuna pruner of ``algorithm`` (NopPruner when it does not prune)."""
    import optuna

    if algorithm in ("hyperband", "bohb"):
        return optuna.pruners.HyperbandPruner(min_resource=plan.min_epochs, max_resource=plan.max_epochs,
                                              reduction_factor=plan.reduction_factor)
    if algorithm == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=plan.min_epochs,
                                                      reduction_factor=plan.reduction_factor,
                                                      min_early_stopping_rate=0)
    return optuna.pruners.NopPruner()


def trial_plan(plan: BudgetPlan, pruner: Any, study: Any, trial: Any) -> BudgetPlan:
    """The plan of one trial: Hyperband's (and BOHB's) trials prune only at the rungs of their bracket.

    Hyperband puts each trial in a bracket (from the study's name and the trial's number) whose Successive
    Halving starts at rung ``min_epochs * reduction_factor**bracket``; a trial's train jobs end only where
    it can be stopped, so a trial in a later bracket runs fewer, longer segments (fewer jobs and
    checkpoints). Other algorithms, or an Optuna that no longer exposes the bracket, keep ``plan``.
    """
    import optuna

    if not plan.multi_fidelity or not isinstance(pruner, optuna.pruners.HyperbandPruner):
        return plan
    try:  # Optuna's own bracket choice, so the segments end exactly where its pruner can stop the trial
        if not pruner._pruners:
            pruner._try_initialization(study)
        bracket = pruner._get_bracket_id(study, trial)
        first = plan.min_epochs * plan.reduction_factor ** pruner._pruners[bracket]._min_early_stopping_rate
    except (AttributeError, IndexError, TypeError):
        return plan
    rungs = tuple(r for r in plan.rungs if r >= first)
    return BudgetPlan(plan.max_epochs, plan.min_epochs, plan.reduction_factor, rungs, (*rungs, plan.max_epochs))


def grid_resolution(space: list[ParamSpec], max_trials: int) -> int:
    """Points per continuous parameter so the grid holds about ``max_trials`` configurations (at least 2)."""
    finite = 1
    continuous = 0
    for spec in space:
        if spec.kind == "categorical":
            finite *= max(1, len(spec.choices))
        else:
            continuous += 1
    if continuous == 0:
        return 2
    per = (max(1, max_trials) / finite) ** (1.0 / continuous)
    return max(2, int(math.ceil(per)))


def grid_search_space(space: list[ParamSpec], max_trials: int) -> dict[str, list[Any]]:
    """Raw parameter name -> the values the grid tries."""
    resolution = grid_resolution(space, max_trials)
    return {spec.raw_name: grid_points(spec, resolution) for spec in space}


def suggest(trial, space: list[ParamSpec], context: dict[str, Any]) -> dict[str, Any]:
    """Ask ``trial`` for every parameter; the spec values with relations enforced.

    ``context`` holds the trial's spec values of parameters that are not
    searched (a relation's parent may be one of them). A weighted categorical
    is asked as a quantile in [0, 1) and decoded through its weights.
    """
    values = {}
    for spec in space:
        if spec.weighted:
            raw = trial.suggest_float(spec.raw_name, 0.0, 1.0)
        elif spec.kind == "categorical":
            raw = trial.suggest_categorical(spec.raw_name, list(spec.choices))
        elif spec.kind == "int":
            raw = trial.suggest_int(spec.raw_name, int(spec.low), int(spec.high), step=int(spec.step or 1),
                                    log=bool(spec.log and not spec.step and spec.low >= 1))
        else:
            raw = trial.suggest_float(spec.raw_name, float(spec.low), float(spec.high),
                                      step=float(spec.step) if spec.step else None,
                                      log=bool(spec.log and not spec.step))
        values[spec.name] = decode(spec, raw)
    return apply_relations(space, values, context)


def raw_params(space: list[ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Optuna parameter values that reproduce ``values`` (to enqueue the baseline or a re-queued trial)."""
    out = {}
    for spec in space:
        if spec.name not in values:
            raise SearchSpaceError(f"{spec.name}: no value to enqueue")
        out[spec.raw_name] = raw_value(spec, values[spec.name])
    return out
