"""``--platform-option KEY=VALUE`` on the command line: one option object and one parse step for every command.

The rules live in ``skillbank.runtime.sdk.platforms.options`` (plain functions the MCP tools call too);
this module only turns a bad key or value into the CLI's one-line error with exit 2.
"""
from __future__ import annotations

from typing import Any

import click

from skillbank.cli.bank import BadInput
from skillbank.runtime.sdk.platforms import PLATFORMS
from skillbank.runtime.sdk.platforms.options import (
    PlatformOptionError,
    check_platform_options,
    parse_platform_options,
    platform_option_names,
)


def _keys_help() -> str:
    keys = "; ".join(f"{p}: {', '.join(platform_option_names(p))}" for p in PLATFORMS if platform_option_names(p))
    return (f"A setting of the platform, repeatable ({keys}). E.g. --platform-option gpus=0 for CPU-only "
            "nodes (no GPU request). Embedded in the runner; a key the platform does not take is an error.")


PLATFORM_OPTION = click.option("--platform-option", "platform_option_items", multiple=True, metavar="KEY=VALUE",
                               help=_keys_help())


def platform_options(platform: str, items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The checked options of ``items`` (``KEY=VALUE``) for ``platform``; a bad one is BadInput (exit 2)."""
    try:
        return check_platform_options(platform, parse_platform_options(items))
    except PlatformOptionError as exc:
        raise BadInput(str(exc)) from None
