"""One error base class: every error skillbank raises on purpose is a SkillbankError, and the CLI catches that.

Before, the command line knew two error types by name (a damaged job store, a bad SKILLBANK_* number)
and any other domain error that a command did not handle came out as a traceback; now every one is a
line naming the problem and the error's exit status (2 for settings and specs that cannot be used).
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import click
import pytest
from click.testing import CliRunner

import skillbank
from skillbank.cli import main
from skillbank.runtime.errors import SkillbankError


def _skillbank_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(skillbank.__path__, "skillbank."):
        if ".mcp_server" in info.name or info.name.endswith("__main__"):
            continue  # the MCP SDK is optional at import time; its ToolError is checked below
        names.append(info.name)
    return names


def test_every_error_class_of_the_package_is_a_skillbank_error():
    pytest.importorskip("torch")
    from skillbank.mcp_server.tools import ToolError

    found = {ToolError}
    for name in _skillbank_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and issubclass(cls, Exception)
                    and not issubclass(cls, click.ClickException)):  # the CLI's own usage errors
                found.add(cls)
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in found if not issubclass(cls, SkillbankError))
    assert not outside, f"not SkillbankError subclasses: {outside}"
    assert len(found) > 20  # the walk did find the domain errors


@pytest.mark.parametrize(("error", "code"), [
    ("skillbank.runtime.sdk.store:StoreError", 2),  # this machine's settings cannot be used
    ("skillbank.runtime.settings:SettingError", 2),
    ("skillbank.runtime.config.loading:ConfigError", 2),  # a spec that cannot run as written
    ("skillbank.runtime.sdk.jobs:JobError", 1),  # it failed
    ("skillbank.runtime.sdk.s3:S3Error", 1),
])
def test_an_error_no_command_handles_is_one_line_with_its_exit_status(monkeypatch, error, code):
    module_name, _, name = error.partition(":")
    cls = getattr(importlib.import_module(module_name), name)

    def fails() -> list:
        raise cls("the thing named here cannot be used; allowed: another thing")

    monkeypatch.setattr("skillbank.cli.bank.skill_catalogue", fails)
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == code
    assert result.output == "Error: the thing named here cannot be used; allowed: another thing\n"
