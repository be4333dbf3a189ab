"""The wheel is the whole package: built from this checkout, installed into a folder outside it, it works anywhere.

The wheel is built from a copy of the checkout (so that a build leaves nothing in the checkout) and
installed with ``pip install --no-deps --target``; its commands then run from a folder outside the
checkout under ``python -S``, with the target and this venv's site-packages as the whole import path:
``-S`` keeps the venv's ``.pth`` file, which points at the checkout, out of the way, so every module
and every bank file a command uses comes from the wheel.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from fake_skill import make_fake_skill

REPO = Path(__file__).resolve().parent.parent
SKILL = "tao-train-action-recognition"
# what the wheel is built from; tests/, bench/ and docs/ are not part of it
SOURCES = ("pyproject.toml", "README.md", "skillbank", "runtime", "generator", "skills", "schemas", "references")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The folder the wheel was installed into (``--target``): packages, and console scripts in ``bin/``."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(work / "dist"), str(source)], check=True, timeout=600)
    (wheel,) = (work / "dist").glob("skillbank-*.whl")
    target = work / "target"
    subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
                   check=True, timeout=600)
    return target


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the checkout to run commands from."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def run(installed: Path, cwd: Path, *argv: str, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -S <argv>`` with only the wheel's target and the venv's dependencies to import from."""
    path = os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    environ = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.run([sys.executable, "-S", *argv], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=timeout)


def skillbank(installed: Path, cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(installed, cwd, str(installed / "bin" / "skillbank"), *args, **kw)


def test_the_wheel_carries_the_remapped_packages_and_the_bank(installed, outside):
    code = ("import skillbank, skillbank.runtime.sdk.jobs as jobs, skillbank.generator.runner_gen as gen\n"
            "from skillbank.runtime.skills import bank_root\n"
            "print(jobs.__file__); print(gen.__file__); print(bank_root())")
    result = run(installed, outside, "-c", code)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        assert Path(line).is_relative_to(installed), line
    bank = Path(result.stdout.splitlines()[-1])
    for rel in ("skills/models/tao-train-action-recognition/SKILL.md",
                "skills/models/tao-train-action-recognition/schemas/train.schema.json",
                "skills/models/tao-train-action-recognition/references/skill_info.json",
                "skills/applications/tao-run-automl/references/skill_info.yaml",
                "schemas/skill_info.schema.json", "references/platforms.yaml"):
        assert (bank / rel).is_file(), rel
    assert not (installed / "tests").exists() and not (installed / "runtime").exists()  # one namespace only


def test_the_commands_an_agent_calls_work_from_any_folder(installed, outside):
    listed = skillbank(installed, outside, "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["skill"]: row for row in json.loads(listed.stdout)}
    assert rows[SKILL]["actions"]["train"]["automl"] is True
    assert Path(rows[SKILL]["path"]).is_relative_to(installed)

    (outside / "data").mkdir()
    overrides = outside / "overrides.json"
    overrides.write_text(json.dumps({"dataset.train_dataset_dir": "data", "dataset.val_dataset_dir": "data",
                                     "num_epochs": 2}))
    valid = skillbank(installed, outside, "validate", SKILL, "train", str(overrides))
    assert valid.returncode == 0 and "overrides are valid (3 key(s))" in valid.stdout, valid.stderr
    typo = outside / "typo.json"
    typo.write_text(json.dumps({"train.optim.lrr": 0.1}))
    invalid = skillbank(installed, outside, "validate", SKILL, "train", str(typo))
    assert invalid.returncode == 1 and "did you mean" in invalid.stderr

    policy = skillbank(installed, outside, "policy", SKILL, "--action", "train", "--request", "no HPO",
                       "--format", "json")
    assert policy.returncode == 0, policy.stderr
    assert json.loads(policy.stdout)["route"] == "direct"

    generated = skillbank(installed, outside, "generate", SKILL, "train", str(overrides), "-o", "runner.py",
                          "--max-trials", "2", "--max-epochs", "1")
    assert generated.returncode == 0, generated.stderr
    dry = run(installed, outside, "runner.py", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_skillbank_root_points_at_another_bank(installed, outside, tmp_path):
    bank = tmp_path / "my-bank"
    make_fake_skill(bank)
    env = {"SKILLBANK_ROOT": str(bank)}
    listed = skillbank(installed, outside, "list", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [row["skill"] for row in json.loads(listed.stdout)] == ["fake-skill"]

    (outside / "data").mkdir()
    overrides = outside / "overrides.json"
    overrides.write_text(json.dumps({"dataset.train_dir": "data", "num_epochs": 2}))
    ran = skillbank(installed, outside, "run", "fake-skill", "train", str(overrides), "--automl-policy", "off",
                    "--wait", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Complete" in ran.stdout + ran.stderr

    missing = skillbank(installed, outside, "list", env={"SKILLBANK_ROOT": str(tmp_path / "nowhere")})
    assert missing.returncode == 2
    assert "SKILLBANK_ROOT=" in missing.stderr and "not a folder" in missing.stderr


@pytest.mark.slow
def test_the_demo_runs_from_the_wheel(installed, outside):
    """`make demo`'s steps (sample data, AutoML train, evaluate, inference, export), at the smallest budget."""
    demo = run(installed, outside, "-m", "skillbank.demo", "--output", "demo", "--trials", "2", "--epochs", "1",
               timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert list((outside / "demo" / "results").rglob("*.onnx"))
