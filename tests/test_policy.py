"""The AutoML policy resolver: explicit values, request phrases, negations, actions, skill files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.policy import AUTOML_TARGET, NOT_RUNNABLE, PolicyError, find_off_phrase, resolve_policy

SKILL = "tao-train-action-recognition"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- explicit value and request text (the real skill: AutoML enabled and runnable) ----------

OFF_PHRASES = [
    "turn off AutoML", "Turn OFF automl!", "disable AutoML", "please disable auto-ml", "train without AutoML",
    "no AutoML", "No HPO.", "no hpo", "skip HPO", "skip the HPO, just train", "plain training",
    "normal training please", "AutoML off", "automl: off", "don't use AutoML", "do not use automl",
    "no hyperparameter search", "no hyper-parameter tuning", "switch off AutoML", "turn AutoML off",
    "Train this model, NO HPO", "I don't want AutoML", "regular training, 2 epochs",
    "skip AutoML", "no tuning", "no hyperparameter search",
]
NOT_OFF = [
    None, "", "train the model", "use AutoML", "train with automl and hpo", "don't disable AutoML",
    "do not turn off automl", "Don't skip HPO.", "never disable automl", "no need to turn off AutoML",
    "I don't want you to disable AutoML", "not plain training: use AutoML",
]


# The policy table: request -> (policy, the phrase that decided). Negation binds to its own phrase;
# a bracketed aside is a clause of its own; quotes are only marks.
POLICY_TABLE = [
    ("Prepare (don't submit) the same plain training for the cluster", "off", "plain training"),
    ("prepare, don't submit the same plain training", "off", "plain training"),  # "don't" binds to "submit"
    ("Train it [no HPO] on the sample data", "off", "no hpo"),
    ("train it (but don't disable AutoML)", "on", None),
    ("don't (please) disable AutoML", "on", None),
    ('don\'t "disable AutoML"', "on", None),
    ("don't 'turn off AutoML' this time", "on", None),
    ('"plain training" please', "off", "plain training"),
    ("please \u201cskip AutoML\u201d", "off", "skip automl"),
    ("Don\u2019t disable AutoML", "on", None),
    ("don't worry about it, plain training is fine", "off", "plain training"),
    ("no need to disable AutoML (regular training is too slow)", "off", "regular training"),
    ("I don't want you to turn off AutoML", "on", None),
    ("don't disable AutoML; no tuning", "off", "no tuning"),
    ("no hyperparameter search", "off", "no hyperparameter search"),
    ("skip AutoML", "off", "skip automl"),
    ("no tuning, 3 epochs", "off", "no tuning"),
    ("train for 2 epochs with AutoML", "on", None),
    ("not plain training: use AutoML", "on", None),
]


@pytest.mark.parametrize(("request_text", "policy", "matched"), POLICY_TABLE)
def test_policy_table_negation_binds_to_its_own_phrase(skill_dir, request_text, policy, matched):
    decision = resolve_policy(skill_dir, "train", request=request_text)
    assert (decision["automl_policy"], decision["matched"]) == (policy, matched)
    assert decision["route"] == ("direct" if policy == "off" else "automl")


@pytest.mark.parametrize(
    ("request_text", "epochs"),
    [("train for 2 epochs", 2), ("Two epochs, no HPO", 2), ("epochs: 5", 5), ("checkpoint every 2 epochs", None),
     ("checkpoint every 2 epochs and train 10 epochs", 10), ("train it", None), (None, None)],
)
def test_requested_epochs(request_text, epochs):
    from skillbank.runtime.request_words import requested_epochs

    assert requested_epochs(request_text) == epochs


def test_skill_md_lists_exactly_the_recognised_phrases(skill_dir):
    """Every phrase family is in SKILL.md's table, every row of that table is a family, and each example is off."""
    from skillbank.runtime.request_words import OFF_PHRASES

    text = (skill_dir / "SKILL.md").read_text()
    section = text.split("## Train action policy (AutoML)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| \"")]
    assert [row.split("|")[1].strip().strip('"') for row in rows] == [p.example for p in OFF_PHRASES]
    for phrase, row in zip(OFF_PHRASES, rows, strict=True):
        assert phrase.forms in row
        assert find_off_phrase(phrase.example), phrase.example


@pytest.mark.parametrize("request_text", OFF_PHRASES)
def test_off_phrases_turn_automl_off_for_this_run(skill_dir, request_text):
    decision = resolve_policy(skill_dir, "train", request=request_text)
    assert find_off_phrase(request_text), request_text
    assert decision["automl_policy"] == "off"
    assert decision["policy_source"] == "request"
    assert decision["route"] == "direct" and decision["target"] is None
    assert decision["runnable"] is True  # AutoML could run; this run just does not use it
    assert "for this run only" in decision["reason"]


@pytest.mark.parametrize("request_text", NOT_OFF)
def test_other_requests_and_negations_keep_automl_on(skill_dir, request_text):
    decision = resolve_policy(skill_dir, "train", request=request_text)
    assert find_off_phrase(request_text) is None, request_text
    assert decision["automl_policy"] == "on"
    assert decision["route"] == "automl"
    assert decision["target"] == AUTOML_TARGET
    assert decision["skill_dir"] == str(skill_dir)


@pytest.mark.parametrize(
    ("explicit", "request_text", "policy", "route"),
    [
        ("on", None, "on", "automl"),
        ("off", None, "off", "direct"),
        ("auto", None, "on", "automl"),  # legacy spelling of on
        ("ON", None, "on", "automl"),
        (" Off ", None, "off", "direct"),
        ("on", "no HPO, plain training", "on", "automl"),  # explicit wins over the request
        ("auto", "turn off AutoML", "on", "automl"),
        ("off", "use AutoML", "off", "direct"),
    ],
)
def test_explicit_policy_wins(skill_dir, explicit, request_text, policy, route):
    decision = resolve_policy(skill_dir, "train", explicit, request_text)
    assert (decision["automl_policy"], decision["route"], decision["policy_source"]) == (policy, route, "explicit")
    if explicit.strip().lower() == "auto":
        assert "legacy" in decision["reason"]


@pytest.mark.parametrize("bad", ["maybe", "", "true", "1", "automatic"])
def test_invalid_explicit_value_lists_valid_ones(skill_dir, bad):
    with pytest.raises(PolicyError) as err:
        resolve_policy(skill_dir, "train", bad)
    assert repr(bad) in str(err.value) and "on, off, auto" in str(err.value)


@pytest.mark.parametrize("action", ["evaluate", "inference", "export"])
@pytest.mark.parametrize("explicit", [None, "on", "auto"])
def test_non_train_actions_never_route_to_automl(skill_dir, action, explicit):
    decision = resolve_policy(skill_dir, action, explicit, "use AutoML")
    assert decision["route"] == "direct" and decision["target"] is None
    assert decision["runnable"] is False
    assert "never routes to AutoML" in decision["reason"]


# -- the skill's files decide whether AutoML is runnable (fake skill folders) ----------------

def _break(folder: Path, how: str) -> None:
    schema = folder / "schemas" / "train.schema.json"
    template = folder / "references" / "spec_template_train.yaml"
    info = folder / "references" / "skill_info.yaml"
    if how == "automl_disabled":
        info.write_text(info.read_text().replace("automl_enabled: true", "automl_enabled: false"))
    elif how == "automl_missing":
        info.write_text(info.read_text().replace("automl_enabled: true\n", ""))
    elif how == "no_schema":
        schema.unlink()
    elif how == "no_template":
        template.unlink()
    elif how == "schema_unparsable":
        schema.write_text('{"type": "object", "properties": ')
    elif how == "schema_not_object":
        schema.write_text("[1, 2, 3]")
    elif how == "template_unparsable":
        template.write_text("train: [unclosed\n  - : :")
    elif how == "template_not_mapping":
        template.write_text("- just\n- a list\n")
    elif how == "no_schemas_folder":
        shutil.rmtree(folder / "schemas")


@pytest.mark.parametrize(
    ("how", "runnable", "reason_part"),
    [
        ("intact", True, "goes to " + AUTOML_TARGET),
        ("automl_disabled", False, "automl_enabled is not true"),
        ("automl_missing", False, "automl_enabled is not true"),
        ("no_schema", False, NOT_RUNNABLE),
        ("no_schemas_folder", False, NOT_RUNNABLE),
        ("no_template", False, NOT_RUNNABLE),
        ("schema_unparsable", False, NOT_RUNNABLE),
        ("schema_not_object", False, NOT_RUNNABLE),
        ("template_unparsable", False, NOT_RUNNABLE),
        ("template_not_mapping", False, NOT_RUNNABLE),
    ],
)
def test_skill_files_decide_runnable(skill_dir, tmp_path, how, runnable, reason_part):
    fake = tmp_path / SKILL
    shutil.copytree(skill_dir, fake)
    _break(fake, how)
    before = _snapshot(fake)
    decisions = [resolve_policy(fake, "train", explicit, request)
                 for explicit, request in ((None, None), ("on", None), ("auto", None), ("off", None),
                                           (None, "no HPO"))]
    assert _snapshot(fake) == before, "resolving must never write to the skill folder"

    default, on, auto, off, by_request = decisions
    for decision in (default, on, auto):
        assert decision["runnable"] is runnable
        assert decision["route"] == ("automl" if runnable else "direct")
        assert reason_part in decision["reason"]
    for decision in (off, by_request):
        assert decision["route"] == "direct" and decision["automl_policy"] == "off"
    if reason_part == NOT_RUNNABLE:  # the off answer still tells why AutoML could not have run
        assert NOT_RUNNABLE in off["reason"]


def test_resolving_never_writes_to_the_real_skill(skill_dir):
    before = _snapshot(skill_dir)
    for action in ("train", "evaluate"):
        for explicit in (None, "on", "off", "auto"):
            resolve_policy(skill_dir, action, explicit, "turn off AutoML")
    assert _snapshot(skill_dir) == before


# -- CLI ------------------------------------------------------------------------------------

def test_cli_policy_json_by_name_and_by_folder(skill_dir):
    for ref in (SKILL, str(skill_dir)):
        result = CliRunner().invoke(main, ["policy", ref, "--request", "train it, no HPO", "--format", "json"])
        assert result.exit_code == 0, result.output
        decision = json.loads(result.output)
        assert decision["route"] == "direct" and decision["automl_policy"] == "off"
        assert decision["matched"] == "no hpo"
        assert Path(decision["skill_dir"]) == skill_dir


def test_cli_policy_text_defaults_to_train_and_automl(skill_dir):
    result = CliRunner().invoke(main, ["policy", SKILL])
    assert result.exit_code == 0, result.output
    assert f"route: automl -> {AUTOML_TARGET}" in result.output
    assert "automl_policy: on (default)" in result.output
    assert "matched" not in result.output
    off = CliRunner().invoke(main, ["policy", SKILL, "--request", "plain training (don't submit)"])
    assert "matched: 'plain training'" in off.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--automl-policy", "maybe"], "on, off, auto"),
        (["--action", "fly"], "unknown action"),
    ],
)
def test_cli_policy_usage_errors_exit_2(args, message):
    result = CliRunner().invoke(main, ["policy", SKILL, *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_policy_unknown_skill_exits_2():
    result = CliRunner().invoke(main, ["policy", "no-such-skill"])
    assert result.exit_code == 2 and "known skills" in result.output
