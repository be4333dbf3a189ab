"""The skills' files as MCP resources: ``skill://<skill>/<path>`` for SKILL.md, schemas and spec templates.

Only the files :func:`skill_resources` lists can be read: a URI is looked up in that listing, never joined
onto a folder, so no path can leave a skill's folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skillbank.runtime.skills import skill_dirs

SCHEME = "skill://"
_MIME = {".md": "text/markdown", ".json": "application/json", ".yaml": "application/yaml"}


@dataclass(frozen=True)
class SkillResource:
    """One file of a skill, as a resource."""

    uri: str
    skill: str
    relative: str  # path inside the skill's folder, e.g. schemas/train.schema.json
    path: Path
    mime_type: str
    description: str


def skill_resources(root: Path | None = None) -> list[SkillResource]:
    """Each skill's SKILL.md, ``schemas/*.json`` and ``references/spec_template_*.yaml``, in a stable order."""
    found = []
    for folder in skill_dirs(root):
        files = [folder / "SKILL.md", *sorted((folder / "schemas").glob("*.json")),
                 *sorted((folder / "references").glob("spec_template_*.yaml"))]
        for path in files:
            if not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            found.append(SkillResource(
                uri=f"{SCHEME}{folder.name}/{relative}", skill=folder.name, relative=relative, path=path,
                mime_type=_MIME.get(path.suffix, "text/plain"), description=_describe(folder.name, relative),
            ))
    return found


def read_skill_resource(uri: str, root: Path | None = None) -> tuple[SkillResource, str]:
    """The resource named ``uri`` and its text; LookupError (naming the URI) when the bank has no such file."""
    for resource in skill_resources(root):
        if resource.uri == uri:
            return resource, resource.path.read_text(encoding="utf-8")
    raise LookupError(f"unknown resource {uri!r}; resources are {SCHEME}<skill>/SKILL.md, "
                      f"{SCHEME}<skill>/schemas/<action>.schema.json and "
                      f"{SCHEME}<skill>/references/spec_template_<action>.yaml (list them with resources/list)")


def _describe(skill: str, relative: str) -> str:
    if relative == "SKILL.md":
        return f"{skill}: how an agent uses this skill (read it first)"
    if relative == "schemas/manifest.json":
        return f"{skill}: where each action's schema and template are; AutoML default and disabled parameters"
    if relative.startswith("schemas/"):
        return f"{skill}: JSON Schema of the {relative.split('/')[-1].split('.')[0]} spec (generated)"
    action = relative.rsplit("spec_template_", 1)[-1].removesuffix(".yaml")
    return f"{skill}: the full default {action} spec (generated)"
