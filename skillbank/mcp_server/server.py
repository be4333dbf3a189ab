"""The bank's tools and skill files over the Model Context Protocol, with the official SDK (``mcp``).

:func:`build_server` makes a low-level SDK ``Server`` whose handlers list and call :data:`tools.TOOLS` and
list and read :func:`resources.skill_resources`; :func:`serve_stdio` and :func:`serve_http` run it. The
only module that imports the SDK, and only ``skillbank mcp`` imports it.

A call runs in a worker thread (jobs are followed with blocking polls) while the event loop keeps
answering; its progress reaches the client as ``notifications/progress`` when the client asked for them.
Every result is masked against the secret values of the server's environment before it leaves.
"""
from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import anyio
import click
import mcp.types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from skillbank import __version__
from skillbank.mcp_server.resources import read_skill_resource, skill_resources
from skillbank.mcp_server.tools import TOOLS, Tool, ToolError
from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.secrets import redact_obj, redact_text, secret_values

NAME = "skillbank"
HTTP_PATH = "/mcp"
RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource URI
INSTRUCTIONS = (
    "Agent skill bank for the NVIDIA TAO action-recognition model. Read "
    "skill://tao-train-action-recognition/SKILL.md first. Usual flow: list_skills, get_schema, "
    "validate_overrides, resolve_policy (train: AutoML or direct), run_job, then job_status until the job is "
    "Complete (its `checkpoint` is the exact file evaluate/inference/export take through parent_job_id), "
    "job_logs on failure. Secrets are never tool arguments: the server reads SKILLBANK_ENCRYPTION_KEY and "
    "cloud credentials from its own environment."
)
log = logging.getLogger("skillbank.mcp")


def build_server() -> Server:
    """A low-level SDK server with the bank's tools and resources."""
    return Server(NAME, version=__version__, title="skillbank (TAO action recognition)",
                  instructions=INSTRUCTIONS, on_list_tools=_list_tools, on_call_tool=_call_tool,
                  on_list_resources=_list_resources, on_read_resource=_read_resource)


async def serve_stdio() -> None:
    """Serve one client on stdin/stdout until it closes the connection."""
    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve streamable HTTP at ``http://HOST:PORT/mcp`` (port 0: a free one); ``announce`` gets the URL."""
    import uvicorn

    app = build_server().streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(64)
    bound = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    announce(f"http://{f'[{host}]' if ':' in host else host}:{bound}{HTTP_PATH}")
    await uvicorn.Server(config).serve(sockets=[listener])


# -- handlers ---------------------------------------------------------------------------------


async def _list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    described = await anyio.to_thread.run_sync(lambda: [_describe(tool) for tool in TOOLS.values()])
    return types.ListToolsResult(tools=described)


def _describe(tool: Tool) -> types.Tool:
    return types.Tool(name=tool.name, description=tool.description, input_schema=tool.input_schema(),
                      output_schema=tool.result,
                      annotations=types.ToolAnnotations.model_validate(tool.hints) if tool.hints else None)


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    tool = TOOLS.get(params.name)
    if tool is None:
        return _error(f"unknown tool {params.name!r}; tools: {', '.join(TOOLS)}")
    arguments = dict(params.arguments or {})
    problem = _argument_problem(tool, arguments)
    if problem:
        return _error(f"{tool.name}: {problem}")

    def report(progress: float, total: float | None = None, message: str | None = None) -> None:
        # From the worker thread into the event loop; a client that went away must not stop the job's tool.
        with suppress(Exception):
            anyio.from_thread.run(ctx.session.report_progress, progress, total,
                                  redact_text(message, secret_values()) if message else None)

    try:
        result = await anyio.to_thread.run_sync(lambda: tool.answer(arguments, report), abandon_on_cancel=True)
    except ToolError as exc:
        return _error(str(exc), **exc.data)
    except click.ClickException as exc:  # a CLI helper's one-line usage error (e.g. a runner path that is a folder)
        return _error(exc.format_message())
    except (SkillbankError, OSError) as exc:  # the bank's errors and the machine's: one clear line each
        return _error(str(exc).strip("'\""))
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: logged on stderr, reported by type
        log.exception("tool %s failed", tool.name)
        return _error(f"{tool.name} failed unexpectedly: {type(exc).__name__}: {exc}")
    clean = _clean(result)
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(clean, indent=2))],
                                structured_content=clean)


def _argument_problem(tool: Tool, arguments: dict[str, Any]) -> str | None:
    """One line naming the argument, the value and what is allowed, or None when the arguments fit."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(tool.argument_schema()).iter_errors(arguments))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    return f"{where}: {error.message}"


def _error(message: str, **data: Any) -> types.CallToolResult:
    clean = _clean({"error": message, **data})
    return types.CallToolResult(content=[types.TextContent(type="text", text=clean["error"])],
                                structured_content=clean, is_error=True)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe (dates and paths as text) and masked against every known secret value."""
    return redact_obj(json.loads(json.dumps(data, default=str)), secret_values())


async def _list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
    found = await anyio.to_thread.run_sync(skill_resources)
    return types.ListResourcesResult(resources=[
        types.Resource(uri=r.uri, name=f"{r.skill}/{r.relative}", description=r.description, mime_type=r.mime_type)
        for r in found
    ])


async def _read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    try:
        resource, text = await anyio.to_thread.run_sync(read_skill_resource, uri)
    except LookupError as exc:
        raise MCPError(RESOURCE_NOT_FOUND, str(exc), {"uri": uri}) from None
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=text,
                                                                         mime_type=resource.mime_type)])
