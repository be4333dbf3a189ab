"""Generate a standalone Python runner script for one action of a skill (Jinja template under templates/).

The generator validates the overrides first (nothing is produced when they
are invalid), resolves the AutoML policy for train, and renders
``templates/runner.py.j2``. Every value that came from a user (overrides,
skill name, parent job id, paths, request text) reaches the runner only as a
Python literal built by :func:`py_literal` (``repr`` of plain data) or inside
a comment made single-line and ASCII-safe: nothing is spliced into code or a
shell line. Secrets are stripped from the overrides with a warning: the runner
reads ``SKILLBANK_ENCRYPTION_KEY`` from its environment at run time.
Generation is deterministic: same inputs, same bytes (no timestamps).
"""
from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank import __version__
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.policy import resolve_policy
from skillbank.runtime.request_words import requested_epochs
from skillbank.runtime.sdk.job_labels import check_name, check_tags
from skillbank.runtime.sdk.platforms import PLATFORMS
from skillbank.runtime.sdk.platforms.options import check_platform_options
from skillbank.runtime.sdk.secrets import (
    ENCRYPTION_KEY_ENV,
    MASK,
    is_encryption_key,
    is_secret_field,
    known_secrets,
    secrets_in,
)
from skillbank.runtime.skills import Skill, skill_dirs
from skillbank.runtime.validation import Problem, normalize_overrides, validate_overrides

TEMPLATE = "runner.py.j2"
_LITERAL_WIDTH = 100
_STRING_CHUNK = 60  # characters per line of a long embedded string
_COMMENT_WIDTH = 100
_LINT_WIDTH = 120  # the project's ruff line length, which generated runners keep too
_RUNNER_OPTIONS = ("[--dry-run]", "[--no-wait]", "[--results-root DIR]", "[--timeout SECONDS]", "[--format json]")


class GenerationError(SkillbankError, ValueError):
    """Inputs a runner cannot be generated from; ``problems`` lists every invalid override."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class GeneratedRunner:
    """A rendered runner and what went into it."""

    text: str
    skill: str
    action: str
    platform: str
    policy: dict[str, Any] | None  # the decision for train, None for other actions
    route: str  # "direct" or "automl"
    overrides: dict[str, Any]  # what the runner embeds (secrets stripped)
    stripped_secrets: dict[str, Any] = field(default_factory=dict, repr=False)  # never written anywhere
    spec_params: dict[str, str] = field(default_factory=dict)  # the action's field -> inference (skill_info)
    warnings: list[str] = field(default_factory=list)
    platform_options: dict[str, Any] = field(default_factory=dict)  # checked --platform-option values


def split_secrets(overrides: dict[str, Any], spec_params: dict[str, str] | None = None) -> tuple[dict, dict]:
    """(overrides without secrets, the secrets), by the SDK's rule (secrets.is_secret_field): what a runner
    never embeds is what a job record never shows."""
    kept, secrets = {}, {}
    for key, value in overrides.items():
        (secrets if is_secret_field(key, spec_params) else kept)[key] = value
    return kept, secrets


def pasted_secret_problems(embedded: dict[str, Any], stripped: dict[str, Any]) -> list[Problem]:
    """A known secret (environment or a secret override) in a value the runner would embed: refused, never masked.

    Masking would change what the job reads; embedding would write the secret into the runner file.
    """
    given = {v: f"the secret override {k}" for k, v in stripped.items() if isinstance(v, str)}
    return [
        Problem(key, MASK, f"holds the value of {source}; a secret is never embedded in a runner",
                "the secret through its environment variable or a secret field such as encryption_key, "
                "never inside another value")
        for key, source in secrets_in(embedded, known_secrets(extra=given))
    ]


def skill_reference(skill: Skill) -> str:
    """How the runner names the skill: by name when the bank holds it, else by absolute folder."""
    if any(path.resolve() == skill.path.resolve() for path in skill_dirs()):
        return skill.name
    return str(skill.path.resolve())


def py_literal(value: Any, indent: int = 0, where: str = "value") -> str:
    """``value`` (plain JSON/YAML data) as Python literal source, wrapped to stay readable.

    Only None, bool, int, float, str, list/tuple and dicts with scalar keys are
    accepted; anything else (dates, objects) is refused rather than repr'd into code.
    """
    flat = _flat_literal(value, where)
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, str) and indent + len(flat) > _LITERAL_WIDTH:
        # implicit concatenation inside parentheses: still one literal, lines stay short
        chunks = _string_chunks(value)
        return "(\n" + "\n".join(f"{inner}{c!r}" for c in chunks) + f"\n{pad})"
    if indent + len(flat) <= _LITERAL_WIDTH or not isinstance(value, (dict, list, tuple)) or not value:
        return flat
    if isinstance(value, dict):
        lines = [
            f"{inner}{_flat_literal(k, where)}: {py_literal(v, indent + 4, f'{where}.{k}')},"
            for k, v in value.items()
        ]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    lines = [f"{inner}{py_literal(v, indent + 4, f'{where}[{i}]')}," for i, v in enumerate(value)]
    return "[\n" + "\n".join(lines) + f"\n{pad}]"


def _string_chunks(text: str) -> list[str]:
    """``text`` cut into pieces of at most ``_STRING_CHUNK`` characters, after a space where one is near."""
    chunks = []
    while len(text) > _STRING_CHUNK:
        cut = text.rfind(" ", _STRING_CHUNK // 2, _STRING_CHUNK) + 1 or _STRING_CHUNK
        chunks.append(text[:cut])
        text = text[cut:]
    return chunks + [text] if text else chunks


def _flat_literal(value: Any, where: str) -> str:
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        raise GenerationError(f"{where}: non-finite number {value!r} cannot be embedded in a runner")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flat_literal(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise GenerationError(f"{where}: mapping key {k!r} is not a plain scalar")
            items.append(f"{_flat_literal(k, where)}: {_flat_literal(v, f'{where}.{k}')}")
        return "{" + ", ".join(items) + "}"
    raise GenerationError(
        f"{where}: value of type {type(value).__name__} cannot be embedded in a runner; "
        "allowed: strings, numbers, booleans, null, lists and mappings"
    )


def comment_text(text: Any) -> str:
    """``text`` made safe for one ``#`` comment line: printable ASCII only, everything else escaped."""
    return "".join(
        ch if ch.isascii() and ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in str(text)
    )


def comment_lines(text: Any, width: int = _COMMENT_WIDTH) -> list[str]:
    """``text`` as safe comment lines of at most ``width`` characters (long words are broken)."""
    import textwrap

    return textwrap.wrap(comment_text(text), width, break_on_hyphens=False) or [""]


def command_lines(argv: list[str], width: int = _COMMENT_WIDTH, raw: tuple[str, ...] = ()) -> list[str]:
    """A shell-quoted command split between arguments into ``\\``-continued comment lines.

    Words in ``raw`` (usage placeholders such as ``[--dry-run]``) are not quoted.
    """
    units: list[str] = []  # an option and its value stay on one line
    for arg in argv:
        word = arg if arg in raw else comment_text(shlex.quote(arg))
        if units and units[-1].startswith("-") and " " not in units[-1] and not arg.startswith(("-", "[")) \
                and len(units[-1]) + 1 + len(word) <= width:
            units[-1] += " " + word
        else:
            units.append(word)
    lines, current = [], ""
    for word in units:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current + " \\")
            current = "    " + word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def regenerate_argv(
    skill_ref: str, action: str, overrides_label: str, *, parent_job_id: str | None, platform: str,
    automl_policy: str | None, request: str | None, results_root: str | None, output_name: str,
    name: str | None = None, tags: list[str] | tuple[str, ...] = (), automl_options: dict[str, Any] | None = None,
    platform_options: dict[str, Any] | None = None,
) -> list[str]:
    """The ``skillbank generate`` command line that reproduces this runner."""
    from skillbank.runtime.automl.options import BUDGET_FLAGS

    argv = ["skillbank", "generate", skill_ref, action, overrides_label]
    if parent_job_id:
        argv += ["--parent-job-id", parent_job_id]
    if platform != "local":
        argv += ["--platform", platform]
    for key, value in (platform_options or {}).items():
        argv += ["--platform-option", f"{key}={value}"]
    if automl_policy is not None:
        argv += ["--automl-policy", automl_policy]
    if request:
        argv += ["--request", request]
    if results_root:
        argv += ["--results-root", results_root]
    if name:
        argv += ["--name", name]
    for tag in tags:
        argv += ["--tag", tag]
    for option, value in (automl_options or {}).items():
        if option in BUDGET_FLAGS:
            argv += [f"--{option.replace('_', '-')}", str(value)]
        else:  # an engine option without a flag of its own
            argv += ["--automl-option", f"{option}={automl_option_text(value)}"]
    return argv + ["-o", output_name]


def automl_option_text(value: Any) -> str:
    """``value`` as ``--automl-option KEY=VALUE`` text that reads back (as YAML, parse_option_items) as ``value``.

    A string stays bare when YAML reads it back unchanged (``val_acc``); one YAML would turn into something
    else (``2024``, ``yes``, ``null``, blank or padded text) is JSON-quoted, which YAML reads as that string.
    """
    if isinstance(value, str) and value.strip():
        from skillbank.runtime.yaml_io import safe_load  # only for a runner with such an option

        try:
            if safe_load(value) == value:
                return value
        except Exception:  # noqa: BLE001 - text YAML cannot read is quoted below
            pass
    return json.dumps(value)


def generate_runner(
    skill_name_or_dir: str | Path,
    action: str,
    overrides: dict[str, Any],
    *,
    parent_job_id: str | None = None,
    platform: str = "local",
    automl_policy: str | None = None,
    request: str | None = None,
    results_root: str | None = None,
    overrides_label: str = "overrides.yaml",
    output_name: str = "runner.py",
    name: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    automl_options: Any = None,
    platform_options: dict[str, Any] | None = None,
) -> GeneratedRunner:
    """Validate, resolve the policy and render a runner; raises GenerationError (with ``problems``).

    ``automl_options`` (an ``AutoMLOptions``, or a mapping of its fields: ``algorithm``, ``max_trials``,
    ``max_epochs``, ``workspace``, ``max_concurrent`` ...) set the AutoML route's engine options; an
    epoch count in ``request`` ("train for 2 epochs") is ``max_epochs`` when it is not given. The fields
    given are embedded as data (``AUTOML_OPTIONS``; the runner sets platform, results root, name and tags
    itself) and ignored, with a warning, off that route.

    ``name`` and ``tags`` label the job (or every AutoML trial job) for ``skillbank jobs list``.
    ``platform_options`` (``--platform-option``: slurm partition, gpus=0, docker cli ...) are checked for
    ``platform`` (PlatformOptionError names a bad key or value) and embedded as data (``PLATFORM_OPTIONS``).
    Raises SkillError for an unknown skill/action, PolicyError for an invalid explicit
    ``automl_policy`` and LabelError for a name or tag that is not allowed.
    """
    labels = {"name": check_name(name), "tags": check_tags(tags)}
    skill = Skill.load(skill_name_or_dir)
    skill.require_action(action)
    if platform not in PLATFORMS:
        raise GenerationError(f"platform: invalid value {platform!r}; allowed: {', '.join(PLATFORMS)}")
    platform_options = check_platform_options(platform, platform_options)
    if not isinstance(overrides, dict):
        raise GenerationError(f"overrides must be a mapping of dotted keys, got {type(overrides).__name__}")

    spec_params = dict(skill.spec_params(action))
    flat = normalize_overrides(skill, action, overrides)
    kept, secrets = split_secrets(flat, spec_params)
    warnings = [
        f"{key}: secret value not embedded in the runner; "
        + (f"the runner reads ${ENCRYPTION_KEY_ENV} from its environment at run time instead"
           if is_encryption_key(key, spec_params) else
           "give it to the job through its environment (e.g. AWS_SECRET_ACCESS_KEY) instead")
        for key in secrets
    ]
    problems = validate_overrides(skill, action, kept) + pasted_secret_problems(
        {**kept, "--results-root": results_root, "--request": request, "--parent-job-id": parent_job_id}, secrets)
    if problems:
        raise GenerationError(
            f"{skill.name} {action}: {len(problems)} problem(s) in spec_overrides; no runner written", problems
        )

    policy = resolve_policy(skill, action, automl_policy, request) if action == "train" else None
    route = policy["route"] if policy else "direct"
    given_budget = check_automl_options(automl_options)
    budget, budget_note = automl_budget(given_budget, request, route)
    if given_budget and route != "automl":
        warnings.append(f"--{', --'.join(k.replace('_', '-') for k in given_budget)} ignored: only the AutoML route "
                        f"reads them, and {skill.name} {action} runs directly here")
    if action in _parent_actions(skill) and not parent_job_id and not _has_checkpoint_override(skill, action, kept):
        warnings.append(
            f"{action} takes its checkpoint from the parent job: pass --parent-job-id (the train job's id)"
        )

    skill_ref = skill_reference(skill)
    source = "<stdin>" if overrides_label == "-" else overrides_label
    overrides_note = (f"{source} ({len(kept)} key(s), embedded below as OVERRIDES"
                      + (f"; {len(secrets)} secret key(s) left out" if secrets else "") + ")")
    regenerate = regenerate_argv(
        skill_ref, action, overrides_label, parent_job_id=parent_job_id, platform=platform,
        automl_policy=automl_policy, request=request, results_root=results_root, output_name=output_name,
        automl_options=given_budget, platform_options=platform_options, **labels,
    )
    regenerate_lines = command_lines(regenerate)
    context = {
        "version": __version__,
        "action": action,
        "platform": platform,
        "skill_lines": comment_lines(skill_ref),
        "overrides_lines": comment_lines(overrides_note),
        "parent_lines": comment_lines(parent_job_id or "(none)"),
        "policy_lines": comment_lines(_policy_summary(policy)),
        "reason_lines": comment_lines(policy["reason"] if policy else "only train can route to AutoML"),
        "budget_lines": comment_lines(budget_note),
        "usage_lines": command_lines(["python", output_name, *_RUNNER_OPTIONS], raw=_RUNNER_OPTIONS),
        "regenerate_lines": regenerate_lines,
        # a long user-given value is quoted verbatim rather than altered; tell ruff it is on purpose
        "long_lines": any(len(line) + 4 > _LINT_WIDTH for line in regenerate_lines),
        "skill_literal": py_literal(skill_ref),
        "action_literal": py_literal(action),
        "platform_literal": py_literal(platform),
        "parent_literal": py_literal(parent_job_id),
        "results_root_literal": py_literal(results_root),
        "route_literal": py_literal(route),
        "policy_literal": py_literal(_policy_for_runner(policy), where="POLICY"),
        "overrides_literal": py_literal(kept, where="OVERRIDES"),
        "labels_literal": py_literal(labels, where="LABELS"),
        "automl_options_literal": py_literal(budget, where="AUTOML_OPTIONS"),
        "platform_options_literal": py_literal(platform_options, where="PLATFORM_OPTIONS"),
        "platform_lines": comment_lines(platform + "".join(
            f" {k}={v}" for k, v in platform_options.items())),
    }
    text = _environment().get_template(TEMPLATE).render(**context)
    return GeneratedRunner(
        text=text, skill=skill_ref, action=action, platform=platform, policy=policy, route=route,
        overrides=kept, stripped_secrets=secrets, spec_params=spec_params, warnings=warnings,
        platform_options=platform_options,
    )


def check_automl_options(options: Any) -> dict[str, Any]:
    """The AutoML options given (an ``AutoMLOptions``, or a mapping of its fields), checked by the options
    dataclass: the fields a runner embeds, as plain data. GenerationError names a bad option, its value and
    what is allowed. ``workspace`` becomes an absolute path: the runner may run from another folder.
    """
    from skillbank.runtime.automl.options import RUNNER_FIELDS, AutoMLError, AutoMLOptions, embeddable_names
    from skillbank.runtime.automl.workspace import redact_url

    if isinstance(options, AutoMLOptions):
        given = options.to_dict(changed_only=True)
    else:
        given = {k: v for k, v in (options or {}).items() if v is not None}
    refused = [k for k in given if k in RUNNER_FIELDS]
    if refused:
        raise GenerationError(f"automl option(s) {', '.join(refused)}: the runner sets them from its --platform, "
                              f"--platform-option, --results-root, --name and --tag; allowed: "
                              f"{', '.join(embeddable_names())}")
    if "storage" in given and redact_url(str(given["storage"])) != given["storage"]:
        raise GenerationError("automl option storage: a database URL with a password is never embedded in a runner; "
                              "give it without the password and set PGPASSWORD in the runner's environment")
    try:
        checked = AutoMLOptions.from_dict(given, where="automl options").to_dict()
    except AutoMLError as exc:
        raise GenerationError(str(exc)) from None
    if "workspace" in given:
        checked["workspace"] = str(Path(checked["workspace"]).expanduser().absolute())
    return {k: checked[k] for k in embeddable_names() if k in given}


def automl_budget(given: dict[str, Any], request: str | None, route: str) -> tuple[dict[str, Any], str]:
    """(the options a runner embeds, a line saying where they come from); empty off the AutoML route."""
    from skillbank.runtime.automl.options import BUDGET_FLAGS, embeddable_names

    if route != "automl":
        return {}, "not applicable (route: direct)"
    budget = dict(given)
    notes = [f"{k}={v} (given)" for k, v in given.items()]
    epochs = requested_epochs(request)
    if "max_epochs" not in budget and epochs is not None:
        budget["max_epochs"] = epochs
        notes.append(f"max_epochs={epochs} (the request's epoch count)")
    left = [k for k in BUDGET_FLAGS if k not in budget]
    if left:
        notes.append(f"{', '.join(left)}: the engine's defaults")
    return {k: budget[k] for k in embeddable_names() if k in budget}, "; ".join(notes)


def _policy_summary(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return "not applicable (not a train action) -> route: direct"
    target = f" ({policy['target']})" if policy.get("target") else ""
    return f"{policy['automl_policy']} ({policy['policy_source']}) -> route: {policy['route']}{target}"


def _policy_for_runner(policy: dict[str, Any] | None) -> dict[str, Any] | None:
    """The decision without the machine-specific skill_dir (the runner finds the skill by name)."""
    if policy is None:
        return None
    return {k: v for k, v in policy.items() if k != "skill_dir"}


def _parent_actions(skill: Skill) -> set[str]:
    """Actions whose spec_params infer a checkpoint from a parent job."""
    return {
        action for action in skill.actions
        if any(fn in ("parent_model", "parent_model_folder") for fn in skill.spec_params(action).values())
    }


def _has_checkpoint_override(skill: Skill, action: str, overrides: dict[str, Any]) -> bool:
    fields = [f for f, fn in skill.spec_params(action).items() if fn in ("parent_model", "parent_model_folder")]
    return all(overrides.get(f) not in (None, "", "???") for f in fields)


def _environment():
    import jinja2  # only the generator pays for it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Python source, not HTML; every value is a prepared literal or comment
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
