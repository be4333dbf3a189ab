"""``action_recognition export``: ONNX (opset 17) checked with onnx.checker and against PyTorch with onnxruntime.

Inputs: ``input_rgb`` and/or ``input_of`` (a joint model takes both, in that order), float32:

- input_type 2d: input_rgb ``[N, 3*rgb_seq_length, H, W]``, input_of ``[N, 2*of_seq_length, H, W]``
- input_type 3d: input_rgb ``[N, 3, rgb_seq_length, H, W]``, input_of ``[N, 2, of_seq_length, H, W]``

normalised as in training (dataset.augmentation_config means/stds), H = model.input_height,
W = model.input_width. Output ``fc_pred`` ``[N, num_classes]``: logits (softmax gives confidences),
class order = the label map's indices. ``export.batch_size: -1`` makes N dynamic.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from skillbank.runtime.config.action_recognition import ExperimentConfig

from .spec_io import results_dir
from .status_log import SUCCESS, StatusWriter

log = logging.getLogger("skillbank.action_recognition")
OPSET = 17
OUTPUT_NAME = "fc_pred"
PARITY_TOLERANCE = 1e-4


class ExportParityError(RuntimeError):
    """onnxruntime and PyTorch disagree beyond the tolerance: the ONNX file is not trustworthy."""


def onnx_path(cfg: ExperimentConfig) -> Path:
    """``export.onnx_file``, else ``<export results dir>/<checkpoint name>.onnx``."""
    if cfg.export.onnx_file:
        return Path(cfg.export.onnx_file)
    return results_dir(cfg, "export") / (Path(cfg.export.checkpoint).stem + ".onnx")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    model, label_map = load_trained_model(cfg, x.checkpoint, "export.checkpoint")
    model = model.float().eval()
    dynamic = x.batch_size == -1
    if x.batch_size == 0:
        from skillbank.runtime.config.loading import ConfigError

        raise ConfigError("export.batch_size=0: give a batch size >= 1, or -1 for a dynamic batch axis")
    batch = 1 if dynamic else x.batch_size
    shapes = input_shapes(cfg.model)
    names = [f"input_{stream}" for stream in model.input_names]
    generator = torch.Generator().manual_seed(0)
    dummy = tuple(torch.randn(batch, *shapes[s], generator=generator) for s in model.input_names)
    axes = {name: {0: "batch"} for name in [*names, OUTPUT_NAME]} if dynamic else None
    described = {n: list(shapes[s]) for n, s in zip(names, model.input_names, strict=True)}
    log.info("Exporting %s to %s (inputs %s, batch %s)", x.checkpoint, path, described,
             "dynamic" if dynamic else batch)
    with warnings.catch_warnings():
        # The TorchScript exporter: seconds instead of the dynamo exporter's tens, and plain opset 17.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, dummy, str(path), input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    onnx_model = onnx.load(str(path))
    onnx.checker.check_model(onnx_model, full_check=True)
    meta = onnx_model.metadata_props.add()
    meta.key, meta.value = "label_map", json.dumps(label_map)
    onnx.save(onnx_model, str(path))

    # Parity on a fresh random input (batch 2 when dynamic, so the dynamic axis is exercised).
    check_batch = 2 if dynamic else batch
    check = [torch.randn(check_batch, *shapes[s], generator=generator) for s in model.input_names]
    with torch.no_grad():
        expected = model(*check).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {n: t.numpy() for n, t in zip(names, check, strict=True)})
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= PARITY_TOLERANCE:
        path.unlink(missing_ok=True)
        raise ExportParityError(f"onnxruntime differs from PyTorch by {diff:.3g} (> {PARITY_TOLERANCE}); "
                                f"the ONNX file was removed")
    log.info("ONNX check passed: onnx.checker ok, max |onnxruntime - PyTorch| = %.3g", diff)
    return {"onnx_file": str(path), "inputs": {n: ["batch" if dynamic else batch, *shapes[s]]
                                                for n, s in zip(names, model.input_names, strict=True)},
            "output": OUTPUT_NAME, "opset": OPSET, "max_abs_diff": diff, "label_map": label_map}


def run(cfg: ExperimentConfig) -> int:
    from .action_errors import run_reported

    status = StatusWriter(results_dir(cfg, "export") if (cfg.export.results_dir or cfg.results_dir)
                          else onnx_path(cfg).parent)
    # a parity failure is fully described by its message: no traceback
    code, summary = run_reported(status, "Export", lambda: export_onnx(cfg), quiet=(ExportParityError,))
    if code:
        return code
    status.write(SUCCESS, f"Exported {summary['onnx_file']}", kpi={"max_abs_diff": summary["max_abs_diff"]},
                 onnx_file=summary["onnx_file"], inputs=summary["inputs"])
    return 0
