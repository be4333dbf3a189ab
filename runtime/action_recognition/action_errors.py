"""How an action runs and ends: TAO's status lines around it, and which failures are the user's.

:func:`run_action` is the one wrapper of train, evaluate, inference and export. It does what TAO's
``monitor_status`` decorator does (results folder, ``experiment.yaml``, a STARTED line, a final
"<Action> finished successfully." line, a FAILURE line with TAO's message prefix on an exception)
and maps the failure to our exit codes: 2 for a spec that cannot run as written, 1 for everything
else (data problems, crashes, Ctrl+C or SIGTERM). User errors are logged without a traceback.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from skillbank.runtime.config.loading import ConfigError
from skillbank.runtime.errors import SkillbankError

from .status_log import FAILURE, RUNNING, STARTED, StatusWriter

T = TypeVar("T")
log = logging.getLogger("skillbank.action_recognition")  # the actions' logger (configured by the entry point)

SETTINGS_EXIT = 2
FAILURE_EXIT = 1


class TrainingDiverged(SkillbankError, RuntimeError):
    """The training loss became NaN or infinite: training stops at once with a FAILURE (exit 1), not a result."""

    def __init__(self, loss: float, epoch: int, step: int, lr: float):
        super().__init__(f"training diverged: the loss became {loss} at epoch {epoch}, step {step}; lower "
                         f"train.optim.lr (now {lr:g}) or set train.clip_grad_norm, then train again")


class ActionInterrupted(KeyboardInterrupt):
    """SIGTERM (a canceled job) turned into an exception, so the action ends like on Ctrl+C."""


def exit_code_for(exc: BaseException) -> int:
    """The error's own exit status: 2 for a spec that cannot run as written (ConfigError, ModelConfigError,
    CheckpointFileError), 1 for everything else (data problems, divergence, crashes)."""
    return exc.exit_code if isinstance(exc, SkillbankError) else FAILURE_EXIT


def is_user_error(exc: BaseException) -> bool:
    """True when the message says all (no traceback needed in the log): every SkillbankError."""
    return isinstance(exc, SkillbankError)


def failure_message(exc: BaseException) -> str:
    """The FAILURE line's message: TAO's prefix for the kind of exception, then the exception's text."""
    if isinstance(exc, ConfigError):
        prefix = "Configuration error: "
    elif isinstance(exc, NotImplementedError):
        prefix = "Feature not implemented: "
    elif isinstance(exc, (ValueError, TypeError)):
        prefix = "Parameter validation error: "
    elif isinstance(exc, OSError):
        prefix = "File system error: "
    else:
        prefix = ""
    return f"{prefix}{exc}"


def interrupted_message(action: str) -> str:
    """TAO's FAILURE message for Ctrl+C / SIGTERM."""
    return f"User/System interruption: {action.capitalize()} was interrupted"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`ActionInterrupted` (main thread only; the old handler is restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise ActionInterrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_action(cfg: Any, action: str, body: Callable[[StatusWriter], T], *,
               final_fields: Callable[[T], Mapping[str, Any]] | None = None) -> tuple[int, T | None]:
    """Run ``body(status)`` as TAO runs an action; returns ``(exit code, body's result or None)``.

    1. creates the action's results folder (``<action>.results_dir``, else ``<results_dir>/<action>``) and
       writes ``experiment.yaml`` there (the resolved spec, secrets blanked);
    2. writes STARTED "Starting Action Recognition <action>.";
    3. runs ``body`` with the folder's :class:`StatusWriter` (the body writes its own RUNNING lines);
    4. writes RUNNING "<Action> finished successfully." (plus ``final_fields(result)``, e.g. the checkpoint);
    5. on an exception writes FAILURE with TAO's message prefix ("Parameter validation error: ..."), or
       "User/System interruption: <Action> was interrupted" on Ctrl+C / SIGTERM, logs it (a traceback only
       for errors that are not the user's) and returns exit code 2 or 1.
    """
    from .spec_io import write_experiment_yaml

    name = action.capitalize()
    try:
        folder = write_experiment_yaml(cfg, action).parent
    except ConfigError as exc:  # no results folder: nowhere to write a status line
        log.error("%s", exc)
        return SETTINGS_EXIT, None
    status = StatusWriter(folder)
    status.write(STARTED, f"Starting Action Recognition {action}.")
    try:
        with sigterm_as_interrupt():
            result = body(status)
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl+C, SIGTERM (ours or Lightning's SIGTERMException)
        status.write(FAILURE, interrupted_message(action))
        log.error("%s interrupted (%s)", name, type(exc).__name__)
        return FAILURE_EXIT, None
    except Exception as exc:  # noqa: BLE001 - every failure becomes a FAILURE event and an exit code
        status.write(FAILURE, failure_message(exc))
        log.error("%s failed: %s", name, exc, exc_info=not is_user_error(exc))
        return exit_code_for(exc), None
    extra = dict(final_fields(result)) if final_fields is not None and result is not None else {}
    status.write(RUNNING, f"{name} finished successfully.", **extra)
    return 0, result

