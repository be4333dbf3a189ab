"""Where jobs run: local (embedded default), docker, slurm, kubernetes.

``get_platform(name)`` imports a platform's module only when it is asked for,
so the local platform works without the container tooling being importable.
A platform module provides one ``Platform`` subclass whose ``name`` matches.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

from skillbank.runtime.sdk.platforms.base import Platform, PlatformError

# platform name -> module that defines it
PLATFORM_MODULES: dict[str, str] = {
    "local": "skillbank.runtime.sdk.platforms.local",
    "docker": "skillbank.runtime.sdk.platforms.docker",
    "slurm": "skillbank.runtime.sdk.platforms.slurm",
    "kubernetes": "skillbank.runtime.sdk.platforms.kubernetes",
}
DEFAULT_PLATFORM = "local"


def platform_names() -> list[str]:
    return list(PLATFORM_MODULES)


def get_platform(name: str = DEFAULT_PLATFORM, **options: Any) -> Platform:
    """A new instance of the platform called ``name``.

    ``options`` are its platform options (``--platform-option``, see options.py): checked first (a
    PlatformOptionError names a bad key or value), then given to its constructor as typed values.
    """
    from skillbank.runtime.sdk.platforms.options import check_platform_options

    module_name = PLATFORM_MODULES.get(name)
    if module_name is None:
        raise PlatformError(f"unknown platform {name!r}; allowed: {', '.join(PLATFORM_MODULES)}")
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
