"""Find skills in the bank and read their packaged files (skill_info, schemas, templates).

The bank is a folder holding ``skills/<kind>/<skill>/``, ``schemas/`` and ``references/``: the one
installed with the package (``skillbank/bank``, found through the import system wherever the package
lives), or the folder ``$SKILLBANK_ROOT`` names, laid out the same way (a user's own skills). A skill is
a folder with ``references/skill_info.yaml``; it is named either by its folder name
(``tao-train-action-recognition``) or by its path.

This is the one reader of a skill's files: YAML files are read through their generated JSON twins
(:mod:`skillbank.runtime.yaml_twins`), so that the commands an agent calls on every step start without
importing PyYAML; PyYAML is imported only when a YAML file itself must be parsed.
"""
from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

from skillbank.runtime import settings
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.settings import SettingError
from skillbank.runtime.yaml_twins import MISSING, twin_content

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from typing import Any


class SkillError(SkillbankError, LookupError):
    """A skill that cannot be found or whose packaged files are missing or broken."""


def packaged_bank() -> Path:
    """The bank installed with the package: the folder of ``skillbank.bank``.

    That is what ``importlib.resources.files("skillbank.bank")`` gives for a package installed as files
    (every pip install); it is read from the package's ``__path__`` directly because importing
    ``importlib.resources`` costs `skillbank validate` as much start-up as PyYAML would.
    """
    import skillbank.bank

    return Path(next(iter(skillbank.bank.__path__)))


def bank_root() -> Path:
    """The folder that holds ``skills/``, ``schemas/`` and ``references/``: ``$SKILLBANK_ROOT``, else the
    packaged bank. A ``$SKILLBANK_ROOT`` that is not such a folder is a SettingError naming the variable."""
    return settings.bank_root() or packaged_bank()


def skill_dirs(root: Path | None = None) -> list[Path]:
    """Every skill folder in the bank, sorted by name."""
    # resolved: in a checkout the packaged bank's skills/ is a link to the top-level skills/ folder
    skills = ((root or bank_root()) / "skills").resolve()
    found = [p.parent.parent for p in skills.glob("*/*/references/skill_info.yaml")]
    return sorted(found, key=lambda p: p.name)


def find_skill_dir(name_or_path: str | os.PathLike, root: Path | None = None) -> Path:
    """Resolve a skill name or folder; the error lists the skills that exist."""
    candidate = Path(name_or_path).expanduser()
    if (candidate / "references" / "skill_info.yaml").is_file():
        return candidate.resolve()
    for path in skill_dirs(root):
        if path.name == str(name_or_path):
            return path
    known = ", ".join(p.name for p in skill_dirs(root)) or "(none)"
    raise SkillError(f"unknown skill {str(name_or_path)!r}; known skills: {known}")


class Skill:
    """One skill folder and lazy access to its packaged files (read once per instance).

    A plain class, not a dataclass: importing dataclasses costs `skillbank validate` half its start-up budget.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Skill(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Skill) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, root: Path | None = None) -> Skill:
        return cls(find_skill_dir(name_or_path, root))

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def info(self) -> dict[str, Any]:
        """``references/skill_info.yaml`` as a dict."""
        return read_yaml_file(self.path / "references" / "skill_info.yaml")

    @property
    def automl_enabled(self) -> bool:
        """Whether the model declares ``automl_enabled: true`` (whether AutoML can run it is policy's answer)."""
        return self.info.get("automl_enabled") is True

    @property
    def actions(self) -> list[str]:
        return list((self.info.get("actions") or {}).keys())

    @property
    def network_arch(self) -> str:
        return str(self.info.get("network_arch", self.name))

    def schema_path(self, action: str) -> Path:
        return self.path / "schemas" / f"{action}.schema.json"

    def template_path(self, action: str) -> Path:
        return self.path / "references" / f"spec_template_{action}.yaml"

    def has_schema(self, action: str) -> bool:
        return self.schema_path(action).is_file()

    def schema(self, action: str) -> dict[str, Any]:
        """The packaged JSON schema of ``action``."""
        key = f"schema:{action}"
        if key not in self._cache:
            self.require_action(action)
            path = self.schema_path(action)
            if not path.is_file():
                raise SkillError(
                    f"{self.name}: no schema for action {action!r} at {path}; run `make regen-schemas`"
                )
            self._cache[key] = read_json_file(path)
        return self._cache[key]

    def template(self, action: str) -> dict[str, Any]:
        """The packaged spec template of ``action`` (the defaults a spec starts from)."""
        key = f"template:{action}"
        if key not in self._cache:
            self.require_action(action)
            path = self.template_path(action)
            if not path.is_file():
                raise SkillError(
                    f"{self.name}: no spec template for action {action!r} at {path}; run `make regen-schemas`"
                )
            self._cache[key] = read_yaml_file(path)
        return self._cache[key]

    def manifest(self) -> dict[str, Any]:
        path = self.path / "schemas" / "manifest.json"
        if not path.is_file():
            raise SkillError(f"{self.name}: no manifest at {path}; run `make regen-schemas`")
        return read_json_file(path)

    def action_info(self, action: str) -> dict[str, Any]:
        """The ``actions.<action>`` block of skill_info.yaml."""
        self.require_action(action)
        return self.info["actions"][action]

    def require_action(self, action: str) -> None:
        if action not in self.actions:
            raise SkillError(
                f"{self.name}: unknown action {action!r}; allowed: {', '.join(self.actions) or '(none)'}"
            )

    def spec_params(self, action: str) -> dict[str, str]:
        """Field -> inference-function name for ``action``."""
        return dict((self.info.get("spec_params") or {}).get(action) or {})

    def shorthand_keys(self) -> dict[str, str]:
        return dict(self.info.get("spec_shorthand_keys") or {})

    def fields_read(self, action: str) -> list[str] | None:
        """The fields ``action`` reads (its schema's ``x_action_reads``); None when not declared (every field)."""
        reads = self.schema(action).get("x_action_reads")
        return list(reads) if isinstance(reads, list) else None

    def inherited_keys(self, action: str) -> list[str]:
        """The keys ``action`` takes from the model it runs (``inherited_settings``), among the fields it reads."""
        rule = self.info.get("inherited_settings") or {}
        if action not in (rule.get("actions") or ()):
            return []
        reads = self.fields_read(action)
        return [key for key in rule.get("keys") or () if reads_field(key, reads)]

    def data_sources(self, action: str) -> dict[str, Any]:
        """Dataset requirements of ``action``: field -> {description, sample, ...}."""
        return dict((self.info.get("data_sources") or {}).get(action) or {})


def reads_field(key: str, reads: list[str] | None) -> bool:
    """Whether dotted ``key`` is among ``reads`` (a leaf, or under a section named there); None: every field."""
    if reads is None:
        return True
    return any(key == entry or key.startswith(entry + ".") for entry in reads)


def read_json_file(path: Path) -> dict[str, Any]:
    """A packaged JSON file that holds an object; SkillError names the file when it is missing or broken."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise SkillError(f"missing file: {path}") from None
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise SkillError(f"{path}: not valid JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise SkillError(f"{path}: expected a JSON object at the top level")
    return data


def read_yaml_file(path: Path) -> dict[str, Any]:
    """A skill's YAML file (skill_info, a spec template) as a dict: from its JSON twin while the twin matches
    the file's bytes, else parsed. SkillError names the file when it is missing or broken."""
    try:
        source = path.read_bytes()
    except FileNotFoundError:
        raise SkillError(f"missing file: {path}") from None
    except OSError as exc:
        raise SkillError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    data = twin_content(path, source)
    if data is MISSING:
        from skillbank.runtime.yaml_io import safe_load  # PyYAML only when the YAML itself is read

        try:
            data = safe_load(source.decode("utf-8"))
        except SettingError:
            raise  # a bad SKILLBANK_* limit is the machine's setting, not the skill's file
        except Exception as exc:  # yaml.YAMLError, UnicodeDecodeError
            raise SkillError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(data, dict):
        raise SkillError(f"{path}: expected a mapping at the top level")
    return data
