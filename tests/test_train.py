"""``action_recognition train``: every model_type x input_type pair, checkpoints, status.json, exact resume."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ar_cli import TINY, data_paths, few_torch_threads, run_cli, status_lines, template  # noqa: E402, F401

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
                      "train.validation_interval=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("model_type,input_type", list(PAIRS), ids=lambda v: str(v))
def test_every_pair_trains_one_epoch_and_exports_with_parity(sample_data, tmp_path, model_type, input_type, capsys):
    out = tmp_path / "r"
    extra = PAIRS[(model_type, input_type)]
    rc = run_cli("train", f"results_dir={out}", *data_paths(sample_data), *TINY, "train.num_epochs=1",
                 f"model.model_type={model_type}", f"model.input_type={input_type}", *extra)
    log = capsys.readouterr().out
    assert rc == 0, log
    train = out / "train"
    names = sorted(p.name for p in train.glob("model_epoch_*.pth"))
    if "train.checkpoint_interval_unit=step" in extra:
        assert names == ["model_epoch_000_step_00001.pth", "model_epoch_000_step_00002.pth"]
    else:
        assert names == ["model_epoch_000_step_00002.pth"]
    latest = train / "ar_model_latest.pth"
    assert latest.is_symlink() and os.readlink(latest) == names[-1]

    events = status_lines(train)
    assert [e["status"] for e in events] == ["STARTED", "RUNNING", "SUCCESS"]
    running = events[1]
    assert running["epoch"] == 0 and running["max_epoch"] == 1
    assert set(running["kpi"]) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert running["kpi"]["train_loss"] > 0 and 0 <= running["kpi"]["train_acc"] <= 1
    validated = "train.validation_interval=2" not in extra
    assert (running["kpi"]["val_acc"] is not None) == validated
    assert running["time_per_epoch"] and running["eta"] == "0:00:00"
    assert "Epoch 1/1: train_loss=" in log  # the per-epoch log line

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
    assert all(dims[0] == ("batch" if batch == "-1" else 2) for dims in inputs.values())
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
    epochs = [e["epoch"] for e in status_lines(tmp_path / "b" / "train") if e["status"] == "RUNNING"]
    assert epochs == [1]


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
    assert status_lines(tmp_path / "train")[-1]["status"] == "FAILURE"


@pytest.mark.slow
def test_missing_training_data_exits_1_with_a_failure_line(tmp_path, capsys):
    rc = run_cli("train", f"results_dir={tmp_path}", f"dataset.train_dataset_dir={tmp_path / 'nope'}",
                 "dataset.label_map={a: 0, b: 1}", *TINY)
    assert rc == 1
    assert str(tmp_path / "nope") in capsys.readouterr().out
    last = status_lines(tmp_path / "train")[-1]
    assert last["status"] == "FAILURE" and str(tmp_path / "nope") in last["message"]


def test_help_is_fast_and_imports_no_torch():
    import subprocess
    import sys

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
    assert trainer_devices(4, [0, 1, 2, 3], 2) == {"accelerator": "cpu", "devices": 1, "num_nodes": 1,
                                                   "strategy": "auto"}
    assert sum("No GPU is available" in r.getMessage() for r in caplog.records) == 1
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
