"""JSON Schemas of the MCP tools' arguments and results (pure: the skills' packaged files in, dicts out).

Where a tool takes ``overrides`` for a known skill and action, the advertised schema types them from that
action's packaged schema: one property per dotted key the action reads, with its type, enum, bounds and
default, plus the skill's shorthand keys. Secret fields are left out (secrets come from the server's
environment only). The typing is attached with ``if``/``then`` on (skill, action), so the same tool works
for every skill of the bank.

Two schemas per tool: :func:`advertised_schema` is what ``tools/list`` shows; :func:`argument_schema` is
what the server checks before calling a tool. The second leaves ``overrides`` open on purpose: the bank's
own validator checks them and answers with the key, the value, what is allowed and a did-you-mean, which
a JSON-Schema error cannot.
"""
from __future__ import annotations

import copy
from typing import Any

from skillbank.runtime.sdk.platforms.base import STATUSES
from skillbank.runtime.sdk.secrets import is_secret_field
from skillbank.runtime.skills import Skill, SkillError, reads_field, skill_dirs
from skillbank.runtime.validation import leaf_schemas

SKILL = {"type": "string", "description": "A skill of the bank by name (see list_skills), or a skill folder's path."}
ACTION = {"type": "string", "description": "An action of the skill: train, evaluate, inference or export."}
OVERRIDES = {
    "type": "object",
    "description": "spec_overrides: flat dotted keys of the action's schema (train.optim.lr) or the shorthand keys "
                   "(num_epochs, batch_size, learning_rate). Secrets (encryption_key, credentials) are refused: "
                   "the server reads them from its own environment.",
}
POLICY = {"type": "string", "enum": ["on", "off", "auto"],
          "description": "Explicit AutoML policy for a train request (auto = on); wins over request."}
REQUEST = {"type": "string", "description": 'The user\'s words, e.g. "train it, no HPO": phrases such as "turn off '
                                            'AutoML" switch AutoML off for this run only.'}
JOB_ID = {"type": "string", "description": "A job id (uuid) from run_job or list_jobs."}
_LEAF_KEYWORDS = ("type", "enum", "minimum", "maximum", "items", "additionalProperties", "default")


def overrides_schema(skill: Skill, action: str) -> dict[str, Any]:
    """The JSON Schema of ``skill``'s ``action`` overrides: typed dotted keys the action reads, no secrets."""
    full = skill.schema(action)
    reads = skill.fields_read(action)
    spec_params = skill.spec_params(action)
    data_sources = skill.data_sources(action)
    properties: dict[str, Any] = {}
    for key, prop in leaf_schemas(full).items():
        if not reads_field(key, reads) or is_secret_field(key, spec_params):
            continue
        leaf = {name: copy.deepcopy(prop[name]) for name in _LEAF_KEYWORDS if name in prop}
        description = str(prop.get("description") or prop.get("title") or "")
        if key in data_sources:
            description = (f"{description} Required: a local folder or s3:// URI, or a .tar.gz/.tgz/.tar "
                           "archive of one.").strip()
        if description:
            leaf["description"] = description
        properties[key] = leaf
    for short, target in skill.shorthand_keys().items():
        if target in properties:
            properties[short] = {**properties[target], "description": f"Shorthand for {target}."}
    return {**OVERRIDES, "properties": properties, "additionalProperties": False}


def typed_overrides(skills: list[Skill] | None = None) -> list[dict[str, Any]]:
    """``if (skill, action) then overrides: <typed>`` for every packaged action schema of the bank."""
    branches = []
    for skill in skills if skills is not None else [Skill(path) for path in skill_dirs()]:
        for action in skill.actions:
            if not skill.has_schema(action):
                continue
            try:
                typed = overrides_schema(skill, action)
            except SkillError:
                continue  # a broken packaged schema is reported when the action is used, not here
            branches.append({
                "if": {"properties": {"skill": {"const": skill.name}, "action": {"const": action}},
                       "required": ["skill", "action"]},
                "then": {"properties": {"overrides": typed}},
            })
    return branches


def platform_options_branches() -> list[dict[str, Any]]:
    """``if platform then platform_options: <the keys that platform takes>`` (see platforms/options.py)."""
    from skillbank.runtime.sdk.platforms.options import PLATFORM_OPTIONS, describe_platform_options

    branches = []
    for platform, described in describe_platform_options().items():
        properties = {}
        for key, text in described.items():
            spec = PLATFORM_OPTIONS[platform][key]
            value: dict[str, Any] = {"type": "integer", "minimum": 0} if spec.count else {"type": "string"}
            if spec.choices:
                value["enum"] = list(spec.choices)
            properties[key] = {**value, "description": text}
        branches.append({
            "if": {"properties": {"platform": {"const": platform}}},
            "then": {"properties": {"platform_options": {"type": "object", "properties": properties,
                                                         "additionalProperties": False}}},
        })
    return branches


def automl_budget() -> dict[str, Any]:
    """The ``automl`` argument of run_job/generate_runner: the AutoML engine's options (AutoMLOptions fields a
    runner embeds) for a train that routes to AutoML. A test keeps these keys and the dataclass in step."""
    from skillbank.runtime.automl.algorithms import ALGORITHMS
    from skillbank.runtime.automl.options import DIRECTIONS, AutoMLOptions

    defaults = AutoMLOptions()

    def count(minimum: int, text: str) -> dict[str, Any]:
        return {"type": "integer", "minimum": minimum, "description": text}

    return {
        "type": "object",
        "description": "AutoML engine options, used when train routes to AutoML (see resolve_policy); embedded in "
                       "the runner like `skillbank run --algorithm/--max-trials/--max-epochs/--workspace` and "
                       "`--automl-option KEY=VALUE`.",
        "properties": {
            "algorithm": {"type": "string", "enum": list(ALGORITHMS), "default": defaults.algorithm},
            "metric": {"type": "string", "default": defaults.metric,
                       "description": "accuracy / m_accuracy (an evaluate job per trial), or a training KPI: val_acc, "
                                      "val_loss, train_acc, train_loss (faster: no evaluate job)."},
            "direction": {"type": "string", "enum": list(DIRECTIONS),  # the spellings the options take
                          "description": "maximize or minimize (max, min). Default: minimize for *loss metrics, "
                                         "maximize otherwise."},
            "max_trials": count(1, "Trials in all, the baseline included."),
            "max_epochs": count(1, "Epochs of a fully trained trial (default: an epoch count in request, else "
                                   "train.num_epochs)."),
            "min_epochs": count(1, "The first rung (hyperband, asha, bohb)."),
            "reduction_factor": count(2, "Hyperband/ASHA keep 1/N of the trials at each rung."),
            "max_concurrent": count(1, "Trials running at once."),
            "hyperparameters": {"type": "array", "items": {"type": "string"},
                                "description": "Schema keys searched besides the schema's defaults."},
            "param_ranges": {"type": "object", "description": "Key -> range, e.g. {\"train.optim.lr\": "
                                                              "{\"valid_min\": 0.0001, \"valid_max\": 0.01}}."},
            "override_disabled": {"type": "boolean", "description": "Allow parameters listed as AutoML-disabled."},
            "workspace": {"type": "string", "description": "Folder of the study; the same folder resumes it."},
            "storage": {"type": "string", "description": "Optuna RDB URL shared by several workers, without a "
                                                         "password (give it as PGPASSWORD in the environment)."},
            "study_name": {"type": "string", "description": "The study's name inside storage."},
            "test_dataset": {"type": "string", "description": "Evaluate's test set (default: the val set)."},
            "baseline": {"type": "boolean", "description": "Run the base spec as trial 0 (default: true)."},
            "seed": {"type": "integer", "description": "The sampler's seed."},
            # (0, 3600]: AutoMLOptions.__post_init__'s bounds (it has no constant to import; a test compares)
            "poll_interval": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600,
                              "description": "Seconds between progress updates and looks at remote jobs."},
            "max_failures_in_a_row": count(1, "Stop after this many failed trials in a row with one cause."),
        },
        "additionalProperties": False,
    }


def launch_arguments(platforms: tuple[str, ...]) -> dict[str, Any]:
    """Arguments shared by generate_runner and run_job (the options of `skillbank generate` / `run`)."""
    return {
        "skill": SKILL,
        "action": ACTION,
        "overrides": OVERRIDES,
        "parent_job_id": {"type": "string", "description": "The train job whose exact checkpoint evaluate, "
                                                          "inference and export take."},
        "platform": {"type": "string", "enum": list(platforms), "default": "local"},
        "platform_options": {"type": "object", "description": "Platform settings (KEY: VALUE) for the platform "
                                                              "chosen; never secrets."},
        "automl_policy": POLICY,
        "request": REQUEST,
        "results_root": {"type": "string", "description": "Folder (or s3:// URI) that holds <job_id>/ results."},
        "name": {"type": "string", "description": "A name for the job (every AutoML trial job), for list_jobs."},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags for the job, for list_jobs."},
        "automl": automl_budget(),
    }


def advertised_schema(arguments: dict[str, Any], required: list[str], *, typed: bool = False,
                      platform_typed: bool = False) -> dict[str, Any]:
    """The input schema ``tools/list`` shows: the arguments, plus typed overrides / platform options."""
    schema = argument_schema(arguments, required)
    branches = (typed_overrides() if typed else []) + (platform_options_branches() if platform_typed else [])
    if branches:
        schema["allOf"] = branches
    return schema


def argument_schema(arguments: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """The schema the server checks arguments against (overrides stay open: the bank's validator checks them)."""
    return {"type": "object", "properties": copy.deepcopy(arguments), "required": list(required),
            "additionalProperties": False}


def result_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An output schema: an object with these properties (others allowed: results grow, clients keep working)."""
    return {"type": "object", "properties": properties, "required": list(required)}


JOB_STATUS = {"type": "string", "enum": list(STATUSES)}
NULLABLE_STRING = {"type": ["string", "null"]}
