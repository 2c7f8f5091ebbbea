"""RAR5 archives through libarchive: the FIVES and GRAPE layouts, and hostile members.

The archives are written by the store-only RAR5 writer of ``rar5_writer`` from real
CHASE_DB1 files of the data mirror (read there, written only under tmp_path).
"""

from __future__ import annotations

import builtins
import hashlib
import stat
from pathlib import Path

import libarchive
import pytest

from samlora.data.archives import extract_all, is_archive, safe_extract
from samlora.data.errors import CorruptArchiveError, UnsafeArchiveError

from .rar5_writer import SIGNATURE, Member, write_rar5

FIVES_TOP = "FIVES A Fundus Image Dataset for AI-based Vessel Segmentation"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def chase(mirror: Path) -> dict[str, bytes]:
    """Bytes of four real CHASE_DB1 files: two images (JPEG) and their labels (PNG)."""
    names = ("Image_01L.jpg", "Image_01L_1stHO.png", "Image_01R.jpg", "Image_01R_1stHO.png")
    return {n: (mirror / "CHASE_DB1" / n).read_bytes() for n in names}


def _fives_files(chase: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{FIVES_TOP}/train/Original/1_A.png": chase["Image_01L_1stHO.png"],
            f"{FIVES_TOP}/train/Ground truth/1_A.png": chase["Image_01L_1stHO.png"],
            f"{FIVES_TOP}/test/Original/1_A.png": chase["Image_01R_1stHO.png"],
            f"{FIVES_TOP}/test/Ground truth/1_A.png": chase["Image_01R_1stHO.png"]}


def test_writer_output_is_rar5_that_libarchive_lists(tmp_path: Path,
                                                      chase: dict[str, bytes]) -> None:
    files = _fives_files(chase)
    dirs = [FIVES_TOP, f"{FIVES_TOP}/train", f"{FIVES_TOP}/train/Original"]
    rar = write_rar5(tmp_path / "fives.rar", files, dirs)
    assert rar.read_bytes().startswith(SIGNATURE)
    got = []
    with libarchive.file_reader(str(rar), format_name="rar5") as reader:
        for entry in reader:
            data = b"".join(entry.get_blocks()) if entry.isfile else None
            got.append((entry.pathname, entry.isdir, data and _sha(data)))
    assert got == [(d, True, None) for d in dirs] + [(n, False, _sha(d))
                                                     for n, d in files.items()]


def test_fives_layout_rar_extracts_byte_for_byte(tmp_path: Path,
                                                 chase: dict[str, bytes]) -> None:
    """figshare serves the archive as a bare number: the format is told by its bytes."""
    files = _fives_files(chase)
    rar = write_rar5(tmp_path / "34969398", files, [FIVES_TOP])
    target = extract_all([rar], tmp_path / "extracted")
    got = {p.relative_to(target).as_posix(): _sha(p.read_bytes())
           for p in target.rglob("*.png")}
    assert got == {n: _sha(d) for n, d in files.items()}
    assert [p.name for p in target.iterdir()] == [FIVES_TOP]


def test_grape_layout_rars_side_by_side(tmp_path: Path, chase: dict[str, bytes]) -> None:
    """ROI images.rar and CFPs.rar hold the same file names at their roots: each goes into a
    folder of its name, json.rar (top folder json/) keeps it."""
    roi = write_rar5(tmp_path / "ROI images.rar", {"1_OD_1.jpg": chase["Image_01L.jpg"]})
    cfp = write_rar5(tmp_path / "CFPs.rar", {"1_OD_1.jpg": chase["Image_01R.jpg"]})
    js = write_rar5(tmp_path / "json.rar", {"json/1_OD_1.json": b'{"shapes": []}'}, ["json"])
    target = extract_all([cfp, roi, js], tmp_path / "extracted")
    assert (target / "ROI images/1_OD_1.jpg").read_bytes() == chase["Image_01L.jpg"]
    assert (target / "CFPs/1_OD_1.jpg").read_bytes() == chase["Image_01R.jpg"]
    assert (target / "json/1_OD_1.json").is_file()
    assert sorted(p.name for p in target.iterdir()) == ["CFPs", "ROI images", "json"]


@pytest.mark.parametrize(("member", "why"), [
    (Member("../evil.txt", b"x"), r"'\.\./evil\.txt'.*absolute path or '\.\.'"),
    (Member("/abs/evil.txt", b"x"), r"'/abs/evil\.txt'.*absolute path"),
    (Member("top/../../evil.txt", b"x"), r"absolute path or '\.\.'"),
    (Member("top/link", link="../../etc/passwd"), r"symlink to '\.\./\.\./etc/passwd' outside"),
    (Member("top/link", link="/etc/passwd"), "outside the folder"),
    (Member("top/dev", b"", mode=stat.S_IFCHR | 0o644), "device or FIFO"),
    (Member("top/fifo", b"", mode=stat.S_IFIFO | 0o644), "device or FIFO"),
])
def test_hostile_rar_members_are_refused_before_writing(tmp_path: Path, member: Member,
                                                        why: str) -> None:
    rar = write_rar5(tmp_path / "bad.rar", {"top/ok.txt": b"fine"}, ["top"], [member])
    with pytest.raises(UnsafeArchiveError, match=why) as info:
        safe_extract(rar, tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith(f"{rar}: refusing to extract member ") and "\n" not in msg
    assert "delete it" in msg
    assert not (tmp_path / "out").exists()  # not even top/ok.txt, listed first
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_rar_path_through_its_own_symlink_is_refused(tmp_path: Path) -> None:
    """``d/up -> ..`` is harmless alone; a member below it would land above the folder."""
    rar = write_rar5(tmp_path / "chain.rar", {}, ["d"],
                     [Member("d/up", link=".."), Member("d/up/up2", link=".."),
                      Member("d/up/up2/esc.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match="'d/up/up2'.*through a symlink"):
        extract_all([rar], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.rar"]


def test_rar_symlink_inside_and_macos_metadata(tmp_path: Path) -> None:
    rar = write_rar5(tmp_path / "ok.rar", {"d/f.txt": b"data", "__MACOSX/d/._f.txt": b"\0\5",
                                           "d/._f.txt": b"\0\5"}, ["d"],
                     [Member("d/l", link="f.txt")])
    safe_extract(rar, tmp_path / "out")
    assert (tmp_path / "out/d/l").is_symlink() and (tmp_path / "out/d/l").read_bytes() == b"data"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["d", "f.txt", "l"]


def test_truncated_rar_is_corrupt(tmp_path: Path, chase: dict[str, bytes]) -> None:
    full = write_rar5(tmp_path / "full.rar", _fives_files(chase))
    cut = tmp_path / "cut.rar"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    with pytest.raises(CorruptArchiveError) as info:
        extract_all([cut], tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith(f"{cut}: not a readable rar archive (") and "\n" not in msg
    assert "delete it" in msg and not (tmp_path / "out").exists()


def test_rar_named_file_without_rar_signature(tmp_path: Path) -> None:
    page = tmp_path / "CFPs.rar"
    page.write_bytes(b"<!DOCTYPE html><html><body>figshare</body></html>")
    assert is_archive(page) and not is_archive(tmp_path / "._CFPs.rar")
    with pytest.raises(CorruptArchiveError, match=r"CFPs\.rar: not a readable rar archive "
                                                  r"\(no RAR signature found\)"):
        safe_extract(page, tmp_path / "out")


def test_missing_libarchive_says_what_to_install(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rar = write_rar5(tmp_path / "a.rar", {"a.txt": b"x"})
    real_import = builtins.__import__

    def no_libarchive(name: str, *args: object, **kwargs: object) -> object:
        if name == "libarchive":
            raise OSError("libarchive.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_libarchive)
    with pytest.raises(RuntimeError) as info:
        safe_extract(rar, tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith(f"{rar}: RAR archives are read through libarchive, which could not "
                          "be loaded (libarchive.so: cannot open shared object file)")
    assert "libarchive-c" in msg and "apt-get install libarchive13" in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()
