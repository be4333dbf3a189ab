"""`skillbank list | schema | validate | spec`: read the bank, check overrides. Never imports torch."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from skillbank.runtime.overrides import OverridesError, load_overrides
from skillbank.runtime.skills import Skill, SkillError, skill_dirs
from skillbank.runtime.validation import leaf_schemas, normalize_overrides, validate_overrides

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people, json for programs.",
)


def load_skill(name: str) -> Skill:
    """The skill named on the command line; unknown names are a usage error (exit 2)."""
    try:
        return Skill.load(name)
    except SkillError as exc:
        raise click.UsageError(str(exc)) from exc


def load_action(skill: Skill, action: str) -> str:
    try:
        skill.require_action(action)
    except SkillError as exc:
        raise click.UsageError(str(exc)) from exc
    return action


def read_overrides(source: str) -> dict[str, Any]:
    try:
        return load_overrides(source)
    except OverridesError as exc:
        raise click.UsageError(str(exc)) from exc


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.command("list")
@FORMAT
def list_skills(fmt: str) -> None:
    """List the skills in the bank, their actions and where AutoML applies."""
    rows = []
    for path in skill_dirs():
        skill = Skill(path)
        automl = bool(skill.info.get("automl_enabled"))
        actions = {
            action: {"automl": automl and action == "train" and skill.has_schema("train"),
                     "schema": skill.has_schema(action)}
            for action in skill.actions
        }
        rows.append({"skill": skill.name, "kind": path.parent.name, "path": str(path),
                     "automl_enabled": automl, "actions": actions,
                     "description": " ".join(str(skill.info.get("description", "")).split())})
    if fmt == "json":
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['skill']}  ({row['kind']})")
        if row["description"]:
            click.echo(f"  {row['description']}")
        for action, flags in row["actions"].items():
            if row["kind"] != "models":
                click.echo(f"  {action}")
            elif action == "train":
                click.echo(f"  {action:<10} {'AutoML (policy on by default)' if flags['automl'] else 'direct'}")
            else:
                click.echo(f"  {action:<10} direct")


@click.command()
@click.argument("skill_name", metavar="SKILL")
@click.argument("action")
@click.option("--all", "show_all", is_flag=True, help="Every field, not only the popular and tunable ones.")
@FORMAT
def schema(skill_name: str, action: str, show_all: bool, fmt: str) -> None:
    """Show the parameters of SKILL's ACTION: defaults, bounds, enums, AutoML flags.

    By default only the fields an agent usually sets: popular ones, AutoML
    search parameters, the data sources and the action's own section.
    """
    skill = load_skill(skill_name)
    load_action(skill, action)
    try:
        full = skill.schema(action)
    except SkillError as exc:
        raise click.ClickException(str(exc)) from exc
    leaves = leaf_schemas(full)
    data_sources = skill.data_sources(action)
    automl = set(full.get("automl_default_parameters") or [])
    rows = []
    for key, prop in leaves.items():
        interesting = (prop.get("popular") or prop.get("automl_enabled") or key in data_sources
                       or key.startswith(f"{action}.") and action != "train")
        if not (show_all or interesting):
            continue
        row = {"key": key, "type": prop.get("type"), "default": prop.get("default")}
        for meta in ("minimum", "maximum", "enum", "popular", "automl_enabled", "description"):
            if meta in prop:
                row[meta] = prop[meta]
        row["automl_default"] = key in automl
        row["data_source"] = key in data_sources
        rows.append(row)
    if fmt == "json":
        emit_json({"skill": skill.name, "action": action, "shorthand_keys": skill.shorthand_keys(),
                   "automl_default_parameters": sorted(automl), "parameters": rows})
        return
    click.echo(f"{skill.name} {action}: {len(rows)} of {len(leaves)} fields (--all for every one)")
    for row in rows:
        extra = []
        if "enum" in row:
            extra.append("one of " + "|".join(map(str, row["enum"])))
        if "minimum" in row or "maximum" in row:
            extra.append(f"range [{row.get('minimum', '-inf')}, {row.get('maximum', 'inf')}]")
        if row["automl_default"]:
            extra.append("AutoML default")
        if row["data_source"]:
            extra.append("data source (required)")
        click.echo(f"  {row['key']} = {row['default']!r}  ({row['type']}{'; ' if extra else ''}{'; '.join(extra)})")
    shorthand = ", ".join(f"{k} -> {v}" for k, v in skill.shorthand_keys().items())
    if shorthand:
        click.echo(f"shorthand keys: {shorthand}")


@click.command()
@click.argument("skill_name", metavar="SKILL")
@click.argument("action")
@click.argument("overrides", metavar="OVERRIDES")
@FORMAT
def validate(skill_name: str, action: str, overrides: str, fmt: str) -> None:
    """Check OVERRIDES (a JSON/YAML file of dotted keys, or - for stdin) for SKILL's ACTION.

    Reports every problem at once with the key, the value and what is allowed.
    Exit status: 0 valid, 1 invalid, 2 usage error.
    """
    skill = load_skill(skill_name)
    load_action(skill, action)
    given = read_overrides(overrides)
    try:
        problems = validate_overrides(skill, action, given)
    except SkillError as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json":
        emit_json({"skill": skill.name, "action": action, "valid": not problems,
                   "problems": [p.to_dict() for p in problems]})
    elif problems:
        click.echo(f"{skill.name} {action}: {len(problems)} problem(s)", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
    else:
        click.echo(f"{skill.name} {action}: overrides are valid ({len(given)} key(s))")
    sys.exit(1 if problems else 0)


@click.command()
@click.argument("skill_name", metavar="SKILL")
@click.argument("action")
@click.argument("overrides", metavar="OVERRIDES")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the spec here.")
@FORMAT
def spec(skill_name: str, action: str, overrides: str, output: str | None, fmt: str) -> None:
    """Print the full spec for SKILL's ACTION: the template merged with OVERRIDES, validated.

    Fields that the job SDK infers at launch (results_dir, checkpoints from a
    parent job) keep their template values here. Secrets are masked.
    """
    from skillbank.runtime.sdk.secrets import redact_spec, secret_fields
    from skillbank.runtime.spec_builder import build_spec
    from skillbank.runtime.yaml_io import safe_dump

    skill = load_skill(skill_name)
    load_action(skill, action)
    given = read_overrides(overrides)
    problems = validate_overrides(skill, action, given)
    if problems:
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1)
    merged = build_spec(skill.template(action), normalize_overrides(skill, action, given))
    # Secret fields are emptied exactly as in the spec.yaml a job reads (the SDK's one redaction).
    merged = redact_spec(merged, secret_fields(merged, skill.spec_params(action)))
    text = json.dumps(merged, indent=2) + "\n" if fmt == "json" else safe_dump(merged)
    if output:
        from pathlib import Path

        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
