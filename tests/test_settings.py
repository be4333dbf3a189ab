"""The SKILLBANK_* variables: one module reads them, each has one default, a bad value names its variable."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from skillbank.runtime import settings
from skillbank.runtime.settings import SETTINGS, SettingError

REPO = Path(__file__).resolve().parent.parent
NAME = re.compile(r"SKILLBANK_[A-Z0-9_]*[A-Z0-9]")
# os.environ.get("SKILLBANK_..."), os.getenv("SKILLBANK_..."), os.environ["SKILLBANK_..."] (not an assignment)
READ = re.compile(r"""(?:environ\.get|getenv)\(\s*["']SKILLBANK_|environ\[\s*["']SKILLBANK_\w+["']\s*\](?!\s*=[^=])""")
KNOWN = {name for name, _, _ in SETTINGS}


def _code() -> list[Path]:
    return sorted(p for folder in ("runtime", "generator", "skillbank") for pattern in ("*.py", "*.j2")
                  for p in (REPO / folder).rglob(pattern))


def _texts() -> list[Path]:
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("skills/*/*/SKILL.md"))]
    return [*_code(), *docs]


def test_every_variable_named_anywhere_is_a_setting():
    unknown = {}
    for path in _texts():
        for name in set(NAME.findall(path.read_text(encoding="utf-8"))):
            if name not in KNOWN and not any(known.startswith(name + "_") for known in KNOWN):  # SKILLBANK_MAX_*
                unknown.setdefault(name, []).append(str(path.relative_to(REPO)))
    assert unknown == {}


def test_only_the_settings_module_reads_them():
    readers = [str(p.relative_to(REPO)) for p in _code()
               if p.name != "settings.py" and READ.search(p.read_text(encoding="utf-8"))]
    assert readers == []


def test_the_docs_list_every_setting_with_its_default():
    rows = re.findall(r"^\| `(SKILLBANK_\w+)` \| (.*?) \| (.*?) \|$", (REPO / "docs" / "settings.md").read_text(),
                      re.M)
    assert [(name, default) for name, default, _ in rows] == [(name, default) for name, default, _ in SETTINGS]


def test_defaults_when_unset_or_blank(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in KNOWN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.STATE_DIR, "  ")
    assert settings.state_dir() == tmp_path / ".local" / "state" / "skillbank"
    assert settings.results_root() == str(tmp_path / "skillbank-results")
    assert settings.bank_root() is None
    assert (settings.s3_max_attempts(), settings.s3_connect_timeout(), settings.s3_read_timeout()) == (5, 10.0, 60.0)
    assert settings.s3_addressing_style(custom_endpoint=True) == "path"
    assert settings.s3_addressing_style(custom_endpoint=False) == ""
    assert settings.limit(settings.MAX_PROBLEMS) == 100
    assert (settings.docker_shm_size(), settings.slurm_container(), settings.k8s_namespace()) == ("8g", "", "")
    assert settings.encryption_key() == "" and settings.encryption_key({settings.ENCRYPTION_KEY: "k"}) == "k"


def test_values_are_parsed(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(settings.RESULTS_ROOT, "~/runs")
    assert settings.results_root() == str(tmp_path / "runs")
    monkeypatch.setenv(settings.RESULTS_ROOT, "s3://bucket/runs")
    assert settings.results_root() == "s3://bucket/runs"
    monkeypatch.setenv(settings.S3_ADDRESSING_STYLE, "Virtual")
    assert settings.s3_addressing_style(custom_endpoint=True) == "virtual"
    monkeypatch.setenv(settings.MAX_PROBLEMS, "7")
    assert settings.limit(settings.MAX_PROBLEMS) == 7
    (tmp_path / "bank" / "skills").mkdir(parents=True)
    monkeypatch.setenv(settings.BANK_ROOT, "~/bank")
    assert settings.bank_root() == (tmp_path / "bank").resolve()


@pytest.mark.parametrize(("name", "value", "read", "allowed"), [
    (settings.MAX_PROBLEMS, "lots", lambda: settings.limit(settings.MAX_PROBLEMS), "a whole number >= 1"),
    (settings.S3_READ_TIMEOUT, "-1", settings.s3_read_timeout, "a number >= 0.001"),
    (settings.S3_MAX_ATTEMPTS, "2.5", settings.s3_max_attempts, "a whole number >= 1"),
    (settings.S3_ADDRESSING_STYLE, "sideways", lambda: settings.s3_addressing_style(True), "path, virtual, auto"),
    (settings.BANK_ROOT, "/nowhere/at/all", settings.bank_root, "skills/<kind>/<skill>/references/skill_info.yaml"),
    (settings.SLURM_CONTAINER, "podman", settings.slurm_container, "apptainer, singularity, pyxis, none"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, name, value, read, allowed):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingError) as error:
        read()
    message = str(error.value)
    assert message.startswith(f"{name}={value!r}") and "\n" not in message
    assert allowed in message.split("; allowed: ", 1)[1]
    assert error.value.exit_code == 2


def test_a_bank_root_without_skills_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.BANK_ROOT, str(tmp_path))
    with pytest.raises(SettingError, match="has no skills/ folder"):
        settings.bank_root()
