"""Write (or check) the generated files of every model skill.

    python -m skillbank.generator.regen            # make regen-schemas
    python -m skillbank.generator.regen --check    # make check-schemas

Generated per skill: ``schemas/<action>.schema.json``, ``schemas/manifest.json``
and ``references/spec_template_<action>.yaml``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from skillbank.generator import schema_gen
from skillbank.generator.models import MODELS, ModelSource
from skillbank.runtime.skills import bank_root


def render_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True)


def generated_files(source: ModelSource, skill_info: dict[str, Any]) -> dict[str, str]:
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
    manifest = schema_gen.manifest(
        cls, source.actions, automl_enabled=bool(skill_info.get("automl_enabled", False)), **common
    )
    files["schemas/manifest.json"] = render_json(manifest)
    return files


def _skill_info(skill_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((skill_dir / "references" / "skill_info.yaml").read_text()) or {}


def write_all(root: Path, out_root: Path | None = None) -> list[Path]:
    """Generate every model's files under ``out_root`` (default: the bank itself)."""
    written = []
    for source in MODELS:
        skill_dir = root / "skills" / "models" / source.skill
        target = (out_root or root) / "skills" / "models" / source.skill
        for rel, content in generated_files(source, _skill_info(skill_dir)).items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != content:
                path.write_text(content)
            written.append(path)
    return written


def check_all(root: Path) -> list[str]:
    """Relative paths whose committed content differs from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write_all(root, Path(tmp))
        drift = []
        for path in fresh:
            rel = path.relative_to(tmp)
            committed = root / rel
            if not committed.is_file() or committed.read_text() != path.read_text():
                drift.append(str(rel))
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
        print("generated schemas, manifests and templates are up to date")
        return 0
    for path in write_all(root):
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
