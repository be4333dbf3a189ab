"""spec_overrides validation: every problem reported at once, each naming key, value and what is allowed."""
from __future__ import annotations

import copy
import datetime
import math
import sys

import pytest

from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import build_spec, deep_copy, expand_shorthand, get_dotted
from skillbank.runtime.validation import SpecValidationError, _finite, resolve_spec, validate_overrides

SKILL = Skill.load("tao-train-action-recognition")
DATA = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "s3://bucket/test.tar.gz"}

# (case id, action, overrides, dotted key that must be named, words the message must contain)
BAD = [
    ("unknown key typo", "train", {"train.optim.lrr": 0.1}, "train.optim.lrr", "did you mean 'train.optim.lr'"),
    ("unknown bare leaf", "train", {"lr": 0.1}, "lr", "did you mean 'train.optim.lr'"),
    ("unknown section", "train", {"trian.num_epochs": 3}, "trian.num_epochs", "did you mean 'train.num_epochs'"),
    ("string for int", "train", {"train.num_epochs": "ten"}, "train.num_epochs", "expected an integer"),
    ("float for int", "train", {"dataset.batch_size": 2.5}, "dataset.batch_size", "expected an integer"),
    ("bool for int", "train", {"dataset.workers": True}, "dataset.workers", "expected an integer"),
    ("string for number", "train", {"train.optim.lr": "fast"}, "train.optim.lr", "expected a number"),
    ("string for bool", "train", {"model.imagenet_pretrained": "yes"}, "model.imagenet_pretrained", "true or false"),
    ("below minimum", "train", {"train.optim.lr": -0.1}, "train.optim.lr", "below the minimum 0.0"),
    ("above maximum", "train", {"model.dropout_ratio": 1.5}, "model.dropout_ratio", "above the maximum 1.0"),
    ("zero epochs", "train", {"num_epochs": 0}, "train.num_epochs", "below the minimum 1"),
    ("enum typo", "train", {"model.backbone": "resnet18"}, "model.backbone", "did you mean 'resnet_18'"),
    ("enum case", "train", {"train.optim.lr_scheduler": "multistep"}, "train.optim.lr_scheduler", "MultiStep"),
    ("enum eval mode", "evaluate", {"evaluate.video_eval_mode": "middle"}, "evaluate.video_eval_mode",
     "center, conv, all"),
    ("list item type", "train", {"train.optim.lr_steps": [5, "x"]}, "train.optim.lr_steps", "item 1"),
    ("list expected", "train", {"train.gpu_ids": 0}, "train.gpu_ids", "expected a list"),
    ("gpu ids vs num gpus", "train", {"train.num_gpus": 2}, "train.gpu_ids", "train.num_gpus is 2"),
    ("label map empty", "train", {"dataset.label_map": {}}, "dataset.label_map", "non-empty"),
    ("label map not a map", "train", {"dataset.label_map": ["catch", "smile"]}, "dataset.label_map", "non-empty"),
    ("label map duplicate index", "train", {"dataset.label_map": {"a": 0, "b": 0}}, "dataset.label_map",
     "distinct"),
    ("label map negative", "train", {"dataset.label_map": {"a": -1}}, "dataset.label_map.a", ">= 0"),
    ("label map string index", "train", {"dataset.label_map": {"a": "0"}}, "dataset.label_map.a", "integer"),
    ("shorthand conflict", "train", {"num_epochs": 3, "train.num_epochs": 4}, "num_epochs", "conflicts"),
    ("export batch below -1", "export", {"export.batch_size": -2}, "export.batch_size", "below the minimum -1"),
    ("evaluate section in train", "train", {"evaluate.batch_size": 2}, "evaluate.batch_size", "unknown key"),
    ("null where TAO has no Optional", "train", {"train.num_epochs": None}, "train.num_epochs", "expected an integer"),
    ("validation interval above epochs", "train", {"num_epochs": 2, "train.validation_interval": 3},
     "train.validation_interval", "above train.num_epochs=2"),
    ("checkpoint interval above epochs", "train", {"num_epochs": 2, "train.checkpoint_interval": 3},
     "train.checkpoint_interval", "above train.num_epochs=2"),
    ("top k zero", "train", {"train.checkpointer.save_top_k": 0}, "train.checkpointer.save_top_k",
     "below the minimum 1"),
    ("checkpointer mode", "train", {"train.checkpointer.mode": "maximum"}, "train.checkpointer.mode",
     "did you mean 'max'"),
    ("checkpointer flag type", "train", {"train.checkpointer": {"enable_topk": "yes"}},
     "train.checkpointer.enable_topk", "true or false"),
]


@pytest.mark.parametrize(("case", "action", "overrides", "key", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_override_is_rejected_with_key_named(case, action, overrides, key, words):
    data = dict.fromkeys(SKILL.data_sources(action), "/data/x") if action != "train" else DATA
    problems = validate_overrides(SKILL, action, {**data, **overrides})
    named = [p for p in problems if p.key == key]
    assert named, f"{case}: no problem names {key}: {[str(p) for p in problems]}"
    assert any(words in str(p) for p in named), [str(p) for p in named]
    # the message shows the value given
    assert any(repr(overrides.get(key, p.value)) in str(p) or repr(p.value) in str(p) for p in named)


@pytest.mark.parametrize("action", ["train", "evaluate", "inference"])
def test_missing_data_sources_are_reported(action):
    problems = validate_overrides(SKILL, action, {})
    assert sorted(p.key for p in problems) == sorted(SKILL.data_sources(action))
    assert all("missing data source" in str(p) and ".tar.gz" in str(p) for p in problems)


def test_every_problem_is_reported_at_once():
    problems = validate_overrides(
        SKILL, "train", {"train.optim.lr": -1, "model.backbone": "vgg", "bogus": 1, "dataset.batch_size": "x"}
    )
    assert {p.key for p in problems} >= {"train.optim.lr", "model.backbone", "bogus", "dataset.batch_size",
                                         "dataset.train_dataset_dir", "dataset.val_dataset_dir"}


@pytest.mark.parametrize(
    "overrides",
    [
        {**DATA, "num_epochs": 3, "batch_size": 4, "learning_rate": 0.01},
        {**DATA, "train": {"optim": {"lr": 0.01}}, "dataset": {"label_map": {"walk": 0, "run": 1, "jump": 2}}},
        {**DATA, "train.optim.lr": 1, "model.dropout_ratio": 0},
        {"dataset.train_dataset_dir": "s3://bucket/train/", "dataset.val_dataset_dir": "/data/test.tgz",
         "train.num_gpus": 2, "train.gpu_ids": [0, 1], "model.model_type": "joint", "model.input_type": "3d"},
    ],
)
def test_good_overrides_are_valid(overrides):
    assert validate_overrides(SKILL, "train", overrides) == []


def test_resolve_spec_merges_template_and_expands_shorthand():
    spec = resolve_spec(SKILL, "train", {**DATA, "num_epochs": 3, "train": {"optim": {"lr": 0.01}},
                                          "dataset.label_map": {"a": 0, "b": 1, "c": 2}})
    assert spec["train"]["num_epochs"] == 3
    assert spec["train"]["optim"]["lr"] == 0.01
    assert spec["train"]["optim"]["momentum"] == 0.9  # template value kept
    assert spec["dataset"]["label_map"] == {"a": 0, "b": 1, "c": 2}  # replaced whole, not merged
    assert SKILL.template("train")["train"]["num_epochs"] == 10  # template untouched


def test_resolve_spec_raises_with_every_problem():
    with pytest.raises(SpecValidationError) as info:
        resolve_spec(SKILL, "train", {"train.optim.lr": -1})
    assert len(info.value.problems) == 3
    assert "train.optim.lr" in str(info.value)


def test_spec_builder_is_pure():
    template = {"a": {"b": 1}}
    spec = build_spec(template, {"a.b": 2, "a.c.d": [1]})
    assert spec == {"a": {"b": 2, "c": {"d": [1]}}} and template == {"a": {"b": 1}}
    assert get_dotted(spec, "a.c.d") == [1] and get_dotted(spec, "a.x", "none") == "none"
    assert expand_shorthand({"num_epochs": 1, "x": 2}, {"num_epochs": "train.num_epochs"}) == {
        "train.num_epochs": 1, "x": 2}


@pytest.mark.parametrize("number", [0.0, -0.0, 1.5, -1e308, sys.float_info.max, -sys.float_info.max,
                                    sys.float_info.min, 5e-324, float("inf"), float("-inf"), float("nan"),
                                    -float("nan"), sys.float_info.max * 2])
def test_finite_is_math_isfinite(number):
    assert _finite(number) is math.isfinite(number)


class _Tagged(int):
    pass


def test_deep_copy_is_copy_deepcopy():
    shared = [1, {"x": 2}]
    for value in ({"a": [1, 2.5, "s", None, True, {"b": []}], 3: {}}, [[], [[]]], "text", 1.5, None, float("nan"),
                  {"a": shared, "b": shared}, [shared, shared], {"t": (1, [2])}, {(1, 2): "tuple key"},
                  {"date": datetime.date(2024, 1, 2)}, [_Tagged(5)], {"set": {1, 2}}):
        ours, theirs = deep_copy(value), copy.deepcopy(value)
        assert repr(ours) == repr(theirs) and type(ours) is type(theirs)
        assert [type(x) for x in _walk(ours)] == [type(x) for x in _walk(theirs)]
        assert _shape(ours) == _shape(theirs)  # what is shared is shared alike, and nothing is the original's
        assert not {id(x) for x in _walk(ours) if isinstance(x, (dict, list, set))} & {id(x) for x in _walk(value)}


def _walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


def _shape(value):
    """Which of the containers in ``value`` are the same object, by order of first appearance."""
    order: dict[int, int] = {}
    return [order.setdefault(id(x), len(order)) for x in _walk(value) if isinstance(x, (dict, list))]


def test_export_accepts_a_dynamic_batch():
    assert validate_overrides(SKILL, "export", {"export.batch_size": -1}) == []


NULLABLE = {
    "train": ["model_name", "encryption_key", "results_dir", "model.of_pretrained_model_path",
              "model.rgb_pretrained_model_path", "model.joint_pretrained_model_path", "dataset.label_map",
              "train.resume_training_checkpoint_path", "train.results_dir", "train.checkpointer.monitor",
              "train.checkpointer.mode", "train.checkpointer.dirpath"],
    "evaluate": ["evaluate.trt_engine", "evaluate.results_dir"],
    "inference": ["inference.trt_engine", "inference.results_dir"],
    "export": ["export.results_dir", "export.onnx_file"],
}


@pytest.mark.parametrize("action", list(NULLABLE))
def test_nulls_written_by_tao_core_are_valid(action):
    """tao-core writes its Optional fields as null: valid, meaning unset (TAO's common_config / default_config)."""
    data = DATA if action == "train" else dict.fromkeys(SKILL.data_sources(action), "/data/x")
    keys = NULLABLE[action] + ([] if action == "train" else ["model_name", "results_dir", "train.results_dir"])
    assert validate_overrides(SKILL, action, {**data, **dict.fromkeys(keys, None)}) == []
    # the allowed text says so where a value is wrong
    problems = validate_overrides(SKILL, action, {**data, keys[0]: 5})
    assert [p.key for p in problems] == [keys[0]] and "or null (unset)" in problems[0].allowed


def test_a_full_tao_core_train_spec_with_its_checkpointer_section_is_valid():
    spec = {**SKILL.template("train")}
    spec["train"] = {**spec["train"], "resume_training_checkpoint_path": None, "checkpointer": {
        "enable_topk": True, "replace_periodic": True, "monitor": None, "mode": None, "save_top_k": 3,
        "filename": "model_best_{epoch:03d}", "dirpath": None, "auto_insert_metric_name": False}}
    spec["dataset"] = {**spec["dataset"], **{k.split(".")[1]: v for k, v in DATA.items()}}
    assert validate_overrides(SKILL, "train", spec) == []
