"""Safe archive extraction: unsafe members are refused by name and nothing is left behind."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from skillbank.runtime.sdk.archives import ArchiveError, UnsafeArchiveError, is_archive, safe_extract


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def _make(path: Path, members, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != "bad.tar.gz")


@pytest.mark.parametrize(
    ("members", "member", "words"),
    [
        ([_file("ok.txt"), _file("/tmp/skillbank-evil.txt")], "/tmp/skillbank-evil.txt", "absolute"),
        ([_file("ok.txt"), _file("data/../../evil.txt")], "data/../../evil.txt", "outside"),
        ([_file("ok.txt"), _link("data/etc", "../../etc")], "data/etc", "outside"),
        ([_link("passwd", "/etc/passwd")], "passwd", "absolute"),
        ([_file("ok.txt"), _link("hard", "../outside.txt", tarfile.LNKTYPE)], "hard", "outside"),
        ([_link("hard", "/etc/passwd", tarfile.LNKTYPE)], "hard", "absolute"),
        ([_link("hard", "not-in-archive.txt", tarfile.LNKTYPE)], "hard", "not a file in the archive"),
        # Each link alone stays inside, but the chain climbs out: sub/t -> sub/s/.. -> (root)/..
        ([_dir("sub"), _link("sub/s", ".."), _link("sub/t", "s/.."), _file("sub/t/evil.txt")],
         "sub/t", "passes through another symlink"),
        ([_dir("sub"), _link("sub/up", ".."), _file("sub/up/x.txt")], "sub/up/x.txt", "through the symlink"),
        ([_link("dev", "", tarfile.CHRTYPE)], "dev", "device"),
        ([_link("fifo", "", tarfile.FIFOTYPE)], "fifo", "FIFO"),
    ],
    ids=["absolute", "dotdot", "symlink-out", "symlink-abs", "hardlink-out", "hardlink-abs",
         "hardlink-foreign", "symlink-chain", "write-through-link", "device", "fifo"],
)
def test_unsafe_member_is_refused_by_name_and_nothing_is_left(tmp_path, members, member, words):
    work = tmp_path / "work"
    work.mkdir()
    archive = _make(work / "bad.tar.gz", members)
    with pytest.raises(UnsafeArchiveError) as caught:
        safe_extract(archive, work / "out")
    assert caught.value.member == member
    assert repr(member) in str(caught.value) and words in str(caught.value)
    assert "\n" not in str(caught.value)
    assert _leftovers(work) == []  # no target, no temporary folder
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_corrupt_archive_is_a_clear_error_with_no_leftovers(tmp_path):
    good = _make(tmp_path / "good.tar.gz", [_file("a/b.txt", b"hello" * 1000)])
    work = tmp_path / "work"
    work.mkdir()
    bad = work / "bad.tar.gz"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ArchiveError, match="cannot read archive"):
        safe_extract(bad, work / "out")
    assert _leftovers(work) == []


@pytest.mark.parametrize(("suffix", "mode"), [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w")])
def test_single_top_folder_is_returned(tmp_path, suffix, mode):
    archive = _make(tmp_path / f"train{suffix}", [
        _dir("train"), _dir("train/catch"), _file("train/catch/0001.png", b"png"),
        _link("train/latest.png", "catch/0001.png"),  # links inside the archive are fine
        _link("train/copy.png", "train/catch/0001.png", tarfile.LNKTYPE),
    ], mode)
    root = safe_extract(archive, tmp_path / "inputs" / "dataset")
    assert root == tmp_path / "inputs" / "dataset" / "train"
    assert (root / "catch" / "0001.png").read_bytes() == b"png"
    assert (root / "latest.png").read_bytes() == b"png"
    assert (root / "copy.png").read_bytes() == b"png"
    assert sorted(p.name for p in (tmp_path / "inputs").iterdir()) == ["dataset"]


def test_single_folder_of_another_name_is_data_not_a_wrapper(tmp_path):
    # One video of an inference set (or one class): the folder itself is data.
    archive = _make(tmp_path / "smile.tar.gz", [_file("smile_test_000/rgb/000.png")])
    assert safe_extract(archive, tmp_path / "out") == tmp_path / "out"


def test_several_top_entries_return_the_target(tmp_path):
    archive = _make(tmp_path / "flat.tar", [_file("./a.txt"), _file("./b/c.txt")], "w")
    root = safe_extract(archive, tmp_path / "out")
    assert root == tmp_path / "out"
    assert (root / "a.txt").exists() and (root / "b" / "c.txt").exists()


def test_existing_target_is_kept_unless_replace(tmp_path):
    archive = _make(tmp_path / "d.tgz", [_file("d/new.txt", b"new")])
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(ArchiveError, match="not empty"):
        safe_extract(archive, dest)
    assert (dest / "old.txt").exists()
    root = safe_extract(archive, dest, replace=True)
    assert (root / "new.txt").read_text() == "new" and not (dest / "old.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.tgz", "out"]


def test_is_archive():
    assert is_archive("s3://b/data/train.tar.gz") and is_archive(Path("/x/TEST.TGZ")) and is_archive("a.tar")
    assert not is_archive("s3://b/data/train/") and not is_archive("model.pth") and not is_archive("x.gz")
