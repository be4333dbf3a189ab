"""``--platform-option KEY=VALUE``: checked per platform, embedded in runners, rendered into submissions.

Kubernetes manifests are validated against the batch/v1 Job OpenAPI schema (kubernetes-validate ships
the Kubernetes JSON schemas), strictly: an unknown or misplaced field fails.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from skillbank.cli import main
from skillbank.runtime.sdk import jobs
from skillbank.runtime.sdk.platforms import PLATFORMS, get_platform
from skillbank.runtime.sdk.platforms.base import PlatformError
from skillbank.runtime.sdk.platforms.options import (
    PLATFORM_OPTIONS,
    PlatformOptionError,
    check_platform_options,
    parse_platform_options,
    platform_option_names,
)

SKILL = "tao-train-action-recognition"


@pytest.fixture
def overrides(sample_data) -> dict:
    return {"dataset.train_dataset_dir": str(sample_data / "train"),
            "dataset.val_dataset_dir": str(sample_data / "test"), "dataset.label_map": {"catch": 0, "smile": 1}}


def k8s_job_is_valid(text: str) -> dict:
    """The manifest, after kubernetes-validate checked it against the Job schema (strict: no unknown field)."""
    import kubernetes_validate

    document = yaml.safe_load(text)
    kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    return document


# ------------------------------------------------------------------------------------------ the rules
@pytest.mark.parametrize(("platform", "options", "message"), [
    ("slurm", {"gpu": "0"}, "platform option 'gpu' is not known for slurm (did you mean 'gpus'?); "
                            "allowed: account, container, gpus, image, partition, time"),
    ("slurm", {"gpus": "-1"}, "platform option gpus='-1' (slurm): allowed: an integer >= 0 (0 requests no GPU)"),
    ("slurm", {"container": "podman"}, "platform option container='podman' (slurm): allowed: none, apptainer, "
                                       "singularity, pyxis"),
    ("slurm", {"time": "soon"}, "platform option time='soon' (slurm): allowed: minutes, HH:MM:SS or D-HH:MM:SS"),
    ("slurm", {"partition": "gpu a100"}, "platform option partition='gpu a100' (slurm): allowed: letters, digits"),
    ("docker", {"cli": "nerdctl"}, "platform option cli='nerdctl' (docker): allowed: docker, podman"),
    ("docker", {"mounts": "data:/data"}, "platform option mounts='data:/data' (docker): allowed: comma-separated"),
    ("kubernetes", {"namespace": "ML_Jobs"}, "platform option namespace='ML_Jobs' (kubernetes): allowed: a DNS-1123"),
    ("kubernetes", {"partition": "debug"}, "platform option 'partition' is not known for kubernetes; allowed: "
                                           "gpus, image, namespace, pvc, pvc_mount"),
    ("local", {"gpus": "0"}, "platform option 'gpus': the local platform takes no options"),
])
def test_a_bad_option_is_one_line_naming_key_value_and_what_is_allowed(platform, options, message):
    with pytest.raises(PlatformOptionError) as caught:
        check_platform_options(platform, options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_options_parse_and_come_back_typed():
    given = parse_platform_options(["gpus=0", "partition=debug", " time = 1-00:00:00 "])
    assert given == {"gpus": "0", "partition": "debug", "time": "1-00:00:00"}
    assert check_platform_options("slurm", given) == {"gpus": 0, "partition": "debug", "time": "1-00:00:00"}
    assert check_platform_options("docker", {"gpus": 2, "cli": "podman"}) == {"gpus": 2, "cli": "podman"}
    with pytest.raises(PlatformOptionError, match="expected KEY=VALUE, e.g. gpus=0"):
        parse_platform_options(["gpus"])
    with pytest.raises(PlatformOptionError, match="'gpus' is given twice"):
        parse_platform_options(["gpus=0", "gpus=1"])
    assert set(PLATFORMS) == {"local", "docker", "slurm", "kubernetes"}  # the one list of platforms
    assert set(PLATFORM_OPTIONS) == {"docker", "slurm", "kubernetes"} and not platform_option_names("local")


# ------------------------------------------------------------------------------------------ gpus=0
@pytest.mark.parametrize(("platform", "gpu_request"), [
    ("slurm", "--gpus="), ("docker", "--gpus"), ("kubernetes", "nvidia.com/gpu"),
])
def test_gpus_0_renders_no_gpu_request(overrides, platform, gpu_request):
    with_gpu = jobs.preview_job(SKILL, "train", overrides, platform=platform)  # train.num_gpus: 1
    assert gpu_request in with_gpu
    without = jobs.preview_job(SKILL, "train", overrides, platform=platform, platform_options={"gpus": "0"})
    assert gpu_request not in without and "--nv" not in without


def test_slurm_options_become_sbatch_lines(overrides):
    text = jobs.preview_job(SKILL, "train", overrides, platform="slurm", platform_options={
        "partition": "debug", "account": "vision", "time": "02:00:00", "container": "pyxis",
        "image": "registry.example/tao:7"})
    for line in ("#SBATCH --partition=debug\n", "#SBATCH --account=vision\n", "#SBATCH --time=02:00:00\n",
                 "srun --container-image=registry.example/tao:7 "):
        assert line in text


def test_docker_options_pick_the_cli_network_and_mounts(overrides, tmp_path):
    options = {"cli": "podman", "network": "host", "gpus": "2", "mounts": f"/usr:/usr:ro,{tmp_path}"}
    text = jobs.preview_job(SKILL, "train", overrides, platform="docker", platform_options=options)
    assert text.splitlines()[2].startswith("podman run --detach --init")
    assert "--device nvidia.com/gpu=0 \\\n  --device nvidia.com/gpu=1" in text and "--gpus" not in text
    assert "--network host" in text and "-v /usr:/usr:ro" in text and f"-v {tmp_path}:{tmp_path} " in text
    assert get_platform("docker", cli="podman").submit_tool == "podman"  # status, logs, stop use it too


# ------------------------------------------------------------------------------------------ kubernetes
def test_the_k8s_job_is_a_valid_batch_v1_job_and_a_broken_one_is_not(overrides):
    document = k8s_job_is_valid(jobs.preview_job(SKILL, "train", overrides, platform="kubernetes",
                                                 platform_options={"namespace": "ml", "gpus": "2"},
                                                 env={"SKILLBANK_ENCRYPTION_KEY": "key-1234"}))
    assert document["metadata"]["namespace"] == "ml"
    assert document["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 2}
    import kubernetes_validate

    document["spec"]["template"]["spec"]["containers"][0]["gpus"] = 2  # not a Container field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_k8s_pvc_replaces_host_paths(sample_data, tmp_path):
    root = tmp_path / "workspace"
    data = root / "data"
    data.mkdir(parents=True)
    overrides = {"dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test"), "dataset.label_map": {"catch": 0, "smile": 1}}
    with pytest.raises(PlatformError, match=rf"pvc=tao-ws, every path of the job must lie under pvc_mount={root}; "
                                            rf"{sample_data / 'train'} does not"):
        jobs.preview_job(SKILL, "train", overrides, platform="kubernetes", results_root=root / "results",
                         platform_options={"pvc": "tao-ws", "pvc_mount": str(root)})
    for name in ("train", "test"):
        (data / name).symlink_to(sample_data / name, target_is_directory=True)
    inside = {**overrides, "dataset.train_dataset_dir": str(data / "train"),
              "dataset.val_dataset_dir": str(data / "test")}
    document = k8s_job_is_valid(jobs.preview_job(SKILL, "train", inside, platform="kubernetes",
                                                 results_root=root / "results",
                                                 platform_options={"pvc": "tao-ws", "pvc_mount": str(root)}))
    pod = document["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "workspace", "persistentVolumeClaim": {"claimName": "tao-ws"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "workspace", "mountPath": str(root)}]
    assert "hostPath" not in json.dumps(document)


# ------------------------------------------------------------------------------------------ CLI and runner
def test_generate_embeds_the_options_and_the_runner_renders_them(overrides, tmp_path):
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(overrides))
    runner = tmp_path / "runner.py"
    done = CliRunner().invoke(main, ["generate", SKILL, "train", str(tmp_path / "o.yaml"), "--automl-policy", "off",
                                     "--platform", "slurm", "--platform-option", "gpus=0",
                                     "--platform-option", "partition=debug", "-o", str(runner)])
    assert done.exit_code == 0, done.output
    text = runner.read_text()
    assert "PLATFORM_OPTIONS = {'gpus': 0, 'partition': 'debug'}" in text
    assert "--platform-option gpus=0 --platform-option partition=debug" in text  # the regenerate line
    dry = subprocess.run([sys.executable, str(runner), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    submission = dry.stdout.split("# slurm submission:\n", 1)[1]
    assert "#SBATCH --partition=debug" in submission and "--gpus" not in submission


def test_an_unknown_option_is_exit_2_and_writes_nothing(overrides, tmp_path):
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(overrides))
    runner = tmp_path / "runner.py"
    done = CliRunner().invoke(main, ["generate", SKILL, "train", str(tmp_path / "o.yaml"), "--platform", "docker",
                                     "--platform-option", "partition=debug", "-o", str(runner)])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "Error: platform option 'partition' is not known for docker; allowed: cli, gpus, image, mounts, network"]
    assert not runner.exists()
    assert not Path(tmp_path / ".runner.py.tmp").exists()


def test_platforms_built_directly_check_their_options_too():
    from skillbank.runtime.sdk.platforms.docker import DockerPlatform
    from skillbank.runtime.sdk.platforms.slurm import SlurmPlatform

    with pytest.raises(PlatformOptionError, match="partition="):
        SlurmPlatform(partition="debug\n#SBATCH --uid=0")  # an #SBATCH line takes no quoting
    with pytest.raises(PlatformOptionError, match="cli="):
        DockerPlatform(cli="docker; rm -rf /tmp/x")  # the CLI's name is rendered unquoted
