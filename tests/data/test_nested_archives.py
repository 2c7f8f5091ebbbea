"""Archives inside archives, archives side by side, and macOS metadata in them."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from samlora.data import archives
from samlora.data.archives import MARKER, extract_all
from samlora.data.errors import CorruptArchiveError, UnsafeArchiveError

APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # a ._ file's header


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_zip_of_zips_is_extracted_in_place(tmp_path: Path) -> None:
    """Each inner zip goes into a folder of its stem (not doubled when its own top folder
    has that name), is deleted, and no __MACOSX or ._ file is written at any level."""
    outer = tmp_path / "outer.zip"
    outer.write_bytes(_zip({
        "REFUGE2/A.zip": _zip({"A/x.txt": b"x", "__MACOSX/A/._x.txt": APPLEDOUBLE}),
        "REFUGE2/B.zip": _zip({"Btop/y.txt": b"y"}),
        "REFUGE2/C.zip": _zip({"z.txt": b"z", "sub/w.txt": b"w"}),
        "REFUGE2/notes.txt": b"n",
        "REFUGE2/._A.zip": APPLEDOUBLE,
        "__MACOSX/REFUGE2/._B.zip": APPLEDOUBLE,
    }))
    target = extract_all([outer], tmp_path / "extracted", record={"v": 1})
    assert _tree(target) == {MARKER: b'{\n  "v": 1\n}\n', "REFUGE2/A/x.txt": b"x",
                             "REFUGE2/B/Btop/y.txt": b"y", "REFUGE2/C/sub/w.txt": b"w",
                             "REFUGE2/C/z.txt": b"z", "REFUGE2/notes.txt": b"n"}
    assert not [p for p in target.rglob(".*") if p.name != MARKER]  # no staging folders left


def test_two_levels_down_through_a_tarball(tmp_path: Path) -> None:
    outer = tmp_path / "outer.zip"
    outer.write_bytes(_zip({"data/inner.tar.gz": _targz({"deep.zip": _zip({"leaf.txt": b"1"})})}))
    target = extract_all([outer], tmp_path / "extracted")
    assert _tree(target) == {"data/inner/deep/leaf.txt": b"1"}


def test_inner_member_outside_is_refused_and_nothing_stays(tmp_path: Path) -> None:
    outer = tmp_path / "outer.zip"
    outer.write_bytes(_zip({"X/ok.txt": b"ok", "X/bad.zip": _zip({"../../evil.txt": b"e"})}))
    with pytest.raises(UnsafeArchiveError) as info:
        extract_all([outer], tmp_path / "extracted")
    msg = str(info.value)
    assert msg.startswith(f"{outer} (inner archive X/bad.zip): refusing to extract member "
                          "'../../evil.txt' (absolute path or '..' component)")
    assert "\n" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outer.zip"]
    assert not list(tmp_path.parent.glob("evil.txt"))


def test_damaged_inner_archive_is_named(tmp_path: Path) -> None:
    inner = _zip({"a.txt": b"a" * 5000, "b.txt": b"b" * 5000})
    outer = tmp_path / "outer.zip"
    outer.write_bytes(_zip({"X/cut.zip": inner[: len(inner) // 2]}))
    with pytest.raises(CorruptArchiveError) as info:
        extract_all([outer], tmp_path / "extracted")
    msg = str(info.value)
    assert msg.startswith(f"{outer} (inner archive X/cut.zip): not a readable zip archive (")
    assert "\n" not in msg and not (tmp_path / "extracted").exists()


def test_nesting_deeper_than_the_limit_is_left(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "MAX_NESTING", 1)
    b = _zip({"leaf.txt": b"1"})
    outer = tmp_path / "outer.zip"
    outer.write_bytes(_zip({"a.zip": _zip({"b.zip": b})}))
    target = extract_all([outer], tmp_path / "extracted")
    assert _tree(target) == {"a/b.zip": b}


def test_side_by_side_archives_keep_apart_and_may_not_overwrite(tmp_path: Path) -> None:
    flat1, flat2 = tmp_path / "images.zip", tmp_path / "labels.zip"
    flat1.write_bytes(_zip({"1.png": b"image"}))
    flat2.write_bytes(_zip({"1.png": b"label"}))
    same1, same2 = tmp_path / "training.zip", tmp_path / "test.zip"
    same1.write_bytes(_zip({"DRIVE/training/a": b"1", "DRIVE/README": b"r"}))
    same2.write_bytes(_zip({"DRIVE/test/b": b"2", "DRIVE/README": b"r"}))
    target = extract_all([flat1, flat2, same1, same2], tmp_path / "extracted")
    assert _tree(target) == {"images/1.png": b"image", "labels/1.png": b"label",
                             "DRIVE/README": b"r", "DRIVE/training/a": b"1",
                             "DRIVE/test/b": b"2"}
    other = tmp_path / "other.zip"
    other.write_bytes(_zip({"DRIVE/README": b"different"}))
    with pytest.raises(UnsafeArchiveError) as info:
        extract_all([same1, other], tmp_path / "again")
    msg = str(info.value)
    assert msg.startswith(f"{other}: its member DRIVE/README would overwrite a different file "
                          "extracted from another archive") and "\n" not in msg
    assert not (tmp_path / "again").exists()
