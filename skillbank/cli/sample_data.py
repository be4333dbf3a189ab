"""``skillbank sample-data``: write the synthetic action-recognition sample data set."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click


def _parse_classes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from skillbank.runtime.action_recognition.sample_data import check_class_names

    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        raise click.BadParameter(f"need at least two distinct comma-separated class names, got {value!r}")
    try:
        return tuple(check_class_names(names))  # the data set's own rule: a bad name is a usage error (exit 2)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    from skillbank.runtime.action_recognition.sample_data import MAX_SIDE

    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 32x32, got {value!r}") from None
    if min(width, height) < 8 or max(width, height) > MAX_SIDE:
        raise click.BadParameter(f"both sides must be from 8 to {MAX_SIDE} pixels, got {value!r}")
    return width, height


@click.command("sample-data")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--classes", default="catch,smile", show_default=True, callback=_parse_classes,
              help="Comma-separated class names; class i of n moves at -90+180*i/(n-1) degrees (up .. down).")
@click.option("--videos-per-class", default=8, show_default=True, type=click.IntRange(min=1),
              help="Videos per class in EACH of train and test.")
@click.option("--frames", default=16, show_default=True, type=click.IntRange(min=2, max=1000),
              help="Frames per video.")
@click.option("--size", default="32x32", show_default=True, callback=_parse_size, help="Frame size WIDTHxHEIGHT.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option("--frame-format", type=click.Choice(["png", "jpeg"]), default="png", show_default=True,
              help="Frame files: lossless PNG, or JPEG (<frame>.jpg) as real data sets hold them.")
@click.option("--overwrite", is_flag=True, help="Replace existing OUTDIR/train, test and inference folders.")
def sample_data(outdir: str, classes: tuple[str, ...], videos_per_class: int, frames: int,
                size: tuple[int, int], seed: int, frame_format: str, overwrite: bool) -> None:
    """Write a synthetic action-recognition data set to OUTDIR.

    \b
    OUTDIR/train/<class>/<video>/{rgb,u,v}/<frame>.png   and OUTDIR/train.tar.gz
    OUTDIR/test/<class>/<video>/{rgb,u,v}/<frame>.png    and OUTDIR/test.tar.gz
    OUTDIR/inference/<video>/{rgb,u,v}/<frame>.png       and OUTDIR/inference.tar.gz
    OUTDIR/inference_labels.csv  (video,class: the answers, kept outside inference/)
    (<frame>.jpg with --frame-format jpeg)

    inference/ is unlabelled: videos of every class, shuffled, named video_000 ...
    Archives lie beside the folders, never inside a labelled split.

    Each class is a direction of motion (up/down for two classes, mirrored left/right at
    random, so horizontal flips keep the class); a single frame cannot tell classes apart.
    u/v hold the true optical flow. Label map: {class: index} in the order given.
    """
    started = time.monotonic()
    try:
        made = write_sample_data(outdir, classes=classes, videos_per_class=videos_per_class, frames=frames,
                                 size=size, seed=seed, overwrite=overwrite, frame_format=frame_format)
    except (FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    label_map = ", ".join(f"{name}: {index}" for name, index in made["label_map"].items())
    click.echo(f"wrote sample data to {made['outdir']} in {time.monotonic() - started:.1f}s")
    click.echo(f"  train: {made['train']}  ({made['train_archive']})")
    click.echo(f"  test:  {made['test']}  ({made['test_archive']})")
    click.echo(f"  inference: {made['inference']}  ({made['inference_archive']}; answers in "
               f"{made['inference_labels']})")
    click.echo(f"  dataset.label_map: {{{label_map}}}")


def write_sample_data(outdir: str | Path, *, classes: tuple[str, ...] = ("catch", "smile"), videos_per_class: int = 8,
                      frames: int = 16, size: tuple[int, int] = (32, 32), seed: int = 0,
                      overwrite: bool = False, frame_format: str = "png") -> dict[str, Any]:
    """Write the sample data set; where each part is and the label map (`sample-data`, the MCP tool sample_data).

    Raises FileExistsError (parts exist, no ``overwrite``) or ValueError (bad classes, sizes, frame format).
    """
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    out = make_sample_data(outdir, classes=classes, videos_per_class=videos_per_class, frames=frames,
                           size=size, seed=seed, overwrite=overwrite, frame_format=frame_format)
    return {"outdir": str(out), "train": str(out / "train"), "train_archive": str(out / "train.tar.gz"),
            "test": str(out / "test"), "test_archive": str(out / "test.tar.gz"),
            "inference": str(out / "inference"), "inference_archive": str(out / "inference.tar.gz"),
            "inference_labels": str(out / "inference_labels.csv"),
            "label_map": {name: index for index, name in enumerate(classes)}}
