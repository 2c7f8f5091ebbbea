"""Download failures: corrupt or incomplete archives (never pinned), a mismatching file moved
aside (never deleted), stale extractions redone, the project's lock file from any folder,
network errors, unsafe tar links and a missing mirror, each with a one-line message."""

from __future__ import annotations

import argparse
import json
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from samlora import config, steps
from samlora.data.archives import MARKER, extract_all, safe_extract
from samlora.data.download import fetch_dataset, fetch_spec, lock_file_path
from samlora.data.errors import (
    CorruptArchiveError,
    DownloadError,
    MissingFilesError,
    UnsafeArchiveError,
)
from samlora.data.registry import get_dataset

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


def _closed_port_url(path: str = "/96/1/CHASEDB1.zip") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused, as with no network)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":  # the end of the zip (its directory) is missing
        return data[: len(data) // 2]
    bad = bytearray(data)  # a member's bytes flipped: the directory is intact, a CRC fails
    bad[len(bad) // 2] ^= 0xFF
    return bytes(bad)


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_corrupt_download_is_named_and_not_pinned(server: Server, chase_zip: bytes,
                                                  tmp_path: Path, how: str) -> None:
    server.files["/96/1/CHASEDB1.zip"] = _damaged(chase_zip, how)
    raw, lock, spec = tmp_path / "raw", tmp_path / "lock.json", chase_spec(url_of(server))
    archive = raw / "chase_db1/CHASEDB1.zip"
    for _ in range(2):  # the rerun must not "verify" a pinned bad hash either
        with pytest.raises(CorruptArchiveError) as info:
            fetch_spec(spec, raw, None, lock)
        msg = str(info.value)
        assert msg.startswith(f"{archive}: not a readable zip archive (") and "\n" not in msg
        assert "delete it" in msg and "run the download step again" in msg
        assert url_of(server) not in (json.loads(lock.read_text()) if lock.exists() else {})
    assert not (raw / "chase_db1/extracted").exists()
    # The message's advice works: delete it, the good archive is fetched and then pinned.
    archive.unlink()
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    fetch_spec(spec, raw, None, lock)
    assert json.loads(lock.read_text()) == {url_of(server): sha(chase_zip)}


def test_incomplete_download_is_not_pinned(server: Server, chase_zip: bytes, mirror: Path,
                                           tmp_path: Path) -> None:
    files = {p.name: p.read_bytes() for p in sorted((mirror / "CHASE_DB1").iterdir())}
    del files["Image_14R_2ndHO.png"]
    server.files["/96/1/CHASEDB1.zip"] = zip_bytes(files)
    lock = tmp_path / "lock.json"
    with pytest.raises(MissingFilesError, match="Image_14R_2ndHO.png") as info:
        fetch_spec(chase_spec(url_of(server)), tmp_path / "raw", None, lock)
    assert "no hash was pinned" in str(info.value)
    assert not lock.exists()


def test_mismatched_archive_is_moved_aside_not_deleted(server: Server, chase_zip: bytes,
                                                       tmp_path: Path) -> None:
    raw, lock = tmp_path / "raw", tmp_path / "lock.json"
    mine = b"the user's own copy, not the pinned archive"
    archive = raw / "chase_db1/CHASEDB1.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(mine)
    aside = archive.with_name(f"CHASEDB1.zip.bad-{sha(mine)[:12]}")
    # Offline: the download fails, the user's file is kept under the name the error gives.
    offline = _closed_port_url()
    lock.write_text(json.dumps({offline: sha(chase_zip)}))
    with pytest.raises(DownloadError) as info:
        fetch_spec(chase_spec(offline), raw, None, lock)
    msg = str(info.value)
    assert aside.read_bytes() == mine and not archive.exists()
    assert str(aside) in msg and offline in msg and str(archive) in msg and "\n" not in msg
    # Online: the pinned archive replaces it; the user's copy stays where it was moved.
    archive.write_bytes(mine)
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    lock.write_text(json.dumps({url_of(server): sha(chase_zip)}))
    fetch_spec(chase_spec(url_of(server)), raw, None, lock)
    assert sha(archive.read_bytes()) == sha(chase_zip) and aside.read_bytes() == mine


def _drive_files(mirror: Path) -> dict[str, bytes]:
    drive = mirror / "DRIVE"
    return {f"DRIVE/{p.relative_to(drive)}": p.read_bytes()
            for p in sorted(drive.rglob("*")) if p.is_file()}


def test_replaced_placed_archive_is_extracted_again(mirror: Path, tmp_path: Path) -> None:
    full = _drive_files(mirror)
    part = {k: v for k, v in full.items() if not k.startswith("DRIVE/test/")}
    (tmp_path / "raw/drive").mkdir(parents=True)
    placed = tmp_path / "raw/drive/DRIVE.zip"
    placed.write_bytes(zip_bytes(part))
    with pytest.raises(MissingFilesError, match="test/images/01_test.tif"):
        fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")
    placed.write_bytes(zip_bytes(full))  # the user replaces the incomplete archive
    root = fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")
    assert root == tmp_path / "raw/drive/extracted/DRIVE"
    assert (root / "test/images/01_test.tif").is_file()
    marker = json.loads((tmp_path / "raw/drive/extracted" / MARKER).read_text())
    assert marker["archives"] == [{"file": "DRIVE.zip", "sha256": sha(placed.read_bytes()),
                                   "into": ""}]
    assert not [p for p in (tmp_path / "raw/drive").iterdir() if p.name.startswith(".")]


def test_changed_download_is_extracted_again(server: Server, chase_zip: bytes, mirror: Path,
                                             tmp_path: Path) -> None:
    files = {p.name: p.read_bytes() for p in sorted((mirror / "CHASE_DB1").iterdir())}
    old = zip_bytes({**files, "Image_01L.jpg": b"an older, broken image"})
    server.files["/96/1/CHASEDB1.zip"] = old
    raw = tmp_path / "raw"
    fetch_spec(chase_spec(url_of(server), sha(old)), raw, None, tmp_path / "lock.json")
    # The registry's hash moves to a new release: it is downloaded and extracted afresh.
    server.files["/96/1/CHASEDB1.zip"] = chase_zip
    root = fetch_spec(chase_spec(url_of(server), sha(chase_zip)), raw, None, tmp_path / "lock.json")
    assert (root / "Image_01L.jpg").read_bytes() == files["Image_01L.jpg"]


def test_extraction_failure_keeps_the_previous_folder(chase_zip: bytes, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(chase_zip)
    bad.write_bytes(_damaged(chase_zip, "flipped"))
    target = extract_all([good], tmp_path / "extracted", record={"v": 1})
    with pytest.raises(CorruptArchiveError, match="bad.zip"):
        extract_all([bad], target, record={"v": 2})
    assert json.loads((target / MARKER).read_text()) == {"v": 1}
    assert len(list(target.glob("*.jpg"))) == 28
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_lock_file_path_is_under_the_project_root(repo_root: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert lock_file_path() == repo_root / "data/checksums.lock.json"


def test_run_download_writes_the_project_lock_file_from_any_folder(
        chase_zip: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    project = tmp_path / "project"  # stands in for the checkout: its lock file is not touched
    monkeypatch.setattr(config, "REPO_ROOT", project)
    arc = get_dataset("chase_db1").source.archives[0]
    raw = tmp_path / "raw"
    (raw / "chase_db1").mkdir(parents=True)
    (raw / "chase_db1" / arc.filename).write_bytes(chase_zip)  # placed: no network needed
    cfg = OmegaConf.create({"data": {"raw_dir": str(raw), "mirror": None,
                                     "allow_subset": False}})
    steps.run_download(cfg, argparse.Namespace(dataset="chase_db1"))
    assert json.loads((project / "data/checksums.lock.json").read_text()) == \
        {arc.url: sha(chase_zip)}
    assert not (elsewhere / "data").exists()


@pytest.mark.parametrize(("case", "expect"), [
    ("no network", ["check the network", "place it at"]),
    ("404", ["HTTP 404", "place it at"]),
    ("short", ["connection dropped", "resume from"]),
    ("chunked", ["connection dropped", "resume from"]),
    ("reset", ["connection dropped", "resume from"]),
])
def test_network_errors_name_url_and_file(server: Server, chase_zip: bytes, tmp_path: Path,
                                          case: str, expect: list[str]) -> None:
    url = _closed_port_url() if case == "no network" else url_of(server)
    if case != "404":
        server.files["/96/1/CHASEDB1.zip"] = chase_zip
    if case in ("short", "chunked", "reset"):
        server.broken["/96/1/CHASEDB1.zip"] = case
    raw, lock = tmp_path / "raw", tmp_path / "lock.json"
    with pytest.raises(DownloadError) as info:
        fetch_spec(chase_spec(url), raw, None, lock)
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)  # the CLI reports it without a traceback
    assert msg.startswith(f"{url}: ") and "\n" not in msg
    assert str(raw / "chase_db1/CHASEDB1.zip") in msg
    for part in expect:
        assert part in msg, part
    assert not lock.exists() and not (raw / "chase_db1/CHASEDB1.zip").exists()
    if expect[0] == "connection dropped":  # kept to resume from; the rerun completes it
        part_file = raw / "chase_db1/CHASEDB1.zip.part"
        assert str(part_file) in msg and part_file.stat().st_size < len(chase_zip)
        server.broken.clear()
        fetch_spec(chase_spec(url), raw, None, lock)
        assert sha((raw / "chase_db1/CHASEDB1.zip").read_bytes()) == sha(chase_zip)


def test_tar_symlink_chain_is_refused(tmp_path: Path) -> None:
    """``d/up`` points at the top folder, so ``d/up/esc -> ..`` lands one level above it."""
    tar = tar_file(tmp_path / "chain.tar", [tar_member("ok.txt"),
                                            tar_member("d/up", tarfile.SYMTYPE, ".."),
                                            tar_member("d/up/esc", tarfile.SYMTYPE, "..")])
    with pytest.raises(UnsafeArchiveError) as info:
        extract_all([tar], tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith(f"{tar}: refusing to extract member 'd/up/esc' (") and "\n" not in msg
    assert "outside" in msg and "delete it" in msg
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["chain.tar"]


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz", ".tar.bz2", ".tar.xz"])
def test_truncated_archives_are_corrupt(mirror: Path, tmp_path: Path, suffix: str) -> None:
    src = sorted((mirror / "CHASE_DB1").iterdir())[:6]
    full = tmp_path / f"full{suffix}"
    if suffix == ".zip":
        full.write_bytes(zip_bytes({p.name: p.read_bytes() for p in src}))
    else:
        mode = {".tar": "w", ".tar.gz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}[suffix]
        with tarfile.open(full, mode) as tf:
            for p in src:
                tf.add(p, arcname=p.name)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    kind = "zip" if suffix == ".zip" else "tar"
    with pytest.raises(CorruptArchiveError) as info:
        safe_extract(cut, tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith(f"{cut}: not a readable {kind} archive (") and "\n" not in msg
    assert "delete it" in msg


def test_missing_mirror_folder_says_so(tmp_path: Path) -> None:
    gone = tmp_path / "no-such-mirror"
    with pytest.raises(MissingFilesError) as info:
        fetch_dataset("chase_db1", tmp_path / "raw", gone, tmp_path / "lock.json")
    msg = str(info.value)
    assert msg.startswith(f"data.mirror: folder {gone} does not exist; ") and "\n" not in msg
    assert "set data.mirror in params.yaml" in msg and "CHASE_DB1/" in msg and "null" in msg
