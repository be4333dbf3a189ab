"""`skillbank mcp` started as a subprocess and driven by the official MCP client (``mcp.ClientSession``).

No mock in between: the server is the installed ``skillbank`` script, the client talks to it over stdio
(and streamable HTTP on loopback), tools launch real jobs through generated runners. The fake skill
(tests/fake_skill.py) gives fast jobs with epochs to report; the slow tests train the real model.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters, stdio_client

from skillbank.cli import main

SKILL = "tao-train-action-recognition"
SKILLBANK = Path(sys.executable).with_name("skillbank")
TOOLS = {"list_skills", "get_schema", "validate_overrides", "resolve_policy", "generate_runner", "run_job",
         "job_status", "job_logs", "cancel_job", "list_jobs", "automl_status", "sample_data"}
TINY = {  # the sample frames are 32x32; two torch threads; no loader workers (see tests/ar_cli.py)
    "model.input_width": 32, "model.input_height": 32, "dataset.augmentation_config.crop_smaller_edge": 32,
    "model.of_seq_length": 3, "dataset.workers": 0, "dataset.batch_size": 8,
}
CHECKPOINT = re.compile(r"/train/model_epoch_\d{3}_step_\d{5}\.pth$")


def server_env(**extra: str) -> dict[str, str]:
    """What the server needs beyond the SDK's safe default environment: this test's job store and results."""
    env = {name: os.environ[name] for name in ("SKILLBANK_STATE_DIR", "SKILLBANK_RESULTS_ROOT")}
    return {**env, "OMP_NUM_THREADS": "2", **extra}


@contextlib.asynccontextmanager
async def connected(tmp_path: Path, **env: str) -> AsyncIterator[ClientSession]:
    """An initialised client session with a fresh `skillbank mcp` over stdio (its stderr goes to a file)."""
    params = StdioServerParameters(command=str(SKILLBANK), args=["mcp"], env=server_env(**env), cwd=str(tmp_path))
    with open(tmp_path / "server-stderr.log", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, name: str, arguments: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A successful tool call's structured result (the SDK client checks it against the output schema)."""
    result = await session.call_tool(name, arguments, **kw)
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text) == result.structured_content  # text mirrors the structured result
    return result.structured_content


async def call_error(session: ClientSession, name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    result = await session.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text, result.structured_content


async def wait_complete(session: ClientSession, job_id: str, timeout: float = 400) -> dict[str, Any]:
    """Follow a job with job_status until it ends (the way an agent does)."""
    deadline = time.monotonic() + timeout
    while True:
        status = await call(session, "job_status", {"job_id": job_id})
        if status["status"] in ("Complete", "Error", "Canceled") or time.monotonic() > deadline:
            return status
        await anyio.sleep(0.5)


# -- tools, schemas, validation, policy ----------------------------------------------------------

def test_tools_are_listed_with_overrides_typed_from_the_packaged_schemas(tmp_path):
    async def main_() -> None:
        async with connected(tmp_path) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == TOOLS
            assert all(tool.output_schema and tool.description for tool in tools.values())
            assert tools["job_status"].annotations.read_only_hint is True
            assert tools["cancel_job"].annotations.destructive_hint is True
            branches = {(b["if"]["properties"]["skill"]["const"], b["if"]["properties"]["action"]["const"]):
                        b["then"]["properties"]["overrides"]
                        for b in tools["run_job"].input_schema["allOf"] if "skill" in b["if"]["properties"]}
            assert set(branches) == {(SKILL, action) for action in ("train", "evaluate", "inference", "export")}
            train = branches[(SKILL, "train")]["properties"]
            assert train["model.backbone"]["enum"][0] == "resnet_18"
            assert train["train.optim.lr"]["type"] == "number" and train["learning_rate"]["type"] == "number"
            assert train["train.num_epochs"]["minimum"] == 1 and train["train.num_epochs"]["default"] == 10
            assert "encryption_key" not in train and branches[(SKILL, "train")]["additionalProperties"] is False
            assert "train.num_epochs" not in branches[(SKILL, "inference")]["properties"]  # not read by inference
            platform_typed = [b for b in tools["run_job"].input_schema["allOf"] if "platform" in b["if"]["properties"]]
            slurm = next(b for b in platform_typed if b["if"]["properties"]["platform"]["const"] == "slurm")
            assert "partition" in slurm["then"]["properties"]["platform_options"]["properties"]
            assert tools["validate_overrides"].input_schema["allOf"]

    anyio.run(main_)


def test_validate_overrides_answers_like_the_cli_with_a_did_you_mean(tmp_path):
    overrides = {"dataset.train_dataset_dir": "/data/train", "dataset.val_dataset_dir": "/data/test",
                 "train.optim.lrr": 0.001, "model.backbone": "resnet_19"}

    async def main_() -> dict[str, Any]:
        async with connected(tmp_path) as session:
            good = await call(session, "validate_overrides",
                              {"skill": SKILL, "action": "train", "overrides": {**overrides, "train.optim.lrr": None,
                                                                                   "model.backbone": "resnet_18"}})
            assert good["valid"] is False  # the null typo is still an unknown key
            return await call(session, "validate_overrides", {"skill": SKILL, "action": "train",
                                                              "overrides": overrides})

    report = anyio.run(main_)
    assert report["valid"] is False
    problems = {p["key"]: p for p in report["problems"]}
    assert "did you mean 'train.optim.lr'" in problems["train.optim.lrr"]["message"]
    assert "did you mean 'resnet_18'" in problems["model.backbone"]["message"]
    assert "resnet_50" in problems["model.backbone"]["allowed"]
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(overrides))
    cli = CliRunner().invoke(main, ["validate", SKILL, "train", str(path), "--format", "json"])
    assert json.loads(cli.output) == report  # one path: the CLI's answer, word for word


def test_resolve_policy_no_hpo_and_bad_arguments(tmp_path):
    async def main_() -> None:
        async with connected(tmp_path) as session:
            off = await call(session, "resolve_policy", {"skill": SKILL, "request": "train it, no HPO"})
            assert (off["route"], off["automl_policy"], off["policy_source"]) == ("direct", "off", "request")
            assert off["matched"] == "no hpo" and "this run only" in off["reason"]
            on = await call(session, "resolve_policy", {"skill": SKILL, "action": "train"})
            assert on["route"] == "automl" and on["target"] == "tao-skill-bank:tao-run-automl"
            text, _ = await call_error(session, "resolve_policy", {"skill": SKILL, "automl_policy": "maybe"})
            assert text.startswith("resolve_policy: automl_policy: 'maybe' is not one of")
            text, _ = await call_error(session, "resolve_policy", {"skill": "no-such-skill"})
            assert "unknown skill 'no-such-skill'" in text and SKILL in text
            text, _ = await call_error(session, "get_schema", {"skill": SKILL, "action": "dance"})
            assert "unknown action 'dance'" in text
            text, _ = await call_error(session, "job_status", {"job_id": "no-such-job", "verbose": True})
            assert "verbose" in text and "was unexpected" in text
            text, _ = await call_error(session, "job_status", {"job_id": "no-such-job"})
            assert "no-such-job" in text
            text, data = await call_error(session, "run_job", {"skill": SKILL, "action": "train",
                                                               "overrides": {"train.optim.lr": "fast"}})
            assert "problem(s) in spec_overrides" in text
            assert {p["key"] for p in data["problems"]} >= {"train.optim.lr", "dataset.train_dataset_dir"}
            schema = await call(session, "get_schema", {"skill": SKILL, "action": "train"})
            assert any(row["key"] == "train.optim.lr" and row["automl_default"] for row in schema["parameters"])

    anyio.run(main_)
    assert not (Path(os.environ["SKILLBANK_STATE_DIR"]) / "runners").exists()  # nothing written for bad input


def test_the_automl_argument_allows_what_the_options_allow():
    """The advertised enums and bounds are AutoMLOptions' own checks: every edge value in, one step out refused."""
    from skillbank.mcp_server.tool_schemas import automl_budget
    from skillbank.runtime.automl.options import DIRECTIONS, AutoMLError, AutoMLOptions

    props = automl_budget()["properties"]
    assert props["direction"]["enum"] == list(DIRECTIONS)
    for direction in props["direction"]["enum"]:
        AutoMLOptions(direction=direction)
    poll = props["poll_interval"]
    AutoMLOptions(poll_interval=poll["maximum"])
    for refused in (poll["exclusiveMinimum"], poll["maximum"] + 0.001):
        with pytest.raises(AutoMLError, match="poll_interval"):
            AutoMLOptions(poll_interval=refused)
    counts = {name: prop["minimum"] for name, prop in props.items() if prop.get("type") == "integer"
              and "minimum" in prop}
    assert counts  # max_trials, min_epochs, reduction_factor ...
    for name, minimum in counts.items():
        AutoMLOptions(**{name: minimum})
        with pytest.raises(AutoMLError, match=name):
            AutoMLOptions(**{name: minimum - 1})


def test_the_sample_data_tool_takes_the_cli_frame_formats(tmp_path):
    from skillbank.cli.sample_data import sample_data as cli
    from skillbank.mcp_server.tools import TOOLS
    from skillbank.runtime.action_recognition.sample_data import FRAME_SUFFIXES

    tool = TOOLS["sample_data"]
    choices = next(param for param in cli.params if param.name == "frame_format").type.choices
    assert tool.arguments["frame_format"]["enum"] == list(choices) == list(FRAME_SUFFIXES)
    made = tool.answer({"outdir": str(tmp_path / "data"), "videos_per_class": 1, "frames": 2,
                        "frame_format": "jpeg"}, lambda *_: None)
    frames = list(Path(made["test"]).rglob("*.*"))
    assert frames and all(p.suffix == ".jpg" for p in frames)


# -- jobs ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_one_epoch_train_on_sample_data_then_job_status_until_complete(tmp_path):
    async def main_() -> tuple[dict, dict, dict]:
        async with connected(tmp_path) as session:
            data = await call(session, "sample_data", {"outdir": str(tmp_path / "data")})
            policy = await call(session, "resolve_policy", {"skill": SKILL, "request": "one epoch, no HPO"})
            assert policy["route"] == "direct"
            overrides = {"dataset.train_dataset_dir": data["train"], "dataset.val_dataset_dir": data["test"],
                         "dataset.label_map": data["label_map"], "num_epochs": 1, **TINY}
            launched = await call(session, "run_job", {"skill": SKILL, "action": "train", "overrides": overrides,
                                                       "request": "one epoch, no HPO"})
            status = await wait_complete(session, launched["job_id"])
            logs = await call(session, "job_logs", {"job_id": launched["job_id"], "tail": 5})
            listed = await call(session, "list_jobs", {"action": "train"})
            assert [job["id"] for job in listed["jobs"]] == [launched["job_id"]]
            return launched, status, logs

    launched, status, logs = anyio.run(main_)
    assert launched["route"] == "direct" and launched["status"] in ("Pending", "Running", "Complete")
    assert Path(launched["runner"]).is_file() and Path(launched["runner"]).parent.name == "runners"
    assert status["status"] == "Complete", json.dumps(status.get("failure"), indent=2)
    checkpoint = status["checkpoint"]
    assert CHECKPOINT.search(checkpoint) and Path(checkpoint).is_file()
    assert checkpoint in status["checkpoints"] and checkpoint.startswith(status["results_dir"])
    assert status["progress"]["kpi"]["val_acc"] >= 0
    assert logs["job_id"] == launched["job_id"] and logs["logs"]


def test_wait_follows_the_job_with_progress_notifications(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async def main_() -> dict[str, Any]:
        async with connected(tmp_path) as session:
            overrides = {"dataset.train_dir": str(data), "num_epochs": 3, "train.sleep": 0.4}
            return await call(session, "run_job", {"skill": str(fake_skill), "action": "train", "overrides": overrides,
                                                   "wait": True}, progress_callback=progress)

    done = anyio.run(main_)
    assert done["status"] == "Complete" and done["id"] == done["job_id"]
    assert done["checkpoint"].endswith("/train/model_epoch_002_step_00030.pth")
    values = [value for value, _, _ in seen]
    assert values == sorted(set(values)) and values[-1] >= 3  # MCP: progress only ever grows
    assert any(message and "epoch" in message for _, _, message in seen)


def test_secrets_come_from_the_server_environment_and_never_come_back(fake_skill, tmp_path):
    key = "mcp-server-Key-0042-never-shown"
    data = tmp_path / "data"
    data.mkdir()

    async def main_() -> tuple[str, list[dict[str, Any]]]:
        async with connected(tmp_path, SKILLBANK_ENCRYPTION_KEY=key) as session:
            refused, _ = await call_error(session, "run_job", {
                "skill": str(fake_skill), "action": "train",
                "overrides": {"dataset.train_dir": str(data), "encryption_key": "pasted-Secret-9"}})
            results = [await call(session, "run_job", {
                "skill": str(fake_skill), "action": "train", "wait": True,
                "overrides": {"dataset.train_dir": str(data), "num_epochs": 1}})]
            job_id = results[0]["job_id"]
            results.append(await call(session, "job_status", {"job_id": job_id}))
            results.append(await call(session, "job_logs", {"job_id": job_id}))
            results.append(await call(session, "generate_runner", {
                "skill": str(fake_skill), "action": "train", "overrides": {"dataset.train_dir": str(data)}}))
            return refused, results

    refused, results = anyio.run(main_)
    assert "encryption_key" in refused and "pasted-Secret-9" not in refused and "SKILLBANK_ENCRYPTION_KEY" in refused
    status = results[1]
    assert status["status"] == "Complete" and status["spec"]["encryption_key"] == ""
    seen_by_job = json.loads((Path(status["results_dir"]) / "train" / "env.json").read_text())
    assert seen_by_job["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()  # the server's key reached it
    everything = json.dumps(results) + (tmp_path / "server-stderr.log").read_text()
    assert key not in everything and key not in Path(results[3]["runner"]).read_text()


def test_dry_run_and_generate_runner_launch_nothing(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    overrides = {"dataset.train_dir": str(data), "num_epochs": 2}

    async def main_() -> tuple[dict, dict, dict]:
        async with connected(tmp_path) as session:
            dry = await call(session, "run_job", {"skill": str(fake_skill), "action": "train", "overrides": overrides,
                                                  "dry_run": True})
            out = tmp_path / "runner.py"
            generated = await call(session, "generate_runner", {"skill": str(fake_skill), "action": "train",
                                                                "overrides": overrides, "output": str(out)})
            jobs = await call(session, "list_jobs", {})
            return dry, generated, jobs

    dry, generated, jobs = anyio.run(main_)
    assert dry["dry_run"] is True and "fake_model.py train -e" in dry["submission"]
    assert dry["spec"]["train"]["num_epochs"] == 2 and jobs == {"jobs": []}
    assert generated["runner"] == str(tmp_path / "runner.py") and generated["route"] == "direct"
    assert (tmp_path / "runner.py").read_text() == generated["text"]
    argv = [str(SKILLBANK), "generate", str(fake_skill), "train", "-", "-o", str(tmp_path / "same.py")]
    cli = subprocess.run(argv, input=json.dumps(overrides), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "same.py").read_text().replace("same.py", "runner.py") == generated["text"]  # one generator


def test_platform_options_reach_the_submission(fake_skill, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    launch = {"skill": str(fake_skill), "action": "train", "overrides": {"dataset.train_dir": str(data)},
              "platform": "slurm", "dry_run": True}

    async def main_() -> tuple[dict, str]:
        async with connected(tmp_path) as session:
            dry = await call(session, "run_job", {**launch, "platform_options": {"partition": "debug", "time": "30"}})
            text, _ = await call_error(session, "run_job", {**launch, "platform_options": {"partitoin": "debug"}})
            return dry, text

    dry, text = anyio.run(main_)
    assert "#SBATCH --partition=debug" in dry["submission"] and "#SBATCH --time=30" in dry["submission"]
    assert "'partitoin'" in text and "did you mean 'partition'" in text


@pytest.mark.slow
def test_automl_run_reports_trials_as_progress(tmp_path, sample_data):
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    workspace = tmp_path / "automl"
    overrides = {"dataset.train_dataset_dir": str(sample_data / "train"),
                 "dataset.val_dataset_dir": str(sample_data / "test"),
                 "dataset.label_map": {"catch": 0, "smile": 1}, **TINY}
    # the objective is an engine option like the budget (val_acc: no evaluate job per trial, faster)
    budget = {"algorithm": "random", "max_trials": 1, "max_epochs": 1, "workspace": str(workspace), "metric": "val_acc"}

    async def main_() -> tuple[dict, dict]:
        async with connected(tmp_path) as session:
            done = await call(session, "run_job", {"skill": SKILL, "action": "train", "overrides": overrides,
                                                   "automl": budget, "wait": True, "timeout": 400},
                              progress_callback=progress)
            return done, await call(session, "automl_status", {"workspace": str(workspace)})

    done, status = anyio.run(main_)
    assert done["route"] == "automl" and done["automl"]["state"] == "finished", json.dumps(done, indent=2)
    assert status["finished"] == status["max_trials"] == 1 and status["algorithm"] == "random"
    best = done["automl"]["best"]
    assert best and CHECKPOINT.search(best["checkpoint"]) and Path(best["checkpoint"]).is_file()
    assert seen and seen[-1][:2] == (1, 1) and all(total == 1 for _, total, _ in seen)
    assert any(message and message.startswith("trial 1/1") for _, _, message in seen)


# -- resources, transports, start-up cost --------------------------------------------------------

def test_skill_files_are_resources(tmp_path):
    async def main_() -> None:
        async with connected(tmp_path) as session:
            uris = {str(r.uri): r for r in (await session.list_resources()).resources}
            skill_dir = Path(__file__).resolve().parent.parent / "skills" / "models" / SKILL
            for relative in ("SKILL.md", "schemas/train.schema.json", "schemas/manifest.json",
                             "references/spec_template_evaluate.yaml"):
                assert f"skill://{SKILL}/{relative}" in uris
            assert "skill://tao-run-automl/SKILL.md" in uris
            assert f"skill://{SKILL}/references/skill_info.yaml" not in uris
            assert uris[f"skill://{SKILL}/SKILL.md"].mime_type == "text/markdown"
            read = await session.read_resource(f"skill://{SKILL}/schemas/train.schema.json")
            assert read.contents[0].text == (skill_dir / "schemas" / "train.schema.json").read_text()
            with pytest.raises(Exception, match="unknown resource"):
                await session.read_resource(f"skill://{SKILL}/../../../pyproject.toml")

    anyio.run(main_)


def test_streamable_http_on_loopback(tmp_path):
    from mcp.client.streamable_http import streamable_http_client

    errlog = open(tmp_path / "http-stderr.log", "w+")  # noqa: SIM115 - read below while the server runs
    server = subprocess.Popen([str(SKILLBANK), "mcp", "--http", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=errlog, env={**os.environ, **server_env()})
    try:
        deadline, url = time.monotonic() + 60, None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            found = re.search(r"streamable HTTP on (http://127\.0\.0\.1:\d+/mcp)", Path(errlog.name).read_text())
            url = found.group(1) if found else time.sleep(0.1)
        assert url, Path(errlog.name).read_text()

        async def main_() -> None:
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
                off = await call(session, "resolve_policy", {"skill": SKILL, "request": "plain training"})
                assert off["automl_policy"] == "off"

        anyio.run(main_)
    finally:
        server.terminate()
        server.wait(timeout=30)
        errlog.close()


@pytest.mark.parametrize("address", ["0.0.0.0:8765", "10.1.2.3:80", "127.0.0.1", "localhost:99999"])
def test_http_refuses_anything_but_a_loopback_address(address):
    result = CliRunner().invoke(main, ["mcp", "--http", address])
    assert result.exit_code == 2 and "--http" in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1


def test_only_skillbank_mcp_imports_the_sdk(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"dataset.train_dataset_dir": "/d", "dataset.val_dataset_dir": "/v"}))
    code = (
        "import sys\nfrom skillbank.cli import main\n"
        f"for argv in (['--help'], ['mcp', '--help'], ['validate', {SKILL!r}, 'train', {str(path)!r}]):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('LOADED', [m for m in ('mcp', 'uvicorn', 'starlette', 'anyio') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out
