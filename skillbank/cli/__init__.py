"""The ``skillbank`` command line.

Subcommands live in their own modules and are imported only when called, so
``skillbank validate`` does not pay for the job SDK, the generator or torch.
The console script (:mod:`skillbank.console`) answers a plain ``validate``
before this module, and so click, is imported; everything else comes here.
"""
from __future__ import annotations

import importlib

import click

from skillbank.runtime.errors import SkillbankError

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
        except SkillbankError as exc:
            # An error a command did not handle itself (a damaged job store, a bad SKILLBANK_* number ...):
            # its message is written for the user, so it is one line and the error's exit status, no traceback.
            raise _Problem(str(exc), exc.exit_code) from None

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(f"skillbank.cli.{module_name}"), attr)


class _Problem(click.ClickException):
    """A SkillbankError as click shows it: ``Error: <message>``, exit status ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
