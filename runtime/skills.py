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

import os

from skillbank.runtime import settings
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.json_read import loads
from skillbank.runtime.path_strings import path_name, path_text, read_bytes
from skillbank.runtime.settings import SettingError
from skillbank.runtime.yaml_twins import MISSING, twin_content

TYPE_CHECKING = False  # typing for type checkers only: it costs a quarter of `skillbank validate`'s start-up budget
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

# Folders are handled as strings here and made Path objects only for the callers that ask for one
# (validate's start-up budget, see bench/cli_startup.py: it does not import pathlib).


class SkillError(SkillbankError, LookupError):
    """A skill that cannot be found or whose packaged files are missing or broken."""


def packaged_bank() -> Path:
    """The bank installed with the package: the folder of ``skillbank.bank``.

    That is what ``importlib.resources.files("skillbank.bank")`` gives for a package installed as files
    (every pip install); it is read from the package's ``__path__`` directly because importing
    ``importlib.resources`` costs `skillbank validate` as much start-up as PyYAML would.
    """
    from pathlib import Path

    return Path(_packaged_folder())


def _packaged_folder() -> str:
    import skillbank.bank

    return path_text(next(iter(skillbank.bank.__path__)))


def bank_root() -> Path:
    """The folder that holds ``skills/``, ``schemas/`` and ``references/``: ``$SKILLBANK_ROOT``, else the
    packaged bank. A ``$SKILLBANK_ROOT`` that is not such a folder is a SettingError naming the variable."""
    from pathlib import Path

    return Path(_bank_folder())


def _bank_folder() -> str:
    """:func:`bank_root` as a string, and the one place that decides between the setting and the packaged bank
    (pathlib is imported only when ``$SKILLBANK_ROOT`` is set: validate's start-up budget)."""
    configured = settings.bank_root()
    return str(configured) if configured is not None else _packaged_folder()


def skill_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every skill folder in the bank, sorted by name."""
    from pathlib import Path

    return [Path(folder) for folder in _skill_folders(root)]


def _skill_folders(root: str | os.PathLike[str] | None) -> list[str]:
    """:func:`skill_dirs` as strings: what ``skills/*/*/references/skill_info.yaml`` matches, as Path.glob does."""
    if not root:
        root = _bank_folder()
    # resolved: in a checkout the packaged bank's skills/ is a link to the top-level skills/ folder
    skills = os.path.realpath(os.path.join(root, "skills"))
    found = []
    for kind in _subfolders(skills):
        for folder in _subfolders(kind):
            references = os.path.join(folder, "references")
            if os.path.isdir(references) and os.path.exists(os.path.join(references, "skill_info.yaml")):
                found.append(folder)
    return sorted(found, key=path_name)


def _subfolders(folder: str) -> list[str]:
    """The folders in ``folder`` (links to folders too), in the order the system lists them; none when it
    cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            listed = list(entries)
    except OSError:
        return []
    subfolders = []
    for entry in listed:
        try:
            if entry.is_dir():
                subfolders.append(os.path.join(folder, entry.name))
        except OSError:
            continue
    return subfolders


def find_skill_dir(name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a skill name or folder; the error lists the skills that exist."""
    from pathlib import Path

    return Path(_find_skill_folder(name_or_path, root))


def _find_skill_folder(name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> str:
    """:func:`find_skill_dir` as a string."""
    candidate = path_text(name_or_path)
    if candidate.startswith("~"):
        from pathlib import Path

        candidate = str(Path(candidate).expanduser())
    if os.path.isfile(os.path.join(candidate, "references", "skill_info.yaml")):
        return os.path.realpath(candidate)
    folders = _skill_folders(root)
    for folder in folders:
        if path_name(folder) == str(name_or_path):
            return folder
    known = ", ".join(path_name(folder) for folder in folders) or "(none)"
    raise SkillError(f"unknown skill {str(name_or_path)!r}; known skills: {known}")


class Skill:
    """One skill folder and lazy access to its packaged files (read once per instance).

    A plain class, not a dataclass: importing dataclasses costs `skillbank validate` half its start-up budget.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._folder = path_text(path)  # str(self.path)
        self._path: Path | None = None
        self._cache: dict[str, Any] = {}

    @property
    def path(self) -> Path:
        """The skill's folder."""
        if self._path is None:
            from pathlib import Path

            self._path = Path(self._folder)
        return self._path

    def __repr__(self) -> str:
        return f"Skill(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Skill) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Skill:
        return cls(_find_skill_folder(name_or_path, root))

    @property
    def name(self) -> str:
        return path_name(self._folder)

    @property
    def info(self) -> dict[str, Any]:
        """``references/skill_info.yaml`` as a dict (read once)."""
        if "info" not in self._cache:
            self._cache["info"] = read_yaml_file(self._file("references", "skill_info.yaml"))
        return self._cache["info"]

    def _file(self, *parts: str) -> str:
        """A file of the skill's folder, as a string: ``str(self.path.joinpath(*parts))``."""
        return path_text(os.path.join(self._folder, *parts))

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
        from pathlib import Path

        return Path(self._schema_file(action))

    def template_path(self, action: str) -> Path:
        from pathlib import Path

        return Path(self._template_file(action))

    def _schema_file(self, action: str) -> str:
        return self._file("schemas", f"{action}.schema.json")

    def _template_file(self, action: str) -> str:
        return self._file("references", f"spec_template_{action}.yaml")

    def has_schema(self, action: str) -> bool:
        return os.path.isfile(self._schema_file(action))

    def schema(self, action: str) -> dict[str, Any]:
        """The packaged JSON schema of ``action``."""
        key = f"schema:{action}"
        if key not in self._cache:
            self.require_action(action)
            path = self._schema_file(action)
            if not os.path.isfile(path):
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
            path = self._template_file(action)
            if not os.path.isfile(path):
                raise SkillError(
                    f"{self.name}: no spec template for action {action!r} at {path}; run `make regen-schemas`"
                )
            self._cache[key] = read_yaml_file(path)
        return self._cache[key]

    def manifest(self) -> dict[str, Any]:
        path = self._file("schemas", "manifest.json")
        if not os.path.isfile(path):
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


def read_json_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A packaged JSON file that holds an object; SkillError names the file when it is missing or broken."""
    try:
        data = loads(read_bytes(path))
    except FileNotFoundError:
        raise SkillError(f"missing file: {path}") from None
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise SkillError(f"{path}: not valid JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise SkillError(f"{path}: expected a JSON object at the top level")
    return data


def read_yaml_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A skill's YAML file (skill_info, a spec template) as a dict: from its JSON twin while the twin matches
    the file's bytes, else parsed. SkillError names the file when it is missing or broken."""
    try:
        source = read_bytes(path)
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
