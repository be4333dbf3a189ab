"""TAO's parity fixtures (tests/fixtures/tao/): the fill formula, fixture loading and TAO-format checkpoints.

The fill formula is the one documented with TAO's parity data: ``hash_uniform(key, n)`` (a CRC-32 seeded
integer hash, bit-exact in any language) gives every weight and input from its key and shape. Checkpoints
are built here at test time in the layout TAO's Lightning training writes (``model.``-prefixed state_dict,
``pytorch-lightning_version``, loops, callbacks, optimizer and scheduler states).
"""
from __future__ import annotations

import collections
import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tao"
NETS = sorted(p.stem for p in (FIXTURES / "nets").glob("*.json"))
TAO_PL_VERSION = "2.5.0.post0"
_MASK = 0xFFFFFFFF


def load_net(name: str) -> dict[str, Any]:
    folder = "e2e" if name.endswith("_e2e") else "nets"
    return json.loads((FIXTURES / folder / f"{name}.json").read_text())


def hash_uniform(key: str, n: int) -> np.ndarray:
    """n float64 values in [-1, 1) from ``key`` (the parity data's integer hash)."""
    h = (np.arange(n, dtype=np.int64) * 0x27D4EB2D + zlib.crc32(key.encode("utf-8"))) & _MASK
    h ^= h >> 15
    h = (h * 0x165667B1) & _MASK
    h ^= h >> 13
    h = (h * 0x27D4EB2D) & _MASK
    h ^= h >> 16
    return h.astype(np.float64) / 2.0 ** 31 - 1.0


def fill_param(key: str, shape: list[int], gain: int):
    """The formula value of state_dict entry ``key`` (TAO's key, ``model.`` prefix included)."""
    import torch

    shape = tuple(int(d) for d in shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    n = math.prod(shape)
    u = hash_uniform(key, n)
    if key.endswith("running_var"):
        v = 1.0 + 0.5 * u
    elif key.endswith("running_mean"):
        v = 0.1 * u
    elif len(shape) >= 2:
        v = u * math.sqrt(3.0 * gain / (n // shape[0]))
    elif key.endswith("weight"):
        v = 1.0 + 0.1 * u
    else:
        v = 0.1 * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def fixture_state_dict(fixture: dict[str, Any]) -> collections.OrderedDict:
    """TAO's checkpoint ``state_dict`` of a fixture: formula weights (plus overrides), TAO's keys and order."""
    import torch

    gain = fixture["fill"]["weight_var_gain"]
    state = collections.OrderedDict((k, fill_param(k, s, gain)) for k, s in fixture["state_dict"])
    for key, values in fixture.get("overrides", {}).items():
        state[key] = torch.tensor(values, dtype=torch.float32).reshape(state[key].shape)
    return state


def fixture_inputs(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture's inputs in TAO's layout, keyed by stream ("rgb", "of")."""
    import torch

    out = {}
    for name, shape in fixture["inputs"].items():
        values = 2.0 * hash_uniform(name, math.prod(shape))
        out[name.removeprefix("input_")] = torch.from_numpy(values.astype(np.float32).reshape(shape))
    return out


def fixture_spec(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture's spec: its ``model`` fields and a label map of its class count."""
    model = {k: v for k, v in fixture["config"].items() if k != "num_classes"}
    return {"model": model, "dataset": {"label_map": dict(fixture["label_map"])}}


def tao_checkpoint(fixture: dict[str, Any], epoch: int = 0, steps_per_epoch: int = 1, results_dir: str = "/results",
                   lr: float = 5e-4, lr_steps: tuple[int, ...] = (15, 25)) -> dict[str, Any]:
    """A checkpoint dict laid out as TAO's training writes it at the end of ``epoch`` (SGD + MultiStepLR)."""
    import torch

    state = fixture_state_dict(fixture)
    step = (epoch + 1) * steps_per_epoch
    params = [k for k in state if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    lr_now = lr * 0.1 ** sum(1 for m in lr_steps if m <= epoch + 1)
    name = f"model_epoch_{epoch:03d}_step_{step:05d}.pth"

    def progress(total: int, current: int) -> dict[str, Any]:
        keys = ("ready", "completed", "started", "processed")
        return {"total": dict.fromkeys(keys, total), "current": dict.fromkeys(keys, current)}

    epochs = {"ready": epoch + 1, "completed": epoch, "started": epoch + 1, "processed": epoch + 1}
    empty_loop = {"state_dict": {}, "batch_progress": {**progress(0, 0), "is_last_batch": False}}
    loops = {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": step},
            "epoch_loop.batch_progress": {**progress(step, steps_per_epoch), "is_last_batch": True},
            "epoch_loop.scheduler_progress": {"total": {"ready": epoch + 1, "completed": epoch + 1},
                                              "current": {"ready": 1, "completed": 1}},
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {"optimizer": {
                "step": {"total": {"ready": step, "completed": step},
                         "current": {"ready": steps_per_epoch, "completed": steps_per_epoch}},
                "zero_grad": {"total": {"ready": step, "completed": step, "started": step},
                              "current": {"ready": steps_per_epoch, "completed": steps_per_epoch,
                                          "started": steps_per_epoch}}}},
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": {"total": {"ready": 0, "completed": 0},
                                                                   "current": {"ready": 0, "completed": 0}},
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": {**progress(1, 1), "is_last_batch": True},
            "epoch_progress": {"total": dict(epochs), "current": dict(epochs)},
        },
        "validate_loop": empty_loop,
        "test_loop": empty_loop,
        "predict_loop": {"state_dict": {}, "batch_progress": progress(0, 0)},
    }
    callback = ("ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
                "'train_time_interval': None}")
    return {
        "epoch": epoch,
        "global_step": step,
        "pytorch-lightning_version": TAO_PL_VERSION,
        "state_dict": state,
        "loops": loops,
        "callbacks": {callback: {
            "monitor": None, "best_model_score": None, "best_model_path": f"{results_dir}/{name}",
            "current_score": None, "dirpath": results_dir, "best_k_models": {}, "kth_best_model_path": "",
            "kth_value": torch.tensor(float("inf")), "last_model_path": ""}},
        "optimizer_states": [{
            "state": {i: {"momentum_buffer": torch.zeros_like(state[k])} for i, k in enumerate(params)},
            "param_groups": [{"lr": lr_now, "momentum": 0.9, "dampening": 0, "weight_decay": 5e-4,
                              "nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
                              "fused": None, "initial_lr": lr, "params": list(range(len(params)))}]}],
        "lr_schedulers": [{"milestones": collections.Counter(lr_steps), "gamma": 0.1, "base_lrs": [lr],
                           "last_epoch": epoch + 1, "_step_count": epoch + 2, "_is_initial": False,
                           "_get_lr_called_within_step": False, "_last_lr": [lr_now]}],
    }
