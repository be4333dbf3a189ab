"""docker / SLURM / Kubernetes platforms: what real engines cannot show here, with fake CLIs on PATH.

The real engines run in test_slurm.py (SLURM, no accounting database) and test_podman.py (podman
for --platform docker). Here: rendering for GPUs and container runtimes this machine lacks
(``--gpus``, apptainer, pyxis), sacct's accounting states, and Kubernetes, which cannot run here:
its manifests are validated against the batch/v1 Job schema. The fake ``docker``, ``sacct`` and
``kubectl`` record their argv (and stdin) and print canned answers.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skillbank.runtime.sdk.platforms import get_platform
from skillbank.runtime.sdk.platforms.base import (
    CANCELED,
    COMPLETE,
    ERROR,
    PENDING,
    RUNNING,
    LaunchRequest,
    PlatformError,
)
from skillbank.runtime.sdk.platforms.docker import DockerPlatform
from skillbank.runtime.sdk.platforms.kubernetes import KubernetesPlatform
from skillbank.runtime.sdk.platforms.slurm import SlurmPlatform

SECRET_KEY = "enc-key-Secret-4711-do-not-print"
SECRET_AWS = "aws-Secret-Access-Key-0815-do-not-print"
SECRETS = (SECRET_KEY, SECRET_AWS)
JOB_ID = "0b7c6c9e-3f6a-4e55-9d0e-2c1f4c7a9b10"
IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:7.1.0-pyt"

FAKE_CLI = r'''#!{python}
import json, os, sys
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
folder = os.environ["FAKE_CLI_DIR"]
stdin = sys.stdin.read() if "-" in args and "-f" in args else ""
seen = os.environ.get("SKILLBANK_ENCRYPTION_KEY") == os.environ.get("FAKE_EXPECT_SECRET")
with open(os.path.join(folder, "calls.jsonl"), "a") as out:
    out.write(json.dumps({{"tool": tool, "argv": args, "stdin": stdin, "secret_in_env": seen}}) + "\n")
with open(os.path.join(folder, "responses.json")) as f:
    responses = json.load(f)
plain = [a for i, a in enumerate(args) if a != "-n" and (i == 0 or args[i - 1] != "-n")]
line = " ".join([tool] + plain)
keys = [k for k in responses if line == k or line.startswith(k + " ") or line.startswith(k)]
answer = responses[max(keys, key=len)] if keys else {{}}
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("rc", 0))
'''


class FakeCLIs:
    """A bin folder of fake platform CLIs first on PATH, their canned answers and their call records."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        for tool in ("docker", "sbatch", "sacct", "squeue", "scancel", "kubectl"):
            path = self.bin / tool
            path.write_text(FAKE_CLI.format(python=sys.executable))
            path.chmod(0o755)
        self.answer({})

    def answer(self, responses: dict[str, dict]) -> None:
        (self.folder / "responses.json").write_text(json.dumps(responses))

    def remove(self, tool: str) -> None:
        (self.bin / tool).unlink()

    def calls(self) -> list[dict]:
        path = self.folder / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeCLIs:
    clis = FakeCLIs(tmp_path / "fake")
    monkeypatch.setenv("PATH", f"{clis.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CLI_DIR", str(clis.folder))
    monkeypatch.setenv("FAKE_EXPECT_SECRET", SECRET_KEY)
    monkeypatch.delenv("SKILLBANK_SLURM_CONTAINER", raising=False)
    monkeypatch.delenv("SKILLBANK_K8S_NAMESPACE", raising=False)
    return clis


def _request(tmp_path: Path, gpus: int = 2, **extra) -> LaunchRequest:
    results = tmp_path / "results" / JOB_ID
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    values = {
        "job_id": JOB_ID,
        "command": ["action_recognition", "train", "-e", str(results / "spec.yaml"), "train.note=it's $HOME"],
        "results_dir": results,
        "env": {"SKILLBANK_ENCRYPTION_KEY": SECRET_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_AWS},
        "image": IMAGE, "gpus": gpus, "mounts": [(str(data), "/data")], "name": "tao-train-action-recognition-train",
        **extra,
    }
    return LaunchRequest(**values)


def _bash_syntax_ok(text: str, tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text(text)
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _no_secret_anywhere(*texts: str, folder: Path | None = None) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    if folder is not None and folder.exists():
        for path in folder.rglob("*"):
            if path.is_file():
                content = path.read_text(errors="replace")
                assert not any(secret in content for secret in SECRETS), path


def test_registry_builds_each_platform():
    assert isinstance(get_platform("docker"), DockerPlatform)
    assert isinstance(get_platform("slurm"), SlurmPlatform)
    assert isinstance(get_platform("kubernetes"), KubernetesPlatform)


# ---------------------------------------------------------------- docker


def test_docker_render_is_bash_and_passes_env_by_name(tmp_path):
    request = _request(tmp_path)
    text = DockerPlatform().render(request)
    _bash_syntax_ok(text, tmp_path)
    _no_secret_anywhere(text)
    results = os.path.abspath(request.results_dir)
    for piece in ("--gpus 2", f"-v {tmp_path / 'data'}:/data", f"-v {results}:{results}",
                  "-e AWS_SECRET_ACCESS_KEY", "-e SKILLBANK_ENCRYPTION_KEY", f"-w {results}", IMAGE):
        assert piece in text
    assert "--gpus" not in DockerPlatform().render(_request(tmp_path, gpus=0))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Status": "created"}, (PENDING, None, None)),
        ({"Status": "exited", "ExitCode": 0}, (COMPLETE, 0, None)),
        ({"Status": "exited", "ExitCode": 2, "Error": ""}, (ERROR, 2, None)),
        ({"Status": "exited", "ExitCode": 137, "OOMKilled": True}, (ERROR, 137, 9)),
    ],
)
def test_docker_status_states(fake, tmp_path, state, expected):
    fake.answer({"docker inspect": {"stdout": json.dumps(state)}})
    status = DockerPlatform().status("abc", tmp_path)
    assert (status.state, status.exit_code, status.signal) == expected
    if state.get("OOMKilled"):
        assert "out of memory" in status.detail


def test_docker_gone_and_missing(fake, tmp_path, monkeypatch):
    fake.answer({"docker inspect": {"rc": 1, "stderr": "Error: No such container: abc\n"}})
    status = DockerPlatform().status("abc", tmp_path)
    assert status.state == ERROR and "no longer exists" in status.detail
    fake.remove("docker")
    monkeypatch.setenv("PATH", str(fake.bin))
    with pytest.raises(PlatformError) as caught:
        DockerPlatform().launch(_request(tmp_path))
    assert str(caught.value) == "docker is not on PATH; use --dry-run to see the submission"
    assert DockerPlatform().render(_request(tmp_path))  # dry-run still works


# ---------------------------------------------------------------- slurm


@pytest.mark.parametrize("container", ["apptainer", "pyxis", "none"])
def test_sbatch_script_renders_and_passes_bash_n(tmp_path, container):
    request = _request(tmp_path)
    text = SlurmPlatform(container=container).render(request)
    _bash_syntax_ok(text, tmp_path)
    _no_secret_anywhere(text)
    results = os.path.abspath(request.results_dir)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "#SBATCH --job-name=tao-train-action-recognition-train\n" in text
    assert f"#SBATCH --output={results}/log.txt\n" in text and "#SBATCH --gpus=2\n" in text
    assert "SKILLBANK_ENCRYPTION_KEY" in text  # named, so a reader knows what the job expects
    installed = f"\n{Path(sys.executable).parent}/action_recognition train"  # none: this installation's command
    expected = {"apptainer": "apptainer exec --nv", "pyxis": "srun --container-image=", "none": installed}
    assert expected[container] in text


def test_sbatch_script_runs_and_leaves_an_exit_marker(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no SLURM reachable: status falls back to the marker
    monkeypatch.delenv("SLURM_CONF", raising=False)  # (not even the test cluster of tests/engines.py)
    request = _request(tmp_path, gpus=0, image="", command=["sh", "-c", "echo working; exit 3"])
    platform = SlurmPlatform()
    text = platform.render(request)
    assert "--gpus" not in text and "apptainer" not in text
    request.results_dir.mkdir(parents=True)
    done = subprocess.run(["bash", "-c", text], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 3 and done.stdout == "working\n"
    status = platform.status("77", request.results_dir)
    assert (status.state, status.exit_code) == (ERROR, 3)


def test_slurm_reads_sacct_states_when_accounting_runs(fake, tmp_path):
    """Accounting (slurmdbd) does not run on the test cluster: sacct's answers are canned here."""
    platform = SlurmPlatform(container="apptainer")
    for line, expected in [("RUNNING|0:0", (RUNNING, None)), ("COMPLETED|0:0", (COMPLETE, 0)),
                           ("FAILED|1:0", (ERROR, 1)), ("OUT_OF_MEMORY|0:125", (ERROR, 0)),
                           ("PENDING|0:0", (PENDING, None)), ("CANCELLED by 1000|0:15", (CANCELED, 0))]:
        fake.answer({"sacct": {"stdout": line + "\n"}})
        status = platform.status("4242", tmp_path)
        assert (status.state, status.exit_code) == expected, line
    fake.answer({"sacct": {"stdout": "OUT_OF_MEMORY|0:125\n"}})
    assert "out of memory" in platform.status("4242", tmp_path).detail
    fake.answer({"sacct": {"rc": 1, "stderr": "Slurm accounting storage is disabled"},
                 "squeue": {"stdout": "PENDING\n"}})
    assert platform.status("4242", tmp_path).state == PENDING  # no accounting: squeue decides


def test_slurm_refuses_what_sbatch_cannot_take(fake, tmp_path, monkeypatch):
    with pytest.raises(PlatformError, match="#SBATCH cannot take"):
        SlurmPlatform().render(_request(tmp_path / "with space"))
    with pytest.raises(PlatformError, match="not known"):
        SlurmPlatform(container="podman")
    fake.remove("sbatch")
    monkeypatch.setenv("PATH", str(fake.bin))
    with pytest.raises(PlatformError, match=r"^sbatch is not on PATH; use --dry-run"):
        SlurmPlatform().launch(_request(tmp_path))


# ---------------------------------------------------------------- kubernetes


def test_k8s_manifest_structure(tmp_path):
    import kubernetes_validate

    request = _request(tmp_path)
    text = KubernetesPlatform(namespace="ml").render(request)
    _no_secret_anywhere(text)
    job = yaml.safe_load(text)
    # the Kubernetes OpenAPI schema of batch/v1 Job, strictly (an unknown field fails)
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == f"skillbank-{JOB_ID}" and job["metadata"]["namespace"] == "ml"
    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert pod["restartPolicy"] == "Never" and main["image"] == IMAGE
    assert [*main["command"], *main["args"]] == request.command
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 2
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in main["env"]}
    assert set(refs) == set(request.env) and all("value" not in e for e in main["env"])
    assert {r["name"] for r in refs.values()} == {f"skillbank-{JOB_ID}-env"}
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    mounted = {volumes[m["name"]]: m["mountPath"] for m in main["volumeMounts"]}
    results = os.path.abspath(request.results_dir)
    assert mounted == {str(tmp_path / "data"): "/data", results: results}
    bare = yaml.safe_load(KubernetesPlatform().render(_request(tmp_path, gpus=0, env={})))
    kubernetes_validate.validate(bare, kubernetes_validate.latest_version(), strict=True)
    assert "resources" not in bare["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in bare["spec"]["template"]["spec"]["containers"][0]


def test_k8s_launch_creates_job_then_owned_secret(fake, tmp_path):
    request = _request(tmp_path)
    platform = KubernetesPlatform()
    name = f"skillbank-{JOB_ID}"
    fake.answer({"kubectl create": {"stdout": f"job.batch/{name}\n"},
                 f"kubectl get job {name} -o jsonpath": {"stdout": "uid-1234"}})
    assert platform.launch(request) == name
    create_job, get_uid, create_secret = fake.calls()
    assert create_job["argv"] == ["create", "-f", "-", "-o", "name"]
    assert create_job["stdin"] == platform.render(request)
    assert get_uid["argv"][:3] == ["get", "job", name]
    secret = json.loads(create_secret["stdin"])
    assert create_secret["argv"] == ["create", "-f", "-"]
    assert secret["kind"] == "Secret" and secret["stringData"] == request.env  # values only on stdin
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1234"
    for call in fake.calls():
        _no_secret_anywhere(json.dumps(call["argv"]))
    _no_secret_anywhere(create_job["stdin"], folder=request.results_dir)


def test_k8s_status_logs_cancel(fake, tmp_path):
    platform = KubernetesPlatform(namespace="ml")
    name = f"skillbank-{JOB_ID}"
    results = tmp_path / "r"
    results.mkdir()
    cases = [
        ({"active": 1, "ready": 0}, PENDING),
        ({"active": 1, "ready": 1}, RUNNING),
        ({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}, COMPLETE),
        ({}, PENDING),
    ]
    for status, expected in cases:
        fake.answer({"kubectl get job": {"stdout": json.dumps({"status": status})}})
        assert platform.status(name, results).state == expected, status
    pods = {"items": [{"status": {"containerStatuses": [
        {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}]}
    fake.answer({"kubectl get job": {"stdout": json.dumps({"status": {"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}})},
        "kubectl get pods": {"stdout": json.dumps(pods)}})
    failed = platform.status(name, results)
    assert (failed.state, failed.exit_code, failed.signal) == (ERROR, 137, 9) and "out of memory" in failed.detail
    assert fake.calls()[-1]["argv"][:2] == ["-n", "ml"]

    fake.answer({"kubectl logs": {"stdout": "epoch 1\nepoch 2\n"}})
    assert platform.logs(name, results, tail=1) == "epoch 2\n"
    assert fake.calls()[-1]["argv"] == ["-n", "ml", "logs", f"job/{name}", "--tail=1"]

    fake.answer({"kubectl get job": {"stdout": json.dumps({"status": {"active": 1, "ready": 1}})}})
    platform.cancel(name, results)
    assert fake.calls()[-1]["argv"] == ["-n", "ml", "delete", "job", name, "--ignore-not-found", "--wait=false"]
    not_found = f'Error from server (NotFound): jobs.batch "{name}" not found'
    fake.answer({"kubectl get job": {"rc": 1, "stderr": not_found}})
    assert platform.status(name, results).state == CANCELED
    shutil.rmtree(results)
    results.mkdir()
    gone = platform.status(name, results)
    assert gone.state == ERROR and "no longer exists" in gone.detail


def test_k8s_without_kubectl(fake, tmp_path, monkeypatch):
    fake.remove("kubectl")
    monkeypatch.setenv("PATH", str(fake.bin))
    with pytest.raises(PlatformError) as caught:
        KubernetesPlatform().launch(_request(tmp_path))
    assert str(caught.value) == "kubectl is not on PATH; use --dry-run to see the submission"
