"""``skillbank mcp``: serve the bank's tools and skill files over the Model Context Protocol.

The MCP SDK (and uvicorn for ``--http``) is imported only when the server starts, so listing or running
the other commands never pays for it.
"""
from __future__ import annotations

import ipaddress
import sys

import click

LOOPBACK_NAMES = ("localhost",)


def parse_loopback_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) on a loopback address -> (host, port); BadParameter otherwise."""
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise click.BadParameter(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765 (port 0 picks a free one)",
                                 param_hint="--http")
    if host not in LOOPBACK_NAMES:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise click.BadParameter(
                f"host {host!r} is not a loopback address; the server has no authentication, so it listens on "
                "127.0.0.1, ::1 or localhost only (reach it from elsewhere through an SSH tunnel)",
                param_hint="--http")
    return host, int(port_text)


@click.command("mcp")
@click.option("--http", "http_address", metavar="HOST:PORT",
              help="Serve streamable HTTP at http://HOST:PORT/mcp on a loopback address (port 0: a free port, "
                   "printed on stderr) instead of stdio.")
def mcp(http_address: str | None) -> None:
    """Serve the bank as MCP tools (validate, policy, generate, run, jobs, AutoML, sample data) and resources.

    \b
    Tools call the same functions as the CLI; each SKILL.md, schema and spec
    template is a resource skill://<skill>/<path>. Stdio by default: register
    it with an MCP client as {"command": "skillbank", "args": ["mcp"]}.
    Secrets are never tool arguments: the server reads SKILLBANK_ENCRYPTION_KEY
    and cloud credentials from its own environment.
    """
    address = parse_loopback_address(http_address) if http_address else None
    import logging

    import anyio

    from skillbank.mcp_server.server import serve_http, serve_stdio

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="skillbank mcp: %(levelname)s %(message)s")
    if address is None:
        anyio.run(serve_stdio)
        return

    def announce(url: str) -> None:
        click.echo(f"skillbank mcp: streamable HTTP on {url}", err=True)

    try:
        anyio.run(serve_http, *address, announce)
    except OSError as exc:  # the port is taken, or the address is not on this machine
        raise click.ClickException(f"--http {http_address}: cannot listen there: {exc.strerror or exc}") from None
