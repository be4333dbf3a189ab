"""Bank-wide references agree with the skills that point at them."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from skillbank.runtime.skills import Skill, skill_dirs

REPO = Path(__file__).resolve().parent.parent
REFS = REPO / "references"


def test_container_images_match_their_version_pins():
    pins = yaml.safe_load((REFS / "versions.yaml").read_text())
    checked = 0
    for path in skill_dirs():
        text = (path / "references" / "skill_info.yaml").read_text()
        match = re.search(r"^container_image:\s*(\S+)\s*#\s*versions-key:\s*(\S+)", text, re.M)
        if not match:
            continue
        image, key = match.groups()
        node = pins
        for part in key.split("."):
            node = node[part]
        assert node == image, f"{path.name}: {image} != pin {key} = {node}"
        checked += 1
    assert checked >= 1


def test_spec_params_name_catalogued_functions():
    catalogue = yaml.safe_load((REFS / "inference_functions.yaml").read_text())
    for path in skill_dirs():
        skill = Skill(path)
        for action in skill.actions:
            for field, function in skill.spec_params(action).items():
                assert function in catalogue, f"{skill.name} {action} {field}: {function} is not catalogued"


def test_catalogue_is_exactly_what_the_sdk_registers():
    from skillbank.runtime.sdk.spec_params import INFERENCE_FUNCTIONS

    catalogue = yaml.safe_load((REFS / "inference_functions.yaml").read_text())
    assert set(catalogue) == set(INFERENCE_FUNCTIONS)
    meta = json.loads((REPO / "schemas" / "skill_info.schema.json").read_text())
    allowed = meta["properties"]["spec_params"]["additionalProperties"]["additionalProperties"]["enum"]
    assert set(allowed) == set(INFERENCE_FUNCTIONS)


def test_platform_list_is_exactly_what_the_sdk_knows():
    from skillbank.runtime.sdk.platforms import get_platform
    from skillbank.runtime.sdk.platforms.options import platform_option_names

    for name, entry in yaml.safe_load((REFS / "platforms.yaml").read_text()).items():
        assert get_platform(name).name == name
        assert sorted(entry["options"]) == platform_option_names(name)  # the --platform-option keys
