"""AutoMLOptions: one dataclass with every AutoML option's default and check, read by the CLI, runners, MCP, engine."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from skillbank.runtime.automl.options import (
    RUNNER_FIELDS,
    AutoMLError,
    AutoMLOptions,
    embeddable_names,
    option_names,
    parse_option_items,
)

REPO_SKILL_INFO = "skills/applications/tao-run-automl/references/skill_info.yaml"


@pytest.mark.parametrize(("changes", "message"), [
    ({"algorithm": "tpe"}, "algorithm='tpe'; allowed: bayesian, hyperband, asha, bohb, random, grid"),
    ({"max_trials": 0}, "max_trials=0; allowed: an integer >= 1"),
    ({"max_epochs": True}, "max_epochs=True; allowed: an integer >= 1"),
    ({"reduction_factor": 1}, "reduction_factor=1; allowed: an integer >= 2"),
    ({"direction": "up"}, "direction='up'; allowed: maximize, minimize"),
    ({"poll_interval": 0}, "poll_interval=0; allowed: seconds in (0, 3600]"),
    ({"baseline": "yes"}, "baseline='yes'; allowed: true or false"),
    ({"platform": "moon"}, "unknown platform 'moon'"),
    ({"platform": "slurm", "platform_options": {"gpus": "many"}}, "gpus"),
    ({"job_tags": ["bad tag!"]}, "bad tag!"),
    ({"param_ranges": {"train.optim.lr": 3}}, "param_ranges="),
])
def test_a_bad_value_is_one_line_naming_the_option_and_what_is_allowed(changes, message):
    with pytest.raises(AutoMLError) as info:
        AutoMLOptions(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_unknown_names_are_refused_with_the_allowed_ones():
    with pytest.raises(AutoMLError, match="max_trial: unknown; allowed: algorithm, metric"):
        AutoMLOptions().replace(max_trial=3)
    with pytest.raises(AutoMLError, match="AUTOML_OPTIONS: option\\(s\\) nope: unknown"):
        AutoMLOptions.from_dict({"nope": 1}, where="AUTOML_OPTIONS")
    with pytest.raises(AutoMLError, match="request.json: max_trials='x'"):  # a bad value names its source too
        AutoMLOptions.from_dict({"max_trials": "x"}, where="request.json")
    with pytest.raises(AutoMLError, match="--automl-option\\(s\\) max_concurent: unknown"):
        parse_option_items(["max_concurent=2"])
    with pytest.raises(AutoMLError, match="expected KEY=VALUE"):
        parse_option_items(["max_concurrent"])


def test_values_are_normalised_once_and_round_trip_as_plain_data(tmp_path):
    options = AutoMLOptions(hyperparameters=("dataset.batch_size,model.backbone",), workspace=tmp_path,
                            job_tags=["sweep"], poll_interval=2)
    assert options.hyperparameters == ("dataset.batch_size", "model.backbone")
    assert options.workspace == str(tmp_path) and options.poll_interval == 2.0
    data = options.to_dict(changed_only=True)
    assert data == {"hyperparameters": ["dataset.batch_size", "model.backbone"], "workspace": str(tmp_path),
                    "poll_interval": 2.0, "job_tags": ["sweep"]}
    assert AutoMLOptions.from_dict(yaml.safe_load(yaml.safe_dump(data))) == options
    assert parse_option_items(["max_concurrent=2", "metric=val_acc", "param_ranges={a: {valid_min: 1}}"]) == {
        "max_concurrent": 2, "metric": "val_acc", "param_ranges": {"a": {"valid_min": 1}}}


def test_direction_follows_the_metric_unless_given():
    assert AutoMLOptions(metric="val_loss").resolved_direction == "minimize"
    assert AutoMLOptions(metric="accuracy").resolved_direction == "maximize"
    assert AutoMLOptions(metric="val_loss", direction="max").resolved_direction == "maximize"
    assert AutoMLOptions(metric="val_acc").needs_evaluate is False and AutoMLOptions().needs_evaluate is True


def test_the_cli_takes_its_defaults_from_the_dataclass():
    from skillbank.cli.automl import run

    defaults = AutoMLOptions()
    flags = {param.name: param.default for param in run.params}
    for name in ("algorithm", "metric", "max_trials", "min_epochs", "reduction_factor", "max_concurrent", "platform",
                 "seed", "poll_interval", "max_failures_in_a_row"):
        assert flags[name] == getattr(defaults, name), name


def test_the_mcp_automl_argument_offers_exactly_the_options_a_runner_embeds():
    from skillbank.mcp_server.tool_schemas import automl_budget

    assert set(automl_budget()["properties"]) == set(embeddable_names())
    assert set(embeddable_names()) | set(RUNNER_FIELDS) == set(option_names())


def test_the_skill_info_defaults_are_the_dataclass_defaults():
    """tao-run-automl's skill_info.yaml lists the options for agents; its plain defaults must be the engine's."""
    from pathlib import Path

    info = yaml.safe_load((Path(__file__).resolve().parent.parent / REPO_SKILL_INFO).read_text())
    defaults = {f.name: getattr(AutoMLOptions(), f.name) for f in dataclasses.fields(AutoMLOptions)}
    listed = {item["name"]: item.get("default") for item in info["prerequisites"]["optional"]}
    compared = 0
    for name, default in listed.items():
        if name in defaults and isinstance(defaults[name], (bool, int, float)) and default is not None:
            assert default == defaults[name], name
            compared += 1
        elif name in defaults and isinstance(defaults[name], str):
            assert default == defaults[name], name
            compared += 1
    assert compared >= 8
