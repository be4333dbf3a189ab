"""``action_recognition train|evaluate|inference|export -e SPEC.yaml [dotted.key=value ...]``.

The model's command line, compatible with TAO's: a spec file plus dotted overrides. Imports torch only
after the arguments are read, so ``--help`` is instant. Exit codes: 0 success, 1 the action failed
(a FAILURE line in status.json), 2 the spec or command line is wrong (the message names the key).
"""
from __future__ import annotations

import argparse
import logging
import sys

ACTIONS = {
    "train": "Train a model; writes <results_dir>/train/model_epoch_<EEE>_step_<SSSSS>.pth, "
             "ar_model_latest.pth (best files too with train.checkpointer.enable_topk), experiment.yaml and "
             "status.json. Rerun on the same results_dir to resume from ar_model_latest.pth (as TAO).",
    "evaluate": "Evaluate a checkpoint on a labelled test set (evaluate.checkpoint, evaluate.test_dataset_dir); "
                "writes <results_dir>/evaluate/results.json and confusion_matrix.png.",
    "inference": "Classify every video of a folder (inference.checkpoint, inference.inference_dataset_dir); "
                 "writes <results_dir>/inference/predictions.csv and predictions.json.",
    "export": "Export a checkpoint to ONNX (export.checkpoint, export.onnx_file, export.batch_size; "
              "-1 = dynamic batch) and check it against PyTorch with onnxruntime.",
}

EPILOG = """\
examples:
  action_recognition train -e spec_template_train.yaml results_dir=/tmp/ar \\
      dataset.train_dataset_dir=/data/train dataset.val_dataset_dir=/data/test train.num_epochs=5
  action_recognition evaluate -e spec_template_evaluate.yaml results_dir=/tmp/ar \\
      evaluate.checkpoint=/tmp/ar/train/ar_model_latest.pth evaluate.test_dataset_dir=/data/test
  action_recognition export -e spec_template_export.yaml results_dir=/tmp/ar \\
      export.checkpoint=/tmp/ar/train/model_epoch_004_step_00040.pth export.batch_size=-1

Overrides are dotted spec keys with YAML values (model.input_width=112, train.optim.lr_steps=[5,8],
dataset.label_map='{catch: 0, smile: 1}'); they replace the spec file's values. Outputs go to
<action>.results_dir when set, else <results_dir>/<action>, with experiment.yaml (the resolved spec)
and status.json (TAO's status lines). Exit codes: 0 ok, 1 the action failed or was interrupted (a
FAILURE line in status.json), 2 bad spec or arguments.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="action_recognition",
        description="Train, evaluate, run and export the action-recognition model (RGB, optical flow or "
                    "joint two-stream; 2D/3D ResNet or I3D) from a TAO-style experiment spec.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in ACTIONS.items():
        p = sub.add_parser(name, help=text, description=text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-e", "--experiment_spec_file", "--experiment-spec", dest="spec", metavar="SPEC.yaml",
                       help=f"experiment spec (YAML), e.g. the skill's references/spec_template_{name}.yaml")
        p.add_argument("overrides", nargs="*", metavar="dotted.key=value",
                       help="spec overrides, e.g. train.num_epochs=5 results_dir=/tmp/ar")
    return parser


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (test capture replaces it), flushing every line."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_logging() -> None:
    """One line per record on stdout, flushed at once (job followers read the log as it grows).

    In data-parallel training every process runs this command and shares the job's log: only the global
    rank zero writes INFO lines and warnings; the other processes report errors only.
    """
    from .status_log import is_rank_zero

    logger = logging.getLogger("skillbank.action_recognition")
    if not logger.handlers:
        handler = _StdoutHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[action_recognition] %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if is_rank_zero() else logging.ERROR)
        logger.propagate = False
    if not is_rank_zero():
        import warnings

        warnings.simplefilter("ignore")


def run_action(action: str, spec: str | None, overrides: list[str]) -> int:
    """Load the spec and run ``action``; returns the exit code."""
    from skillbank.runtime.config.loading import ConfigError

    from .spec_io import load_config

    configure_logging()
    log = logging.getLogger("skillbank.action_recognition")
    try:
        cfg = load_config(spec, overrides, action)
        if action == "train":
            from . import train as module
        elif action == "evaluate":
            from . import evaluate as module
        elif action == "inference":
            from . import inference as module
        else:
            from . import export as module
        return module.run(cfg)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2


def preload() -> None:
    """Import what the actions run on (torch, Lightning, the model, its data) and run nothing.

    A warm job starter (the local platform's warm_server) calls it once, then forks each job from itself;
    it must start no thread and touch no GPU, which a fork would not carry over.
    """
    import pytorch_lightning  # noqa: F401 - imported for the forks, not used here
    import torch  # noqa: F401

    from . import callbacks, checkpoint_io, evaluate, lightning_module, pretrained, spec_io, train  # noqa: F401
    from .data import datamodule  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: this process's); returns the exit code.

    Run as the command itself (``argv`` None: the console script, ``python -m``), the process ends here,
    without the interpreter's teardown (fast_exit.py): a job's end is not a second late.
    """
    args = build_parser().parse_args(argv)
    if args.spec is None and not args.overrides:
        build_parser().parse_args([args.action, "--help"])
    code = run_action(args.action, args.spec, list(args.overrides))
    if argv is None:
        from skillbank.runtime.fast_exit import exit_now

        exit_now(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
