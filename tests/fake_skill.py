"""A tiny skill that follows the skill_info contract, with a model that is a short Python script.

It proves the job SDK works for any skill (not only action recognition) and
keeps SDK tests fast. A plugin of conftest.py: a test takes the ``fake_skill`` fixture as an argument;
``make_fake_skill`` writes one into a folder of the test's choosing.

The script (``fake_model.py ACTION -e SPEC``):
* train: writes ``train/model_epoch_<EEE>_step_<SSSSS>.pth`` per epoch plus an
  ``ar_model_latest.pth`` link and ``train/status.json`` events; sleeps
  ``train.sleep`` seconds per epoch; ``train.fail_code`` > 0 exits with it.
* evaluate: requires ``evaluate.checkpoint`` to exist, writes ``evaluate/results.json``.
* export: requires ``export.checkpoint``, writes ``export.onnx_file``.
Every action writes ``<action>/env.json``: sha256 of $SKILLBANK_ENCRYPTION_KEY (never the key).
"""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

FAKE_MODEL = textwrap.dedent('''
    import hashlib, json, os, sys, time
    from pathlib import Path
    import yaml

    action, spec_path = sys.argv[1], sys.argv[3]
    spec = yaml.safe_load(open(spec_path))
    results = Path(spec["results_dir"])
    out = results / action
    out.mkdir(parents=True, exist_ok=True)
    key = os.environ.get("SKILLBANK_ENCRYPTION_KEY", "")
    (out / "env.json").write_text(json.dumps({"key_sha256": hashlib.sha256(key.encode()).hexdigest()}))
    print(f"fake model: {action} with {spec_path}", flush=True)
    if action == "train":
        t = spec["train"]
        status = open(out / "status.json", "a")
        steps_per_epoch = 10
        for epoch in range(t["num_epochs"]):
            time.sleep(t["sleep"])
            step = (epoch + 1) * steps_per_epoch
            ckpt = out / f"model_epoch_{epoch:03d}_step_{step:05d}.pth"
            ckpt.write_bytes(b"weights")
            latest = out / "ar_model_latest.pth"
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(ckpt.name)
            event = {"status": "RUNNING", "epoch": epoch + 1, "max_epoch": t["num_epochs"],
                     "kpi": {"train_loss": 1.0 / (epoch + 1)}}
            if t.get("best_epoch") == epoch:
                event["best_checkpoint"] = ckpt.name
            status.write(json.dumps(event) + "\\n"); status.flush()
            print(f"epoch {epoch + 1}/{t['num_epochs']}", flush=True)
        if t["fail_code"]:
            print("Traceback: something broke", flush=True)
            sys.exit(t["fail_code"])
        status.write(json.dumps({"status": "SUCCESS", "epoch": t["num_epochs"]}) + "\\n")
    elif action == "evaluate":
        ckpt = spec["evaluate"]["checkpoint"]
        assert Path(ckpt).is_file(), f"no checkpoint {ckpt}"
        (out / "results.json").write_text(json.dumps({"accuracy": 0.5, "checkpoint": ckpt}))
    elif action == "export":
        ckpt = spec["export"]["checkpoint"]
        assert Path(ckpt).is_file(), f"no checkpoint {ckpt}"
        Path(spec["export"]["onnx_file"]).write_bytes(b"onnx")
    print("done", flush=True)
''')

_STRING = {"type": "string", "default": ""}
SCHEMA = {
    "type": "object",
    "properties": {
        "encryption_key": _STRING,
        "results_dir": _STRING,
        "dataset": {"type": "object", "properties": {"train_dir": _STRING}},
        "train": {"type": "object", "properties": {
            "num_epochs": {"type": "integer", "default": 2, "minimum": 1},
            "sleep": {"type": "number", "default": 0.0, "minimum": 0},
            "fail_code": {"type": "integer", "default": 0},
            "best_epoch": {"type": "integer", "default": -1},
            "pretrained": _STRING,
            "resume": _STRING,
        }},
        "evaluate": {"type": "object", "properties": {
            "checkpoint": {"type": "string", "default": "???"}, "checkpoint_folder": _STRING, "test_dir": _STRING,
        }},
        "export": {"type": "object", "properties": {
            "checkpoint": {"type": "string", "default": "???"}, "onnx_file": _STRING,
        }},
    },
}


def _defaults(schema: dict) -> dict:
    return {name: _defaults(prop) if "properties" in prop else prop.get("default")
            for name, prop in schema["properties"].items()}


def make_fake_skill(root: Path, name: str = "fake-skill") -> Path:
    """Write the skill folder under ``root/skills/models/<name>`` and return it."""
    folder = root / "skills" / "models" / name
    (folder / "references").mkdir(parents=True)
    (folder / "schemas").mkdir()
    script = folder / "fake_model.py"
    script.write_text(FAKE_MODEL)
    template = _defaults(SCHEMA)
    actions = {}
    for action in ("train", "evaluate", "export"):
        (folder / "schemas" / f"{action}.schema.json").write_text(json.dumps(SCHEMA))
        (folder / "references" / f"spec_template_{action}.yaml").write_text(yaml.safe_dump(template))
        actions[action] = {
            "command": f"{sys.executable} {script} {action} -e {{config_path}}",
            "inputs": {},
            "upload_excludes": ["inputs/"],
        }
    actions["train"]["inputs"] = {"dataset.train_dir": {"type": "folder"}}
    actions["evaluate"]["inputs"] = {"evaluate.checkpoint": {"type": "file"}}
    actions["export"]["inputs"] = {"export.checkpoint": {"type": "file"}}
    info = {
        "name": name,
        "network_arch": "fake_net",
        "container_image": "example.invalid/fake:1",
        "gpu_spec_key": "train.num_epochs",
        "actions": actions,
        "spec_params": {
            "train": {"encryption_key": "key", "results_dir": "output_dir",
                      "train.pretrained": "ptm_if_no_resume_model", "train.resume": "resume_model"},
            "evaluate": {"encryption_key": "key", "results_dir": "output_dir",
                         "evaluate.checkpoint": "parent_model", "evaluate.checkpoint_folder": "parent_model_folder"},
            "export": {"encryption_key": "key", "results_dir": "output_dir",
                       "export.checkpoint": "parent_model", "export.onnx_file": "create_onnx_file"},
        },
        "data_sources": {"train": {"dataset.train_dir": {"description": "any folder"}}},
        "spec_shorthand_keys": {"num_epochs": "train.num_epochs"},
    }
    (folder / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    return folder


@pytest.fixture
def fake_skill(tmp_path) -> Path:
    """A fake skill folder (pass its path wherever a skill name is accepted)."""
    return make_fake_skill(tmp_path / "bank")
