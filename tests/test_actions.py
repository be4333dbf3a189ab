"""evaluate / inference / export of a trained model; the rgb 2d model must reach accuracy >= 90 (percent)."""
from __future__ import annotations

import csv
import json

import pytest

torch = pytest.importorskip("torch")

from ar_cli import TINY, data_paths, run_cli, template  # noqa: E402

from skillbank.runtime.sdk.status_file import read_status_events  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(sample_data, tmp_path_factory):
    """rgb 2d resnet_18 trained on the sample train split; returns (results_dir, checkpoint).

    Budget tuned for the test: 6 epochs x 8 steps (clips_per_video=4, batch 8), lr 0.002, with the
    template's augmentation (the sample classes move vertically, so horizontal flips keep the label).
    """
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("trained")
    rc = run_cli("train", f"results_dir={out}", *data_paths(sample_data), *TINY, "train.num_epochs=6",
                 "train.optim.lr=0.002", "dataset.clips_per_video=4", "train.checkpoint_interval=3")
    assert rc == 0
    # every checkpoint_interval=3 epochs: epochs 2 and 5 (zero-based), 8 steps per epoch
    assert sorted(p.name for p in (out / "train").glob("model_epoch_*.pth")) == [
        "model_epoch_002_step_00024.pth", "model_epoch_005_step_00048.pth"]
    return out, out / "train" / "model_epoch_005_step_00048.pth"


def test_rgb_2d_reaches_accuracy_90_and_evaluate_writes_its_outputs(trained, sample_data, capsys):
    out, checkpoint = trained
    rc = run_cli("evaluate", f"results_dir={out}", f"evaluate.checkpoint={checkpoint}",
                 f"evaluate.test_dataset_dir={sample_data / 'test'}", *TINY, "evaluate.video_eval_mode=conv",
                 "evaluate.video_num_segments=3", "evaluate.batch_size=4")
    log = capsys.readouterr().out
    assert rc == 0, log
    results = json.loads((out / "evaluate" / "results.json").read_text())
    assert results["accuracy"] >= 90.0, results  # percent, as TAO reports it
    # conv with random_interval sampling takes TAO's interval clips: 16 frames // T=3 = 5 per video
    # (video_num_segments applies to consecutive sampling only, as in TAO); conv counts videos
    assert results["num_videos"] == 16 and results["num_clips"] == 80
    matrix = results["confusion_matrix"]
    assert results["counted"] == "videos"
    assert matrix["labels"] == ["catch", "smile"] and sum(map(sum, matrix["matrix"])) == 16
    assert results["accuracy"] == round(100 * (matrix["matrix"][0][0] + matrix["matrix"][1][1]) / 16, 3)
    per_class = results["per_class_accuracy"]
    assert results["m_accuracy"] == pytest.approx((per_class["catch"] + per_class["smile"]) / 2, abs=1e-3)
    assert all(len(v["clip_predictions"]) == 5 for v in results["per_video"])
    png = out / "evaluate" / "confusion_matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = read_status_events(out / "evaluate")[-1]
    assert last["status"] == "RUNNING" and last["message"] == "Evaluate finished successfully."
    assert last["kpi"] == {"accuracy": results["accuracy"], "m_accuracy": results["m_accuracy"]}
    assert f"Total accuracy: {results['accuracy']}\n" in log and "Average class accuracy: " in log


def test_inference_agrees_with_evaluate(trained, sample_data, capsys):
    out, checkpoint = trained
    common = [f"results_dir={out}", *TINY]
    assert run_cli("evaluate", *common, f"evaluate.checkpoint={checkpoint}",
                   f"evaluate.test_dataset_dir={sample_data / 'test'}") == 0
    # one class folder of the test split is a folder of videos too: the very clips evaluate scored
    assert run_cli("inference", *common, f"inference.checkpoint={checkpoint}",
                   f"inference.inference_dataset_dir={sample_data / 'test' / 'smile'}") == 0
    log = capsys.readouterr().out
    rows = json.loads((out / "inference" / "predictions.json").read_text())
    with (out / "inference" / "predictions.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(rows) == len(table) == 8
    assert [r["video"] for r in rows] == [r["video"] for r in table] == sorted(r["video"] for r in rows)
    assert all(r["class"] in ("catch", "smile") and 0.5 <= r["confidence"] <= 1 for r in rows)
    assert all(float(t["confidence"]) == pytest.approx(r["confidence"]) for r, t in zip(rows, table, strict=True))
    # same model, same clips (center mode): the share of "smile" predictions is evaluate's smile accuracy
    smile_accuracy = json.loads((out / "evaluate" / "results.json").read_text())["per_class_accuracy"]["smile"]
    assert 100 * sum(r["class"] == "smile" for r in rows) / 8 == pytest.approx(smile_accuracy, abs=1e-3)
    assert f"{sample_data / 'test' / 'smile' / rows[0]['video']} : ['{rows[0]['class']}']" in log  # TAO's line


@pytest.mark.parametrize("action", ["evaluate", "inference", "export"])
def test_tao_templates_run_with_only_paths_filled(trained, sample_data, tmp_path, action, capsys):
    # The template as TAO ships it (224x224 input, label map from the checkpoint); only the ??? keys and
    # results_dir are filled.
    _, checkpoint = trained
    paths = {"evaluate": [f"evaluate.test_dataset_dir={sample_data / 'test'}"],
             "inference": [f"inference.inference_dataset_dir={sample_data / 'inference'}"],
             "export": []}[action]
    rc = run_cli(action, f"results_dir={tmp_path}", f"{action}.checkpoint={checkpoint}", *paths,
                 spec=template(action))
    log = capsys.readouterr().out
    assert rc == 0, log
    expected = {"evaluate": tmp_path / "evaluate" / "results.json",
                "inference": tmp_path / "inference" / "predictions.csv",
                "export": checkpoint.with_suffix(".onnx")}[action]  # TAO's default: beside the checkpoint
    assert expected.is_file()
    last = read_status_events(tmp_path / action)[-1]
    assert (last["status"], last["message"]) == ("RUNNING", f"{action.capitalize()} finished successfully.")


def test_export_fails_when_onnxruntime_disagrees(trained, tmp_path, monkeypatch, capsys):
    from skillbank.runtime.action_recognition import export

    _, checkpoint = trained
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)  # any difference (even 0) is now too much
    onnx_file = tmp_path / "m.onnx"
    rc = run_cli("export", f"results_dir={tmp_path}", f"export.checkpoint={checkpoint}",
                 f"export.onnx_file={onnx_file}", *TINY)
    assert rc == 1
    assert "onnxruntime differs from PyTorch" in capsys.readouterr().out
    assert not onnx_file.exists()
    assert read_status_events(tmp_path / "export")[-1]["status"] == "FAILURE"


def test_trt_engine_is_refused_and_missing_checkpoint_named(trained, sample_data, tmp_path, capsys):
    _, checkpoint = trained
    rc = run_cli("evaluate", f"results_dir={tmp_path}", f"evaluate.checkpoint={checkpoint}",
                 f"evaluate.test_dataset_dir={sample_data / 'test'}", "evaluate.trt_engine=/x/model.engine")
    assert rc == 2
    assert "TensorRT engines are not supported" in capsys.readouterr().out
    rc = run_cli("inference", f"results_dir={tmp_path}", f"inference.checkpoint={tmp_path / 'none.pth'}",
                 f"inference.inference_dataset_dir={sample_data / 'inference'}")
    assert rc == 2
    assert f"inference.checkpoint='{tmp_path / 'none.pth'}': no such checkpoint file" in capsys.readouterr().out


def test_checkpoint_rebuilds_the_model_and_hides_secrets(trained):
    from skillbank.runtime.action_recognition.checkpoint_io import checkpoint_label_map, checkpoint_model_config

    _, checkpoint = trained
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint_label_map(data) == {"catch": 0, "smile": 1}
    assert checkpoint_model_config(data)["backbone"] == "resnet_18"
    assert {"optimizer_states", "lr_schedulers", "loops", "epoch", "global_step"} <= set(data)


def test_encryption_key_is_accepted_ignored_and_never_stored(sample_data, tmp_path, capsys):
    secret = "s3cr3t-key-value"
    rc = run_cli("train", f"results_dir={tmp_path}", *data_paths(sample_data), *TINY, "train.num_epochs=1",
                 f"encryption_key={secret}", "dataset.val_dataset_dir=")
    log = capsys.readouterr().out
    assert rc == 0, log
    assert log.count("encryption_key is set") == 1 and secret not in log
    for path in (tmp_path / "train").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
