"""Experiment config of the action-recognition model: the single source of truth.

Field names, defaults, bounds and enums follow TAO's action-recognition
experiment config, so a spec written for TAO parses here unchanged. The packaged
JSON schemas, the manifest and the spec templates are generated from these
classes (``make regen-schemas``); the runtime reads specs back into them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .fields import section, spec_field

RESULTS_DIR_DESCRIPTION = "Path to where all the assets generated from a task are stored."


@dataclass
class WandbConfig:
    """Weights & Biases logging."""

    enable: bool = spec_field(True, description="Log to Weights & Biases when it is installed and configured.")
    project: str = spec_field("TAO Toolkit", description="Weights & Biases project name.")
    entity: str = spec_field("", description="Weights & Biases entity (team or user).")
    group: str = spec_field("", description="Weights & Biases run group.")
    tags: list[str] = spec_field(["tao-toolkit"], description="Weights & Biases run tags.", automl_enabled=False)
    reinit: bool = spec_field(False, description="Allow several runs in one process.")
    sync_tensorboard: bool = spec_field(False, description="Sync TensorBoard logs to Weights & Biases.")
    save_code: bool = spec_field(False, description="Save the code with the run.")
    name: str = spec_field("TAO Toolkit Training", description="Weights & Biases run name.")
    run_id: str = spec_field("", description="Weights & Biases run id to resume.")


@dataclass
class ModelConfig:
    """Network architecture."""

    model_type: str = spec_field(
        "rgb", description="The type of model architecture: [rgb, of, joint].", enum=["rgb", "of", "joint"]
    )
    backbone: str = spec_field(
        "resnet_18",
        description="The backbone of model architecture.",
        enum=["resnet_18", "resnet_34", "resnet_50", "resnet_101", "resnet_152", "i3d"],
    )
    input_type: str = spec_field("2d", description="The type of model input: [2d, 3d].", enum=["2d", "3d"])
    of_seq_length: int = spec_field(10, description="The optical flow sequence length.", minimum=1)
    of_pretrained_model_path: str = spec_field(
        "", description="The pretrained weights for optical flow model.", nullable=True
    )
    of_pretrained_num_classes: int = spec_field(
        5, description="The classes number of the pretrained weights for optical flow model.", minimum=0
    )
    rgb_seq_length: int = spec_field(3, description="The RGB sequence length.", minimum=1)
    rgb_pretrained_model_path: str = spec_field(
        "", description="The pretrained weights for RGB model.", nullable=True
    )
    rgb_pretrained_num_classes: int = spec_field(
        5, description="The classes number of the pretrained weights for RGB model.", minimum=0
    )
    num_fc: int = spec_field(64, description="The number of hidden units in fully-connected layer.", minimum=1)
    joint_pretrained_model_path: str = spec_field(
        "", description="The pretrained weights for joint pretrained model.", nullable=True
    )
    sample_strategy: str = spec_field(
        "random_interval",
        description="The sample strategy to sample frames from videos.",
        enum=["random_interval", "consecutive"],
    )
    sample_rate: int = spec_field(1, description="The sample rate to sample frames from videos.", minimum=1)
    imagenet_pretrained: bool = spec_field(
        False, description="The bool flag to load imagenet pretrained weights."
    )
    dropout_ratio: float = spec_field(
        0.5, description="The dropout ratio for the model.", minimum=0.0, maximum=1.0, automl_enabled=True
    )
    input_width: int = spec_field(224, description="The input width of the model.", minimum=1)
    input_height: int = spec_field(224, description="The input height of the model.", minimum=1)


@dataclass
class AugmentationConfig:
    """Data augmentation."""

    train_crop_type: str = spec_field(
        "random_crop",
        description="Crop type to crop image patches from the original input image.",
        enum=["random_crop", "multi_scale_crop", "no_crop"],
    )
    scales: list[float] = spec_field([1], description="Scales list for multi_scale_crop.", automl_enabled=False)
    horizontal_flip_prob: float = spec_field(
        0.5, description="Probability to apply horizontal flip to images.", minimum=0.0, maximum=1.0
    )
    rgb_input_mean: list[float] = spec_field(
        [0.485, 0.456, 0.406],
        description="Mean value per channel to be subtracted for RGB input.",
        automl_enabled=False,
    )
    rgb_input_std: list[float] = spec_field(
        [0.229, 0.224, 0.225], description="Std value to be divided for RGB input.", automl_enabled=False
    )
    of_input_mean: list[float] = spec_field(
        [0.5], description="Mean value per channel to be subtracted for optical flow input.", automl_enabled=False
    )
    of_input_std: list[float] = spec_field(
        [0.5], description="Std value to be divided for optical flow input.", automl_enabled=False
    )
    val_center_crop: bool = spec_field(False, description="Bool flag to apply center crop in validation.")
    crop_smaller_edge: int = spec_field(
        256, description="Smaller edge length of the center crop in validation.", minimum=1
    )


@dataclass
class DatasetConfig:
    """Data sets and loading."""

    train_dataset_dir: str = spec_field("", description="Absolute path to train dataset.", nullable=True)
    val_dataset_dir: str = spec_field("", description="Absolute path to validation dataset.", nullable=True)
    label_map: dict[str, int] = spec_field(
        None,
        description="Dict mapping the class to class index",
        automl_enabled=False,
        example={"catch": 0, "smile": 1},
        example_actions=("train",),
        omit_default=True,
        nullable=True,
    )
    batch_size: int = spec_field(2, description="Batch size of model input.", minimum=1)
    workers: int = spec_field(8, description="Number of workers to process data.", minimum=0)
    clips_per_video: int = spec_field(1, description="Number of clips sampled from single video.", minimum=1)
    augmentation_config: AugmentationConfig = section(
        AugmentationConfig, description="Configurable parameters for dataset augmentation."
    )


@dataclass
class CudnnConfig:
    """cuDNN flags."""

    benchmark: bool = spec_field(False, description="Let cuDNN pick the fastest algorithms (not deterministic).")
    deterministic: bool = spec_field(True, description="Use deterministic cuDNN algorithms.")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    lr: float = spec_field(0.0005, description="Learning rate for training.", minimum=0.0, automl_enabled=True)
    momentum: float = spec_field(0.9, description="Momentum coefficient for SGD.", minimum=0.0, maximum=1.0)
    weight_decay: float = spec_field(0.0005, description="Weight decay coefficient for training.", minimum=0.0)
    lr_scheduler: str = spec_field(
        "MultiStep", description="Learning rate scheduler.", enum=["MultiStep", "AutoReduce"]
    )
    lr_monitor: str = spec_field(
        "val_loss",
        description="Learning rate monitor for AutoReduce learning rate scheduler.",
        enum=["val_loss", "train_loss"],
    )
    patience: int = spec_field(
        1, description="Number of epochs for AutoReduce learning rate scheduler tolerance.", minimum=0
    )
    min_lr: float = spec_field(0.0001, description="Minimum learning rate.", minimum=0.0)
    lr_steps: list[int] = spec_field(
        [15, 25], description="Steps to change learning rate in MultiStep scheduler.", automl_enabled=False
    )
    lr_decay: float = spec_field(
        0.1, description="Learning rate decay factor in learning rate scheduler.", minimum=0.0, maximum=1.0
    )


@dataclass
class CheckpointerConfig:
    """Metric-ranked ("best") checkpoints, tao-core's ``train.checkpointer``.

    Unset ``monitor`` means ``val_acc``; unset ``mode`` means ``max``, or ``min`` for a monitor ending in
    ``loss``. Best files are ``<dirpath or the train results folder>/<filename>.pth``.
    """

    enable_topk: bool = spec_field(
        False,
        description="Save checkpoint(s) ranked by a monitored metric. This is additive to periodic checkpoints "
        "unless replace_periodic is enabled.",
        title="Enable best-checkpoint saving",
    )
    replace_periodic: bool = spec_field(
        False,
        description="When best-checkpoint saving is enabled, delete periodic checkpoints as they are superseded: "
        "only the newest one (for resuming and ar_model_latest.pth) and the best ones are kept.",
        title="Replace periodic checkpoints",
    )
    monitor: str | None = spec_field(
        None,
        description="Metric that ranks checkpoints: val_acc, val_loss, train_acc or train_loss. Unset: val_acc.",
        title="Monitored metric",
        nullable=True,
    )
    mode: str | None = spec_field(
        None,
        description="min or max. Unset: min for a monitor ending in loss, else max.",
        enum=["min", "max"],
        title="Monitor mode",
        nullable=True,
    )
    save_top_k: int = spec_field(1, description="Number of best checkpoints kept.", minimum=1,
                                 title="Number of best checkpoints")
    filename: str = spec_field(
        "model_best_{epoch:03d}",
        description="Best-checkpoint file name pattern ({epoch}, {step} and metric names; .pth is appended).",
        title="Best-checkpoint filename pattern",
    )
    dirpath: str | None = spec_field(
        None, description="Directory for best checkpoints. Unset: the train results folder.", nullable=True
    )
    auto_insert_metric_name: bool = spec_field(
        False, description="Write {epoch:03d} as epoch=003 (and likewise for metrics) in file names."
    )


@dataclass
class TrainConfig:
    """Training."""

    num_gpus: int = spec_field(
        1, description="The number of GPUs to run the train job.", minimum=1, popular=True, title="Number of GPUs"
    )
    gpu_ids: list[int] = spec_field(
        [0],
        description="List of GPU IDs to run the training on. Its length must equal train.num_gpus.",
        popular=True,
        automl_enabled=False,
        title="GPU IDs",
    )
    num_nodes: int = spec_field(
        1,
        description="Number of nodes to run the training on. If > 1, then multi-node is enabled.",
        minimum=1,
        popular=True,
        title="Number of nodes",
    )
    seed: int = spec_field(
        1234,
        description="The seed for the initializer in PyTorch. If < 0, disable fixed seed.",
        minimum=-1,
        title="Seed for randomization",
    )
    cudnn: CudnnConfig = section(CudnnConfig, description="cuDNN flags.")
    num_epochs: int = spec_field(
        10, description="Number of epochs to run the training.", minimum=1, popular=True, title="Number of epochs"
    )
    checkpoint_interval: int = spec_field(
        1,
        description="The interval (in epochs) at which a checkpoint will be saved. Helps resume training.",
        minimum=1,
        popular=True,
        title="Checkpoint interval",
    )
    checkpoint_interval_unit: str = spec_field(
        "epoch",
        description="The unit of the checkpoint interval.",
        enum=["epoch", "step"],
        title="Checkpoint interval unit",
    )
    validation_interval: int = spec_field(
        1,
        description="The interval (in epochs) at which an evaluation will be triggered on the validation dataset.",
        minimum=1,
        popular=True,
        title="Validation interval",
    )
    resume_training_checkpoint_path: str = spec_field(
        "", description="Path to the checkpoint to resume training from.", title="Resume checkpoint path",
        nullable=True,
    )
    results_dir: str = spec_field("", description=RESULTS_DIR_DESCRIPTION, title="Results directory", nullable=True)
    checkpointer: CheckpointerConfig = section(
        CheckpointerConfig, description="Configurable parameters for best-checkpoint saving.", automl_enabled=None,
        in_template=False,
    )
    optim: OptimConfig = section(OptimConfig, description="Configurable parameters for optimizer.")
    clip_grad_norm: float = spec_field(
        0.0, description="The L2 magnitude of gradient to be clipped in the training.", minimum=0.0
    )


def _gpu_fields(action: str):
    """The device fields shared by evaluate and inference, in TAO's order."""
    return (
        spec_field(1, description=f"The number of GPUs to run the {action} job.", minimum=1, popular=True),
        spec_field([0], description=f"List of GPU IDs to run {action} on.", popular=True, automl_enabled=False),
        spec_field(1, description=f"Number of nodes to run {action} on.", minimum=1, popular=True),
    )


_EVAL_GPUS, _EVAL_GPU_IDS, _EVAL_NODES = _gpu_fields("evaluate")
_INF_GPUS, _INF_GPU_IDS, _INF_NODES = _gpu_fields("inference")


@dataclass
class EvaluateConfig:
    """Evaluation on a labelled test set."""

    num_gpus: int = _EVAL_GPUS
    gpu_ids: list[int] = _EVAL_GPU_IDS
    num_nodes: int = _EVAL_NODES
    checkpoint: str = spec_field(description="Path to the checkpoint to evaluate.", mandatory=True)
    trt_engine: str = spec_field("", description="Path to a TensorRT engine (not used by this runtime).",
                                 nullable=True)
    results_dir: str = spec_field("", description=RESULTS_DIR_DESCRIPTION, title="Results directory", nullable=True)
    batch_size: int = spec_field(1, description="Batch size of evaluation.", minimum=1)
    test_dataset_dir: str = spec_field(description="Path to the test dataset.", mandatory=True)
    video_eval_mode: str = spec_field(
        "center",
        description="How clips are taken from a video, as in TAO: center (one clip), conv (video_num_segments "
        "clips spread over the video; one count per video, its clips' probabilities averaged), all (every clip "
        "TAO's sampler gives; one count per clip).",
        enum=["center", "conv", "all"],
    )
    video_num_segments: int = spec_field(10, description="Number of clips per video in conv mode.", minimum=1)


@dataclass
class InferenceConfig:
    """Inference on a folder of unlabelled videos."""

    num_gpus: int = _INF_GPUS
    gpu_ids: list[int] = _INF_GPU_IDS
    num_nodes: int = _INF_NODES
    checkpoint: str = spec_field(description="Path to the checkpoint to run inference with.", mandatory=True)
    trt_engine: str = spec_field("", description="Path to a TensorRT engine (not used by this runtime).",
                                 nullable=True)
    results_dir: str = spec_field("", description=RESULTS_DIR_DESCRIPTION, title="Results directory", nullable=True)
    batch_size: int = spec_field(1, description="Batch size of inference.", minimum=1)
    inference_dataset_dir: str = spec_field(description="Path to the folder of videos.", mandatory=True)
    video_inf_mode: str = spec_field(
        "center",
        description="How clips are taken from a video: center, conv or all (see evaluate.video_eval_mode).",
        enum=["center", "conv", "all"],
    )
    video_num_segments: int = spec_field(1, description="Number of clips per video in conv mode.", minimum=1)


@dataclass
class ExportConfig:
    """Export to ONNX."""

    checkpoint: str = spec_field(description="Path to the checkpoint to export.", mandatory=True)
    results_dir: str = spec_field("", description=RESULTS_DIR_DESCRIPTION, title="Results directory", nullable=True)
    onnx_file: str = spec_field("", description="Path of the ONNX file to write.", nullable=True)
    gpu_id: int = spec_field(0, description="The GPU to export on.", minimum=0)
    batch_size: int = spec_field(
        1, description="Batch size of the exported model; -1 makes the batch axis dynamic.", minimum=-1
    )


@dataclass
class ExperimentConfig:
    """The whole action-recognition experiment spec."""

    model_name: str = spec_field(
        "", description="Name of model if invoking task via model_agnostic", title="Model name", nullable=True
    )
    encryption_key: str = spec_field(
        "", description="Key for encrypting model checkpoints", title="Encryption key", nullable=True
    )
    results_dir: str = spec_field("", description=RESULTS_DIR_DESCRIPTION, title="Results directory", nullable=True)
    wandb: WandbConfig = section(WandbConfig, description="Weights & Biases logging.")
    model: ModelConfig = section(ModelConfig, description="Configurable parameters for the model.")
    dataset: DatasetConfig = section(DatasetConfig, description="Configurable parameters for the dataset.")
    train: TrainConfig = section(TrainConfig, description="Configurable parameters for a train experiment.")
    evaluate: EvaluateConfig = section(EvaluateConfig, description="Configurable parameters for evaluation.")
    inference: InferenceConfig = section(InferenceConfig, description="Configurable parameters for inference.")
    export: ExportConfig = section(ExportConfig, description="Configurable parameters for export.")


ACTIONS = ("train", "evaluate", "inference", "export")
"""Each action's schema holds the common sections plus ``train`` and its own section."""

COMMON_SECTIONS = ("model_name", "encryption_key", "results_dir", "wandb", "model", "dataset", "train")

# The model settings a trained network is built from (evaluate, inference and export read them).
_NETWORK_FIELDS = tuple(f"model.{name}" for name in (
    "model_type", "backbone", "input_type", "of_seq_length", "rgb_seq_length", "num_fc", "sample_strategy",
    "sample_rate", "dropout_ratio", "input_width", "input_height",
))
# How evaluation and inference turn frames into a clip (TAO's eval transform: no training augmentation).
_EVAL_AUGMENTATION = tuple(f"dataset.augmentation_config.{name}" for name in (
    "rgb_input_mean", "rgb_input_std", "of_input_mean", "of_input_std", "val_center_crop", "crop_smaller_edge",
))

ACTION_READS: dict[str, tuple[str, ...]] = {
    "train": ("encryption_key", "results_dir", "wandb", "model", "dataset", "train"),
    "evaluate": ("encryption_key", "results_dir", *_NETWORK_FIELDS, "dataset.label_map", "dataset.workers",
                 *_EVAL_AUGMENTATION, "evaluate"),
    "inference": ("encryption_key", "results_dir", *_NETWORK_FIELDS, "dataset.label_map", "dataset.workers",
                  *_EVAL_AUGMENTATION, "inference"),
    "export": ("encryption_key", "results_dir", *_NETWORK_FIELDS, "dataset.label_map", "export"),
}
"""The fields (dotted leaves, or sections meaning every leaf below) each action's code reads.

A spec may hold the other fields (TAO's spec files carry every section), but the action ignores
them: ``skillbank schema SKILL ACTION`` lists only these. Packaged as ``x_action_reads``.
"""
