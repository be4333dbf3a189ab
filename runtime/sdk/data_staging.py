"""Stage a job's inputs before launch (S3 downloads, archive extraction) and upload its outputs after.

``stage_inputs`` reads the action's ``inputs`` from skill_info.yaml (dotted
field -> ``{type: folder|file, optional}``) and returns a new spec in which
every ``s3://`` URI and every archive of a folder field is replaced by the
local folder or file that holds the data, under ``<inputs_dir>/<field>``.
Plain local paths pass through unchanged.
"""
from __future__ import annotations

import copy
import logging
import posixpath
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from skillbank.runtime.sdk import s3
from skillbank.runtime.sdk.archives import is_archive, safe_extract
from skillbank.runtime.spec_builder import get_dotted, set_dotted

log = logging.getLogger(__name__)

FOLDER, FILE = "folder", "file"
DOWNLOADS = ".downloads"  # archives fetched from S3 wait here until they are extracted


def _stage_value(value: Any, kind: str, target: Path, downloads: Path) -> Any:
    """The local replacement for one input value (or the value itself when nothing needs staging)."""
    if not isinstance(value, str) or not value:
        return value
    if s3.is_s3_uri(value):
        if kind == FOLDER and is_archive(value):
            archive = s3.download_file(value, downloads / posixpath.basename(value.rstrip("/")))
            try:
                return str(safe_extract(archive, target, replace=True))
            finally:
                archive.unlink(missing_ok=True)
        if kind == FOLDER:
            return str(s3.download_prefix(value, target))
        target.mkdir(parents=True, exist_ok=True)
        return str(s3.download_file(value, target / posixpath.basename(value)))
    # A file field may legitimately name a tar file; only folder fields are unpacked.
    if kind == FOLDER and is_archive(value) and Path(value).is_file():
        return str(safe_extract(Path(value), target, replace=True))
    return value


def stage_inputs(spec: dict[str, Any], inputs: dict[str, dict[str, Any]], inputs_dir: Path) -> dict[str, Any]:
    """A new spec whose S3/archive inputs point at local copies under ``inputs_dir/<field>``.

    ``inputs`` is skill_info's ``actions.<action>.inputs``. Folder fields:
    an S3 prefix is downloaded, an archive (local or S3) is extracted safely
    and the folder holding the data is used. File fields: an S3 object is
    downloaded to ``inputs_dir/<field>/<name>``. Empty and local values are
    kept. List values are staged element by element (``<field>/<index>``).
    The given spec is not changed.
    """
    inputs_dir = Path(inputs_dir)
    staged = copy.deepcopy(spec)
    downloads = inputs_dir / DOWNLOADS
    try:
        for field, info in (inputs or {}).items():
            kind = str((info or {}).get("type", FOLDER))
            if kind not in (FOLDER, FILE):
                raise ValueError(f"input {field!r} has type {kind!r}; allowed: {FOLDER}, {FILE}")
            value = get_dotted(spec, field)
            if isinstance(value, list):
                new_value: Any = [
                    _stage_value(item, kind, inputs_dir / field / str(i), downloads / field / str(i))
                    for i, item in enumerate(value)
                ]
            else:
                new_value = _stage_value(value, kind, inputs_dir / field, downloads / field)
            if new_value != value:
                log.info("staged %s: %s -> %s", field, value, new_value)
                set_dotted(staged, field, new_value)
    finally:
        shutil.rmtree(downloads, ignore_errors=True)
    return staged


def upload_outputs(local_dir: Path, results_uri: str, excludes: Iterable[str] = ()) -> list[str]:
    """Upload a job's results folder to ``results_uri`` minus ``excludes`` (e.g. ``inputs/``)."""
    uploaded = s3.upload_dir(Path(local_dir), results_uri, excludes=list(excludes))
    log.info("uploaded %d result files to %s", len(uploaded), results_uri)
    return uploaded

