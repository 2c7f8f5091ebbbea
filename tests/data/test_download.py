"""Downloads from a local HTTP server (a zip built from the mirror's CHASE_DB1 files), checksum
pinning, resume, safe extraction, and the registration-only path of DRIVE."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from samlora.data.registry import Archive, DatasetSpec, get_dataset


class _Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    honour_range: bool
    requests: list[tuple[str, str | None, int]]  # (path, Range header, status)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        rng = self.headers.get("Range")
        status, body, headers = 200, data or b"", {}
        if data is None:
            status = 404
        elif rng and self.server.honour_range:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                status, body, headers = 416, b"", {"Content-Range": f"bytes */{len(data)}"}
            else:
                status, body = 206, data[start:]
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        self.server.requests.append((self.path, rng, status))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.honour_range, srv.requests = {}, True, []
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def chase_zip(mirror: Path) -> bytes:
    """CHASEDB1.zip in the official flat layout, built from the mirror's 84 files."""
    return _zip({p.name: p.read_bytes() for p in sorted((mirror / "CHASE_DB1").iterdir())})


def _spec(url: str, sha256: str | None = None) -> DatasetSpec:
    spec = get_dataset("chase_db1")
    return dataclasses.replace(spec, source=dataclasses.replace(
        spec.source, archives=(Archive(url, sha256),)))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _url(srv: _Server, path: str = "/96/1/CHASEDB1.zip") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def test_first_download_pins_hash_then_enforces(server: _Server, chase_zip: bytes,
                                                tmp_path: Path) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    raw, lock, spec = tmp_path / "raw", tmp_path / "checksums.lock.json", _spec(_url(server))
    root = fetch_spec(spec, raw, None, lock)
    assert json.loads(lock.read_text()) == {_url(server): _sha(chase_zip)}
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
    changed = _zip({"Image_01L.jpg": b"tampered"})
    server.files["/96/1/CHASEDB1.zip"] = changed
    (raw / "chase_db1/CHASEDB1.zip").write_bytes(b"local copy damaged")
    with pytest.raises(ChecksumError) as info:
        fetch_spec(spec, raw, None, lock)
    assert _sha(chase_zip) in str(info.value) and _sha(changed) in str(info.value)
    assert not (raw / "chase_db1/CHASEDB1.zip").exists()
    assert not (raw / "chase_db1/CHASEDB1.zip.part").exists()


def test_published_hash_mismatch_leaves_no_file(server: _Server, chase_zip: bytes,
                                                tmp_path: Path) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch_spec(_spec(_url(server), wrong), tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    assert wrong in msg and _sha(chase_zip) in msg and "CHASEDB1.zip" in msg
    assert not [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert not (tmp_path / "lock.json").exists()


@pytest.mark.parametrize("honour_range", [True, False])
def test_resume_partial_download(server: _Server, chase_zip: bytes, tmp_path: Path,
                                 honour_range: bool) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    server.honour_range = honour_range
    part = tmp_path / "raw/chase_db1/CHASEDB1.zip.part"
    part.parent.mkdir(parents=True)
    head = chase_zip[:1_000_000] if honour_range else b"\0" * 1_000_000  # stale junk: restart
    part.write_bytes(head)
    fetch_spec(_spec(_url(server), _sha(chase_zip)), tmp_path / "raw", None, tmp_path / "l.json")
    assert server.requests == [("/96/1/CHASEDB1.zip", "bytes=1000000-",
                                206 if honour_range else 200)]
    assert _sha((tmp_path / "raw/chase_db1/CHASEDB1.zip").read_bytes()) == _sha(chase_zip)
    assert not part.exists()


def test_complete_part_is_not_downloaded_again(server: _Server, chase_zip: bytes,
                                               tmp_path: Path) -> None:
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    part = tmp_path / "raw/chase_db1/CHASEDB1.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(chase_zip)
    fetch_spec(_spec(_url(server)), tmp_path / "raw", None, tmp_path / "lock.json")
    assert [r[2] for r in server.requests] == [416]
    assert (tmp_path / "raw/chase_db1/CHASEDB1.zip").is_file()


def test_file_url(chase_zip: bytes, tmp_path: Path) -> None:
    src = tmp_path / "CHASEDB1.zip"
    src.write_bytes(chase_zip)
    root = fetch_spec(_spec(src.as_uri()), tmp_path / "raw", None, tmp_path / "lock.json")
    assert len(list(root.glob("*.jpg"))) == 28


def test_zip_with_parent_member_is_refused(server: _Server, mirror: Path,
                                           tmp_path: Path) -> None:
    evil = _zip({"Image_01L.jpg": (mirror / "CHASE_DB1/Image_01L.jpg").read_bytes(),
                 "../evil": b"owned"})
    server.files["/96/1/CHASEDB1.zip"] = evil
    raw = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil"):
        fetch_spec(_spec(_url(server)), raw, None, tmp_path / "lock.json")
    assert not (raw / "evil").exists() and not (raw / "chase_db1/extracted").exists()
    assert not [p for p in (raw / "chase_db1").iterdir() if p.name.startswith(".")]


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x") if m.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(("member", "why"), [
    (_member("/abs/file"), "absolute"),
    (_member("a/../../b"), r"\.\."),
    (_member("link", tarfile.SYMTYPE, "../../outside"), "outside"),
    (_member("hard", tarfile.LNKTYPE, "../x"), "outside"),
])
def test_tar_members_outside_are_refused(tmp_path: Path, member: tarfile.TarInfo,
                                         why: str) -> None:
    tar = _tar(tmp_path / "bad.tar", [_member("ok.txt"), member])
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_absolute_member_refused_and_inner_symlink_allowed(tmp_path: Path) -> None:
    (tmp_path / "abs.zip").write_bytes(_zip({"/etc/x": b"1"}))
    with pytest.raises(UnsafeArchiveError, match="/etc/x"):
        safe_extract(tmp_path / "abs.zip", tmp_path / "out")
    tar = _tar(tmp_path / "ok.tar", [_member("d/f"), _member("d/l", tarfile.SYMTYPE, "f")])
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
    (tmp_path / "raw/drive/DRIVE.zip").write_bytes(_zip(files))
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
