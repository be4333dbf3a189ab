"""The AutoML search space: which parameters, their ranges, math_cond, custom ranges (pure, fast)."""
from __future__ import annotations

import math
from collections import Counter

import pytest

from skillbank.runtime.automl import algorithms as algos
from skillbank.runtime.automl import search_space as ss
from skillbank.runtime.skills import Skill

SKILL = "tao-train-action-recognition"


def leaf(kind: str, default, **meta) -> dict:
    return {"type": kind, "default": default, **meta}


def schema(**fields) -> dict:
    """A train schema with sections built from dotted names (``train.optim.lr=...``)."""
    root: dict = {"type": "object", "properties": {}, "automl_default_parameters": [],
                  "automl_disabled_parameters": []}
    for dotted, prop in fields.items():
        node = root
        *parents, name = dotted.split("__")
        for part in parents:
            node = node["properties"].setdefault(part, {"type": "object", "properties": {}})
        node["properties"][name] = prop
    return root


def one(prop: dict, name: str = "x", **kw) -> ss.ParamSpec:
    return ss.param_spec(name, prop, **kw)


# -------------------------------------------------------------------------------------------- the real schema
@pytest.fixture(scope="module")
def train_schema():
    return Skill.load(SKILL).schema("train")


def test_defaults_come_from_automl_default_parameters(train_schema):
    space = ss.build_search_space(train_schema)
    assert [s.name for s in space] == ["model.dropout_ratio", "train.optim.lr"]
    dropout, lr = space
    assert (dropout.kind, dropout.low, dropout.high, dropout.log) == ("float", 0.0, 1.0, False)
    # lr: minimum 0 and no maximum -> [default/10, default*10] on a log scale
    assert lr.log and lr.origin == "derived"
    assert lr.low == pytest.approx(0.0005 / 10) and lr.high == pytest.approx(0.0005 * 10)


def test_hyperparameters_add_enabled_leaves_under_disabled_sections(train_schema):
    # `dataset` and `train.optim` are listed as disabled *sections*; their leaves stay searchable
    space = ss.build_search_space(train_schema, hyperparameters=["dataset.batch_size", "train.optim.momentum",
                                                                 "model.backbone", "train.cudnn.benchmark"])
    by_name = {s.name: s for s in space}
    assert by_name["dataset.batch_size"].kind == "int" and by_name["dataset.batch_size"].low == 1
    assert by_name["dataset.batch_size"].high == 2 * 4  # no maximum: default * 4
    assert (by_name["train.optim.momentum"].low, by_name["train.optim.momentum"].high) == (0.0, 1.0)
    assert by_name["model.backbone"].choices[0] == "resnet_18"
    assert by_name["train.cudnn.benchmark"].choices == (False, True)


@pytest.mark.parametrize("name, message", [
    ("train.optim.lr_steps", "automl_disabled_parameters"),
    ("wandb.tags", "automl_disabled_parameters"),
    ("train.optim", "is a section"),
    ("train.num_epochs", "max_epochs"),
    ("dataset.train_dataset_dir", "cannot be searched"),
    ("model.dropout", "did you mean 'model.dropout_ratio'"),
])
def test_refused_parameters_say_why(train_schema, name, message):
    with pytest.raises(ss.SearchSpaceError, match=message) as info:
        ss.build_search_space(train_schema, hyperparameters=[name])
    assert name in str(info.value)


def test_override_disabled_allows_a_listed_leaf():
    s = schema(train__optim__lr=leaf("number", 0.01, minimum=0.0, automl_enabled=True),
               train__optim__lr_decay=leaf("number", 0.1, minimum=0.0, maximum=1.0))
    s["automl_default_parameters"] = ["train.optim.lr"]
    s["automl_disabled_parameters"] = ["train.optim", "train.optim.lr_decay"]
    with pytest.raises(ss.SearchSpaceError, match="--override-disabled"):
        ss.build_search_space(s, hyperparameters=["train.optim.lr_decay"])
    space = ss.build_search_space(s, hyperparameters=["train.optim.lr_decay"], override_disabled=True)
    assert [p.name for p in space] == ["train.optim.lr", "train.optim.lr_decay"]
    # a leaf explicitly automl_enabled under the disabled section is searched without the flag
    assert ss.build_search_space(s)[0].name == "train.optim.lr"


def test_leaf_marked_automl_disabled_is_refused():
    s = schema(model__width=leaf("integer", 8, minimum=1, automl_enabled=False))
    with pytest.raises(ss.SearchSpaceError, match="disabled"):
        ss.build_search_space(s, hyperparameters=["model.width"])


# -------------------------------------------------------------------------------------------- ranges
def test_bounds_from_minimum_and_maximum():
    spec = one(leaf("number", 0.3, minimum=0.1, maximum=0.9))
    assert (spec.low, spec.high, spec.log, spec.origin) == (0.1, 0.9, False, "schema")


def test_unbounded_side_is_derived_from_the_default():
    up = one(leaf("number", 2.0, minimum=0.0))
    assert (up.low, up.high) == (0.0, 20.0)
    down = one(leaf("number", 2.0, maximum=5.0))
    assert (down.low, down.high) == (0.2, 5.0)
    ints = one(leaf("integer", 16, minimum=1))
    assert (ints.low, ints.high) == (1, 64)
    zero = one(leaf("number", 0.0, minimum=0.0))
    assert (zero.low, zero.high) == (0.0, 1.0)


def test_learning_rate_like_floats_use_a_log_scale_clipped_to_bounds():
    lr = one(leaf("number", 0.01, minimum=0.0, maximum=0.05), name="train.optim.lr")
    assert lr.log and lr.low == pytest.approx(0.001) and lr.high == 0.05  # default*10 clipped to the maximum
    wd = one(leaf("number", 1e-4, minimum=0.0), name="train.optim.weight_decay")
    assert wd.log and wd.low == pytest.approx(1e-5)
    decay = one(leaf("number", 0.1, minimum=0.0, maximum=1.0), name="train.optim.lr_decay")
    assert not decay.log  # a factor, not a learning rate


def test_log_points_are_spread_in_log_space():
    spec = one(leaf("number", 0.001, minimum=0.0), name="lr")
    points = algos.grid_search_space([spec], 3)["lr"]
    assert points[0] == pytest.approx(1e-4) and points[1] == pytest.approx(1e-3) and points[2] == pytest.approx(1e-2)


def test_exclusive_bounds():
    spec = one(leaf("integer", 3, exclusiveMinimum=0, exclusiveMaximum=10))
    assert (spec.low, spec.high) == (1, 9)


# -------------------------------------------------------------------------------------------- enums
def test_enum_is_categorical_with_option_weights_honoured():
    prop = leaf("string", "a", enum=["a", "b", "c"], option_weights=[0.7, 0.2, 0.1])
    spec = one(prop)
    assert spec.kind == "categorical" and spec.weighted and spec.raw_name == "x#q"
    counts = Counter(ss.decode_quantile(spec, (i + 0.5) / 1000) for i in range(1000))
    assert counts == {"a": 700, "b": 200, "c": 100}
    for option in spec.choices:  # encode/decode round trip (how the baseline is enqueued)
        assert ss.decode_quantile(spec, ss.encode_quantile(spec, option)) == option


def test_weighted_enum_sampled_through_optuna_follows_the_weights():
    import optuna

    spec = one(leaf("string", "a", enum=["a", "b"], option_weights=[0.9, 0.1]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    picks = Counter(algos.suggest(study.ask(), [spec], {})["x"] for _ in range(400))
    assert 0.82 < picks["a"] / 400 < 0.97


def test_unweighted_enum_and_custom_options():
    spec = one(leaf("string", "a", enum=["a", "b", "c"]), custom={"valid_options": ["c", "a"]})
    assert spec.choices == ("c", "a") and not spec.weighted
    with pytest.raises(ss.SearchSpaceError, match=r"include \['z'\].*allowed: \['a', 'b', 'c'\]"):
        one(leaf("string", "a", enum=["a", "b", "c"]), custom={"valid_options": ["a", "z"]})
    with pytest.raises(ss.SearchSpaceError, match="option_weights"):
        one(leaf("string", "a", enum=["a", "b"]), custom={"option_weights": [1.0]})
    custom = one(leaf("string", "a", enum=["a", "b"]), custom={"option_weights": [1, 3]})
    assert custom.weights == (1.0, 3.0)


def test_schema_weights_follow_a_narrowed_option_list():
    prop = leaf("string", "a", enum=["a", "b", "c"], option_weights=[1, 2, 3])
    assert one(prop, custom={"valid_options": ["c", "a"]}).weights == (3.0, 1.0)


# -------------------------------------------------------------------------------------------- math_cond
def test_math_cond_powers_of_two():
    spec = one(leaf("integer", 8, minimum=3, maximum=100, math_cond="^ 2"))
    assert spec.kind == "categorical" and spec.choices == (4, 8, 16, 32, 64)


def test_math_cond_multiples():
    spec = one(leaf("integer", 64, minimum=10, maximum=100, math_cond="/ 8"))
    assert (spec.low, spec.high, spec.step) == (16, 96, 8)
    assert all(v % 8 == 0 for v in ss.domain_points(spec))
    with pytest.raises(ss.SearchSpaceError, match="no multiple of 32"):
        one(leaf("integer", 5, minimum=1, maximum=20, math_cond="/ 32"))


@pytest.mark.parametrize("cond, kind, low, high", [
    ("> 0.0", "number", None, None),
    (">= 2", "integer", 2, 10),
    ("< 5", "integer", 0, 4),
    ("<= 5", "integer", 0, 5),
    ("> 0", "integer", 1, 10),
])
def test_math_cond_numeric_comparisons(cond, kind, low, high):
    spec = one(leaf(kind, 1, minimum=0, maximum=10, math_cond=cond))
    if kind == "number":
        assert spec.low > 0.0 and spec.high == 10.0
    else:
        assert (spec.low, spec.high) == (low, high)


def test_math_cond_not_equal():
    at_bound = one(leaf("integer", 3, minimum=0, maximum=10, math_cond="!= 0"))
    assert at_bound.low == 1
    inside = one(leaf("integer", 3, minimum=-5, maximum=5, math_cond="!= 0"))
    assert inside.exclude == (0,)
    fixed = ss.apply_relations([inside], {"x": 0}, {})
    assert fixed["x"] in (-1, 1)


@pytest.mark.parametrize("op, parent_value, ok", [
    (">", 4, lambda v, p: v > p), (">=", 4, lambda v, p: v >= p),
    ("<", 4, lambda v, p: v < p), ("<=", 4, lambda v, p: v <= p),
])
def test_math_cond_relative_to_depends_on(op, parent_value, ok):
    s = schema(crop__min=leaf("integer", 4, minimum=1, maximum=8, parent_param="TRUE"),
               crop__max=leaf("integer", 6, minimum=1, maximum=8, math_cond=f"{op} depends_on",
                              depends_on="crop.min"))
    # the child is listed first: the space orders the parent before it
    space = ss.build_search_space(s, hyperparameters=["crop.max", "crop.min"])
    assert [p.name for p in space] == ["crop.min", "crop.max"]
    assert space[1].relation == (op, "crop.min") and space[0].parent_param
    for child in range(1, 9):
        fixed = ss.apply_relations(space, {"crop.min": parent_value, "crop.max": child}, {})
        assert ok(fixed["crop.max"], parent_value)
        if ok(child, parent_value):
            assert fixed["crop.max"] == child  # a value that already holds is kept


def test_relation_uses_the_spec_value_when_the_parent_is_not_searched():
    s = schema(train__optim__min_lr=leaf("number", 1e-3, minimum=0.0),
               train__optim__lr=leaf("number", 5e-3, minimum=0.0, math_cond="> depends_on",
                                     depends_on="train.optim.min_lr"))
    space = ss.build_search_space(s, hyperparameters=["train.optim.lr"])
    fixed = ss.apply_relations(space, {"train.optim.lr": 5e-4}, {"train.optim.min_lr": 1e-3})
    assert fixed["train.optim.lr"] > 1e-3
    with pytest.raises(ss.SearchSpaceError, match="no value"):
        ss.apply_relations(space, {"train.optim.lr": 5e-4}, {"train.optim.min_lr": 1.0})


def test_relations_hold_for_every_sampled_trial():
    import optuna

    s = schema(a=leaf("integer", 4, minimum=1, maximum=16, parent_param=True, math_cond="^ 2"),
               b=leaf("integer", 8, minimum=1, maximum=32, math_cond="> depends_on", depends_on="a"))
    space = ss.build_search_space(s, hyperparameters=["a", "b"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        values = algos.suggest(study.ask(), space, {})
        assert values["b"] > values["a"] and math.log2(values["a"]).is_integer()


def test_unknown_math_cond_is_an_error():
    with pytest.raises(ss.SearchSpaceError, match="math_cond '% 3'"):
        one(leaf("integer", 4, minimum=1, maximum=9, math_cond="% 3"))


# -------------------------------------------------------------------------------------------- custom ranges
def test_custom_range_inside_bounds():
    spec = one(leaf("number", 0.5, minimum=0.0, maximum=1.0), custom={"valid_min": 0.2, "valid_max": 0.4})
    assert (spec.low, spec.high, spec.origin) == (0.2, 0.4, "custom")


@pytest.mark.parametrize("custom", [{"valid_min": -0.1}, {"valid_max": 1.5}, {"valid_min": 0.2, "valid_max": 1.2}])
def test_custom_range_outside_bounds_names_parameter_range_and_allowed(custom, train_schema):
    with pytest.raises(ss.SearchSpaceError) as info:
        ss.build_search_space(train_schema, param_ranges={"model.dropout_ratio": custom})
    text = str(info.value)
    assert "model.dropout_ratio" in text and "allowed: [0, 1]" in text and "outside" in text


def test_custom_range_checks():
    prop = leaf("number", 0.5, minimum=0.0, maximum=1.0)
    with pytest.raises(ss.SearchSpaceError, match="valid_min above valid_max"):
        one(prop, custom={"valid_min": 0.8, "valid_max": 0.2})
    with pytest.raises(ss.SearchSpaceError, match="unknown custom range key"):
        ss.build_search_space(schema(x=prop), param_ranges={"x": {"min": 0.1}})
    options = one(leaf("integer", 4, minimum=1, maximum=64, math_cond="^ 2"), custom={"valid_options": [2, 8]})
    assert options.choices == (2, 8)
    with pytest.raises(ss.SearchSpaceError, match="breaks math_cond"):
        one(leaf("integer", 4, minimum=1, maximum=64, math_cond="^ 2"), custom={"valid_options": [3]})


def test_custom_range_can_disable_and_add_parameters(train_schema):
    space = ss.build_search_space(train_schema, param_ranges={
        "model.dropout_ratio": {"disabled": True},
        "train.optim.momentum": {"valid_min": 0.8, "valid_max": 0.99},
    })
    assert [s.name for s in space] == ["train.optim.lr", "train.optim.momentum"]
    with pytest.raises(ss.SearchSpaceError, match="empty"):
        ss.build_search_space(train_schema, param_ranges={"model.dropout_ratio": {"disabled": True},
                                                          "train.optim.lr": {"disabled": True}})


def test_user_override_is_the_default_the_range_is_derived_from(train_schema):
    space = ss.build_search_space(train_schema, base_values={"train.optim.lr": 0.01})
    lr = space[1]
    assert lr.default == 0.01 and lr.low == pytest.approx(0.001) and lr.high == pytest.approx(0.1)


# -------------------------------------------------------------------------------------------- algorithms
def test_budget_plans():
    assert algos.budget_plan("bayesian", 4).segments == (4,)
    plan = algos.budget_plan("hyperband", 9, 3)
    assert plan.rungs == (1, 3) and plan.segments == (1, 3, 9)
    assert plan.next_end(0) == 1 and plan.next_end(3) == 9 and plan.next_end(9) is None
    assert algos.budget_plan("asha", 2, 2).segments == (1, 2)
    with pytest.raises(algos.AlgorithmError, match="max_epochs > min_epochs"):
        algos.budget_plan("asha", 1, 2)
    with pytest.raises(algos.AlgorithmError, match="allowed: bayesian"):
        algos.budget_plan("tpe", 3)


@pytest.mark.parametrize(("algorithm", "max_epochs", "factor"), [("hyperband", 9, 3), ("bohb", 8, 2), ("asha", 8, 2)])
def test_a_trial_job_ends_exactly_where_the_pruner_can_stop_the_trial(algorithm, max_epochs, factor):
    """Every epoch is reported and asked about; the pruner stops trials only at the ends of their plan's segments,
    and (Hyperband) a trial in a later bracket has fewer segments: fewer train jobs and checkpoints."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = algos.budget_plan(algorithm, max_epochs, factor)
    study = optuna.create_study(study_name="automl", pruner=algos.make_pruner(algorithm, plan),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    segment_counts, pruned = set(), 0
    for number in range(24):
        trial = study.ask()
        own = algos.trial_plan(plan, study.pruner, study, trial)
        assert own.max_epochs == max_epochs and set(own.rungs) <= set(plan.rungs)
        segment_counts.add(len(own.segments))
        value = (number * 7919) % 13 / 13  # a spread of qualities, the same at every epoch
        for epoch in range(1, max_epochs):
            trial.report(value, epoch)
            if trial.should_prune():
                assert epoch in own.rungs, (number, epoch, own.rungs)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
                break
        else:
            study.tell(trial, value)
    assert pruned >= 6
    assert len(segment_counts) > 1 if algorithm != "asha" else segment_counts == {len(plan.segments)}


def test_samplers_and_pruners_per_algorithm(train_schema):
    import optuna

    space = ss.build_search_space(train_schema)
    kinds = {name: (type(algos.make_sampler(name, space, max_trials=4)).__name__,
                    type(algos.make_pruner(name, algos.budget_plan(name, 4, 2))).__name__)
             for name in algos.ALGORITHMS}
    assert kinds["bayesian"] == ("TPESampler", "NopPruner")
    assert kinds["bohb"] == ("TPESampler", "HyperbandPruner")
    assert kinds["hyperband"] == ("RandomSampler", "HyperbandPruner")
    assert kinds["asha"] == ("RandomSampler", "SuccessiveHalvingPruner")
    assert kinds["random"] == ("RandomSampler", "NopPruner")
    assert isinstance(algos.make_sampler("grid", space, max_trials=4), optuna.samplers.GridSampler)


def test_grid_discretises_the_space(train_schema):
    space = ss.build_search_space(train_schema, hyperparameters=["model.backbone"])
    grid = algos.grid_search_space(space, 24)
    assert len(grid["model.backbone"]) == 6
    assert len(grid["model.dropout_ratio"]) == len(grid["train.optim.lr"]) == 2
    assert algos.grid_size(space, 24) == 24
