"""The plugin manifests (Claude Code, Codex) and the MCP client snippets in the docs: they parse, every path
they name exists, and the server command they register is the real `skillbank mcp`."""
from __future__ import annotations

import json
import re
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from skillbank.cli import COMMANDS, main
from skillbank.runtime.skills import skill_dirs

REPO = Path(__file__).resolve().parent.parent
CLAUDE = REPO / ".claude-plugin" / "plugin.json"
MARKETPLACE = REPO / ".claude-plugin" / "marketplace.json"
CODEX = REPO / ".codex-plugin" / "plugin.json"
SKILL_DOC = REPO / "skills" / "models" / "tao-train-action-recognition" / "SKILL.md"
JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.S | re.M)


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def named_paths(value, plugin_root: Path) -> list[Path]:
    """Every path a manifest value names: ``./relative`` strings and ``${CLAUDE_PLUGIN_ROOT}`` ones."""
    if isinstance(value, dict):
        return [p for item in value.values() for p in named_paths(item, plugin_root)]
    if isinstance(value, list):
        return [p for item in value for p in named_paths(item, plugin_root)]
    if isinstance(value, str) and value.startswith("./"):
        return [plugin_root / value]
    if isinstance(value, str) and "${CLAUDE_PLUGIN_ROOT}" in value:
        return [Path(value.replace("${CLAUDE_PLUGIN_ROOT}", str(plugin_root)))]
    return []


@pytest.mark.parametrize("manifest", [CLAUDE, MARKETPLACE, CODEX], ids=lambda p: p.relative_to(REPO).as_posix())
def test_manifests_parse_and_every_path_they_name_exists(manifest):
    data = load(manifest)
    paths = named_paths(data, REPO)
    assert paths, f"{manifest} names no path"
    missing = [str(p) for p in paths if not p.exists()]
    assert missing == []
    assert all(p.resolve().is_relative_to(REPO) for p in paths)  # nothing outside the plugin


@pytest.mark.parametrize("manifest", [CLAUDE, CODEX], ids=lambda p: p.parent.name)
def test_plugins_register_the_skills_folder_and_the_mcp_server(manifest):
    data = load(manifest)
    assert data["name"] == "skillbank" and data["version"] == version("skillbank")
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", data["name"])
    registered = {p.resolve() for p in named_paths(data["skills"], REPO)}
    assert {path.parent.resolve() for path in skill_dirs(REPO)} == registered  # every skill, through its folder
    for folder in registered:
        assert all((skill / "SKILL.md").is_file() for skill in folder.iterdir() if skill.is_dir())
    server = data["mcpServers"]["skillbank"]
    assert server["command"] == "skillbank" and server["args"] == ["mcp"]
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name == "skillbank"}
    assert scripts == {"skillbank": "skillbank.console:main"} and "mcp" in COMMANDS  # the click CLI behind it
    assert main.get_command(None, "mcp") is not None
    assert "SKILLBANK_ENCRYPTION_KEY" in json.dumps(server)  # the key reaches the server by its environment


def test_codex_interface_keeps_codex_limits():
    interface = load(CODEX)["interface"]
    assert interface["displayName"] and interface["shortDescription"]
    assert len(interface["defaultPrompt"]) <= 3 and all(len(p) <= 128 for p in interface["defaultPrompt"])


def test_marketplace_lists_this_plugin():
    market = load(MARKETPLACE)
    assert market["owner"]["name"] and re.fullmatch(r"[a-z0-9-]+", market["name"])
    (entry,) = market["plugins"]
    plugin_root = (MARKETPLACE.parent.parent / entry["source"]).resolve()
    assert (plugin_root / ".claude-plugin" / "plugin.json").resolve() == CLAUDE.resolve()
    assert entry["name"] == load(CLAUDE)["name"] and entry["version"] == load(CLAUDE)["version"]


@pytest.mark.parametrize("doc", [REPO / "README.md", SKILL_DOC], ids=lambda p: p.name)
def test_docs_show_how_to_register_the_server(doc):
    configs = [json.loads(block) for block in JSON_BLOCK.findall(doc.read_text()) if "mcpServers" in block]
    assert configs, f"{doc} has no MCP client snippet"
    stdio = [c["mcpServers"]["skillbank"] for c in configs if "command" in c["mcpServers"]["skillbank"]]
    assert stdio and all(s["command"] == "skillbank" and s["args"] == ["mcp"] for s in stdio)
    for config in configs:
        url = config["mcpServers"]["skillbank"].get("url")
        assert url is None or re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", url)
