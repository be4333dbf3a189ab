"""The bank: the packaged one or $SKILLBANK_ROOT, one reader of a skill's files (JSON twins), one AutoML answer."""
from __future__ import annotations

import datetime
import importlib.resources
import json
import shutil
from pathlib import Path

import pytest
from fake_skill import make_fake_skill

from skillbank.cli.bank import skill_catalogue
from skillbank.runtime.policy import NOT_RUNNABLE, automl_runnable, resolve_policy
from skillbank.runtime.skills import Skill, SkillError, bank_root, packaged_bank, skill_dirs
from skillbank.runtime.yaml_io import safe_load
from skillbank.runtime.yaml_twins import MISSING, TwinError, render_twin, twin_content, twin_path

REPO = Path(__file__).resolve().parent.parent
SKILL = "tao-train-action-recognition"
TWINNED = sorted(p for p in REPO.glob("skills/*/*/references/*.yaml") if twin_path(p).is_file())


# -- where the bank is -----------------------------------------------------------------------------

def test_the_packaged_bank_is_the_package_resource(monkeypatch):
    monkeypatch.delenv("SKILLBANK_ROOT", raising=False)
    assert packaged_bank() == Path(str(importlib.resources.files("skillbank.bank")))
    assert bank_root() == packaged_bank()
    assert {p.name for p in skill_dirs()} == {SKILL, "tao-run-automl"}
    assert all(p.is_relative_to(REPO / "skills") for p in skill_dirs())  # in a checkout: the top-level folder


def test_skillbank_root_replaces_the_packaged_bank(monkeypatch, tmp_path):
    make_fake_skill(tmp_path / "mine")
    monkeypatch.setenv("SKILLBANK_ROOT", str(tmp_path / "mine"))
    assert [p.name for p in skill_dirs()] == ["fake-skill"]
    with pytest.raises(SkillError, match="known skills: fake-skill"):
        Skill.load(SKILL)
    assert Skill.load("fake-skill").info["network_arch"] == "fake_net"  # no twins there: read from the YAML


# -- the one reader: JSON twins while they match the YAML ------------------------------------------

def test_every_bank_yaml_the_cli_reads_has_a_twin():
    names = {(p.parent.parent.name, p.name) for p in TWINNED}
    assert (SKILL, "skill_info.yaml") in names and ("tao-run-automl", "skill_info.yaml") in names
    assert {(SKILL, f"spec_template_{action}.yaml") for action in Skill.load(SKILL).actions} <= names


@pytest.mark.parametrize("path", TWINNED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_a_twin_holds_what_its_yaml_says(path):
    source = path.read_bytes()
    assert twin_content(path, source) == safe_load(source.decode("utf-8"))


def _copy_skill(tmp_path: Path) -> Path:
    copy = tmp_path / SKILL
    shutil.copytree(REPO / "skills" / "models" / SKILL, copy)
    return copy


def test_a_yaml_edited_after_its_twin_is_read_from_the_yaml(tmp_path):
    copy = _copy_skill(tmp_path)
    info = copy / "references" / "skill_info.yaml"
    info.write_text(info.read_text().replace("network_arch: action_recognition", "network_arch: edited_by_hand"))
    template = copy / "references" / "spec_template_train.yaml"
    template.write_text(template.read_text().replace("num_epochs: 10", "num_epochs: 11"))
    skill = Skill(copy)
    assert skill.network_arch == "edited_by_hand"
    assert skill.template("train")["train"]["num_epochs"] == 11


@pytest.mark.parametrize("twin_text", ["not json {", "[1, 2]", '{"content": {"name": "stale"}}'],
                         ids=["broken", "not a twin", "no stamp"])
def test_a_twin_that_is_not_one_is_ignored(tmp_path, twin_text):
    copy = _copy_skill(tmp_path)
    (copy / "references" / "skill_info.json").write_text(twin_text)
    assert Skill(copy).name == SKILL and Skill(copy).info["name"] == SKILL


def test_a_missing_yaml_is_missing_even_with_its_twin(tmp_path):
    copy = _copy_skill(tmp_path)
    (copy / "references" / "spec_template_train.yaml").unlink()
    with pytest.raises(SkillError, match="no spec template"):
        Skill(copy).template("train")


@pytest.mark.parametrize("content", [{1: "a"}, {"when": datetime.date(2024, 1, 1)}, {"x": float("nan")}],
                         ids=["int key", "date", "nan"])
def test_content_json_cannot_hold_exactly_gets_no_twin(content):
    with pytest.raises(TwinError):
        render_twin(Path("skill_info.yaml"), b"...", content)


def test_a_twin_records_its_source():
    path = TWINNED[0]
    twin = json.loads(twin_path(path).read_text())
    assert twin["generated_from"] == path.name and twin["source_size"] == path.stat().st_size
    assert twin_content(path, path.read_bytes() + b"\n") is MISSING


# -- one answer to "can AutoML run this model's train?" --------------------------------------------

def _break(folder: Path, how: str) -> None:
    refs = folder / "references"
    if how == "no_template":
        (refs / "spec_template_train.yaml").unlink()
    elif how == "template_unparsable":
        (refs / "spec_template_train.yaml").write_text("train: [unclosed\n  - : :")
    elif how == "no_schema":
        (folder / "schemas" / "train.schema.json").unlink()
    elif how == "automl_disabled":
        info = refs / "skill_info.yaml"
        info.write_text(info.read_text().replace("automl_enabled: true", "automl_enabled: false"))


@pytest.mark.parametrize(("how", "runnable"), [("intact", True), ("no_template", False),
                                               ("template_unparsable", False), ("no_schema", False),
                                               ("automl_disabled", False)])
def test_list_and_the_policy_give_the_same_automl_answer(monkeypatch, tmp_path, how, runnable):
    folder = tmp_path / "bank" / "skills" / "models" / SKILL
    shutil.copytree(REPO / "skills" / "models" / SKILL, folder)
    _break(folder, how)
    monkeypatch.setenv("SKILLBANK_ROOT", str(tmp_path / "bank"))
    (row,) = skill_catalogue()
    decision = resolve_policy(folder, "train")
    assert row["actions"]["train"]["automl"] is runnable
    assert decision["runnable"] is runnable and automl_runnable(Skill(folder)) is runnable
    assert decision["route"] == ("automl" if runnable else "direct")
    if how not in ("intact", "automl_disabled"):
        assert NOT_RUNNABLE in decision["reason"]
