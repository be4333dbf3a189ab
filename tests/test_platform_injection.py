"""Every value that reaches a rendered docker / SLURM / Kubernetes submission is quoted or refused.

Each rendered field gets a value holding a newline, ``$(...)``, backticks and quotes. The docker and
sbatch scripts are then run for real by bash with recording stand-ins for ``docker`` / ``apptainer``
(the stand-in docker runs the container's ``sh -c`` line too): nothing injected runs, and every value
arrives exactly as given. The Kubernetes manifest is parsed back: one document, the exact values.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skillbank.runtime.sdk.platforms.base import LaunchRequest, PlatformError
from skillbank.runtime.sdk.platforms.docker import DockerPlatform
from skillbank.runtime.sdk.platforms.kubernetes import KubernetesPlatform
from skillbank.runtime.sdk.platforms.slurm import SlurmPlatform

RECORDER = r'''#!{python}
import json, os, subprocess, sys
tool = os.path.basename(sys.argv[0])
with open(os.environ["RECORD_TO"], "a") as out:
    out.write(json.dumps({{"tool": tool, "argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\n")
if tool == "docker":  # play the container: run its `sh -c INNER` in the working folder it names
    args = sys.argv[1:]
    workdir = args[args.index("-w") + 1]
    subprocess.run(["sh", "-c", args[-1]], cwd=workdir, check=True)
    print("0123456789ab" * 2)
'''


def hostile(tag: str) -> str:
    """A value that breaks out of an unquoted shell word, a comment line or a YAML scalar if not handled.

    Injected commands touch files in $HOME (``cd`` alone goes there), which is the canary folder; no ``/``,
    so the value can be a folder's name too.
    """
    return f"{tag}\n$(cd;touch {tag}-dollar) `cd;touch {tag}-tick` 'sq' \"dq\"; cd;touch {tag}-semi\n#c\nevil: 1\r\n"


def hostile_path(tag: str) -> str:
    """:func:`hostile` as a folder name a mount can take (docker -v and apptainer --bind split on ':')."""
    return hostile(tag).replace(":", "")


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """Recording stand-ins first on PATH, a canary folder that must stay empty, the record file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # short, absolute: the hostile values become folder names too (at most 255 bytes each)
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    monkeypatch.setenv("HOME", str(canaries))
    for tool in ("docker", "apptainer", "record-argv"):
        (bin_dir / tool).write_text(RECORDER.format(python=sys.executable))
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RECORD_TO", str(tmp_path / "calls.jsonl"))

    def calls() -> list[dict]:
        path = tmp_path / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return tmp_path, canaries, calls


def _request(tmp_path: Path, results: Path) -> LaunchRequest:
    results.mkdir(parents=True, exist_ok=True)
    data = tmp_path / hostile_path("mount")
    data.mkdir(exist_ok=True)
    return LaunchRequest(
        job_id=hostile("jobid"), name=hostile("name"), image=hostile("image"),
        command=["record-argv", hostile("arg"), "--spec", str(results / "spec.yaml")],
        results_dir=results, env={"SKILLBANK_ENCRYPTION_KEY": "k"}, gpus=1, mounts=[(str(data), str(data))],
    )


def _comment_keeps(text: str, value: str) -> bool:
    """The header comment shows ``value`` on its own line, its line breaks escaped."""
    escaped = value.replace("\n", "\\n").replace("\r", "\\r")
    return any(line.startswith(f"# skillbank job {escaped} (") for line in text.splitlines())


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_docker_run_script_quotes_every_rendered_field(bench):
    tmp_path, canaries, calls = bench
    results = tmp_path / hostile_path("results")
    request = _request(tmp_path, results)
    script = DockerPlatform().render(request)
    done = _bash(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(canaries)) == []  # nothing injected ran, neither on the host nor "in the container"
    docker, command = calls()
    argv = docker["argv"]
    assert argv[argv.index("-w") + 1] == str(results)
    assert f"{results}:{results}" in argv and f"{request.mounts[0][0]}:{request.mounts[0][1]}" in argv
    assert f"skillbank.job_id={request.job_id}" in argv and request.image in argv
    assert command["argv"] == request.command[1:] and command["cwd"] == str(results)
    assert (results / "log.txt").is_file()  # the log went to the hostile folder, by its exact name
    assert _comment_keeps(script, request.job_id)


def test_sbatch_script_refuses_what_sbatch_cannot_quote_and_quotes_the_rest(bench):
    tmp_path, canaries, calls = bench
    bad = _request(tmp_path, tmp_path / hostile_path("results"))
    with pytest.raises(PlatformError, match="#SBATCH cannot take"):
        SlurmPlatform(container="apptainer").render(bad)

    results = tmp_path / "results-plain"
    request = _request(tmp_path, results)
    script = SlurmPlatform(container="apptainer").render(request)
    done = _bash(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(canaries)) == []
    (apptainer,) = calls()
    argv = apptainer["argv"]
    assert f"docker://{request.image}" in argv
    assert f"{request.mounts[0][0]}:{request.mounts[0][1]}" in argv
    assert argv[-len(request.command):] == request.command  # the command's words arrive exactly
    assert json.loads((results / ".exit").read_text())["exit_code"] == 0
    assert _comment_keeps(script, request.job_id)


def test_kubernetes_manifest_keeps_every_value_a_quoted_scalar(bench):
    tmp_path, canaries, _ = bench
    results = tmp_path / hostile_path("results")
    request = _request(tmp_path, results)
    text = KubernetesPlatform(namespace="ns").render(request)
    (manifest,) = list(yaml.safe_load_all(text))
    assert "evil" not in manifest and set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == request.image
    assert [*container["command"], *container["args"]] == request.command
    assert container["workingDir"] == str(results)
    assert manifest["metadata"]["labels"]["skillbank/job-id"] == request.job_id
    paths = {v["hostPath"]["path"] for v in manifest["spec"]["template"]["spec"]["volumes"]}
    assert paths == {str(results), request.mounts[0][0]}
    assert _comment_keeps(text, request.job_id)
