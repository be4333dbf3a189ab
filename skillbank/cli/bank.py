"""`skillbank list | schema | validate | spec`: read the bank, check overrides. Never imports torch."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from skillbank import validate_answer
from skillbank.runtime.overrides import OverridesError, load_overrides
from skillbank.runtime.policy import AUTOML_ACTION, automl_runnable
from skillbank.runtime.settings import SettingError
from skillbank.runtime.skills import Skill, SkillError, skill_dirs
from skillbank.runtime.validation import SpecValidationError, validated_spec

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people, json for programs.",
)


class BadInput(click.ClickException):
    """Input that cannot be used (an unreadable overrides file, a bad -o path, a bad setting): one line, exit 2."""

    exit_code = 2


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
    """The overrides in ``source`` (read once: ``-`` is stdin); unreadable input is one line and exit 2.

    Both errors have exit status 2 already; the ClickException is what `generate`/`run --format json`
    turn into their JSON error object (_json_errors).
    """
    try:
        return load_overrides(source)
    except (OverridesError, SettingError) as exc:
        raise BadInput(str(exc)) from None


def write_output(path: str | os.PathLike, text: str, *, executable: bool = False, option: str = "-o") -> Path:
    """Write ``text`` to ``path`` atomically (missing folders are made); a path that cannot be written is one
    line and exit 2, and nothing is left behind (no half-written file, no temporary file)."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{option} {path}: is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{option} {path}: cannot make its folder {path.parent} ({exc.strerror or exc})") from None
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        if executable:
            tmp.chmod(0o755)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None
    return path


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def skill_catalogue() -> list[dict[str, Any]]:
    """Every skill of the bank: kind, folder, actions (schema packaged, AutoML route) and description.

    The answer of `skillbank list --format json` and of the MCP tool list_skills.
    """
    rows = []
    for path in skill_dirs():
        skill = Skill(path)
        runnable = automl_runnable(skill)  # the policy's own answer: enabled, train schema and template parse
        actions = {
            action: {"automl": runnable and action == AUTOML_ACTION, "schema": skill.has_schema(action)}
            for action in skill.actions
        }
        rows.append({"skill": skill.name, "kind": path.parent.name, "path": str(path),
                     "automl_enabled": skill.automl_enabled, "actions": actions,
                     "description": " ".join(str(skill.info.get("description", "")).split())})
    return rows


@click.command("list")
@FORMAT
def list_skills(fmt: str) -> None:
    """List the skills in the bank, their actions and where AutoML applies."""
    rows = skill_catalogue()
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
@click.option("--all", "show_all", is_flag=True, help="Every field the action reads, not only the usual ones.")
@FORMAT
def schema(skill_name: str, action: str, show_all: bool, fmt: str) -> None:
    """Show the parameters of SKILL's ACTION: defaults, bounds, enums, AutoML flags.

    Only fields the action reads (inference does not list train.*). By
    default only those an agent usually sets: popular ones, for train the
    AutoML search parameters, the data sources and the action's own section.
    """
    from skillbank.runtime.schema_view import action_parameters

    skill = load_skill(skill_name)
    load_action(skill, action)
    try:
        view = action_parameters(skill, action, show_all)
    except SkillError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = view["parameters"]
    if fmt == "json":
        emit_json(view)
        return
    click.echo(f"{skill.name} {action}: {len(rows)} of the {view['fields_read']} fields it reads "
               "(--all for every one)")
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
        if row["inherited"]:
            extra.append("from the parent train job")
        click.echo(f"  {row['key']} = {row['default']!r}  ({row['type']}{'; ' if extra else ''}{'; '.join(extra)})")
    shorthand = ", ".join(f"{k} -> {v}" for k, v in view["shorthand_keys"].items())
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
    # broken skill files (SkillError, exit 1) and a bad SKILLBANK_MAX_* (SettingError, exit 2) are answered by
    # LazyGroup.invoke as `Error: <message>` with the error's exit status
    report = validate_answer.validation_report(skill, action, given)
    out, err, status = validate_answer.printed(report, len(given), fmt)
    click.echo(out, nl=False)
    click.echo(err, nl=False, err=True)
    sys.exit(status)


@click.command()
@click.argument("skill_name", metavar="SKILL")
@click.argument("action")
@click.argument("overrides", metavar="OVERRIDES")
@click.option("-o", "--output", metavar="FILE", help="Write the spec here (missing folders are made).")
@FORMAT
def spec(skill_name: str, action: str, overrides: str, output: str | None, fmt: str) -> None:
    """Print the full spec for SKILL's ACTION: the template merged with OVERRIDES, validated.

    Fields that the job SDK infers at launch (results_dir, checkpoints and model
    settings from a parent job) keep their template values here (a runner's
    --dry-run shows the spec a job reads). Secrets are masked: secret
    fields are emptied, and a known secret value (from the environment or a
    secret field) found in any other value is shown as ***.
    """
    from skillbank.runtime.sdk.secrets import redact_obj, redact_spec, secret_fields, secret_values
    from skillbank.runtime.spec_builder import get_dotted
    from skillbank.runtime.yaml_io import safe_dump

    skill = load_skill(skill_name)
    load_action(skill, action)
    given = read_overrides(overrides)
    try:
        merged = validated_spec(skill, action, given).spec  # checked and merged in one pass
    except SpecValidationError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from None
    # Secret fields are emptied exactly as in the spec.yaml a job reads (the SDK's one redaction); their
    # values, and the environment's secrets, are masked wherever else they were pasted.
    fields = secret_fields(merged, skill.spec_params(action))
    given_secrets = [str(value) for f in fields if isinstance(value := get_dotted(merged, f), str) and value]
    merged = redact_obj(redact_spec(merged, fields), secret_values(extra=given_secrets))
    text = json.dumps(merged, indent=2) + "\n" if fmt == "json" else safe_dump(merged)
    if output:
        write_output(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
