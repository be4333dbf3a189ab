"""``action_recognition export``: ONNX as TAO exports it, checked with onnx.checker and onnxruntime.

As TAO's export: TorchScript exporter, opset 17, inputs ``input_rgb`` and/or ``input_of`` (a joint
model takes both, in that order), output ``fc_pred`` (logits; softmax gives confidences, class order
= the label map's indices), and a dynamic ``batch`` axis on every input and the output
(``export.batch_size`` is not read, as in TAO). Input layout, float32:

- input_type 2d: input_rgb ``[batch, 3*rgb_seq_length, H, W]``, input_of ``[batch, 2*of_seq_length, H, W]``,
  channel-major (channel ``c*T + t``: R0..R(T-1), G0.., B0..; U0..U(T-1), V0..)
- input_type 3d: input_rgb ``[batch, 3, rgb_seq_length, H, W]``, input_of ``[batch, 2, of_seq_length, H, W]``

H = model.input_height, W = model.input_width, normalised as in evaluation (dataset.augmentation_config
means/stds). ``export.onnx_file`` defaults to the checkpoint's path with ``.onnx``, and an existing file
is not overwritten (both as TAO). Beyond TAO: the label map is stored in the ONNX metadata
(``label_map``), and the file is removed unless onnxruntime reproduces PyTorch within 1e-4.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from skillbank.runtime.config.action_recognition import ExperimentConfig
from skillbank.runtime.config.loading import ConfigError
from skillbank.runtime.errors import SkillbankError

log = logging.getLogger("skillbank.action_recognition")
OPSET = 17
OUTPUT_NAME = "fc_pred"
DUMMY_BATCH = 3  # TAO traces with a batch of 3
CHECK_BATCH = 2  # another batch size, so the check exercises the dynamic axis
PARITY_TOLERANCE = 1e-4


class ExportParityError(SkillbankError, RuntimeError):
    """onnxruntime and PyTorch disagree beyond the tolerance: the ONNX file is not trustworthy."""


def onnx_path(cfg: ExperimentConfig) -> Path:
    """``export.onnx_file``, else the checkpoint's path with ``.onnx`` (TAO's default)."""
    if cfg.export.onnx_file:
        return Path(cfg.export.onnx_file)
    return Path(cfg.export.checkpoint).with_suffix(".onnx")


def input_names(model) -> list[str]:
    return [f"input_{stream}" for stream in model.input_names]


def export_onnx(cfg: ExperimentConfig) -> dict:
    """Write the ONNX file, check it, compare with PyTorch; returns a summary (path, inputs, max_abs_diff)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    from .networks import input_shapes
    from .trained_model import load_trained_model

    x = cfg.export
    path = onnx_path(cfg)
    if path.exists():
        raise ConfigError(f"export.onnx_file={str(path)!r} exists already and is not overwritten (as in TAO): "
                          "remove it or set export.onnx_file to a new path")
    model, label_map = load_trained_model(cfg, x.checkpoint, "export.checkpoint")
    model = model.float().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = input_shapes(cfg.model)
    names = input_names(model)
    generator = torch.Generator().manual_seed(0)
    dummy = tuple(torch.randn(DUMMY_BATCH, *shapes[s], generator=generator) for s in model.input_names)
    axes = {name: {0: "batch"} for name in [*names, OUTPUT_NAME]}
    described = {n: ["batch", *shapes[s]] for n, s in zip(names, model.input_names, strict=True)}
    log.info("Exporting %s to %s (inputs %s, output %s [batch, %d])", x.checkpoint, path, described, OUTPUT_NAME,
             len(label_map))
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter, as TAO (torch < 2.14) uses it: seconds, and plain opset 17.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, dummy, str(path), input_names=names, output_names=[OUTPUT_NAME],
                              dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
        onnx_model = onnx.load(str(path))
        onnx.checker.check_model(onnx_model, full_check=True)
        meta = onnx_model.metadata_props.add()
        meta.key, meta.value = "label_map", json.dumps(label_map)
        onnx.save(onnx_model, str(path))

        check = [torch.randn(CHECK_BATCH, *shapes[s], generator=generator) for s in model.input_names]
        with torch.no_grad():
            expected = model(*check).numpy()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = session.run([OUTPUT_NAME], {n: t.numpy() for n, t in zip(names, check, strict=True)})
        diff = float(np.max(np.abs(got - expected)))
        if not diff <= PARITY_TOLERANCE:
            raise ExportParityError(f"onnxruntime differs from PyTorch by {diff:.3g} (> {PARITY_TOLERANCE}); "
                                    "the ONNX file was removed")
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written or untrusted file behind
        raise
    log.info("ONNX check passed: onnx.checker ok, max |onnxruntime - PyTorch| = %.3g (batch %d)", diff, CHECK_BATCH)
    return {"onnx_file": str(path), "inputs": described, "output": OUTPUT_NAME, "opset": OPSET,
            "max_abs_diff": diff, "label_map": label_map}



def run(cfg: ExperimentConfig) -> int:
    """Entry of the ``export`` action: exit 0 on success, 1 on failure, 2 on bad settings."""
    from .action_errors import run_action

    # a parity failure (a SkillbankError) is fully described by its message: no traceback
    code, _ = run_action(cfg, "export", lambda status: export_onnx(cfg),
                         final_fields=lambda s: {"onnx_file": s["onnx_file"], "inputs": s["inputs"],
                                                 "max_abs_diff": s["max_abs_diff"]})
    return code
