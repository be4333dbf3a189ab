"""Our evaluation / inference data path against NVIDIA TAO's real loaders (fixtures in tests/fixtures/tao/data).

``loader_index.json`` + ``loader/*.npy``: 30 cases of what TAO's test / predict loaders
produce (frame numbers per clip, labels, stacked tensors in TAO's layout) on the tiny
data set ``dataset/`` (2 classes x 2 videos x 10 frames, 32x32). ``samplers.json``: TAO's
eval-time frame samplers over many video lengths. See the parity README, section 4.

Our loaders yield uint8 clips that ``ClipNormaliser`` normalises on the device: what is compared
with TAO's tensors is that normaliser's output, the network's input.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skillbank.runtime.action_recognition.data.datamodule import (  # noqa: E402
    build_eval_dataset,
    build_eval_loader,
)
from skillbank.runtime.action_recognition.data.normaliser import ClipNormaliser  # noqa: E402
from skillbank.runtime.action_recognition.data.sampling import ClipSpec, eval_clip_indices  # noqa: E402
from skillbank.runtime.action_recognition.spec_io import load_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("few_torch_threads")

DATA = Path(__file__).resolve().parent / "fixtures" / "tao" / "data"
CASES = json.loads((DATA / "loader_index.json").read_text())
SAMPLERS = json.loads((DATA / "samplers.json").read_text())
TOLERANCE = 1e-5
STREAM_OF_INPUT = {"input_rgb": "rgb", "input_of": "of"}


def test_the_fixtures_are_complete():
    assert len(CASES) == 30
    assert sum(len(rows) for key, rows in SAMPLERS.items() if key != "_doc") == 684
    for case in CASES.values():
        for tensor in case["tensors"].values():
            assert (DATA / tensor["file"]).is_file()


def _overrides(tree: dict, prefix: str = "") -> list[str]:
    """A nested spec as ``dotted.key=value`` overrides (values as JSON, which the loader reads as YAML)."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and key != "label_map":
            out += _overrides(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def _run_case(case: dict):
    """Build the case's config through the spec loader, then our eval dataset and loader; iterate it all.

    Returns the dataset, the batches and the normaliser of the case's config."""
    spec = json.loads(json.dumps(case["spec"]))
    action = "evaluate" if "evaluate" in spec else "inference"
    section = spec[action]
    folder_key = "test_dataset_dir" if action == "evaluate" else "inference_dataset_dir"
    section[folder_key] = str(DATA / section[folder_key].removeprefix("data/"))
    section["checkpoint"] = "unused.pth"  # a mandatory key; the data path does not read it
    cfg = load_config(None, _overrides(spec), action)
    settings = cfg.evaluate if action == "evaluate" else cfg.inference
    mode = settings.video_eval_mode if action == "evaluate" else settings.video_inf_mode
    dataset = build_eval_dataset(cfg, section[folder_key], mode, settings.video_num_segments,
                                 labelled=action == "evaluate")
    batches = [batch for step in build_eval_loader(cfg, dataset, settings.batch_size, workers=0) for batch in step]
    return dataset, batches, ClipNormaliser.from_config(cfg)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loader_case_matches_tao(name: str):
    case = CASES[name]
    dataset, batches, normaliser = _run_case(case)
    clips = case["clips"]
    assert len(dataset) == len(clips) == case["num_clips"]
    for index, expected in enumerate(clips):
        ours = dataset.frames(index)
        for folder, frames in expected["frames"].items():
            assert ours["rgb" if folder == "rgb" else "of"] == frames, (index, folder)
    labels = [label for batch in batches for label in batch.labels.tolist()]
    assert labels == [-1 if clip["label"] is None else clip["label"] for clip in clips]
    video_ids = [video_id for batch in batches for video_id in batch.video_ids]
    assert [clip["video"].endswith(video_id) for clip, video_id in zip(clips, video_ids, strict=True)] == \
        [True] * len(clips)
    assert [i for batch in batches for i in batch.clip_index.tolist()] == [clip["clip_in_video"] for clip in clips]
    assert sum(dataset.clips_per_video.values()) == len(clips)
    for input_name, tensor in case["tensors"].items():
        expected = np.load(DATA / tensor["file"])
        stream = STREAM_OF_INPUT[input_name]
        ours = torch.cat([normaliser.normalise(stream, batch.inputs[stream]) for batch in batches]).numpy()
        assert ours.dtype == np.float32 and ours.shape == tuple(tensor["shape"]) == expected.shape
        difference = float(np.abs(ours - expected).max())
        assert difference <= TOLERANCE, (input_name, difference)
        if case["spec"]["model"]["input_height"] == 32 and not case["spec"]["dataset"]["augmentation_config"][
                "val_center_crop"]:
            assert difference == 0.0  # no resize: (png / 255 - mean) / std, bit-exact in float32


# -- TAO's eval-time samplers, through eval_clip_indices ---------------------------------------------------------
def _rows(prefix: str) -> list:
    (key,) = [k for k in SAMPLERS if k.split("[")[0] == prefix]
    return SAMPLERS[key]


def _single(n: int, seq: int, strategy: str, rate: int, mode: str, input_type: str, segments: int = 1,
            model_type: str = "rgb") -> list[list[int]]:
    clip = ClipSpec(model_type=model_type, input_type=input_type, rgb_seq_length=seq, of_seq_length=seq,
                    sample_strategy=strategy, sample_rate=rate)
    stream = clip.streams[0]
    return [pick[stream] for pick in eval_clip_indices({"rgb": n, "u": n, "v": n}, clip, mode, segments)]


def _joint(n: int, rgb: int, of: int, strategy: str, rate: int) -> list[list[int]]:
    clip = ClipSpec(model_type="joint", rgb_seq_length=rgb, of_seq_length=of, sample_strategy=strategy,
                    sample_rate=rate)
    (pick,) = eval_clip_indices({"rgb": n, "u": n, "v": n}, clip, "center")
    return [pick["rgb"], pick["of"]]


@pytest.mark.parametrize("model_type", ["rgb", "of"])
@pytest.mark.parametrize("input_type", ["2d", "3d"])
def test_center_samplers(model_type: str, input_type: str):
    for n, seq, expected in _rows("test_interval_sample"):
        assert _single(n, seq, "random_interval", 1, "center", input_type, model_type=model_type) == [expected]
        if input_type == "3d":  # 3d all + random_interval is the centre clip
            assert _single(n, seq, "random_interval", 1, "all", "3d", model_type=model_type) == [expected]
    for n, seq, rate, expected in _rows("test_consecutive_sample"):
        assert _single(n, seq, "consecutive", rate, "center", input_type, model_type=model_type) == [expected], \
            (n, seq, rate)


def test_3d_all_consecutive_is_one_clip_of_every_frame():
    for n, seq, rate, expected in _rows("test_consecutive_sample_all_frames_3d"):
        assert _single(n, seq, "consecutive", rate, "all", "3d") == [expected]
        assert _single(n, seq, "consecutive", rate, "all", "3d", model_type="of") == [expected]


def test_clip_list_samplers():
    for n, seq, expected in _rows("get_clips_list_random_interval"):
        assert _single(n, seq, "random_interval", 1, "all", "2d") == expected
        for input_type in ("2d", "3d"):  # conv + random_interval ignores the segment count
            assert _single(n, seq, "random_interval", 1, "conv", input_type, segments=3) == expected
    for n, seq, rate, expected in _rows("get_clips_list_consecutive_all"):
        assert _single(n, seq, "consecutive", rate, "all", "2d") == expected, (n, seq, rate)
        assert _single(n, seq, "consecutive", rate, "all", "2d", model_type="of") == expected
    for n, seq, rate, segments, expected in _rows("get_clips_list_consecutive_conv"):
        for input_type in ("2d", "3d"):
            assert _single(n, seq, "consecutive", rate, "conv", input_type, segments) == expected, (n, seq, rate)


def test_joint_center_samplers():
    for n, rgb, of, expected in _rows("joint_test_interval_sample"):
        assert _joint(n, rgb, of, "random_interval", 1) == expected, (n, rgb, of)
    for n, rgb, of, rate, expected in _rows("joint_test_consecutive_sample"):
        assert _joint(n, rgb, of, "consecutive", rate) == expected, (n, rgb, of, rate)


def test_joint_equal_lengths_consecutive_center_ignores_the_sample_rate():
    """TAO's quirk, kept for parity: rgb and of of equal length sample the centre clip with rate 1."""
    assert _joint(20, 4, 4, "consecutive", 3) == [[8, 9, 10, 11]] * 2
    assert _single(20, 4, "consecutive", 3, "center", "2d") == [[4, 7, 10, 13]]  # single streams use the rate
