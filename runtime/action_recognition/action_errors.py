"""Which failures are the user's (bad settings or data: exit 2 or 1 with a plain message) and which are bugs."""
from __future__ import annotations

from skillbank.runtime.config.loading import ConfigError

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
