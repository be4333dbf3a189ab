"""Platform settings given as ``KEY=VALUE`` (``--platform-option``): which keys each platform takes, and checks.

Pure functions, shared by ``skillbank generate|run|automl run``, generated runners, ``create_job`` and
the MCP tools: :func:`parse_platform_options` reads ``KEY=VALUE`` strings, :func:`check_platform_options`
checks them against the platform's table below and returns typed values. A bad key or value is one
:class:`PlatformOptionError` line naming the key, the value and what is allowed. Options hold settings,
never secrets: they are embedded in runners and recorded with the job.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skillbank.runtime.sdk.platforms import PLATFORMS
from skillbank.runtime.sdk.platforms.base import PlatformError


class PlatformOptionError(PlatformError, ValueError):
    """A platform option that is not known or not allowed (the message is one line)."""


@dataclass(frozen=True)
class OptionSpec:
    """One option: what it sets, and the values allowed (``choices``, a ``pattern``, or a count >= 0)."""

    help: str
    choices: tuple[str, ...] = ()
    pattern: str = ""  # a full-match regular expression
    allowed: str = ""  # how the pattern reads in an error message
    count: bool = False  # an integer >= 0


# #SBATCH lines are not read by a shell (no quoting possible): SLURM names keep to these characters.
_SLURM_NAME, _SLURM_NAME_ALLOWED = r"[A-Za-z0-9_.,+-]+", "letters, digits and _ . , + -"
# SLURM's --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED/INFINITE
_SLURM_TIME = r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE"
_IMAGE = OptionSpec("Container image (default: the skill's container_image).", pattern=r"[^\s'\"\\]+",
                    allowed="an image reference without blanks or quotes, e.g. nvcr.io/nvidia/tao/tao-toolkit:6.0")
_GPUS = OptionSpec("GPUs to request per node (default: the spec's gpu_spec_key, e.g. train.num_gpus); "
                   "0 requests none (CPU-only nodes).", count=True)
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_MOUNT = r"/[^,:\s]*(:/[^,:\s]*)?(:(ro|rw))?"

# platform -> the options it takes (a platform of PLATFORMS missing here takes none, as local)
PLATFORM_OPTIONS: dict[str, dict[str, OptionSpec]] = {
    "docker": {
        "image": _IMAGE,
        "gpus": _GPUS,
        "cli": OptionSpec("The docker-compatible CLI that runs the container.", choices=("docker", "podman")),
        "network": OptionSpec("Container network (docker run --network), e.g. host or none.",
                              pattern=r"[A-Za-z0-9_.:-]+", allowed="a network name such as bridge, host or none"),
        "mounts": OptionSpec("Extra host folders, comma-separated HOST[:CONTAINER][:ro] (absolute paths).",
                             pattern=rf"{_MOUNT}(,{_MOUNT})*",
                             allowed="comma-separated HOST[:CONTAINER][:ro] with absolute paths, e.g. /data:/data:ro"),
    },
    "slurm": {
        "partition": OptionSpec("Partition (sbatch --partition).", pattern=_SLURM_NAME,
                                allowed=_SLURM_NAME_ALLOWED),
        "account": OptionSpec("Account charged (sbatch --account).", pattern=_SLURM_NAME,
                              allowed=_SLURM_NAME_ALLOWED),
        "time": OptionSpec("Time limit (sbatch --time).", pattern=_SLURM_TIME,
                           allowed="minutes, HH:MM:SS or D-HH:MM:SS, e.g. 30 or 1-00:00:00"),
        "gpus": _GPUS,
        "container": OptionSpec("How the job runs on the node: none (this installation's command, on a shared "
                                "filesystem), apptainer/singularity (exec docker://IMAGE) or pyxis "
                                "(srun --container-image).",
                                choices=("none", "apptainer", "singularity", "pyxis")),
        "image": _IMAGE,
    },
    "kubernetes": {
        "namespace": OptionSpec("Namespace of the Job (default: kubectl's current context).",
                                pattern=_DNS_LABEL, allowed="a DNS-1123 label, e.g. ml-jobs"),
        "image": _IMAGE,
        "gpus": _GPUS,
        "pvc": OptionSpec("PersistentVolumeClaim that holds the results and data (instead of hostPath volumes).",
                          pattern=rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", allowed="a claim name, e.g. tao-workspace"),
        "pvc_mount": OptionSpec("Where the claim is mounted in the pod (default: the results root); every path "
                                "the job reads or writes must be under it.",
                                pattern=r"/[^\s,:'\"\\]*", allowed="an absolute path without blanks, e.g. /workspace"),
    },
}


def platform_option_names(platform: str) -> list[str]:
    """The option keys ``platform`` takes, sorted."""
    return sorted(PLATFORM_OPTIONS.get(platform, {}))


def parse_platform_options(items: Iterable[str]) -> dict[str, str]:
    """``["gpus=0", "partition=debug"]`` -> ``{"gpus": "0", "partition": "debug"}``; a key given twice is an error."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise PlatformOptionError(f"platform option {item!r}: expected KEY=VALUE, e.g. gpus=0")
        if key in options:
            raise PlatformOptionError(f"platform option {key!r} is given twice ({options[key]!r} and {value!r}); "
                                      f"give it once")
        options[key] = value.strip()
    return options


def check_platform_options(platform: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options as ``platform`` takes them (counts as int, the rest as str); raises PlatformOptionError."""
    if platform not in PLATFORMS:
        raise PlatformOptionError(f"unknown platform {platform!r}; allowed: {', '.join(PLATFORMS)}")
    table = PLATFORM_OPTIONS.get(platform, {})
    checked: dict[str, Any] = {}
    for key, value in (options or {}).items():
        spec = table.get(key)
        if spec is None:
            _unknown_key(platform, key, table)
        checked[key] = _checked_value(platform, key, value, spec)
    return checked


def _unknown_key(platform: str, key: str, table: Mapping[str, OptionSpec]) -> None:
    """Raise the one-line error for an option ``platform`` does not take."""
    if not table:
        raise PlatformOptionError(f"platform option {key!r}: the {platform} platform takes no options")
    near = difflib.get_close_matches(key, list(table), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise PlatformOptionError(f"platform option {key!r} is not known for {platform}{hint}; "
                              f"allowed: {', '.join(sorted(table))}")


def _checked_value(platform: str, key: str, value: Any, spec: OptionSpec) -> Any:
    where = f"platform option {key}={value!r} ({platform})"
    if spec.count:
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"\d+", text):
            raise PlatformOptionError(f"{where}: allowed: an integer >= 0 (0 requests no GPU)")
        return int(text)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PlatformOptionError(f"{where}: allowed: a text value")
    text = str(value).strip()
    if spec.choices and text not in spec.choices:
        raise PlatformOptionError(f"{where}: allowed: {', '.join(spec.choices)}")
    if spec.pattern and not re.fullmatch(spec.pattern, text):
        raise PlatformOptionError(f"{where}: allowed: {spec.allowed}")
    return text


def parse_mounts(text: str) -> list[tuple[str, str, bool]]:
    """The docker ``mounts`` option as (host, container, read_only) triples (checked by the table's pattern)."""
    mounts = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = item.split(":")
        read_only = parts[-1] == "ro"
        if parts[-1] in ("ro", "rw"):
            parts = parts[:-1]
        host = parts[0]
        mounts.append((host, parts[1] if len(parts) > 1 else host, read_only))
    return mounts


def describe_platform_options() -> dict[str, dict[str, str]]:
    """Platform -> option -> one line of help with the values allowed (for --help, docs and MCP schemas)."""
    out: dict[str, dict[str, str]] = {}
    for platform in PLATFORMS:
        table = PLATFORM_OPTIONS.get(platform, {})
        out[platform] = {}
        for key, spec in sorted(table.items()):
            allowed = ("an integer >= 0" if spec.count else ", ".join(spec.choices) if spec.choices else spec.allowed)
            out[platform][key] = f"{spec.help} Allowed: {allowed}."
    return out
