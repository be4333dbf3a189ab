"""The networks are TAO's: same state_dict keys, shapes and order, same logits, TAO checkpoints load.

Every fixture under tests/fixtures/tao/nets was produced by TAO's own code: its key list, and the logits
TAO's network gives for weights and inputs filled by a formula (tests/tao_parity.py).
"""
from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")

from tao_parity import NETS, fixture_inputs, fixture_spec, fixture_state_dict, load_net, tao_checkpoint  # noqa: E402

from skillbank.runtime.action_recognition.checkpoint_io import CheckpointFileError  # noqa: E402
from skillbank.runtime.action_recognition.networks import ModelConfigError, build_model  # noqa: E402
from skillbank.runtime.action_recognition.pretrained import load_pretrained_weights  # noqa: E402
from skillbank.runtime.action_recognition.trained_model import load_trained_model  # noqa: E402
from skillbank.runtime.config.action_recognition import ExperimentConfig  # noqa: E402
from skillbank.runtime.config.loading import from_dict  # noqa: E402

pytestmark = pytest.mark.usefixtures("few_torch_threads")

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}


def config(fixture: dict, **model) -> ExperimentConfig:
    spec = fixture_spec(fixture)
    spec["model"].update(model)
    return from_dict(ExperimentConfig, spec)


def logits_of(model, fixture: dict):
    inputs = fixture_inputs(fixture)
    with torch.no_grad():
        return model.eval()(*[inputs[name] for name in model.input_names])


def save(tmp_path, checkpoint: dict, name: str = "tao.pth") -> str:
    path = tmp_path / name
    torch.save(checkpoint, path)
    return str(path)


@pytest.mark.parametrize("name", NETS)
def test_state_dict_has_taos_keys_shapes_and_order(name):
    fixture = load_net(name)
    model = build_model(config(fixture).model, fixture["config"]["num_classes"])
    ours = [[f"model.{k}", list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == fixture["state_dict"]
    assert sum(v.numel() for v in model.state_dict().values()) == fixture["num_elements"]


@pytest.mark.parametrize("name", [*NETS, "rgb_2d_resnet_18_e2e"])
def test_formula_weights_give_taos_logits(name):
    fixture = load_net(name)
    model = build_model(config(fixture).model, fixture["config"]["num_classes"])
    weights = {k.removeprefix("model."): v for k, v in fixture_state_dict(fixture).items()}
    model.load_state_dict(weights, strict=True)
    assert torch.allclose(logits_of(model, fixture), torch.tensor(fixture["logits"]), **TOLERANCE)


def test_a_reversed_frame_order_changes_the_logits():
    """The layout check has teeth: the same clip in the wrong frame order is far outside the tolerance."""
    fixture = load_net("rgb_2d_resnet_18")
    model = build_model(config(fixture).model, 3)
    model.load_state_dict({k.removeprefix("model."): v for k, v in fixture_state_dict(fixture).items()})
    x = fixture_inputs(fixture)["rgb"]
    reversed_time = x.view(2, 3, 4, 64, 64).flip(2).reshape(2, 12, 64, 64)
    with torch.no_grad():
        assert (model.eval()(reversed_time) - torch.tensor(fixture["logits"])).abs().max() > 0.1


def test_lightning_module_parameters_follow_taos_order():
    """SGD momentum buffers are indexed by parameter order: a resumed TAO optimizer state needs the same order."""
    from skillbank.runtime.action_recognition.lightning_module import ActionRecognitionModule

    fixture = load_net("joint_3d_resnet_18")
    cfg = config(fixture)
    module = ActionRecognitionModule(cfg, fixture["label_map"])
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert [k for k, _ in module.named_parameters()] == [k for k, _ in fixture["state_dict"] if not k.endswith(buffers)]
    assert list(module.state_dict()) == [k for k, _ in fixture["state_dict"]]


@pytest.mark.parametrize("name", ["rgb_2d_resnet_18", "joint_2d_resnet_18", "of_3d_resnet_18", "rgb_3d_i3d"])
def test_a_tao_checkpoint_loads_for_evaluate_inference_and_export(tmp_path, name):
    fixture = load_net(name)
    path = save(tmp_path, tao_checkpoint(fixture, epoch=4, steps_per_epoch=2))
    model, label_map = load_trained_model(config(fixture), path, "evaluate.checkpoint")
    assert label_map == fixture["label_map"]
    assert torch.allclose(logits_of(model, fixture), torch.tensor(fixture["logits"]), **TOLERANCE)


def test_a_bare_tao_state_dict_loads_too(tmp_path):
    fixture = load_net("of_2d_resnet_18")
    path = save(tmp_path, {"state_dict": fixture_state_dict(fixture), "pytorch-lightning_version": "2.5.0.post0"})
    model, _ = load_trained_model(config(fixture), path, "inference.checkpoint")
    assert torch.allclose(logits_of(model, fixture), torch.tensor(fixture["logits"]), **TOLERANCE)


def test_a_checkpoint_of_another_network_names_the_keys_to_check(tmp_path):
    fixture = load_net("rgb_2d_resnet_18")
    path = save(tmp_path, tao_checkpoint(fixture))
    with pytest.raises(ModelConfigError, match=r"evaluate.checkpoint=.*model.backbone.*conv1.weight"):
        load_trained_model(config(fixture, rgb_seq_length=5), path, "evaluate.checkpoint")
    with pytest.raises(ModelConfigError, match="classifies 3 classes but dataset.label_map has 2"):
        spec = fixture_spec(fixture)
        spec["dataset"]["label_map"] = {"a": 0, "b": 1}
        load_trained_model(from_dict(ExperimentConfig, spec), path, "evaluate.checkpoint")


def test_an_encrypted_tao_checkpoint_is_refused_with_the_reason(tmp_path):
    fixture = load_net("rgb_2d_resnet_18")
    checkpoint = tao_checkpoint(fixture)
    checkpoint["state_dict"] = b"\x00encrypted-by-nvidia-eff"
    checkpoint["state_dict_encrypted"] = "some-cipher"
    path = save(tmp_path, checkpoint)
    with pytest.raises(CheckpointFileError, match=r"encrypted TAO checkpoint.*nvidia-eff.*not installed"):
        load_trained_model(config(fixture), path, "evaluate.checkpoint")


def test_tao_checkpoint_as_pretrained_weights_with_another_class_count(tmp_path, caplog):
    fixture = load_net("rgb_2d_resnet_18")  # 3 classes
    path = save(tmp_path, tao_checkpoint(fixture))
    cfg = config(fixture, rgb_pretrained_model_path=path).model  # rgb_pretrained_num_classes: 5 (template default)
    model = build_model(cfg, 2)
    with caplog.at_level(logging.INFO, logger="skillbank.action_recognition"):
        assert load_pretrained_weights(model, cfg) == ["rgb"]
    weights = fixture_state_dict(fixture)
    assert torch.equal(model.layer4[1].conv2.weight, weights["model.layer4.1.conv2.weight"])
    assert model.fc_cls.weight.shape == (2, 512)
    assert "classifier (fc_cls) not loaded" in caplog.text


def test_pretrained_num_classes_zero_keeps_the_files_classifier(tmp_path):
    fixture = load_net("rgb_3d_resnet_18")
    path = save(tmp_path, tao_checkpoint(fixture))
    cfg = config(fixture, rgb_pretrained_model_path=path, rgb_pretrained_num_classes=0).model
    model = build_model(cfg, 3)
    load_pretrained_weights(model, cfg)
    assert torch.allclose(logits_of(model, fixture), torch.tensor(fixture["logits"]), **TOLERANCE)


def test_rgb_weights_start_a_flow_model_with_conv1_averaged(tmp_path):
    fixture = load_net("rgb_2d_resnet_18")  # conv1 over 12 channels (rgb, T=4)
    path = save(tmp_path, tao_checkpoint(fixture))
    cfg = config(fixture, model_type="of", of_seq_length=5, of_pretrained_model_path=path).model
    model = build_model(cfg, 3)
    load_pretrained_weights(model, cfg)
    expected = fixture_state_dict(fixture)["model.conv1.weight"].mean(dim=1, keepdim=True).expand(64, 10, 7, 7)
    assert torch.allclose(model.conv1.weight, expected)


def test_single_stream_tao_checkpoints_start_a_joint_model(tmp_path):
    rgb, of = load_net("rgb_2d_resnet_18"), load_net("of_2d_resnet_18")
    cfg = config(load_net("joint_2d_resnet_18"), rgb_pretrained_model_path=save(tmp_path, tao_checkpoint(rgb), "r.pth"),
                 of_pretrained_model_path=save(tmp_path, tao_checkpoint(of), "o.pth")).model
    joint = build_model(cfg, 3)
    assert load_pretrained_weights(joint, cfg) == ["rgb", "of"]
    assert torch.allclose(logits_of(joint.model_rgb, rgb), torch.tensor(rgb["logits"]), **TOLERANCE)
    assert torch.allclose(logits_of(joint.model_of, of), torch.tensor(of["logits"]), **TOLERANCE)


def test_a_tao_joint_2d_checkpoint_starts_a_joint_model(tmp_path):
    """TAO's own 2D joint path keeps the ``model.`` prefix and fails here; ours loads it (documented)."""
    fixture = load_net("joint_2d_resnet_18")
    cfg = config(fixture, joint_pretrained_model_path=save(tmp_path, tao_checkpoint(fixture))).model
    model = build_model(cfg, 3)
    assert load_pretrained_weights(model, cfg) == ["joint"]
    assert torch.allclose(logits_of(model, fixture), torch.tensor(fixture["logits"]), **TOLERANCE)


def test_pretrained_weights_of_another_backbone_are_a_clear_error(tmp_path):
    path = save(tmp_path, tao_checkpoint(load_net("rgb_2d_resnet_50")))
    cfg = config(load_net("rgb_2d_resnet_18"), rgb_pretrained_model_path=path).model
    with pytest.raises(ModelConfigError, match=r"model.rgb_pretrained_model_path=.*does not fit.*shapes differ"):
        load_pretrained_weights(build_model(cfg, 3), cfg)


@pytest.mark.parametrize("name", ["rgb_2d_resnet_18", "joint_2d_resnet_18", "rgb_3d_resnet_18", "joint_3d_resnet_18",
                                  "rgb_3d_i3d"])
def test_onnx_export_of_a_tao_checkpoint_reproduces_taos_logits(tmp_path, name):
    import onnx
    import onnxruntime as ort

    from skillbank.runtime.action_recognition.export import export_onnx

    fixture = load_net(name)
    checkpoint = save(tmp_path, tao_checkpoint(fixture))
    spec = fixture_spec(fixture)
    spec.update(results_dir=str(tmp_path / "r"), export={"checkpoint": checkpoint})
    summary = export_onnx(from_dict(ExperimentConfig, spec))
    assert summary["onnx_file"] == str(tmp_path / "tao.onnx")  # TAO's default: beside the checkpoint
    graph = onnx.load(summary["onnx_file"]).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {n: ["batch", *shape[1:]] for n, shape in fixture["inputs"].items()}
    assert [o.name for o in graph.output] == ["fc_pred"]
    assert [o.version for o in onnx.load(summary["onnx_file"]).opset_import if o.domain in ("", "ai.onnx")] == [17]
    session = ort.InferenceSession(summary["onnx_file"], providers=["CPUExecutionProvider"])
    feeds = {f"input_{k}": v.numpy() for k, v in fixture_inputs(fixture).items()}
    (got,) = session.run(["fc_pred"], feeds)
    assert torch.allclose(torch.from_numpy(got), torch.tensor(fixture["logits"]), **TOLERANCE)


def test_export_never_overwrites_an_existing_onnx_file(tmp_path):
    from skillbank.runtime.action_recognition.export import export_onnx
    from skillbank.runtime.config.loading import ConfigError

    fixture = load_net("of_2d_resnet_18")
    spec = fixture_spec(fixture)
    target = tmp_path / "model.onnx"
    target.write_text("keep me")
    spec.update(export={"checkpoint": save(tmp_path, tao_checkpoint(fixture)), "onnx_file": str(target)})
    with pytest.raises(ConfigError, match="exists already"):
        export_onnx(from_dict(ExperimentConfig, spec))
    assert target.read_text() == "keep me"
