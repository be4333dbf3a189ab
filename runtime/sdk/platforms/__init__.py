"""Where jobs run: local (embedded default), docker, slurm, kubernetes.

``get_platform(name)`` imports a platform's module only when it is asked for,
so the local platform works without the container tooling being importable.
A platform module provides one ``Platform`` subclass whose ``name`` matches.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from skillbank.runtime.sdk.platforms.base import Platform, PlatformError


@dataclass(frozen=True)
class PlatformEntry:
    """One platform: the module that defines it, what it does, and the tools it needs on this machine."""

    module: str
    description: str
    requires: tuple[str, ...] = ()
    local_paths: bool = False  # its jobs read this machine's paths (a container mounts them from here)


# The one list of platforms. The CLI's --platform choices, the generator, the MCP tools and the
# generated references/platforms.yaml (with each platform's options, options.py) all come from here.
PLATFORMS: dict[str, PlatformEntry] = {
    "local": PlatformEntry(
        "skillbank.runtime.sdk.platforms.local",
        "A child process on this machine in its own process group; log in <results_dir>/log.txt; survives the "
        "caller; cancelable.", local_paths=True),
    "docker": PlatformEntry(
        "skillbank.runtime.sdk.platforms.docker",
        "A `docker run` (or `podman run`, option cli) of the skill's container_image with GPUs from gpu_spec_key, "
        "the results folder mounted, secrets passed by name.", ("docker",), local_paths=True),
    "slurm": PlatformEntry(
        "skillbank.runtime.sdk.platforms.slurm",
        "An sbatch script (GPUs from gpu_spec_key, log to <results_dir>/log.txt, srun for data-parallel train) "
        "submitted with sbatch.", ("sbatch", "squeue", "scontrol", "scancel")),
    "kubernetes": PlatformEntry(
        "skillbank.runtime.sdk.platforms.kubernetes",
        "A batch/v1 Job manifest (image, GPU limits, hostPath mounts or a PersistentVolumeClaim, secrets from a "
        "Secret) applied with kubectl.", ("kubectl",)),
}
DEFAULT_PLATFORM = "local"


def platform_catalogue() -> dict[str, dict[str, Any]]:
    """Platform -> description, required tools and option keys: what references/platforms.yaml holds."""
    from skillbank.runtime.sdk.platforms.options import platform_option_names

    return {name: {"description": entry.description, "requires": list(entry.requires),
                   "options": platform_option_names(name)}
            for name, entry in PLATFORMS.items()}


def get_platform(name: str = DEFAULT_PLATFORM, **options: Any) -> Platform:
    """A new instance of the platform called ``name``.

    ``options`` are its platform options (``--platform-option``, see options.py): checked first (a
    PlatformOptionError names a bad key or value), then given to its constructor as typed values.
    """
    from skillbank.runtime.sdk.platforms.options import check_platform_options

    entry = PLATFORMS.get(name)
    if entry is None:
        raise PlatformError(f"unknown platform {name!r}; allowed: {', '.join(PLATFORMS)}")
    module_name = entry.module
    options = check_platform_options(name, options)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise PlatformError(f"platform {name!r} is not available in this installation ({module_name})") from exc
        raise
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if issubclass(cls, Platform) and not inspect.isabstract(cls) and cls.__module__ == module_name \
                and getattr(cls, "name", "") == name:
            return cls(**options)
    raise PlatformError(f"{module_name} defines no Platform subclass with name = {name!r}")
