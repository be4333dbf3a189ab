"""``skillbank mcp``: the bank's CLI functions as Model Context Protocol tools, its skill files as resources.

``tool_schemas`` types each tool's arguments (overrides from the packaged action schemas), ``tools`` holds
the tools as plain functions over the same code the CLI runs, ``resources`` serves the skill files, and
``server`` wires them to the MCP SDK (stdio or streamable HTTP). Only ``server`` imports the SDK.
"""
