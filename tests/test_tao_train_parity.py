"""What TAO users observe, done as TAO does (tests/fixtures/tao, parity README sections 3 and 5).

status.json lines (format, kpi repetition, messages of the action wrapper), experiment.yaml, the
auto-resume lookup, TAO's interval assertions, specs written by tao-core (null = unset,
``train.checkpointer``), best-checkpoint names, and the readers of train status.json (AutoML, the SDK's
progress view, the CLI). The end-to-end training runs are in test_train.py and test_job_chain.py.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from skillbank.runtime.action_recognition import action_errors
from skillbank.runtime.action_recognition.spec_io import SpecError, experiment_spec, load_config
from skillbank.runtime.action_recognition.status_log import StatusWriter, tao_date_time
from skillbank.runtime.config.loading import ConfigError, to_dict
from skillbank.runtime.sdk.status_file import read_status_events

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "tao" / "reference"


def _cfg(tmp_path: Path, *overrides: str, action: str = "train"):
    return load_config(REFERENCE / f"spec_template_{action}.yaml", [f"results_dir={tmp_path}", *overrides], action)


# -- status.json ---------------------------------------------------------------------------------

def test_date_and_time_are_not_zero_padded():
    assert tao_date_time(dt.datetime(2026, 1, 5, 7, 3, 9)) == ("1/5/2026", "7:3:9")
    assert tao_date_time(dt.datetime(2025, 12, 31, 23, 59, 0)) == ("12/31/2025", "23:59:0")


def test_writer_keeps_the_last_kpi_and_repeats_it(tmp_path):
    writer = StatusWriter(tmp_path, enabled=True)
    writer.write("STARTED", "Starting Training Loop.")
    writer.write("RUNNING", "Eval metrics generated.", kpi={"val_loss": 0.5, "val_acc": 0.75})
    writer.write("RUNNING", "Training loop in progress", epoch=0, max_epoch=1)
    writer.write("RUNNING", "Train metrics generated.", kpi={"train_loss": 0.4, "train_acc": 0.5})
    writer.write("RUNNING", "Training loop complete.")
    lines = (tmp_path / "status.json").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert list(events[2]) == ["date", "time", "status", "verbosity", "message", "epoch", "max_epoch", "kpi"]
    assert "kpi" not in events[0]
    assert events[2]["kpi"] == {"val_loss": 0.5, "val_acc": 0.75}  # repeated from the Eval line
    assert events[3]["kpi"] == events[4]["kpi"] == {"train_loss": 0.4, "train_acc": 0.5}  # replaced, then repeated
    assert {e["verbosity"] for e in events} == {"INFO"}
    assert read_status_events(tmp_path) == events


def test_writer_of_another_rank_writes_nothing_and_numpy_values_are_plain(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert StatusWriter(tmp_path).write("RUNNING", "x", kpi={"a": 1.0})["kpi"] == {"a": 1.0}
    assert not (tmp_path / "status.json").exists()
    monkeypatch.setenv("LOCAL_RANK", "0")
    StatusWriter(tmp_path).write("RUNNING", "Test metrics generated.", kpi={"m_accuracy": np.float32(72.222)})
    assert read_status_events(tmp_path)[0]["kpi"]["m_accuracy"] == pytest.approx(72.222, abs=1e-4)


# -- the action wrapper --------------------------------------------------------------------------

def test_wrapper_writes_experiment_yaml_and_tao_start_and_end_lines(tmp_path):
    cfg = _cfg(tmp_path, "encryption_key=sEcReT-key-1", "dataset.train_dataset_dir=/data/train")

    def body(status):
        status.write("RUNNING", "Test metrics generated.", kpi={"accuracy": 66.667, "m_accuracy": 72.222})
        return {"checkpoint": "/x/model_epoch_000_step_00002.pth"}

    code, result = action_errors.run_action(cfg, "evaluate", body,
                                            final_fields=lambda r: {"checkpoint": r["checkpoint"]})
    assert (code, result) == (0, {"checkpoint": "/x/model_epoch_000_step_00002.pth"})
    folder = tmp_path / "evaluate"
    events = read_status_events(folder)
    assert [(e["status"], e["message"]) for e in events] == [
        ("STARTED", "Starting Action Recognition evaluate."), ("RUNNING", "Test metrics generated."),
        ("RUNNING", "Evaluate finished successfully.")]
    assert events[-1]["kpi"] == {"accuracy": 66.667, "m_accuracy": 72.222}  # repeated, as TAO's logger does
    assert events[-1]["checkpoint"] == "/x/model_epoch_000_step_00002.pth"
    saved = yaml.safe_load((folder / "experiment.yaml").read_text())
    assert list(saved) == list(to_dict(cfg))  # every section, in the spec's order
    assert saved["results_dir"] == saved["evaluate"]["results_dir"] == str(folder)  # TAO's update_results_dir
    assert saved["train"]["results_dir"] == "" and saved["dataset"]["train_dataset_dir"] == "/data/train"
    assert saved["encryption_key"] == ""
    assert "sEcReT-key-1" not in (folder / "experiment.yaml").read_text() + (folder / "status.json").read_text()


@pytest.mark.parametrize("error,code,prefix", [
    (SpecError(["train.num_epochs: expected an integer"]), 2, "Configuration error: "),
    (ValueError("bad value"), 1, "Parameter validation error: "),
    (TypeError("bad type"), 1, "Parameter validation error: "),
    (FileNotFoundError("no such file /d"), 1, "File system error: "),
    (NotImplementedError("TensorRT"), 1, "Feature not implemented: "),
    (RuntimeError("CUDA out of memory"), 1, ""),
])
def test_wrapper_failure_lines_carry_tao_prefixes_and_our_exit_codes(tmp_path, error, code, prefix, caplog):
    def body(status):
        raise error

    assert action_errors.run_action(_cfg(tmp_path), "train", body) == (code, None)
    last = read_status_events(tmp_path / "train")[-1]
    assert (last["status"], last["message"]) == ("FAILURE", f"{prefix}{error}")
    traced = [r for r in caplog.records if r.exc_info]
    assert bool(traced) == (code == 1 and not isinstance(error, (ConfigError,)))  # no traceback for bad settings


def test_sigterm_and_ctrl_c_are_tao_interruptions(tmp_path):
    def terminated(status):
        os.kill(os.getpid(), signal.SIGTERM)  # the wrapper's handler raises in this thread
        raise AssertionError("SIGTERM did not interrupt")

    before = signal.getsignal(signal.SIGTERM)
    assert action_errors.run_action(_cfg(tmp_path), "train", terminated) == (1, None)
    assert signal.getsignal(signal.SIGTERM) == before  # restored
    last = read_status_events(tmp_path / "train")[-1]
    assert (last["status"], last["message"]) == ("FAILURE", "User/System interruption: Train was interrupted")

    def ctrl_c(status):
        raise KeyboardInterrupt

    assert action_errors.run_action(_cfg(tmp_path), "inference", ctrl_c, final_fields=dict) == (1, None)
    last = read_status_events(tmp_path / "inference")[-1]
    assert last["message"] == "User/System interruption: Inference was interrupted"


def test_wrapper_without_any_results_dir_is_a_settings_error(tmp_path):
    cfg = load_config(REFERENCE / "spec_template_export.yaml", ["export.checkpoint=/m.pth"], "export")
    assert action_errors.run_action(cfg, "export", lambda status: None) == (2, None)


def test_experiment_spec_follows_update_results_dir():
    spec = {"results_dir": "/r", "encryption_key": "k", "train": {"results_dir": ""}, "export": {"results_dir": ""}}
    out = experiment_spec(spec, "train")
    assert out["results_dir"] == out["train"]["results_dir"] == "/r/train" and out["encryption_key"] == ""
    assert spec["results_dir"] == "/r" and spec["encryption_key"] == "k"  # pure
    own = experiment_spec({**spec, "export": {"results_dir": "/elsewhere"}}, "export")
    assert own["results_dir"] == own["export"]["results_dir"] == "/elsewhere"
    with pytest.raises(SpecError, match="results_dir: empty"):
        experiment_spec({"results_dir": "", "train": {"results_dir": None}}, "train")


# -- specs written by tao-core -------------------------------------------------------------------

NULLABLE = ["model_name", "encryption_key", "results_dir", "model.of_pretrained_model_path",
            "model.rgb_pretrained_model_path", "model.joint_pretrained_model_path", "dataset.train_dataset_dir",
            "dataset.val_dataset_dir", "train.resume_training_checkpoint_path", "train.results_dir"]


def test_nulls_from_tao_core_mean_unset(tmp_path):
    spec = yaml.safe_load((REFERENCE / "spec_template_train.yaml").read_text())
    for key in NULLABLE:
        section, _, name = key.rpartition(".")
        (spec[section] if section else spec)[name] = None
    spec["dataset"]["label_map"] = None
    spec["train"]["checkpointer"] = {"enable_topk": False, "replace_periodic": False, "monitor": None, "mode": None,
                                     "save_top_k": 1, "filename": "model_best_{epoch:03d}", "dirpath": None,
                                     "auto_insert_metric_name": False}
    spec["evaluate"] = {"checkpoint": "/m.pth", "trt_engine": None, "results_dir": None, "test_dataset_dir": "/t"}
    spec["inference"] = {"trt_engine": None, "results_dir": None}
    spec["export"] = {"results_dir": None, "onnx_file": None}
    path = tmp_path / "tao_core.yaml"
    path.write_text(yaml.safe_dump(spec))
    cfg = load_config(path, [], "train")
    assert cfg.model_name == cfg.encryption_key == cfg.results_dir == ""
    assert cfg.model.rgb_pretrained_model_path == cfg.dataset.train_dataset_dir == ""
    assert cfg.train.resume_training_checkpoint_path == cfg.train.results_dir == ""
    assert cfg.evaluate.trt_engine == cfg.evaluate.results_dir == cfg.export.onnx_file == ""
    assert cfg.dataset.label_map is None
    c = cfg.train.checkpointer
    assert (c.monitor, c.mode, c.dirpath, c.save_top_k, c.filename) == (None, None, None, 1, "model_best_{epoch:03d}")
    # null stays an error where TAO's field is not Optional
    with pytest.raises(SpecError, match=r"train.num_epochs: expected an integer, got None"):
        load_config(path, ["train.num_epochs=null"], "train")
    with pytest.raises(SpecError, match=r"train.checkpointer.mode: 'avg' is not allowed; allowed: min, max"):
        load_config(path, ["train.checkpointer.mode=avg", "train.checkpointer.save_top_k=0"], "train")


# -- resume lookup and TAO's assertions ----------------------------------------------------------

def test_resume_checkpoint_is_found_as_tao_finds_it(tmp_path):
    from skillbank.runtime.action_recognition.train import resume_checkpoint

    folder = tmp_path / "train"
    assert resume_checkpoint("", folder) is None  # no folder yet
    folder.mkdir()
    assert resume_checkpoint("", folder) is None
    for name in ("model_epoch_000_step_00002.pth", "model_epoch_001_step_00004.pth", "model_best_000.pth"):
        (folder / name).write_bytes(b"w")
    assert resume_checkpoint("", folder) is None  # TAO looks for *_latest.pth only
    (folder / "ar_model_latest.pth").symlink_to("model_epoch_000_step_00002.pth")
    assert resume_checkpoint("", folder) == str(folder / "model_epoch_000_step_00002.pth")  # the real path
    assert resume_checkpoint("/given/model.tlt", folder) == "/given/model.tlt"  # the spec's value wins
    (folder / "ar_model_latest.pth").unlink()
    (folder / "ar_model_latest.pth").symlink_to("model_epoch_009_step_00020.pth")  # broken link
    assert resume_checkpoint("", folder) == str(folder / "model_epoch_001_step_00004.pth")
    with pytest.raises(SpecError, match=r"train.resume_training_checkpoint_path='/x/last.ckpt': a resume checkpoint "
                                        r"must be a .pth or .tlt file"):
        resume_checkpoint("/x/last.ckpt", folder)


def test_interval_assertions_and_epochs_done(tmp_path):
    from skillbank.runtime.action_recognition.train import epochs_done, interval_problems

    assert interval_problems(_cfg(tmp_path, "train.num_epochs=3", "train.validation_interval=3").train) == []
    problems = interval_problems(_cfg(tmp_path, "train.num_epochs=2", "train.validation_interval=3",
                                      "train.checkpoint_interval=4").train)
    assert [p.split(" is ")[0] for p in problems] == ["train.validation_interval=3", "train.checkpoint_interval=4"]
    assert all("train.num_epochs=2" in p for p in problems)
    assert interval_problems(_cfg(tmp_path, "train.num_epochs=2", "train.checkpoint_interval=4",
                                  "train.checkpoint_interval_unit=step").train) == []
    loops = {"fit_loop": {"epoch_progress": {"current": {"processed": 5, "completed": 4}}}}
    assert epochs_done({"epoch": 4, "loops": loops}) == 5
    assert epochs_done({"epoch": 4}) == 5 and epochs_done({}) == 0


# -- best-checkpoint names -----------------------------------------------------------------------

def test_best_checkpoint_names_and_monitor_defaults():
    pytest.importorskip("pytorch_lightning")
    from skillbank.runtime.action_recognition.callbacks import best_checkpoint_name, monitor_and_mode

    assert best_checkpoint_name("model_best_{epoch:03d}", epoch=4, step=40, metrics={}) == "model_best_004.pth"
    assert best_checkpoint_name("model_best_{epoch:03d}", epoch=4, step=40, metrics={},
                                auto_insert_metric_name=True) == "model_best_epoch=004.pth"
    assert best_checkpoint_name("b_{step}_{val_acc:.2f}.pth", epoch=1, step=7, metrics={"val_acc": 0.8125}) == \
        "b_7_0.81.pth"
    with pytest.raises(ConfigError, match=r"unknown field\(s\) acc"):
        best_checkpoint_name("best_{acc}", epoch=0, step=0, metrics={})
    assert monitor_and_mode(None, None) == ("val_acc", "max")
    assert monitor_and_mode("val_loss", None) == ("val_loss", "min")
    assert monitor_and_mode("train_loss", "max") == ("train_loss", "max")
    with pytest.raises(ConfigError, match="train.checkpointer.monitor='mAP'"):
        monitor_and_mode("mAP", None)


# -- readers of train status.json ----------------------------------------------------------------

def _line(status, message, **fields):
    return {"date": "1/5/2026", "time": "7:3:9", "status": status, "verbosity": "INFO", "message": message, **fields}


def tao_train_lines() -> list[dict]:
    """A train status.json as TAO writes it: 3 epochs, validation_interval 2 (epoch 1 only), then resumed."""
    val = {"val_loss": 0.6, "val_acc": 0.75}
    train0, train1, train2 = ({"train_loss": 0.9, "train_acc": 0.5}, {"train_loss": 0.7, "train_acc": 0.6},
                              {"train_loss": 0.5, "train_acc": 0.8})
    loop = {"max_epoch": 2, "max_step": 6, "time_per_epoch": "0:00:01.5", "time_per_step": "0:00:00.75",
            "eta": "0:00:03"}
    return [
        _line("STARTED", "Starting Action Recognition train."),
        _line("STARTED", "Starting Training Loop."),
        _line("RUNNING", "Training loop in progress", epoch=0, step=2, **loop),
        _line("RUNNING", "Train metrics generated.", kpi=train0),
        _line("RUNNING", "Eval metrics generated.", kpi=val),
        _line("RUNNING", "Training loop in progress", epoch=1, step=4, **loop, kpi=val),
        _line("RUNNING", "Train metrics generated.", kpi=train1),
        _line("FAILURE", "User/System interruption: Train was interrupted", kpi=train1),
        _line("STARTED", "Starting Action Recognition train."),
        _line("RUNNING", "Resuming training from checkpoint: /r/train/model_epoch_001_step_00004.pth"),
        _line("STARTED", "Starting Training Loop."),
        _line("RUNNING", "Training loop in progress", epoch=2, step=6, **loop),
        _line("RUNNING", "Train metrics generated.", kpi=train2),
        _line("RUNNING", "Training loop complete.", kpi=train2),
        _line("RUNNING", "Train finished successfully.", kpi=train2),
    ]


def test_automl_reads_val_metrics_per_epoch_from_tao_lines():
    from skillbank.runtime.automl.trials import epoch_kpis

    epochs, last = epoch_kpis(tao_train_lines())
    assert [(n, kpi.get("val_acc")) for n, kpi in epochs] == [(1, None), (2, 0.75), (3, None)]
    assert epochs[1][1] == {"val_loss": 0.6, "val_acc": 0.75, "train_loss": 0.7, "train_acc": 0.6}
    assert last == {"val_loss": 0.6, "val_acc": 0.75, "train_loss": 0.5, "train_acc": 0.8}


def test_progress_view_joins_an_epoch_spread_over_three_lines():
    from skillbank.runtime.sdk.status_file import progress_view

    lines = tao_train_lines()
    view = progress_view(lines[:7])  # after epoch 1's Train metrics line
    assert (view["message"], view["epoch"], view["max_epoch"], view["eta"]) == (
        "Train metrics generated.", 1, 2, "0:00:03")
    assert view["kpi"] == {"val_loss": 0.6, "val_acc": 0.75, "train_loss": 0.7, "train_acc": 0.6}
    assert progress_view(lines)["message"] == "Train finished successfully."
    assert progress_view(lines)["epoch"] == 2
    evaluate = [_line("RUNNING", "Test metrics generated.", kpi={"accuracy": 25.0, "m_accuracy": 25.0})]
    assert progress_view(evaluate) == evaluate[0] and progress_view([]) is None


def test_cli_progress_line_counts_epochs_from_one():
    from skillbank.cli.jobs import _progress_line
    from skillbank.runtime.sdk.status_file import progress_view

    lines = tao_train_lines()
    assert _progress_line(progress_view(lines[:7])) == (
        "RUNNING epoch 2/3 eta 0:00:03 val_loss=0.6 val_acc=0.75 train_loss=0.7 train_acc=0.6")
    assert _progress_line(progress_view(lines[:8])).startswith("FAILURE: User/System interruption: Train was")
    assert _progress_line(progress_view(lines)).startswith("finished epoch 3/3 ")
    assert _progress_line(lines[0]) == "STARTED Starting Action Recognition train."
