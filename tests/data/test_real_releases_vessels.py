"""The vessel datasets' releases as they are published today, built from the mirror's files.

- DRIVE: the legacy ``DRIVE.zip`` (test labels of both observers) and the current
  ``training.zip`` + ``test.zip`` (no test labels), and the ``labelled_test`` split variant.
- CHASE_DB1: its archive behind a browser check (an HTML page with status 200, a 403).
- STARE: an https server whose certificate fails verification; the http fallback, still
  checked against the pinned SHA-256.
- HRF, Kvasir-SEG, STARE: the published hashes live in the registry, and a download with
  another hash is refused.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import logging
import shutil
import socket
import ssl
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import URLError

import pandas as pd
import pytest

from samlora.config import ConfigError, load_config
from samlora.data import http_fetch
from samlora.data.download import fetch_dataset, fetch_spec, read_lock
from samlora.data.errors import (
    ChecksumError,
    DownloadError,
    MissingFilesError,
    RegistrationRequiredError,
)
from samlora.data.http_fetch import DownloadRefusedError
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import Archive, DatasetSpec, dataset_ids, get_dataset

from .conftest import FOV_CFG
from .download_helpers import running

KINGSTON_PAGE = ("https://researchinnovation.kingston.ac.uk/en/datasets/"
                 "chasedb1-retinal-vessel-reference-dataset-4/")
PUBLISHED = {
    "hrf": {"all.zip": "a914d02cda161b7f33f25d0397c276d50e9a6cbc705e9b364a54f0adafed57e4"},
    "kvasir_seg": {
        "kvasir-seg.zip": "03b30e21d584e04facf49397a2576738fd626815771afbbf788f74a7153478f7"},
    "stare": {
        "stare-images.tar": "5f7b509b6067cad4f1be84933145d783de9ec087b3eaaf4db0103dd0144dd433",
        "labels-ah.tar": "ebf2f1e17ca955f24579d9edd990e2dae79a5c82def69f0985d8e24f826ddd2f",
        "labels-vk.tar": "47474a701536b0cfdb369fdce012be36141e9f44d80387f0179446b5cb0f5576"},
}


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _zip(files: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, src in files.items():
            zf.write(src, name)
    return buf.getvalue()


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _with_archives(name: str, archives: tuple[Archive, ...]) -> DatasetSpec:
    spec = get_dataset(name)
    return dataclasses.replace(spec, source=dataclasses.replace(spec.source, archives=archives))


# --- DRIVE: both releases --------------------------------------------------------------------


def _drive_files(mirror: Path, top: str, parts: tuple[str, ...],
                 nums: set[str] | None = None) -> dict[str, Path]:
    """``{member name: mirror file}`` for the DRIVE folders ``parts`` (e.g. ``test/mask``),
    under ``top`` ("" or ``DRIVE/``), restricted to the case numbers ``nums`` if given."""
    out = {}
    for part in parts:
        for src in sorted((mirror / "DRIVE" / part).iterdir()):
            if nums is None or src.name[:2] in nums:
                out[f"{top}{part}/{src.name}"] = src
    return out


TRAINING = ("training/images", "training/1st_manual", "training/mask")
TEST_CURRENT = ("test/images", "test/mask")
TEST_LEGACY = (*TEST_CURRENT, "test/1st_manual", "test/2nd_manual")


@pytest.fixture(scope="module")
def drive_zips(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three archives as published: ``DRIVE.zip`` (legacy, with a DRIVE/ top folder),
    ``training.zip`` and ``test.zip`` (current; test.zip without 1st_/2nd_manual)."""
    base = tmp_path_factory.mktemp("drive_zips")
    made = {"DRIVE.zip": _zip(_drive_files(mirror, "DRIVE/", (*TRAINING, *TEST_LEGACY))),
            "training.zip": _zip(_drive_files(mirror, "", TRAINING)),
            "test.zip": _zip(_drive_files(mirror, "", TEST_CURRENT))}
    for name, data in made.items():
        (base / name).write_bytes(data)
    return {name: base / name for name in made}


def _place(raw: Path, *archives: Path) -> None:
    (raw / "drive").mkdir(parents=True, exist_ok=True)
    for arc in archives:
        shutil.copyfile(arc, raw / "drive" / arc.name)


def test_drive_current_release_is_accepted_with_unlabelled_test_cases(
        drive_zips: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    _place(raw, drive_zips["training.zip"], drive_zips["test.zip"])
    with caplog.at_level(logging.WARNING, logger="samlora.data.download"):
        root = fetch_dataset("drive", raw, None, tmp_path / "lock.json")
    assert root == raw / "drive" / "extracted"
    source = json.loads((raw / "drive/source.json").read_text())
    assert source["cases"] == 40 and source["files"] == 100 and source["subset"] is False
    unlabelled = source["unlabelled"]
    assert unlabelled["count"] == 20
    assert unlabelled["cases"] == [f"drive_{n:02d}" for n in range(1, 21)]
    assert "current DRIVE download" in unlabelled["note"]
    assert "20 case(s) have no reference label in this release" in caplog.text
    assert "predicted, not scored" in caplog.text
    assert not (tmp_path / "lock.json").exists()  # placed archives are not pinned


def test_drive_legacy_release_keeps_both_observers(drive_zips: dict[str, Path],
                                                   tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _place(raw, drive_zips["DRIVE.zip"])
    root = fetch_dataset("drive", raw, None, tmp_path / "lock.json")
    assert root == raw / "drive/extracted/DRIVE"
    source = json.loads((raw / "drive/source.json").read_text())
    assert source["files"] == 140 and "unlabelled" not in source
    recs = get_dataset("drive").records(root)
    assert all(r.mask is not None for r in recs)
    assert sum(r.mask2 is not None for r in recs) == 20


def test_drive_legacy_copy_missing_a_label_is_reported_not_taken_for_current(
        drive_copy: Path, tmp_path: Path) -> None:
    (drive_copy / "test/1st_manual/07_manual1.gif").unlink()
    with pytest.raises(MissingFilesError) as info:
        fetch_dataset("drive", tmp_path / "raw", drive_copy.parent, tmp_path / "lock.json")
    first = str(info.value).splitlines()[0]
    assert "1 expected file(s) missing" in first and "07_manual1.gif" in first


def test_drive_placement_message_says_which_release_gives_which(tmp_path: Path) -> None:
    with pytest.raises(RegistrationRequiredError) as info:
        fetch_dataset("drive", tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    assert "DRIVE.zip (the legacy release: test labels of both observers)" in msg
    assert "training.zip + test.zip (the current download: no test labels" in msg
    assert "predicted but not scored" in msg and "labelled_test/<k>" in msg
    assert "https://drive.grand-challenge.org/" in msg


def test_drive_labelled_test_variant_carves_a_scored_test_set(mirror: Path,
                                                              tmp_path: Path) -> None:
    # The current release, with 4 of its 20 training images (a subset, to keep it small).
    nums = {"30", "31", "35", "36"}
    ext = tmp_path / "DRIVE"
    for name, src in {**_drive_files(mirror, "", TRAINING, nums),
                      **_drive_files(mirror, "", TEST_CURRENT, {"01"})}.items():
        (ext / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, ext / name)
    # block 2 of the sorted training ids is 31-35: 31 and 35 test, 30 and 36 train
    out = tmp_path / "processed"
    index = prepare_dataset("drive", ext, out, FOV_CFG, policy=PreparePolicy(
        allow_subset=True, split_variant="labelled_test/2"))
    assert dict(zip(index["case"], index["split"])) == {
        "drive_30": "train", "drive_31": "test", "drive_35": "test", "drive_36": "train"}
    assert (index["mask"] != "").all()  # every test case of the variant is labelled
    info = json.loads((out / "dataset.json").read_text())
    assert info["split_variant"] == "labelled_test/2" and "unlabelled" not in info


def test_config_accepts_the_drive_variant_and_rejects_a_bad_fold(repo_root: Path) -> None:
    params = repo_root / "params.yaml"
    cfg = load_config([params], ["+data.split_variants.drive=labelled_test/3"])
    assert cfg.data.split_variants.drive == "labelled_test/3"
    with pytest.raises(ConfigError, match=r"data\.split_variants\.drive.*out of range.*"
                                          r"labelled_test/<k>, k = 0\.\.3"):
        load_config([params], ["+data.split_variants.drive=labelled_test/4"])


# --- CHASE_DB1: a browser check in front of the archive --------------------------------------


class _PageServer(ThreadingHTTPServer):
    """Serves ``answers[path] = (status, content type or None, body)``; logs requests."""

    answers: dict[str, tuple[int, str | None, bytes]]
    requests: list[str]


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        status, ctype, body = self.server.answers.get(self.path, (404, None, b""))
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def pages() -> Iterator[_PageServer]:
    srv = _PageServer(("127.0.0.1", 0), _PageHandler)
    srv.answers, srv.requests = {}, []
    with running(srv):
        yield srv


CHASE_PATH = "/files/40659508/CHASEDB1.zip"
CHALLENGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"
             b"</head><body>Verifying you are human.</body></html>")


def test_chase_registry_points_at_the_kingston_repository() -> None:
    spec = get_dataset("chase_db1")
    assert spec.source.homepage == KINGSTON_PAGE
    (arc,) = spec.source.archives
    assert arc.url == "https://researchinnovation.kingston.ac.uk/files/40659508/CHASEDB1.zip"
    assert arc.filename == "CHASEDB1.zip" and arc.sha256 is None


@pytest.mark.parametrize("answer", [
    (200, "text/html; charset=UTF-8", CHALLENGE),   # the browser check, as served
    (200, None, b"\n  " + CHALLENGE),                # no Content-Type: told by its first bytes
    (200, "application/octet-stream", CHALLENGE),   # a wrong type does not hide the page
    (403, "text/html", CHALLENGE),                  # the check refusing outright
], ids=["html-200", "html-no-type", "html-as-octet-stream", "403"])
def test_chase_behind_a_browser_check_stops_with_placement_instructions(
        pages: _PageServer, tmp_path: Path, mirror: Path,
        answer: tuple[int, str | None, bytes]) -> None:
    pages.answers[CHASE_PATH] = answer
    url = f"http://127.0.0.1:{pages.server_address[1]}{CHASE_PATH}"
    spec = _with_archives("chase_db1", (Archive(url),))
    raw, lock = tmp_path / "raw", tmp_path / "checksums.lock.json"
    with pytest.raises(DownloadRefusedError) as info:
        fetch_spec(spec, raw, None, lock)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"chase_db1: {url} ")
    assert ("HTML page" in msg) if answer[0] == 200 else ("HTTP 403" in msg)
    assert KINGSTON_PAGE in msg
    assert f"put it at {(raw / 'chase_db1' / 'CHASEDB1.zip').resolve()}" in msg
    assert _files_under(raw) == [] and not lock.exists()  # the page is neither kept nor pinned
    # The user places the archive where the message says: it is used and pinned.
    real = _zip({p.name: p for p in sorted((mirror / "CHASE_DB1").iterdir())})
    (raw / "chase_db1").mkdir(parents=True, exist_ok=True)
    (raw / "chase_db1" / "CHASEDB1.zip").write_bytes(real)
    n_requests = len(pages.requests)
    root = fetch_spec(spec, raw, None, lock)
    assert len(list(root.glob("Image_*_1stHO.png"))) == 28
    assert read_lock(lock) == {url: _sha(real)}
    assert len(pages.requests) == n_requests  # nothing fetched again


def test_an_archive_served_as_text_html_is_still_an_archive(pages: _PageServer, mirror: Path,
                                                            tmp_path: Path) -> None:
    real = _zip({p.name: p for p in sorted((mirror / "CHASE_DB1").iterdir())})
    pages.answers[CHASE_PATH] = (200, "text/html", real)  # a misconfigured server
    url = f"http://127.0.0.1:{pages.server_address[1]}{CHASE_PATH}"
    root = fetch_spec(_with_archives("chase_db1", (Archive(url),)), tmp_path / "raw", None,
                      tmp_path / "lock.json")
    assert len(list(root.glob("Image_*.jpg"))) == 28


# --- STARE: an https certificate that fails verification -------------------------------------


def _stare_tars(mirror: Path, base: Path) -> dict[str, Path]:
    """The three tarballs as published: bare ``imNNNN[.ah|.vk].ppm.gz`` members."""
    out = {}
    for folder in ("stare-images", "labels-ah", "labels-vk"):
        path = base / f"{folder}.tar"
        with tarfile.open(path, "w") as tf:
            for src in sorted((mirror / "STARE" / folder).glob("*.ppm")):
                data = gzip.compress(src.read_bytes(), compresslevel=1, mtime=0)
                info = tarfile.TarInfo(src.name + ".gz")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        out[folder] = path
    return out


@pytest.fixture(scope="module")
def stare_tars(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _stare_tars(mirror, tmp_path_factory.mktemp("stare_tars"))


class _DualServer(ThreadingHTTPServer):
    """Plain HTTP and TLS (a self-signed certificate) on one port, told apart by the first
    byte: an https URL and its http form then differ in the scheme only, as on a real host."""

    ctx: ssl.SSLContext
    files: dict[str, bytes]
    requests: list[str]
    tls_attempts: int

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        sock.settimeout(5)
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS handshake record
                self.tls_attempts += 1
                sock = self.ctx.wrap_socket(sock, server_side=True)  # the client aborts it
        except OSError:
            sock.close()
            raise
        return sock, addr


class _FileHandler(BaseHTTPRequestHandler):
    server: _DualServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def bad_tls(tmp_path: Path) -> Iterator[_DualServer]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv = _DualServer(("127.0.0.1", 0), _FileHandler)
    srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.ctx.load_cert_chain(cert, key)
    srv.files, srv.requests, srv.tls_attempts = {}, [], 0
    with running(srv):
        yield srv


def _stare_spec(srv: _DualServer, tars: dict[str, Path], hashes: dict[str, str | None]
                ) -> DatasetSpec:
    base = f"https://127.0.0.1:{srv.server_address[1]}/~ahoover/stare/probing"
    for folder, path in tars.items():
        srv.files[f"/~ahoover/stare/probing/{path.name}"] = path.read_bytes()
    return _with_archives("stare", tuple(
        Archive(f"{base}/{folder}.tar", hashes[folder], into=folder) for folder in tars))


def test_stare_falls_back_to_http_when_the_certificate_fails(
        bad_tls: _DualServer, stare_tars: dict[str, Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    hashes = {folder: _sha(p.read_bytes()) for folder, p in stare_tars.items()}
    spec = _stare_spec(bad_tls, stare_tars, hashes)
    raw, lock = tmp_path / "raw", tmp_path / "lock.json"
    with caplog.at_level(logging.WARNING, logger="samlora.data.http_fetch"):
        root = fetch_spec(spec, raw, None, lock)
    assert bad_tls.tls_attempts == 3  # each archive was tried over https first
    assert sorted(bad_tls.requests) == sorted(f"/~ahoover/stare/probing/{p.name}"
                                              for p in stare_tars.values())
    assert "TLS certificate verification failed" in caplog.text
    assert len(get_dataset("stare").records(root)) == 20
    listed = json.loads((raw / "stare/source.json").read_text())["archives"]
    for entry, arc in zip(listed, spec.source.archives):
        assert entry["url"] == arc.url and entry["sha256"] == arc.sha256
        assert entry["fetched_from"] == "http://" + arc.url.removeprefix("https://")
    assert not lock.exists()  # hashes come from the registry, nothing to pin


def test_stare_http_fallback_is_still_checked_against_the_pinned_hash(
        bad_tls: _DualServer, stare_tars: dict[str, Path], tmp_path: Path) -> None:
    spec = _stare_spec(bad_tls, stare_tars, {
        "stare-images": PUBLISHED["stare"]["stare-images.tar"],
        "labels-ah": PUBLISHED["stare"]["labels-ah.tar"],
        "labels-vk": PUBLISHED["stare"]["labels-vk.tar"]})
    raw = tmp_path / "raw"
    with pytest.raises(ChecksumError) as info:
        fetch_spec(spec, raw, None, tmp_path / "lock.json")
    msg = str(info.value)
    assert PUBLISHED["stare"]["stare-images.tar"] in msg and "from the registry" in msg
    assert _sha(stare_tars["stare-images"].read_bytes()) in msg
    assert "fetched from http://127.0.0.1:" in msg and "\n" not in msg
    assert _files_under(raw) == []  # no tar and no .part left


def test_no_http_fallback_without_a_pinned_hash(bad_tls: _DualServer,
                                                stare_tars: dict[str, Path],
                                                tmp_path: Path) -> None:
    spec = _stare_spec(bad_tls, stare_tars, dict.fromkeys(stare_tars))
    with pytest.raises(DownloadError) as info:
        fetch_spec(spec, tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    assert "TLS certificate fails verification" in msg and "no SHA-256 is pinned" in msg
    assert "place it at" in msg and "\n" not in msg
    assert bad_tls.tls_attempts == 1 and bad_tls.requests == []  # nothing over http


def test_simulated_certificate_failure_falls_back_only_with_a_hash(
        stare_tars: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same fallback when urlopen itself raises the certificate error (no openssl)."""
    real_urlopen, asked = http_fetch.urlopen, []

    def urlopen(req: object, timeout: float) -> object:
        url = req.full_url  # type: ignore[attr-defined]
        asked.append(url)
        if url.startswith("https://"):
            raise URLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
        return real_urlopen(req, timeout=timeout)

    monkeypatch.setattr(http_fetch, "urlopen", urlopen)
    src = stare_tars["labels-ah"]
    part, target = tmp_path / "labels-ah.tar.part", tmp_path / "labels-ah.tar"
    with pytest.raises(DownloadError, match="no SHA-256 is pinned"):
        http_fetch.http_download("https://example.org/labels-ah.tar", part, target=target)
    assert not part.exists()
    # http_url keeps everything but the scheme; a file: URL stands in for the http host
    assert http_fetch.http_url("https://h:8443/a/b.tar?x=1") == "http://h:8443/a/b.tar?x=1"
    monkeypatch.setattr(http_fetch, "http_url", lambda url: src.as_uri())
    used = http_fetch.http_download("https://example.org/labels-ah.tar", part, target=target,
                                    http_fallback=True)
    assert used == src.as_uri() and part.read_bytes() == src.read_bytes()
    assert asked == ["https://example.org/labels-ah.tar", "https://example.org/labels-ah.tar",
                     src.as_uri()]


# --- published hashes: in the registry, enforced ---------------------------------------------


def test_registry_carries_the_published_hashes(repo_root: Path) -> None:
    for name, by_file in PUBLISHED.items():
        got = {a.filename: a.sha256 for a in get_dataset(name).source.archives}
        assert got == by_file, name
    # The committed lock file is only for archives nobody has pinned.
    committed = read_lock(repo_root / "data" / "checksums.lock.json")
    registry_urls = {a.url for n in dataset_ids() for a in get_dataset(n).source.archives
                     if a.sha256}
    assert not registry_urls & set(committed)


@pytest.fixture(scope="module")
def kvasir_zip(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kvasir-seg.zip in its published layout (Kvasir-SEG/ top folder), from the mirror's
    100-image subset."""
    src = mirror / "Kvasir-SEG"
    files = {f"Kvasir-SEG/{p.relative_to(src)}": p for p in _files_under(src)}
    path = tmp_path_factory.mktemp("kvasir") / "kvasir-seg.zip"
    path.write_bytes(_zip(files))
    return path


def test_download_with_another_hash_than_the_published_one_is_refused(
        kvasir_zip: Path, tmp_path: Path) -> None:
    (arc,) = get_dataset("kvasir_seg").source.archives  # the registry's own entry
    published = PUBLISHED["kvasir_seg"]["kvasir-seg.zip"]
    spec = _with_archives("kvasir_seg", (dataclasses.replace(arc, url=kvasir_zip.as_uri()),))
    raw, lock = tmp_path / "raw", tmp_path / "lock.json"
    with pytest.raises(ChecksumError) as info:
        fetch_spec(spec, raw, None, lock, allow_subset=True)
    msg = str(info.value)
    assert published in msg and _sha(kvasir_zip.read_bytes()) in msg
    assert "kvasir-seg.zip" in msg and "from the registry" in msg
    assert _files_under(raw) == [] and not lock.exists()
    # The same archive without a published hash would have been taken and pinned.
    spec = _with_archives("kvasir_seg", (Archive(kvasir_zip.as_uri()),))
    root = fetch_spec(spec, raw, None, lock, allow_subset=True)
    assert len(list((root / "images").glob("*.jpg"))) == 100
    assert read_lock(lock) == {kvasir_zip.as_uri(): _sha(kvasir_zip.read_bytes())}


def test_drive_unlabelled_test_rows_prepare_with_an_empty_mask(mirror: Path,
                                                              tmp_path: Path) -> None:
    ext = tmp_path / "DRIVE"
    for name, src in {**_drive_files(mirror, "", TRAINING, {"21"}),
                      **_drive_files(mirror, "", TEST_CURRENT, {"01", "02"})}.items():
        (ext / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, ext / name)
    out = tmp_path / "processed"
    index = prepare_dataset("drive", ext, out, FOV_CFG,
                            policy=PreparePolicy(allow_subset=True))
    on_disk = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    test = on_disk[on_disk["split"] == "test"]
    assert list(test["case"]) == ["drive_01", "drive_02"] and len(index) == 3
    assert (test["mask"] == "").all() and (test["mask2"] == "").all()
    assert (test["fov_source"] == "official").all() and (test["image"] != "").all()
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["drive_21.png"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["unlabelled"]["count"] == 2 and info["unlabelled"]["cases"] == list(test["case"])
    assert "current DRIVE download" in info["unlabelled"]["note"]
