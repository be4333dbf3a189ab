"""``skillbank sample-data``: write the synthetic action-recognition sample data set."""
from __future__ import annotations

import time

import click


def _parse_classes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if len(names) < 2 or len(set(names)) != len(names):
        raise click.BadParameter(f"need at least two distinct comma-separated class names, got {value!r}")
    return names


def _parse_size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 32x32, got {value!r}") from None
    if min(width, height) < 8:
        raise click.BadParameter(f"both sides must be >= 8 pixels, got {value!r}")
    return width, height


@click.command("sample-data")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--classes", default="catch,smile", show_default=True, callback=_parse_classes,
              help="Comma-separated class names; class i of n moves at -90+180*i/(n-1) degrees (up .. down).")
@click.option("--videos-per-class", default=8, show_default=True, type=click.IntRange(min=1),
              help="Videos per class in EACH of train and test.")
@click.option("--frames", default=16, show_default=True, type=click.IntRange(min=2), help="Frames per video.")
@click.option("--size", default="32x32", show_default=True, callback=_parse_size, help="Frame size WIDTHxHEIGHT.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option("--overwrite", is_flag=True, help="Replace existing OUTDIR/train and OUTDIR/test folders.")
def sample_data(outdir: str, classes: tuple[str, ...], videos_per_class: int, frames: int,
                size: tuple[int, int], seed: int, overwrite: bool) -> None:
    """Write a synthetic action-recognition data set to OUTDIR.

    \b
    OUTDIR/train/<class>/<video>/{rgb,u,v}/<frame>.png   and OUTDIR/train.tar.gz
    OUTDIR/test/<class>/<video>/{rgb,u,v}/<frame>.png    and OUTDIR/test.tar.gz
    OUTDIR/test/smile/  (inference layout <dir>/<video>/rgb) and OUTDIR/test/smile.tar.gz

    Each class is a direction of motion (up/down for two classes, mirrored left/right at
    random, so horizontal flips keep the class); a single frame cannot tell classes apart.
    u/v hold the true optical flow. Label map: {class: index} in the order given.
    """
    from skillbank.runtime.action_recognition.sample_data import make_sample_data

    started = time.monotonic()
    try:
        out = make_sample_data(outdir, classes=classes, videos_per_class=videos_per_class, frames=frames,
                               size=size, seed=seed, overwrite=overwrite)
    except (FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    label_map = ", ".join(f"{name}: {index}" for index, name in enumerate(classes))
    inference = "smile" if "smile" in classes else classes[-1]
    click.echo(f"wrote sample data to {out} in {time.monotonic() - started:.1f}s")
    click.echo(f"  train: {out / 'train'}  ({out / 'train.tar.gz'})")
    click.echo(f"  test:  {out / 'test'}  ({out / 'test.tar.gz'})")
    click.echo(f"  inference: {out / 'test' / inference}  ({out / 'test' / (inference + '.tar.gz')})")
    click.echo(f"  dataset.label_map: {{{label_map}}}")
