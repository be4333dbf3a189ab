"""``action_recognition train``: every model_type x input_type pair, checkpoints, TAO's status.json, resume."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

from ar_cli import TINY, data_paths, run_cli, template  # noqa: E402

from skillbank.runtime.sdk.status_file import read_status_events  # noqa: E402

pytestmark = pytest.mark.usefixtures("few_torch_threads")

# Each pair also exercises other settings, so every enum value of the train section runs somewhere.
PAIRS = {
    ("rgb", "2d"): ["train.optim.lr_scheduler=MultiStep", "train.optim.lr_steps=[1]"],
    ("of", "2d"): ["train.checkpoint_interval_unit=step", "train.checkpoint_interval=1",
                   "model.sample_strategy=consecutive", "model.sample_rate=2"],
    ("joint", "2d"): ["train.clip_grad_norm=1.0", "train.seed=-1", "model.backbone=resnet_34"],
    ("rgb", "3d"): ["train.optim.lr_scheduler=AutoReduce", "train.optim.lr_monitor=val_loss",
                    "train.optim.patience=0", "dataset.augmentation_config.train_crop_type=multi_scale_crop",
                    "dataset.augmentation_config.scales=[1.0, 0.875]"],
    ("of", "3d"): ["model.backbone=i3d", "dataset.augmentation_config.train_crop_type=no_crop"],
    ("joint", "3d"): ["model.backbone=i3d", "train.optim.lr_scheduler=AutoReduce", "train.optim.lr_monitor=train_loss",
                      "train.validation_interval=2", "train.num_epochs=2"],  # TAO: validation_interval <= num_epochs
}
DURATION = re.compile(r"^\d+:\d{2}:\d{2}(\.\d{6})?$")  # str(timedelta), as TAO writes time_per_epoch and eta


def check_tao_train_lines(events: list[dict], num_epochs: int, steps_per_epoch: int, validated: set[int]) -> None:
    """status.json holds TAO's training lines, in TAO's order, with TAO's fields (parity README section 5)."""
    expected = ["Starting Action Recognition train.", "Starting Training Loop."]
    for epoch in range(num_epochs):
        expected += (["Eval metrics generated."] if epoch in validated else []) + [
            "Training loop in progress", "Train metrics generated."]
    expected += ["Training loop complete.", "Train finished successfully."]
    assert [e["message"] for e in events] == expected
    assert [e["status"] for e in events[:2]] == ["STARTED", "STARTED"]
    assert all(e["status"] == "RUNNING" for e in events[2:])
    for e in events:
        assert re.fullmatch(r"[1-9]\d?/[1-9]\d?/\d{4}", e["date"])  # M/D/YYYY and H:M:S, not zero padded
        assert re.fullmatch(r"\d{1,2}:\d{1,2}:\d{1,2}", e["time"])
        assert e["verbosity"] == "INFO"
    loops = [e for e in events if e["message"] == "Training loop in progress"]
    assert [e["epoch"] for e in loops] == list(range(num_epochs))
    assert [e["step"] for e in loops] == [steps_per_epoch * (i + 1) for i in range(num_epochs)]
    for e in loops:
        assert e["max_epoch"] == num_epochs - 1 and e["max_step"] == num_epochs * steps_per_epoch
        assert all(DURATION.match(e[k]) for k in ("time_per_epoch", "time_per_step", "eta"))
    assert loops[-1]["eta"] == "0:00:00"
    previous = None
    for i, e in enumerate(events):
        if e["message"] == "Eval metrics generated.":
            assert set(e["kpi"]) == {"val_loss", "val_acc"} and 0 <= e["kpi"]["val_acc"] <= 1
        elif e["message"] == "Train metrics generated.":
            assert set(e["kpi"]) == {"train_loss", "train_acc"} and e["kpi"]["train_loss"] > 0
            assert 0 <= e["kpi"]["train_acc"] <= 1
        elif previous is not None:  # every other line repeats the last kpi
            assert e.get("kpi") == previous, (i, e)
        previous = e.get("kpi", previous)
    for e in loops:  # the loop line of a validated epoch carries that epoch's val kpi
        assert ("val_acc" in e.get("kpi", {})) == (e["epoch"] in validated)


@pytest.mark.slow
@pytest.mark.parametrize("model_type,input_type", list(PAIRS), ids=lambda v: str(v))
def test_every_pair_trains_one_epoch_and_exports_with_parity(sample_data, tmp_path, model_type, input_type, capsys):
    out = tmp_path / "r"
    extra = PAIRS[(model_type, input_type)]
    epochs = 2 if "train.num_epochs=2" in extra else 1
    rc = run_cli("train", f"results_dir={out}", *data_paths(sample_data), *TINY, "train.num_epochs=1",
                 f"model.model_type={model_type}", f"model.input_type={input_type}", *extra)
    log = capsys.readouterr().out
    assert rc == 0, log
    train = out / "train"
    names = sorted(p.name for p in train.glob("model_epoch_*.pth"))
    if "train.checkpoint_interval_unit=step" in extra:
        assert names == ["model_epoch_000_step_00001.pth", "model_epoch_000_step_00002.pth"]
    else:
        assert names == [f"model_epoch_{e:03d}_step_{2 * (e + 1):05d}.pth" for e in range(epochs)]
    latest = train / "ar_model_latest.pth"
    assert latest.is_symlink() and os.readlink(latest) == names[-1]

    validated = {1} if "train.validation_interval=2" in extra else set(range(epochs))
    events = read_status_events(train)
    check_tao_train_lines(events, epochs, 2, validated)
    assert events[-1]["checkpoint"] == str(train / names[-1]) and "best_checkpoint" not in events[-1]
    assert f"Epoch {epochs}/{epochs}: train_loss=" in log  # the per-epoch log line
    saved = yaml.safe_load((train / "experiment.yaml").read_text())  # TAO's experiment.yaml: the resolved spec
    assert saved["results_dir"] == saved["train"]["results_dir"] == str(train)
    assert saved["model"]["model_type"] == model_type and {"evaluate", "inference", "export"} <= set(saved)

    onnx_file = tmp_path / "model.onnx"
    batch = "-1" if input_type == "2d" else "2"
    rc = run_cli("export", f"results_dir={out}", f"export.checkpoint={train / names[-1]}",
                 f"export.onnx_file={onnx_file}", f"export.batch_size={batch}", *TINY,
                 f"model.model_type={model_type}", f"model.input_type={input_type}",
                 *[e for e in extra if e.startswith("model.")])
    log = capsys.readouterr().out
    assert rc == 0, log
    assert "ONNX check passed" in log
    import onnx

    graph = onnx.load(str(onnx_file)).graph
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    expected = {"rgb": ["input_rgb"], "of": ["input_of"], "joint": ["input_rgb", "input_of"]}[model_type]
    assert list(inputs) == expected
    assert all(dims[0] == "batch" for dims in inputs.values())  # TAO: a dynamic batch axis whatever batch_size
    if input_type == "2d" and model_type == "rgb":
        assert inputs["input_rgb"][1:] == [9, 32, 32]
    if input_type == "3d" and model_type == "joint":
        assert inputs["input_of"][1:] == [2, 3, 32, 32]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_resume_continues_with_the_same_counters_and_optimizer_state(sample_data, tmp_path, capsys):
    common = [*data_paths(sample_data), *TINY, "train.num_epochs=2", "train.optim.lr=0.01",
              "train.optim.lr_steps=[1]", "wandb.enable=false"]
    assert run_cli("train", f"results_dir={tmp_path / 'a'}", *common) == 0
    first = tmp_path / "a" / "train" / "model_epoch_000_step_00002.pth"
    assert run_cli("train", f"results_dir={tmp_path / 'b'}", f"train.resume_training_checkpoint_path={first}",
                   *common) == 0
    capsys.readouterr()
    straight = _load(tmp_path / "a" / "train" / "model_epoch_001_step_00004.pth")
    resumed = _load(tmp_path / "b" / "train" / "model_epoch_001_step_00004.pth")
    assert sorted(p.name for p in (tmp_path / "b" / "train").glob("model_*.pth")) == [
        "model_epoch_001_step_00004.pth"]
    assert (resumed["epoch"], resumed["global_step"]) == (straight["epoch"], straight["global_step"]) == (1, 4)
    # the learning rate decayed at the same epoch (lr_steps=[1]) in both runs
    assert resumed["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.001)
    assert resumed["lr_schedulers"] == straight["lr_schedulers"]
    assert resumed["optimizer_states"][0]["param_groups"] == straight["optimizer_states"][0]["param_groups"]
    for key, value in straight["state_dict"].items():  # same data order and RNG: bit-identical on the CPU
        assert torch.equal(resumed["state_dict"][key], value), key
    for index, state in straight["optimizer_states"][0]["state"].items():
        assert torch.equal(resumed["optimizer_states"][0]["state"][index]["momentum_buffer"],
                           state["momentum_buffer"])
    events = read_status_events(tmp_path / "b" / "train")
    assert f"Resuming training from checkpoint: {first}" in [e["message"] for e in events]
    assert [e["epoch"] for e in events if e["message"] == "Training loop in progress"] == [1]


@pytest.mark.slow
def test_a_rerun_on_the_same_results_dir_continues_where_it_stopped(sample_data, tmp_path, capsys):
    """TAO's auto-resume: the same command with a larger num_epochs continues from ar_model_latest.pth."""
    common = [*data_paths(sample_data), *TINY, "train.optim.lr=0.01", "train.optim.lr_steps=[1]", "wandb.enable=false"]
    assert run_cli("train", f"results_dir={tmp_path / 'straight'}", *common, "train.num_epochs=2") == 0
    out = tmp_path / "rerun"
    assert run_cli("train", f"results_dir={out}", *common, "train.num_epochs=1") == 0
    assert run_cli("train", f"results_dir={out}", *common, "train.num_epochs=2") == 0
    capsys.readouterr()
    train = out / "train"
    straight = _load(tmp_path / "straight" / "train" / "model_epoch_001_step_00004.pth")
    resumed = _load(train / "model_epoch_001_step_00004.pth")
    assert (resumed["epoch"], resumed["global_step"]) == (straight["epoch"], straight["global_step"]) == (1, 4)
    assert resumed["optimizer_states"][0]["param_groups"] == straight["optimizer_states"][0]["param_groups"]
    assert resumed["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.001)  # decayed at epoch 1
    for index, state in straight["optimizer_states"][0]["state"].items():
        assert torch.equal(resumed["optimizer_states"][0]["state"][index]["momentum_buffer"],
                           state["momentum_buffer"])
    for key, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    events = read_status_events(train)  # appended: both runs' lines, epochs and steps continue
    messages = [e["message"] for e in events]
    assert messages.count("Starting Action Recognition train.") == 2
    assert messages.count("Train finished successfully.") == 2
    assert f"Resuming training from checkpoint: {train / 'model_epoch_000_step_00002.pth'}" in messages
    loops = [(e["epoch"], e["step"], e["max_epoch"]) for e in events if e["message"] == "Training loop in progress"]
    assert loops == [(0, 2, 0), (1, 4, 1)]

    # Once num_epochs is reached, the same command ends at once, successfully, and says so.
    files = {p.name: p.stat().st_mtime_ns for p in train.glob("*.pth")}
    assert run_cli("train", f"results_dir={out}", *common, "train.num_epochs=2") == 0
    assert "Training already reached train.num_epochs=2" in capsys.readouterr().out
    events = read_status_events(train)
    assert events[-3]["message"] == f"Resuming training from checkpoint: {train / 'model_epoch_001_step_00004.pth'}"
    assert events[-2]["message"].startswith("Training already reached train.num_epochs=2 (2 epochs done in ")
    assert events[-1]["message"] == "Train finished successfully." and events[-1]["status"] == "RUNNING"
    assert {p.name: p.stat().st_mtime_ns for p in train.glob("*.pth")} == files




@pytest.mark.slow
def test_a_killed_run_finishes_when_the_same_command_runs_again(sample_data, tmp_path):
    """SIGKILL mid-run, then the same command: it resumes from the newest checkpoint (at most one interval lost)."""
    out = tmp_path / "r"
    train = out / "train"
    command = [sys.executable, "-m", "skillbank.runtime.action_recognition.entrypoint", "train",
               "-e", str(template("train")), f"results_dir={out}", *data_paths(sample_data), *TINY,
               "train.num_epochs=12", "wandb.enable=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    seen, deadline = -1, time.monotonic() + 240
    try:
        while process.poll() is None and time.monotonic() < deadline:
            loops = [e["epoch"] for e in read_status_events(train) if e.get("message") == "Training loop in progress"]
            if loops and loops[-1] >= 2:
                seen = loops[-1]
                break
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert seen >= 2, "the run ended before it could be killed"
    assert process.returncode == -signal.SIGKILL
    for path in train.glob("model_epoch_*.pth"):  # every checkpoint on disk is complete
        assert set(_load(path)) >= {"state_dict", "optimizer_states", "loops"}, path

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    events = read_status_events(train)
    resumed = [e["message"] for e in events if e["message"].startswith("Resuming training from checkpoint: ")]
    assert len(resumed) == 1
    epoch = int(re.search(r"model_epoch_(\d+)_step_", resumed[0]).group(1))
    assert epoch >= seen - 1  # checkpoint_interval is 1 epoch: at most one interval lost
    after = events[[e["message"] for e in events].index(resumed[0]):]
    assert [e["epoch"] for e in after if e["message"] == "Training loop in progress"] == list(range(epoch + 1, 12))
    assert after[-1]["message"] == "Train finished successfully."
    assert os.readlink(train / "ar_model_latest.pth") == "model_epoch_011_step_00024.pth"
    assert not list(train.glob(".*.tmp"))


@pytest.mark.slow
def test_best_checkpoints_are_kept_ranked_and_reported(sample_data, tmp_path, capsys):
    """train.checkpointer: top-k best files, replace_periodic, dirpath/filename/monitor/mode, best_checkpoint."""
    common = [*data_paths(sample_data), *TINY, "train.optim.lr=0.01", "wandb.enable=false"]
    out = tmp_path / "a"
    rc = run_cli("train", f"results_dir={out}", *common, "train.num_epochs=4", "train.checkpointer.enable_topk=true",
                 "train.checkpointer.replace_periodic=true", "train.checkpointer.save_top_k=2")
    assert rc == 0, capsys.readouterr().out
    train = out / "train"
    events = read_status_events(train)
    val_acc = [e["kpi"]["val_acc"] for e in events if e["message"] == "Eval metrics generated."]
    top = sorted(range(4), key=lambda epoch: -val_acc[epoch])[:2]  # stable: the older of equal scores first
    assert sorted(p.name for p in train.glob("*.pth")) == sorted(
        ["ar_model_latest.pth", "model_epoch_003_step_00008.pth", *(f"model_best_{e:03d}.pth" for e in top)])
    assert os.readlink(train / "ar_model_latest.pth") == "model_epoch_003_step_00008.pth"
    assert events[-1]["best_checkpoint"] == f"model_best_{top[0]:03d}.pth"
    assert events[-1]["checkpoint"] == str(train / "model_epoch_003_step_00008.pth")
    best = _load(train / events[-1]["best_checkpoint"])
    assert best["epoch"] == top[0] and "optimizer_states" in best  # a full checkpoint of that epoch

    # monitor val_loss (mode: min, unset), a folder outside the results, a pattern with metric names
    out = tmp_path / "b"
    rc = run_cli("train", f"results_dir={out}", *common, "train.num_epochs=3", "train.checkpointer.enable_topk=true",
                 "train.checkpointer.monitor=val_loss", f"train.checkpointer.dirpath={tmp_path / 'best'}",
                 "train.checkpointer.filename=ar_{epoch}_{val_loss:.3f}",
                 "train.checkpointer.auto_insert_metric_name=true")
    assert rc == 0, capsys.readouterr().out
    events = read_status_events(out / "train")
    val_loss = [e["kpi"]["val_loss"] for e in events if e["message"] == "Eval metrics generated."]
    epoch = min(range(3), key=lambda e: val_loss[e])
    name = f"ar_epoch={epoch}_val_loss={val_loss[epoch]:.3f}.pth"
    assert [p.name for p in (tmp_path / "best").iterdir()] == [name]
    assert events[-1]["best_checkpoint"] == str(tmp_path / "best" / name)  # outside: an absolute path
    assert len(list((out / "train").glob("model_epoch_*.pth"))) == 3  # no replace_periodic: all periodic kept


@pytest.mark.slow
def test_the_train_template_runs_with_paths_and_tiny_sizes_only(sample_data, tmp_path, capsys):
    # Only what the template leaves empty (data paths, results_dir), plus the size of the frames and one
    # epoch to keep the test fast. workers stays at the template's 8 (clamped to the CPUs here).
    rc = run_cli("train", f"results_dir={tmp_path}", f"dataset.train_dataset_dir={sample_data / 'train'}",
                 f"dataset.val_dataset_dir={sample_data / 'test'}", "model.input_width=32",
                 "model.input_height=32", "dataset.augmentation_config.crop_smaller_edge=32", "train.num_epochs=1",
                 spec=template("train"))
    log = capsys.readouterr().out
    assert rc == 0, log
    assert "falls back" in log or "logging locally" in log  # wandb.enable: true without wandb
    assert (tmp_path / "train" / "model_epoch_000_step_00008.pth").is_file()


def test_tao_assertions_and_bad_checkpointer_settings_exit_2_naming_the_keys(tmp_path, capsys):
    rc = run_cli("train", f"results_dir={tmp_path}", "train.num_epochs=2", "train.validation_interval=3",
                 "train.checkpoint_interval=5")
    assert rc == 2
    log = capsys.readouterr().out
    last = read_status_events(tmp_path / "train")[-1]
    assert last["status"] == "FAILURE" and last["message"].startswith("Configuration error: ")
    for text in ("train.validation_interval=3 is above train.num_epochs=2",
                 "train.checkpoint_interval=5 is above train.num_epochs=2"):
        assert text in log and text in last["message"]
    # a step interval may exceed the epochs
    assert run_cli("train", f"results_dir={tmp_path}", "train.num_epochs=2", "train.checkpoint_interval=5",
                   "train.checkpoint_interval_unit=step", "train.checkpointer.enable_topk=true",
                   "train.checkpointer.monitor=accuracy") == 2
    assert "train.checkpointer.monitor='accuracy': not a metric this model logs; allowed: val_loss, val_acc" \
        in capsys.readouterr().out
    assert run_cli("train", f"results_dir={tmp_path}", "train.resume_training_checkpoint_path=/x/model.ckpt") == 2
    assert "train.resume_training_checkpoint_path='/x/model.ckpt': a resume checkpoint must be a .pth or .tlt file" \
        in capsys.readouterr().out
    assert run_cli("train", f"results_dir={tmp_path}", "train.checkpointer.enable_topk=true",
                   "train.checkpointer.filename=best_{acc}") == 2
    assert "train.checkpointer.filename='best_{acc}': unknown field(s) acc" in capsys.readouterr().out


def test_bad_spec_exits_2_naming_the_key(tmp_path, capsys):
    assert run_cli("train", f"results_dir={tmp_path}", "train.num_epoch=3") == 2
    assert "train.num_epoch: unknown spec key (did you mean train.num_epochs?)" in capsys.readouterr().out
    assert run_cli("train", f"results_dir={tmp_path}", "train.num_epochs=many", "model.backbone=vgg") == 2
    out = capsys.readouterr().out
    assert "train.num_epochs: expected an integer" in out and "model.backbone: 'vgg' is not allowed" in out


@pytest.mark.slow
def test_i3d_with_2d_input_exits_2_with_a_failure_line(sample_data, tmp_path, capsys):
    rc = run_cli("train", f"results_dir={tmp_path}", *data_paths(sample_data), *TINY, "model.backbone=i3d")
    assert rc == 2
    assert "set model.input_type=3d" in capsys.readouterr().out
    assert read_status_events(tmp_path / "train")[-1]["status"] == "FAILURE"


@pytest.mark.slow
def test_missing_training_data_exits_1_with_a_failure_line(tmp_path, capsys):
    rc = run_cli("train", f"results_dir={tmp_path}", f"dataset.train_dataset_dir={tmp_path / 'nope'}",
                 "dataset.label_map={a: 0, b: 1}", *TINY)
    assert rc == 1
    assert str(tmp_path / "nope") in capsys.readouterr().out
    last = read_status_events(tmp_path / "train")[-1]
    assert last["status"] == "FAILURE" and str(tmp_path / "nope") in last["message"]


def test_help_is_fast_and_imports_no_torch():
    code = ("import sys; from skillbank.runtime.action_recognition import entrypoint as e; "
            "e.build_parser().format_help(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    text = subprocess.run([sys.executable, "-m", "skillbank.runtime.action_recognition.entrypoint", "train",
                           "--help"], check=True, capture_output=True, text=True).stdout
    assert "-e SPEC.yaml" in text and "dotted.key=value" in text


def test_overrides_are_typed_checked_and_converted():
    from skillbank.runtime.action_recognition.spec_io import SpecError, load_config

    cfg = load_config(template("train"), ["train.optim.lr=1e-3", "train.optim.lr_steps=[3, 6]",
                                          "dataset.label_map={a: 0, b: 1}", "results_dir=/tmp/x"], "train")
    assert cfg.train.optim.lr == 0.001 and cfg.train.optim.lr_steps == [3, 6]
    assert cfg.dataset.label_map == {"a": 0, "b": 1} and cfg.results_dir == "/tmp/x"
    with pytest.raises(SpecError) as caught:
        load_config(template("train"), ["train.optim.lr=-1", "train.cudnn=3", "model.input_type=4d",
                                        "train.gpu_ids=[a]"], "train")
    text = str(caught.value)
    for key in ("train.optim.lr: -1.0 is below the minimum 0.0", "train.cudnn: is a section",
                "model.input_type: '4d' is not allowed; allowed: 2d, 3d", "train.gpu_ids: item 0"):
        assert key in text
    with pytest.raises(SpecError, match=r"evaluate.checkpoint: required"):
        load_config(template("evaluate"), ["evaluate.test_dataset_dir=/d"], "evaluate")


def test_gpu_settings_map_to_lightning_devices(monkeypatch, caplog):
    from skillbank.runtime.action_recognition.devices import trainer_devices
    from skillbank.runtime.config.loading import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trainer_devices(4, [0, 1, 2, 3], 2) == {"accelerator": "cpu", "devices": 4, "num_nodes": 2,
                                                   "strategy": "ddp"}  # the same layout, on the CPU
    assert trainer_devices(1, [0], 1) == {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto"}
    assert sum("No GPU is available" in r.getMessage() for r in caplog.records) == 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert trainer_devices(1, [2], 1) == {"accelerator": "gpu", "devices": [2], "num_nodes": 1, "strategy": "auto"}
    assert trainer_devices(2, [0], 1)["devices"] == [0, 1]  # template default ids with more GPUs
    assert trainer_devices(2, [1, 3], 2) == {"accelerator": "gpu", "devices": [1, 3], "num_nodes": 2,
                                             "strategy": "ddp"}
    with pytest.raises(ConfigError, match=r"train.gpu_ids=\[1, 2\] has 2 entries but train.num_gpus=3"):
        trainer_devices(3, [1, 2], 1)
    with pytest.raises(ConfigError, match="this machine has 4 GPU"):
        trainer_devices(1, [7], 1)
