"""runtime.path_strings gives the strings pathlib gives, and the skill bank's readers give the same Paths."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from skillbank.runtime.path_strings import path_name, path_text, read_bytes
from skillbank.runtime.skills import Skill, find_skill_dir, skill_dirs
from skillbank.runtime.yaml_twins import MISSING, _twin_file, twin_content, twin_path

PATHS = ["", ".", "..", "/", "//", "///", "////a", "//a", "//a/", "a", "a/", "a//b", "a/./b", "./a", "a/..",
         "../a/./b//", "/a/b/", "/./a", "a/.", ".a", "a.", "a.tar.gz", "~", "~/x", "~user/x/", " a /b ", "a\\b",
         "/..", "a/b/../c"]


@pytest.mark.parametrize("path", PATHS)
def test_path_text_and_name_are_pathlibs(path):
    assert path_text(path) == str(Path(path))
    assert path_name(path_text(path)) == Path(path).name


@pytest.mark.parametrize("path", PATHS)
def test_a_twin_is_where_twin_path_puts_it(path):
    try:
        expected = str(twin_path(Path(path)))
    except ValueError:  # a path without a name: no twin
        expected = None
    assert _twin_file(path_text(path)) == expected


def test_path_like_and_bytes_go_through_pathlib():
    assert path_text(Path("a//b")) == "a/b"
    with pytest.raises(TypeError):
        path_text(b"a")  # type: ignore[arg-type]


def test_read_bytes_is_path_read_bytes(tmp_path):
    (tmp_path / "f").write_bytes(b"\x00\xffdata")
    assert read_bytes(str(tmp_path / "f")) == read_bytes(tmp_path / "f") == (tmp_path / "f").read_bytes()
    for missing in (tmp_path / "none", tmp_path):
        with pytest.raises(OSError) as ours:
            read_bytes(missing)
        with pytest.raises(OSError) as theirs:
            missing.read_bytes()
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_twin_content_takes_a_string_or_a_path(tmp_path):
    yaml_file = tmp_path / "info.yaml"
    yaml_file.write_text("a: 1\n")
    assert twin_content(str(yaml_file), b"a: 1\n") is MISSING is twin_content(yaml_file, b"a: 1\n")


def _fake_bank(root: Path) -> list[Path]:
    made = []
    for kind, name in [("model", "zeta"), ("model", "alpha"), ("tool", "mid"), (".hidden", "dotted")]:
        folder = root / "skills" / kind / name / "references"
        folder.mkdir(parents=True)
        (folder / "skill_info.yaml").write_text("actions: {train: {}}\n")
        made.append(folder.parent)
    (root / "skills" / "model" / "no-info" / "references").mkdir(parents=True)  # not a skill
    (root / "skills" / "model" / "a-file").write_text("")
    (root / "skills" / "loose-file").write_text("")
    os.symlink(root / "skills" / "tool", root / "skills" / "linked")  # a link to a folder is listed too
    return made


def test_skill_dirs_are_what_path_glob_finds(tmp_path):
    _fake_bank(tmp_path)
    globbed = sorted((p.parent.parent for p in (tmp_path / "skills").resolve().glob(
        "*/*/references/skill_info.yaml")), key=lambda p: p.name)
    assert skill_dirs(tmp_path) == globbed and len(globbed) == 5
    assert skill_dirs(str(tmp_path)) == globbed
    assert skill_dirs(tmp_path / "nowhere") == []


def test_a_skill_found_by_name_or_folder_is_the_same_path(tmp_path, monkeypatch):
    made = _fake_bank(tmp_path)
    assert find_skill_dir("alpha", tmp_path) == made[1]
    monkeypatch.chdir(tmp_path / "skills")
    assert find_skill_dir("model//zeta/", tmp_path) == made[0] == Path("model//zeta/").resolve()
    skill = Skill.load("./model/zeta", tmp_path)
    assert (skill.path, skill.name, str(skill.path)) == (made[0], "zeta", str(made[0]))
    assert Skill("model//zeta/").path == Path("model/zeta") and Skill(".").name == Path(".").name == ""
    assert Skill(Path("model/zeta")) == Skill("model/zeta/") and hash(Skill("a")) == hash(Skill(Path("a")))
    for folder in (".", "/", "model//zeta/", str(made[0])):
        skill = Skill(folder)
        assert skill._file("references", "x.yaml") == str(skill.path / "references" / "x.yaml")
        assert skill.schema_path("train") == skill.path / "schemas" / "train.schema.json"

