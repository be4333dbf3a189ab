"""Write (or check) the generated files of every model skill.

    python -m skillbank.generator.regen            # make regen-schemas
    python -m skillbank.generator.regen --check    # make check-schemas

Generated per model skill: ``schemas/<action>.schema.json``, ``schemas/manifest.json``
and ``references/spec_template_<action>.yaml``; for every skill of the bank, the JSON
twins of its YAML references (``skill_info.json``, ``spec_template_<action>.json``),
which the command line reads instead of parsing YAML (see ``runtime/yaml_twins.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from skillbank.generator import schema_gen
from skillbank.generator.models import MODELS, ModelSource
from skillbank.runtime.skills import Skill, bank_root, skill_dirs
from skillbank.runtime.yaml_io import safe_load
from skillbank.runtime.yaml_twins import render_twin, twin_path


def render_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True)


def generated_files(source: ModelSource, skill: Skill) -> dict[str, str]:
    """Relative path (inside the skill folder) -> file content, for one model."""
    cls = source.config_class()
    common = {"model": source.skill, "network_arch": source.network_arch, "core_module": source.core_module}
    files: dict[str, str] = {}
    reads = source.reads()
    for action in source.actions:
        schema = schema_gen.action_schema(cls, action, sections=source.common_sections, reads=reads.get(action),
                                          **common)
        files[f"schemas/{action}.schema.json"] = render_json(schema)
        files[f"references/spec_template_{action}.yaml"] = render_yaml(schema["default"])
    manifest = schema_gen.manifest(cls, source.actions, automl_enabled=skill.automl_enabled, **common)
    files["schemas/manifest.json"] = render_json(manifest)
    return files


def yaml_twins(files: dict[str, str]) -> dict[str, str]:
    """The JSON twin of each YAML file in ``files`` (relative path -> content), read as the runtime reads it."""
    return {str(twin_path(Path(rel))): render_twin(Path(rel), text.encode("utf-8"), safe_load(text))
            for rel, text in files.items() if rel.endswith(".yaml")}


def bank_files(root: Path) -> dict[str, str]:
    """Every generated file of the bank under ``root``: path relative to ``root`` -> content."""
    skills = (root / "skills").resolve()
    generated: dict[str, str] = {}
    for source in MODELS:
        skill = Skill(skills / "models" / source.skill)
        generated.update({f"skills/models/{source.skill}/{rel}": text
                          for rel, text in generated_files(source, skill).items()})
    hand_kept = {  # skill_info.yaml is written by people: only its twin is generated
        f"skills/{skill_dir.relative_to(skills).as_posix()}/references/skill_info.yaml":
            (skill_dir / "references" / "skill_info.yaml").read_bytes().decode("utf-8")  # bytes as they are
        for skill_dir in skill_dirs(root)
    }
    return {**generated, **yaml_twins({**generated, **hand_kept}), PLATFORMS_FILE: platforms_file()}


PLATFORMS_FILE = "references/platforms.yaml"


def platforms_file() -> str:
    """``references/platforms.yaml``: the SDK's platform list with each platform's options, for people and agents."""
    from skillbank.runtime.sdk.platforms import platform_catalogue

    header = ("# Where jobs run (skillbank.runtime.sdk.platforms). `local` is the embedded default.\n"
              "# Generated from the SDK's platform list by `make regen-schemas`: do not edit.\n")
    return header + render_yaml(platform_catalogue())


def write_all(root: Path, out_root: Path | None = None) -> list[Path]:
    """Generate every generated file of the bank under ``out_root`` (default: the bank itself)."""
    written = []
    for rel, content in bank_files(root).items():
        path = (out_root or root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def check_all(root: Path) -> list[str]:
    """Relative paths whose committed content differs from a fresh generation (compared in memory)."""
    drift = []
    for rel, content in bank_files(root).items():
        committed = root / rel
        if not committed.is_file() or committed.read_text(encoding="utf-8") != content:
            drift.append(rel)
    return drift


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when committed files differ from a fresh run")
    args = parser.parse_args(argv)
    root = bank_root()
    if args.check:
        drift = check_all(root)
        if drift:
            print("generated files are out of date (run `make regen-schemas`):", file=sys.stderr)
            for rel in drift:
                print(f"  {rel}", file=sys.stderr)
            return 1
        print("generated schemas, manifests, templates and JSON twins are up to date")
        return 0
    for path in write_all(root):
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
