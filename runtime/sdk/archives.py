"""Safe extraction of data-set archives (.tar.gz, .tgz, .tar).

Every member is checked before anything is written: absolute paths, ``..``
escapes, links that point outside the target (or through another link),
device files and FIFOs are refused with an ``UnsafeArchiveError`` naming the
member. Extraction happens in a temporary folder beside the target and is
renamed into place only when it succeeded, so a failure leaves nothing
half-extracted.

Decompression is capped before anything is written: an archive whose content
passes ``SKILLBANK_ARCHIVE_MAX_RATIO`` times its own size, or
``SKILLBANK_ARCHIVE_MAX_BYTES`` in all, or more than the free space at the
target, is refused with an ``ArchiveLimitError`` that names the limit (the
ratio counts once more than 64 MiB would be written). The defaults fit video
data sets, whose frames barely compress; reading stops as soon as a limit is
passed, so a bomb costs no more than the limit.
"""
from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tarfile
from pathlib import Path

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.staged_folder import staged_folder
from skillbank.runtime.settings import ARCHIVE_MAX_BYTES, ARCHIVE_MAX_RATIO, limit

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")

log = logging.getLogger(__name__)


class ArchiveError(SkillbankError, RuntimeError):
    """An archive that cannot be read or extracted (message is one line)."""


class UnsafeArchiveError(ArchiveError):
    """An archive member that would write outside the target folder."""

    def __init__(self, archive: Path | str, member: str, reason: str):
        self.archive = str(archive)
        self.member = member
        self.reason = reason
        super().__init__(f"unsafe archive {self.archive}: member {member!r} {reason}; nothing was extracted")


class ArchiveLimitError(ArchiveError):
    """An archive that would extract to more than a limit allows (ratio, total size or free disk space)."""


TAR_BLOCK = 512  # every member costs at least its header block: a bomb of empty files counts too
RATIO_FREE_BYTES = 64 * 2**20  # up to this much is extracted whatever the ratio (small archives of tiny files)


def read_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """Every member of ``tar``, read header by header; stops with ArchiveLimitError at the first limit passed."""
    max_ratio, max_bytes = limit(ARCHIVE_MAX_RATIO), limit(ARCHIVE_MAX_BYTES)
    packed = max(1, archive.stat().st_size)
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        if member.issparse():
            raise UnsafeArchiveError(archive, member.name, "is a sparse file (its real size is not its stored size)")
        total += max(0, member.size) + TAR_BLOCK
        if total > max_bytes:
            raise ArchiveLimitError(f"archive {archive} holds more than {max_bytes} bytes ({ARCHIVE_MAX_BYTES}="
                                    f"{max_bytes}); nothing was extracted; raise {ARCHIVE_MAX_BYTES} if it is real")
        if total > max_ratio * packed and total > RATIO_FREE_BYTES:
            raise ArchiveLimitError(
                f"archive {archive} expands to more than {max_ratio} times its size ({packed} bytes; "
                f"{ARCHIVE_MAX_RATIO}={max_ratio}), as a decompression bomb does; nothing was extracted; "
                f"raise {ARCHIVE_MAX_RATIO} if the data really compresses that well")
        members.append(member)
    return members


def _check_free_space(archive: Path, members: list[tarfile.TarInfo], where: Path) -> None:
    needed = sum(max(0, m.size) for m in members)
    free = shutil.disk_usage(where).free
    if needed > free:
        raise ArchiveLimitError(f"archive {archive} extracts to {needed} bytes but only {free} are free at {where}; "
                                "nothing was extracted")


def is_archive(path_or_uri: str | os.PathLike) -> bool:
    """True when the name ends with one of the archive suffixes (local path or s3:// URI)."""
    name = str(path_or_uri).rstrip("/").lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def _escapes(relpath: str) -> bool:
    """True when a normalised relative POSIX path leaves its root."""
    return relpath == ".." or relpath.startswith("../")


def _is_absolute(name: str) -> bool:
    # Windows drive letters and UNC names are absolute too: the archive may come from anywhere.
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")


def _normalized(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/"))


def _parent_links(relpath: str, links: set[str]) -> str | None:
    """The first proper parent of ``relpath`` that is a symlink member, if any."""
    parts = relpath.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix in links:
            return prefix
    return None


def _symlink_problem(name: str, target: str, links: set[str]) -> str | None:
    """Why a symlink ``name -> target`` is unsafe, or None.

    The target is walked component by component from the link's folder; it
    must stay inside the root and never step through another symlink member
    (a chain of individually harmless links can otherwise climb out).
    """
    if not target:
        return "is a symlink with an empty target"
    if _is_absolute(target):
        return f"is a symlink to the absolute path {target!r}"
    parts = [p for p in posixpath.dirname(name).split("/") if p not in ("", ".")]
    components = [c for c in target.replace("\\", "/").split("/") if c not in ("", ".")]
    for index, comp in enumerate(components):
        if comp == "..":
            if not parts:
                return f"is a symlink pointing outside the target ({target!r})"
            parts.pop()
            continue
        parts.append(comp)
        if index < len(components) - 1 and "/".join(parts) in links:
            return f"is a symlink whose target {target!r} passes through another symlink"
    return None


def check_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """Raise UnsafeArchiveError for the first member that could escape the target."""
    links = {_normalized(m.name) for m in members if m.issym()}
    regular: set[str] = set()
    for member in members:
        name = member.name
        if _is_absolute(name):
            raise UnsafeArchiveError(archive, name, "has an absolute path")
        rel = _normalized(name)
        if _escapes(rel):
            raise UnsafeArchiveError(archive, name, "points outside the target (..)")
        through = _parent_links(rel, links)
        if through:
            raise UnsafeArchiveError(archive, name, f"would be written through the symlink {through!r}")
        if member.issym():
            problem = _symlink_problem(rel, member.linkname, links)
            if problem:
                raise UnsafeArchiveError(archive, name, problem)
        elif member.islnk():
            target = member.linkname
            if _is_absolute(target):
                raise UnsafeArchiveError(archive, name, f"is a hardlink to the absolute path {target!r}")
            target_rel = _normalized(target)
            if _escapes(target_rel):
                raise UnsafeArchiveError(archive, name, f"is a hardlink pointing outside the target ({target!r})")
            if target_rel not in regular:
                # A hardlink to something the archive did not write (or to a symlink, which
                # os.link would follow) could alias any file on the machine.
                raise UnsafeArchiveError(archive, name, f"is a hardlink to {target!r}, not a file in the archive")
        elif member.ischr() or member.isblk():
            raise UnsafeArchiveError(archive, name, "is a device file")
        elif member.isfifo():
            raise UnsafeArchiveError(archive, name, "is a FIFO")
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(archive, name, f"has an unsupported type {member.type!r}")
        if member.isfile():
            regular.add(rel)


def _verify_tree(archive: Path, root: Path) -> None:
    """After extraction, every symlink must still resolve inside ``root`` (defence in depth)."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path):
                real = os.path.realpath(path)
                if os.path.commonpath([real_root, real]) != real_root:
                    raise UnsafeArchiveError(archive, os.path.relpath(path, root), "resolves outside the target")


def archive_stem(path_or_uri: str | os.PathLike) -> str:
    """The name without its archive suffix: ``s3://b/train.tar.gz`` -> ``train``."""
    name = str(path_or_uri).rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _data_root(folder: Path, stem: str) -> Path:
    """The folder holding the data.

    ``train.tar.gz`` holding the one folder ``train/`` is unwrapped. A single
    folder of another name is data itself (one class of a training set, one
    video of an inference set), so it is not.
    """
    entries = list(folder.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() and entries[0].name == stem:
        return entries[0]
    return folder


def safe_extract(archive: Path, dest: Path, *, replace: bool = False) -> Path:
    """Extract ``archive`` into ``dest`` safely and return the folder holding the data.

    ``dest`` must not exist, or be an empty folder, unless ``replace`` is true
    (then its old content is removed once the new extraction succeeded).
    Returns ``dest/<stem>`` when the archive holds just the folder named like
    itself (``train.tar.gz`` -> ``train/``), else ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise ArchiveError(f"archive not found: {archive}")
    if dest.exists() and not replace and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"cannot extract {archive}: target {dest} already exists and is not empty")
    with staged_folder(dest, "extract") as staging:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = read_members(tar, archive)
                check_members(archive, members)
                _check_free_space(archive, members, staging)
                try:
                    # The stdlib "data" filter is a second guard (and drops setuid bits).
                    tar.extractall(staging, members=members, filter="data")
                except tarfile.FilterError as err:
                    member = getattr(err, "tarinfo", None)
                    raise UnsafeArchiveError(archive, member.name if member else "?", str(err)) from None
        except (tarfile.TarError, EOFError, OSError) as err:
            raise ArchiveError(f"cannot read archive {archive}: {err}") from None
        _verify_tree(archive, staging)
    log.info("extracted %s into %s", archive, dest)
    return _data_root(dest, archive_stem(archive))
