"""The named classifiers, the joint model and pretrained weights of the action-recognition networks (CPU)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from skillbank.runtime.action_recognition.networks import (  # noqa: E402
    BACKBONES,
    ModelConfigError,
    build_model,
    input_shapes,
)
from skillbank.runtime.action_recognition.pretrained import load_pretrained_weights  # noqa: E402
from skillbank.runtime.config.action_recognition import ModelConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("few_torch_threads")

SCHEMA_BACKBONES = ModelConfig.__dataclass_fields__["backbone"].metadata["enum"]


def tiny(**kw) -> ModelConfig:
    base = {"input_width": 16, "input_height": 16, "rgb_seq_length": 3, "of_seq_length": 3, "num_fc": 8}
    base.update(kw)
    return ModelConfig(**base)


CASES = [
    pytest.param(it, bb, marks=[pytest.mark.slow] if bb in ("resnet_101", "resnet_152") else [])
    for it in ("2d", "3d") for bb in SCHEMA_BACKBONES if (it, bb) != ("2d", "i3d")
]


@pytest.mark.parametrize("input_type,backbone", CASES)
def test_every_backbone_runs_forward_and_backward(input_type, backbone):
    # ResNets at 32x32: at 16x16 their deep stages see 1x1 maps, where BatchNorm over a batch of 2 values
    # is degenerate (gradients can overflow through ResNet-152's 36 blocks). I3D pools less: 16x16 is fine.
    torch.manual_seed(0)
    size = 16 if backbone == "i3d" else 32
    cfg = tiny(input_type=input_type, backbone=backbone, input_width=size, input_height=size)
    model = build_model(cfg, 3)
    x = torch.randn(2, *input_shapes(cfg)["rgb"], requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_every_schema_backbone_is_registered():
    registered = set(BACKBONES["2d"]) | set(BACKBONES["3d"])
    assert registered == set(SCHEMA_BACKBONES)


def test_i3d_with_2d_input_is_a_clear_config_error():
    with pytest.raises(ModelConfigError, match=r"model.backbone='i3d'.*model.input_type=3d"):
        build_model(tiny(backbone="i3d", input_type="2d"), 2)


@pytest.mark.parametrize("model_type,input_type,expected", [
    ("rgb", "2d", {"rgb": (9, 16, 16)}),
    ("of", "2d", {"of": (6, 16, 16)}),
    ("joint", "3d", {"rgb": (3, 3, 16, 16), "of": (2, 3, 16, 16)}),
])
def test_input_shapes_and_joint_takes_both_streams(model_type, input_type, expected):
    cfg = tiny(model_type=model_type, input_type=input_type)
    assert input_shapes(cfg) == expected
    model = build_model(cfg, 4)
    assert model.input_names == tuple(expected)
    out = model(*[torch.randn(2, *s) for s in expected.values()])
    assert out.shape == (2, 4)


def test_input_shapes_match_the_data_pipeline():
    from skillbank.runtime.action_recognition.data.datasets import sample_shapes
    from skillbank.runtime.action_recognition.data.sampling import ClipSpec

    for model_type in ("rgb", "of", "joint"):
        for input_type in ("2d", "3d"):
            cfg = tiny(model_type=model_type, input_type=input_type, of_seq_length=5)
            assert input_shapes(cfg) == sample_shapes(ClipSpec.from_model_config(cfg), 16, 16)


def test_dropout_sits_before_the_classifier():
    model = build_model(tiny(dropout_ratio=0.3), 2)
    assert model.dropout.p == pytest.approx(0.3)
    x = torch.randn(4, 9, 16, 16)
    model.eval()
    assert torch.equal(model(x), model(x))  # no dropout noise in eval


def test_joint_model_fuses_the_two_streams_logits():
    """TAO's joint head: each stream classifies, fc1 takes the 2 * num_classes logits, fc2 classifies."""
    model = build_model(tiny(model_type="joint", num_fc=8), 4)
    assert model.model_rgb.fc_cls.out_features == 4 and model.model_of.fc_cls.out_features == 4
    assert (model.fc1.in_features, model.fc1.out_features, model.fc2.out_features) == (8, 8, 4)


@pytest.mark.parametrize("frames,size", [(3, 16), (9, 193), (12, 240)])
def test_i3d_runs_outside_taos_size_range(frames, size):
    """TAO's I3D needs T >= 9 and 193 <= H, W <= 224; ours also runs short clips, small and large frames."""
    model = build_model(tiny(input_type="3d", backbone="i3d", rgb_seq_length=frames, input_width=size,
                             input_height=size), 3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, frames, size, size)).shape == (1, 3)


def _save(tmp_path, model, name="w.pth"):
    path = tmp_path / name
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    return str(path)


def test_pretrained_weights_of_another_sequence_length_average_conv1(tmp_path, caplog):
    source = build_model(tiny(rgb_seq_length=5), 2)
    cfg = tiny(rgb_pretrained_model_path=_save(tmp_path, source))
    target = build_model(cfg, 2)
    with caplog.at_level("INFO", logger="skillbank.action_recognition"):
        load_pretrained_weights(target, cfg)
    assert torch.allclose(target.conv1.weight, source.conv1.weight.mean(dim=1, keepdim=True).expand(64, 9, 7, 7))
    assert "conv1 averaged over the file's 15 input channels for this model's 9" in caplog.text


def test_imagenet_pretrained_without_local_weights_is_a_clear_error():
    cfg = tiny(imagenet_pretrained=True)
    with pytest.raises(ModelConfigError, match="does not download ImageNet weights"):
        load_pretrained_weights(build_model(cfg, 2), cfg)
