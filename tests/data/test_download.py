"""Downloads from a local HTTP server (a zip built from the mirror's CHASE_DB1 files), checksum
pinning, resume, safe extraction, and the registration-only path of DRIVE."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from samlora.data.archives import safe_extract
from samlora.data.download import fetch_dataset, fetch_spec
from samlora.data.errors import (
    ChecksumError,
    MissingFilesError,
    RegistrationRequiredError,
    UnsafeArchiveError,
)

from .download_helpers import (
    Server,
    chase_spec,
    serving,
    sha,
    tar_file,
    tar_member,
    url_of,
    zip_bytes,
)


@pytest.fixture()
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


@pytest.fixture(scope="module")
def chase_zip(mirror: Path) -> bytes:
    """CHASEDB1.zip in the official flat layout, built from the mirror's 84 files."""
    return zip_bytes({p.name: p.read_bytes() for p in sorted((mirror / "CHASE_DB1").iterdir())})


def test_first_download_pins_hash_then_enforces(server: Server, chase_zip: bytes,
                                                tmp_path: Path) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    raw, lock, spec = tmp_path / "raw", tmp_path / "checksums.lock.json", chase_spec(url_of(server))
    root = fetch_spec(spec, raw, None, lock)
    assert json.loads(lock.read_text()) == {url_of(server): sha(chase_zip)}
    assert (root / "Image_14R_2ndHO.png").is_file()
    source = json.loads((raw / "chase_db1/source.json").read_text())
    assert source["files"] == 84 and source["origin"] == "download"
    assert source["root"] == str(root.resolve())
    assert not list((raw / "chase_db1").glob("*.part"))
    # Second run: the archive is verified against the lock file, nothing is fetched.
    n_requests, mtime = len(server.requests), (raw / "chase_db1/source.json").stat().st_mtime_ns
    assert fetch_spec(spec, raw, None, lock) == root
    assert len(server.requests) == n_requests
    assert (raw / "chase_db1/source.json").stat().st_mtime_ns == mtime
    # Upstream changes: the pinned hash is enforced, the new file is not kept.
    changed = zip_bytes({"Image_01L.jpg": b"tampered"})
    server.files["/96/1/CHASEDB1.zip"] = changed
    (raw / "chase_db1/CHASEDB1.zip").write_bytes(b"local copy damaged")
    with pytest.raises(ChecksumError) as info:
        fetch_spec(spec, raw, None, lock)
    assert sha(chase_zip) in str(info.value) and sha(changed) in str(info.value)
    assert not (raw / "chase_db1/CHASEDB1.zip").exists()
    assert not (raw / "chase_db1/CHASEDB1.zip.part").exists()


def test_published_hash_mismatch_leaves_no_file(server: Server, chase_zip: bytes,
                                                tmp_path: Path) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch_spec(chase_spec(url_of(server), wrong), tmp_path / "raw", None,
                   tmp_path / "lock.json")
    msg = str(info.value)
    assert wrong in msg and sha(chase_zip) in msg and "CHASEDB1.zip" in msg
    assert not [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert not (tmp_path / "lock.json").exists()


@pytest.mark.parametrize("honour_range", [True, False])
def test_resume_partial_download(server: Server, chase_zip: bytes, tmp_path: Path,
                                 honour_range: bool) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    server.honour_range = honour_range
    part = tmp_path / "raw/chase_db1/CHASEDB1.zip.part"
    part.parent.mkdir(parents=True)
    head = chase_zip[:1_000_000] if honour_range else b"\0" * 1_000_000  # stale junk: restart
    part.write_bytes(head)
    fetch_spec(chase_spec(url_of(server), sha(chase_zip)), tmp_path / "raw", None,
               tmp_path / "l.json")
    assert server.requests == [("/96/1/CHASEDB1.zip", "bytes=1000000-",
                                206 if honour_range else 200)]
    assert sha((tmp_path / "raw/chase_db1/CHASEDB1.zip").read_bytes()) == sha(chase_zip)
    assert not part.exists()


def test_complete_part_is_not_downloaded_again(server: Server, chase_zip: bytes,
                                               tmp_path: Path) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    part = tmp_path / "raw/chase_db1/CHASEDB1.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(chase_zip)
    fetch_spec(chase_spec(url_of(server)), tmp_path / "raw", None, tmp_path / "lock.json")
    assert [r[2] for r in server.requests] == [416]
    assert (tmp_path / "raw/chase_db1/CHASEDB1.zip").is_file()


def test_file_url(chase_zip: bytes, tmp_path: Path) -> None:
    src = tmp_path / "CHASEDB1.zip"
    src.write_bytes(chase_zip)
    root = fetch_spec(chase_spec(src.as_uri()), tmp_path / "raw", None, tmp_path / "lock.json")
    assert len(list(root.glob("*.jpg"))) == 28


def test_zip_with_parent_member_is_refused(server: Server, mirror: Path,
                                           tmp_path: Path) -> None:
    evil = zip_bytes({"Image_01L.jpg": (mirror / "CHASE_DB1/Image_01L.jpg").read_bytes(),
                 "../evil": b"owned"})
    server.files["/96/1/CHASEDB1.zip"] = evil
    raw = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil"):
        fetch_spec(chase_spec(url_of(server)), raw, None, tmp_path / "lock.json")
    assert not (raw / "evil").exists() and not (raw / "chase_db1/extracted").exists()
    assert not [p for p in (raw / "chase_db1").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("member", "why"), [
    (tar_member("/abs/file"), "absolute"),
    (tar_member("a/../../b"), r"\.\."),
    (tar_member("link", tarfile.SYMTYPE, "../../outside"), "outside"),
    (tar_member("hard", tarfile.LNKTYPE, "../x"), "outside"),
])
def test_tar_members_outside_are_refused(tmp_path: Path, member: tarfile.TarInfo,
                                         why: str) -> None:
    tar = tar_file(tmp_path / "bad.tar", [tar_member("ok.txt"), member])
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_absolute_member_refused_and_inner_symlink_allowed(tmp_path: Path) -> None:
    (tmp_path / "abs.zip").write_bytes(zip_bytes({"/etc/x": b"1"}))
    with pytest.raises(UnsafeArchiveError, match="/etc/x"):
        safe_extract(tmp_path / "abs.zip", tmp_path / "out")
    tar = tar_file(tmp_path / "ok.tar",
                   [tar_member("d/f"), tar_member("d/l", tarfile.SYMTYPE, "f")])
    safe_extract(tar, tmp_path / "ok")
    assert (tmp_path / "ok/d/l").read_bytes() == b"x"


def test_drive_without_mirror_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(RegistrationRequiredError) as info:
        fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    for part in ("https://drive.grand-challenge.org/", str((tmp_path / "raw/drive").resolve()),
                 "training/images/21_training.tif", "test/2nd_manual/01_manual2.gif",
                 "training/mask/", "training.zip", "data.mirror"):
        assert part in msg, part
    assert not (tmp_path / "raw/drive/source.json").exists()


def test_drive_placed_layout(mirror: Path, tmp_path: Path) -> None:
    (tmp_path / "raw/drive").mkdir(parents=True)
    (tmp_path / "raw/drive/DRIVE").symlink_to(mirror / "DRIVE")
    root = fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")
    assert root == tmp_path / "raw/drive/DRIVE"
    assert json.loads((tmp_path / "raw/drive/source.json").read_text())["origin"] == "placed"


def test_drive_placed_zip(mirror: Path, tmp_path: Path) -> None:
    drive = mirror / "DRIVE"
    files = {f"DRIVE/{p.relative_to(drive)}": p.read_bytes()
             for p in sorted(drive.rglob("*")) if p.is_file()}
    (tmp_path / "raw/drive").mkdir(parents=True)
    (tmp_path / "raw/drive/DRIVE.zip").write_bytes(zip_bytes(files))
    root = fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")
    assert root == tmp_path / "raw/drive/extracted/DRIVE"
    assert json.loads((tmp_path / "raw/drive/source.json").read_text())["files"] == 140


def test_drive_placed_incomplete_names_missing(mirror: Path, tmp_path: Path) -> None:
    (tmp_path / "raw/drive").mkdir(parents=True)
    (tmp_path / "raw/drive/training").symlink_to(mirror / "DRIVE/training")
    with pytest.raises(MissingFilesError, match="test/images/01_test.tif"):
        fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")


def test_mirror_without_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(MissingFilesError, match="CHASE_DB1"):
        fetch_dataset("chase_db1", tmp_path / "raw", tmp_path, tmp_path / "lock.json")
