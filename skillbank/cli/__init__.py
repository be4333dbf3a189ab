"""The ``skillbank`` command line.

Subcommands live in their own modules and are imported only when called, so
``skillbank validate`` does not pay for the job SDK, the generator or torch.
"""
from __future__ import annotations

import importlib
import sys

import click

# Exceptions that mean "this machine's settings cannot be used" (a damaged job store, a state folder
# that is a file, a bad SKILLBANK_* number): one line and exit 2 from any command. Named, not imported:
# `skillbank validate` must not pay for the job SDK; an exception of an unloaded module cannot occur.
_SETTING_ERRORS = (("skillbank.runtime.sdk.store", "StoreError"), ("skillbank.runtime.limits", "SettingError"))

# command name -> "module:attribute" (modules under skillbank.cli)
COMMANDS: dict[str, str] = {
    "list": "bank:list_skills",
    "schema": "bank:schema",
    "validate": "bank:validate",
    "spec": "bank:spec",
    "policy": "generate:policy",
    "generate": "generate:generate",
    "run": "generate:run",
    "jobs": "jobs:jobs",
    "automl": "automl:automl",
    "sample-data": "sample_data:sample_data",
    "mcp": "mcp_serve:mcp",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _is_setting_error(exc):
                raise _SettingProblem(str(exc)) from None
            raise

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(f"skillbank.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"skillbank.cli.{module_name}":
                return None  # that part of the CLI is not built yet
            raise
        return getattr(module, attr)


class _SettingProblem(click.ClickException):
    exit_code = 2


def _is_setting_error(exc: Exception) -> bool:
    for module_name, name in _SETTING_ERRORS:
        cls = getattr(sys.modules.get(module_name), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skillbank")
def main() -> None:
    """Agent skill bank for the NVIDIA TAO action-recognition model.

    \b
    Typical agent flow:
      skillbank list                                   # skills and actions
      skillbank schema tao-train-action-recognition train
      skillbank validate tao-train-action-recognition train overrides.yaml
      skillbank policy tao-train-action-recognition --request "train, no HPO"
      skillbank generate tao-train-action-recognition train overrides.yaml -o runner.py

    Add --format json to read answers from a program.
    """
