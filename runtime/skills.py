"""Find skills in the bank and read their packaged files (skill_info, schemas, templates).

A skill is a folder with ``references/skill_info.yaml``; it is named either by
its folder name (``tao-train-action-recognition``) or by its path. The bank's
root is the repository this package was installed from, or ``$SKILLBANK_ROOT``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from skillbank.runtime.limits import SettingError
from skillbank.runtime.yaml_io import safe_load

BANK_ROOT_ENV = "SKILLBANK_ROOT"


class SkillError(LookupError):
    """A skill that cannot be found or whose packaged files are missing or broken."""


def bank_root() -> Path:
    """The folder that holds ``skills/``, ``schemas/`` and ``references/``."""
    env = os.environ.get(BANK_ROOT_ENV)
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def skill_dirs(root: Path | None = None) -> list[Path]:
    """Every skill folder in the bank, sorted by name."""
    skills = (root or bank_root()) / "skills"
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


@dataclass
class Skill:
    """One skill folder and lazy access to its packaged files."""

    path: Path
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, root: Path | None = None) -> Skill:
        return cls(find_skill_dir(name_or_path, root))

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def info(self) -> dict[str, Any]:
        """``references/skill_info.yaml`` as a dict."""
        return _read_yaml(self.path / "references" / "skill_info.yaml")

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
            try:
                self._cache[key] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise SkillError(f"{path}: not valid JSON ({exc})") from exc
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
            self._cache[key] = _read_yaml(path)
        return self._cache[key]

    def manifest(self) -> dict[str, Any]:
        path = self.path / "schemas" / "manifest.json"
        if not path.is_file():
            raise SkillError(f"{self.name}: no manifest at {path}; run `make regen-schemas`")
        return json.loads(path.read_text())

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


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SkillError(f"missing file: {path}")
    try:
        data = safe_load(path.read_text())
    except SettingError:
        raise  # a bad SKILLBANK_* limit is the machine's setting, not the skill's file
    except Exception as exc:  # yaml.YAMLError
        raise SkillError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise SkillError(f"{path}: expected a mapping at the top level")
    return data
