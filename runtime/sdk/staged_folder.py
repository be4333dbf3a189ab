"""Fill a folder completely, then put it in place: readers never see a half-written folder.

Archive extraction and S3 prefix downloads both build their result in a
temporary folder beside the target and rename it onto the target only when
every file arrived; a failure leaves the target as it was.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_folder(dest: Path, purpose: str) -> Iterator[Path]:
    """Yield an empty folder beside ``dest`` (``.<name>.<purpose>-*``) that replaces ``dest`` when the block ends.

    The old ``dest`` (if any) is removed only after the new folder is in
    place; when the block raises, the staged folder is removed and ``dest``
    is untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{purpose}-", dir=dest.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; the data is read by containers too
    try:
        yield staging
        if dest.exists():
            # Two renames, not rmtree-then-rename: dest is never missing while the old content goes.
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rename(dest, old / "content")
            os.rename(staging, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
