"""Which failures are the user's (bad settings or data: exit 2 or 1 with a plain message) and which are bugs."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from skillbank.runtime.config.loading import ConfigError

from .status_log import FAILURE, StatusWriter

T = TypeVar("T")
log = logging.getLogger("skillbank.action_recognition")  # the actions' logger (configured by the entry point)

SETTINGS_EXIT = 2
FAILURE_EXIT = 1


def _settings_errors() -> tuple[type, ...]:
    from .checkpoint_io import CheckpointFileError
    from .networks.registry import ModelConfigError

    return ConfigError, ModelConfigError, CheckpointFileError


def _data_errors() -> tuple[type, ...]:
    from .data.errors import DataError

    return (DataError,)


def exit_code_for(exc: BaseException) -> int:
    """2 for a spec that cannot run as written, 1 for everything else (data problems, crashes)."""
    return SETTINGS_EXIT if isinstance(exc, _settings_errors()) else FAILURE_EXIT


def is_user_error(exc: BaseException) -> bool:
    """True when the message says all (no traceback needed in the log)."""
    return isinstance(exc, _settings_errors() + _data_errors())


def run_reported(status: StatusWriter, what: str, action: Callable[[], T],
                 quiet: tuple[type, ...] = ()) -> tuple[int, T | None]:
    """Run ``action``; a failure becomes a FAILURE status line, a log line and the exit code.

    Returns ``(0, result)`` on success and ``(exit code, None)`` on failure. A
    traceback is logged only for errors that are not the user's (nor in ``quiet``).
    """
    try:
        return 0, action()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a FAILURE event and an exit code
        status.write(FAILURE, f"{what} failed: {exc}")
        log.error("%s failed: %s", what, exc, exc_info=not is_user_error(exc) and not isinstance(exc, quiet))
        return exit_code_for(exc), None
