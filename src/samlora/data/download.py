"""Fetch a dataset's official layout: from a mirror, a checked download, or files the user placed.

Whatever the origin, :func:`fetch_dataset` checks that every file the dataset's reader
expects is there and writes ``raw_dir/<id>/source.json`` naming the layout's root folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from samlora.data.archives import extract_all, is_archive
from samlora.data.errors import ChecksumError, MissingFilesError, RegistrationRequiredError
from samlora.data.io import write_bytes_if_changed
from samlora.data.layout import LayoutCheck, check_layout, find_layout, missing_message
from samlora.data.registry import DatasetSpec, describe_layout, get_dataset, missing_files
from samlora.data.split_files import SplitFileError
from samlora.utils.io import sha256_file, write_json

log = logging.getLogger(__name__)

SOURCE_JSON = "source.json"
EXTRACTED = "extracted"  # folder under raw_dir/<id>/ holding the extracted archives
_CHUNK = 1 << 20


def fetch_dataset(name: str, raw_dir: Path, mirror: Path | None, lock_file: Path,
                  allow_subset: bool = False) -> Path:
    """Locate or download dataset ``name`` and record where its official layout lies.

    Args:
        name: registry id (``drive``, ``chase_db1``).
        raw_dir: ``data/raw``; downloads and extracted archives go to ``raw_dir/<name>/``.
        mirror: folder holding ``<FolderName>/`` in the official layout, or None.
        lock_file: JSON ``{url: sha256}`` pinning archives that have no published hash.
        allow_subset: accept a source holding only some of the split file's cases (e.g.
            a test mirror); ``source.json`` then records ``subset`` with the counts.

    Returns:
        The root folder of the official layout (also written to ``source.json``).

    Raises:
        UnknownDatasetError: ``name`` is not registered.
        MissingFilesError: the mirror or the extracted archives lack expected files, or
            (without ``allow_subset``) cases the split file names.
        RegistrationRequiredError: a registration-only dataset is neither mirrored nor placed.
        ChecksumError: a download's SHA-256 differs from the expected one.
    """
    return fetch_spec(get_dataset(name), raw_dir, mirror, lock_file, allow_subset)


def fetch_spec(spec: DatasetSpec, raw_dir: Path, mirror: Path | None, lock_file: Path,
               allow_subset: bool = False) -> Path:
    """:func:`fetch_dataset` for an explicit spec (e.g. one with a test URL)."""
    dest = Path(raw_dir) / spec.id
    if mirror is not None:
        root, info = _from_mirror(spec, Path(mirror))
    elif spec.source.registration or not spec.source.archives:  # placed by the user
        root, info = _from_placed(spec, dest, allow_subset)
    else:
        root, info = _from_archives(spec, dest, Path(lock_file), allow_subset)
    check: LayoutCheck = check_layout(spec, root, allow_subset)
    n_files = sum(len(r.files()) for r in check.records)
    record = {"dataset": spec.id, "root": str(root.resolve()), "files": n_files,
              "cases": len(check.records), "subset": check.subset_info(),
              "homepage": spec.source.homepage, **info}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_bytes_if_changed(dest / SOURCE_JSON, text.encode())
    log.info("%s: %d files in %s (%s)", spec.id, n_files, root, info["origin"])
    return root


def _from_mirror(spec: DatasetSpec, mirror: Path) -> tuple[Path, dict[str, Any]]:
    """The mirror's folder of ``spec`` (checked by the caller)."""
    root = mirror / spec.folder
    if not root.is_dir():
        raise MissingFilesError(f"{spec.id}: mirror {mirror} has no folder {spec.folder}/ "
                                f"(expected the official layout there)")
    return root, {"origin": "mirror", "location": str(mirror.resolve())}


def _registration_message(spec: DatasetSpec, dest: Path) -> str:
    src = spec.source
    try:
        layout = describe_layout(spec, dest).replace("\n", "\n   ")
    except SplitFileError:  # a seeded split is drawn from the data once it is placed
        layout = f"(the layout described in samlora/data/sources/{spec.id}.py)"
    why, get = (("needs registration", "Register and download") if src.registration else
                ("has no verified direct download in the registry", "Download"))
    return (
        f"{spec.id} {why} and cannot be downloaded automatically.\n"
        f"  1. {get} it at {src.homepage}\n"
        f"  2. Put {src.placement} in\n"
        f"       {dest.resolve()}/\n"
        f"     Archives found there are extracted to {dest / EXTRACTED}/ (a single top folder\n"
        f"     such as {spec.folder}/ inside them is fine). These files must exist:\n"
        f"   {layout}\n"
        f"  3. Run the download step again.\n"
        f"Or set data.mirror in params.yaml to a folder holding {spec.folder}/ in this layout.")


def _from_placed(spec: DatasetSpec, dest: Path, allow_subset: bool
                 ) -> tuple[Path, dict[str, Any]]:
    """Use a layout or archives the user placed in ``dest`` (registration-only datasets)."""
    root, partial = find_layout(spec, dest, allow_subset)
    archives = sorted(p for p in dest.iterdir() if p.is_file() and is_archive(p)) \
        if dest.is_dir() else []
    info: dict[str, Any] = {"origin": "placed", "location": str(dest.resolve())}
    if root is None and archives and not (dest / EXTRACTED).exists():
        extract_all(archives, dest / EXTRACTED)
        root, partial = find_layout(spec, dest, allow_subset)
    if archives:
        info["archives"] = [{"file": p.name, "sha256": sha256_file(p)} for p in archives]
    if root is not None:
        return root, info
    if partial is not None:
        missing = missing_files(spec.records(partial))
        raise MissingFilesError(missing_message(spec, partial, missing) + "\n"
                                + _registration_message(spec, dest))
    raise RegistrationRequiredError(_registration_message(spec, dest))


def _from_archives(spec: DatasetSpec, dest: Path, lock_file: Path, allow_subset: bool
                   ) -> tuple[Path, dict[str, Any]]:
    """Download (or reuse) every archive, verify it, extract once, find the layout."""
    if not spec.source.archives:
        raise ValueError(f"{spec.id}: the registry lists no archive to download")
    paths, listed = [], []
    for arc in spec.source.archives:
        path = dest / arc.filename
        digest = download_verified(arc.url, path, arc.sha256, lock_file)
        paths.append(path)
        listed.append({"url": arc.url, "file": arc.filename, "sha256": digest})
    extracted = dest / EXTRACTED
    if not extracted.exists():
        extract_all(paths, extracted, [a.into for a in spec.source.archives])
    root, partial = find_layout(spec, extracted, allow_subset)
    if root is None:
        where = partial or extracted
        raise MissingFilesError(missing_message(spec, where, missing_files(spec.records(where)))
                                + f"\n(remove {extracted} to extract the archives again)")
    return root, {"origin": "download", "location": [a.url for a in spec.source.archives],
                  "archives": listed}


# --- checksums --------------------------------------------------------------------------


def read_lock(lock_file: Path) -> dict[str, str]:
    """The ``{url: sha256}`` map of ``lock_file`` ({} if it does not exist)."""
    if not lock_file.is_file():
        return {}
    try:
        data = json.loads(lock_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{lock_file}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{lock_file}: expected a JSON object mapping URL -> sha256")
    return data


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Serialise read-modify-write of the lock file between parallel download jobs."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no inter-process lock
        yield
        return
    with open(lock_file.with_name(f".{lock_file.name}.lck"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pin_hash(lock_file: Path, url: str, digest: str) -> None:
    """Record ``digest`` for ``url`` in ``lock_file`` (atomically; other entries kept)."""
    with _locked(lock_file):
        data = read_lock(lock_file)
        if data.get(url) not in (None, digest):
            raise ChecksumError(f"{lock_file}: {url} is already pinned to {data[url]}, "
                                f"not {digest}")
        data[url] = digest
        write_json(lock_file, data)
    log.info("pinned %s to sha256 %s in %s", url, digest, lock_file)


def download_verified(url: str, path: Path, sha256: str | None, lock_file: Path) -> str:
    """Download ``url`` to ``path`` through ``<name>.part`` and verify its SHA-256.

    The expected hash is ``sha256`` (published), else the lock file's entry for ``url``;
    with neither, the hash seen is pinned in the lock file and enforced from then on.
    An existing ``path`` with the expected hash is kept (no network).

    Returns:
        The verified hex SHA-256.

    Raises:
        ChecksumError: the hash differs; the downloaded file is deleted first.
    """
    expected = sha256 or read_lock(lock_file).get(url)
    if path.is_file():
        actual = sha256_file(path)
        if expected is None:
            pin_hash(lock_file, url, actual)
            return actual
        if actual == expected:
            log.info("%s: present, sha256 verified", path)
            return actual
        log.warning("%s: sha256 %s differs from the expected %s; downloading again",
                    path, actual, expected)
        path.unlink()
    part = path.with_name(path.name + ".part")
    http_download(url, part)
    actual = sha256_file(part)
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        origin = "the registry" if sha256 else f"the lock file {lock_file}"
        raise ChecksumError(
            f"{url}: SHA-256 mismatch for {path.name}: expected {expected} (from {origin}), "
            f"got {actual}; the download was deleted. If the archive changed upstream, check "
            f"it and update {origin}.")
    if expected is None:
        pin_hash(lock_file, url, actual)
    os.replace(part, path)
    return actual


# --- HTTP -------------------------------------------------------------------------------


def _range_total(header: str | None) -> int | None:
    """Total size from a ``Content-Range: bytes a-b/N`` or ``bytes */N`` header."""
    m = re.search(r"/(\d+)\s*$", header or "")
    return int(m.group(1)) if m else None


def _range_start(header: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", header or "")
    return int(m.group(1)) if m else None


def http_download(url: str, part: Path, timeout: float = 60.0) -> None:
    """Download ``url`` into ``part``, resuming an existing ``part`` with an HTTP Range request.

    A server that ignores the range (status 200) or answers a different one restarts the
    download from byte 0. Handles http(s) and file URLs.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    req = Request(url, headers={"User-Agent": "samlora-data/0.1"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urlopen(req, timeout=timeout)  # URLs come from the registry
    except HTTPError as exc:
        if exc.code == 416 and offset:
            if _range_total(exc.headers.get("Content-Range")) == offset:
                log.info("%s: already complete (%d bytes)", part, offset)
                return
            part.unlink()
            return http_download(url, part, timeout)
        raise OSError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except URLError as exc:
        raise OSError(f"{url}: download failed ({exc.reason})") from exc
    with resp:
        status = getattr(resp, "status", None)
        resumed = bool(offset) and status == 206 and \
            _range_start(resp.headers.get("Content-Range")) == offset
        if offset and not resumed:
            log.info("%s: server ignored the range request; restarting from byte 0", url)
            offset = 0
        elif resumed:
            log.info("%s: resuming at byte %d", url, offset)
        length = resp.headers.get("Content-Length")
        total = int(length) + offset if length and length.isdigit() else None
        _copy(resp, part, "ab" if resumed else "wb", offset, total, url)


def _copy(resp: Any, part: Path, mode: str, done: int, total: int | None, url: str) -> None:
    """Stream ``resp`` into ``part``, logging progress about every 10 % (or 10 s)."""
    last = time.monotonic()
    next_pct = 10
    with open(part, mode) as fh:
        while block := resp.read(_CHUNK):
            fh.write(block)
            done += len(block)
            pct = 100 * done // total if total else 0
            if (total and pct >= next_pct) or time.monotonic() - last > 10:
                log.info("%s: %.1f MB%s", url, done / 1e6, f" ({pct}%)" if total else "")
                last, next_pct = time.monotonic(), pct + 10
    if total is not None and done != total:
        raise OSError(f"{url}: connection closed after {done} of {total} bytes; "
                      f"run again to resume from {part}")
