"""What an action's packaged schema offers an agent: the fields the action reads, with their metadata.

Reads the skill's packaged files only (no torch, no job store). ``skillbank schema`` and other front
ends (the MCP server) print :func:`action_parameters`.
"""
from __future__ import annotations

from typing import Any

from skillbank.runtime.skills import Skill, reads_field
from skillbank.runtime.validation import leaf_schemas

_META = ("minimum", "maximum", "enum", "popular", "automl_enabled", "description")


def action_parameters(skill: Skill, action: str, show_all: bool = False) -> dict[str, Any]:
    """The fields of ``skill``'s ``action`` an agent can set.

    Only fields the action reads (the schema's ``x_action_reads``; every field when a schema does not
    declare it): all of them with ``show_all``, else those an agent usually sets (popular ones, for
    train the AutoML search parameters, data sources, the action's own section). Each row says
    whether the job SDK fills it from the parent job (``inherited``). Raises SkillError.
    """
    full = skill.schema(action)
    reads = skill.fields_read(action)
    leaves = {key: prop for key, prop in leaf_schemas(full).items() if reads_field(key, reads)}
    data_sources = skill.data_sources(action)
    automl = set(full.get("automl_default_parameters") or []) if action == "train" else set()
    inherited = set(skill.inherited_keys(action))
    rows = []
    for key, prop in leaves.items():
        interesting = (prop.get("popular") or (action == "train" and prop.get("automl_enabled"))
                       or key in data_sources or (key.startswith(f"{action}.") and action != "train"))
        if not (show_all or interesting):
            continue
        row: dict[str, Any] = {"key": key, "type": prop.get("type"), "default": prop.get("default")}
        for meta in _META:
            if meta in prop:
                row[meta] = prop[meta]
        row["automl_default"] = key in automl
        row["data_source"] = key in data_sources
        row["inherited"] = key in inherited
        rows.append(row)
    shorthand = {k: v for k, v in skill.shorthand_keys().items() if v in leaves}
    return {"skill": skill.name, "action": action, "fields_read": len(leaves), "shorthand_keys": shorthand,
            "automl_default_parameters": sorted(automl), "parameters": rows}
