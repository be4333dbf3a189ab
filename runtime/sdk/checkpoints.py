"""Checkpoint selection: the one place that decides which exact file a job's results hold.

Rules (used by every caller: spec-param inference, job records, AutoML):

* Candidates are files under the results folder (local path or ``s3://`` URI)
  whose suffix is a checkpoint artifact (``.pth .ckpt .pt .tlt .hdf5``; plus
  ``.onnx .engine`` when the producing action was ``export``).
* Skipped: anything under ``lightning_logs/`` or ``inputs/`` (staged inputs are
  not outputs), and any name containing ``_latest`` (a moving link, never exact).
* Epoch and step come from names like ``model_epoch_004_step_00120.pth``
  (``epoch=4``, ``step=120``; either may be missing).
* When the producer recorded a best checkpoint (its job record's
  ``best_checkpoint``: a base name, a path relative to its results folder or
  to the action's folder in it, e.g. ``model_best_004.pth`` from
  ``train.checkpointer``, or an absolute path; taken from the last
  ``best_checkpoint`` key in its ``status.json`` events), that file is chosen
  and must exist among the candidates (an absolute path: on disk). Best
  files carry no ``epoch``/``step`` numbers in their default names, so they
  never count as the newest.
* Otherwise the newest: highest ``(epoch, step)``; names without numbers rank
  below numbered ones. Ties are broken by artifact type in the order above
  (``.pth`` first), then by the shortest relative path, then alphabetically,
  so the same listing always gives the same answer.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from skillbank.runtime.errors import SkillbankError

CHECKPOINT_SUFFIXES = (".pth", ".ckpt", ".pt", ".tlt", ".hdf5")
EXPORT_SUFFIXES = (".onnx", ".engine")
SKIPPED_FOLDERS = ("lightning_logs", "inputs")
_EPOCH = re.compile(r"epoch[_=-]?(\d+)", re.IGNORECASE)
_STEP = re.compile(r"step[_=-]?(\d+)", re.IGNORECASE)


class CheckpointError(SkillbankError, LookupError):
    """No usable checkpoint where one is required (the message names where it looked)."""


@dataclass(frozen=True)
class Checkpoint:
    location: str  # absolute local path or s3:// URI
    relative: str  # path below the results folder, POSIX separators
    epoch: int | None
    step: int | None

    @property
    def name(self) -> str:
        return PurePosixPath(self.relative).name

    @property
    def folder(self) -> str:
        if self.location.startswith("s3://"):
            return self.location.rsplit("/", 1)[0]
        return str(Path(self.location).parent)


def parse_epoch_step(name: str) -> tuple[int | None, int | None]:
    """``model_epoch_004_step_00120.pth`` -> (4, 120); missing parts are None."""
    stem = PurePosixPath(name).name
    epoch, step = _EPOCH.search(stem), _STEP.search(stem)
    return (int(epoch.group(1)) if epoch else None, int(step.group(1)) if step else None)


def artifact_suffixes(action: str | None = None) -> tuple[str, ...]:
    return CHECKPOINT_SUFFIXES + EXPORT_SUFFIXES if action == "export" else CHECKPOINT_SUFFIXES


def is_checkpoint(relative: str, action: str | None = None) -> bool:
    """Whether a path below a results folder is a selectable checkpoint artifact."""
    parts = PurePosixPath(relative).parts
    if not parts or any(part in SKIPPED_FOLDERS for part in parts[:-1]):
        return False
    name = parts[-1]
    if "_latest" in name.lower():
        return False
    return name.lower().endswith(artifact_suffixes(action))


def list_files(results: str | os.PathLike, skipped: tuple[str, ...] = SKIPPED_FOLDERS) -> list[tuple[str, str]]:
    """Every file under ``results`` (a local folder or an ``s3://`` URI) as (location, relative path), by
    relative path, except those under a folder named in ``skipped``; symlinks are listed but not followed."""
    text = str(results)
    if text.startswith("s3://"):
        from skillbank.runtime.sdk import s3  # boto3 only when S3 is really used

        prefix = text.rstrip("/") + "/"
        found = [(uri, uri[len(prefix):]) for uri in s3.list_objects(prefix) if uri.startswith(prefix)]
        return sorted((row for row in found if not set(row[1].split("/")[:-1]) & set(skipped)), key=lambda r: r[1])
    root = Path(results)
    if not root.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skipped)
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            found.append((str(path.absolute()), path.relative_to(root).as_posix()))
    return found


def list_checkpoints(results: str | os.PathLike, action: str | None = None) -> list[Checkpoint]:
    """The checkpoint artifacts under ``results``, best first by the module's ordering rules."""
    found = [
        Checkpoint(location, relative, *parse_epoch_step(relative))
        for location, relative in list_files(results)
        if is_checkpoint(relative, action)
    ]
    return order_checkpoints(found, action)


def order_checkpoints(checkpoints: list[Checkpoint], action: str | None = None) -> list[Checkpoint]:
    """Newest first: (epoch, step) descending, then artifact type, shortest path, name."""
    suffixes = artifact_suffixes(action)

    def rank(ckpt: Checkpoint) -> tuple:
        suffix = next((i for i, s in enumerate(suffixes) if ckpt.name.lower().endswith(s)), len(suffixes))
        numbered = ckpt.epoch is not None or ckpt.step is not None
        return (
            0 if numbered else 1,
            -(ckpt.epoch if ckpt.epoch is not None else -1),
            -(ckpt.step if ckpt.step is not None else -1),
            suffix,
            len(ckpt.relative),
            ckpt.relative,
        )

    return sorted(checkpoints, key=rank)


def choose_checkpoint(
    checkpoints: list[Checkpoint], *, best: str | None = None, action: str | None = None, where: str = ""
) -> Checkpoint:
    """Pick one checkpoint: the recorded best when given, otherwise the newest."""
    if not checkpoints:
        raise CheckpointError(f"no checkpoint artifacts ({', '.join(artifact_suffixes(action))}) in {where}")
    if best:
        if os.path.isabs(best) and not best.startswith("s3://"):
            inside = [c for c in checkpoints if c.location == best]
            if inside:
                return inside[0]
            if Path(best).is_file():  # train.checkpointer.dirpath outside the results folder
                return Checkpoint(best, PurePosixPath(best).name, *parse_epoch_step(best))
        wanted = best.replace(os.sep, "/").strip("/")
        matches = ([c for c in checkpoints if c.relative == wanted]
                   or [c for c in checkpoints if c.relative.endswith("/" + wanted)]
                   or [c for c in checkpoints if c.name == PurePosixPath(wanted).name])
        if not matches:
            names = ", ".join(c.relative for c in checkpoints[:5])
            raise CheckpointError(f"recorded best checkpoint {best!r} is not in {where} (found: {names})")
        return order_checkpoints(matches, action)[0]
    return order_checkpoints(checkpoints, action)[0]


def select_checkpoint(
    results: str | os.PathLike, *, action: str | None = None, best: str | None = None
) -> Checkpoint:
    """The exact checkpoint to use from a results folder (see the module rules)."""
    return choose_checkpoint(list_checkpoints(results, action), best=best, action=action, where=str(results))


def newest_checkpoint(results: str | os.PathLike, action: str | None = None) -> Checkpoint | None:
    """The newest checkpoint under ``results``, or None when there is none (resume inference)."""
    found = list_checkpoints(results, action)
    return found[0] if found else None
