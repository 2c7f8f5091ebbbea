"""Fetch a dataset's official layout: from a mirror, a checked download, or files the user placed.

Whatever the origin, :func:`fetch_dataset` checks that every file the dataset's reader
expects is there and writes ``raw_dir/<id>/source.json`` naming the layout's root folder
(and, where the release ships some cases without a reference label, how many and why).
A server that refuses the download or answers with an HTML page stops the step with
where to get the archive in a browser and where to put it; an https certificate that
fails verification falls back to http only for archives whose SHA-256 is known.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from samlora import config
from samlora.data.archives import extract_all, extracted_from, is_archive
from samlora.data.errors import (
    ChecksumError,
    DownloadError,
    MissingFilesError,
    RegistrationRequiredError,
)
from samlora.data.http_fetch import DownloadRefusedError, http_download
from samlora.data.io import write_bytes_if_changed
from samlora.data.layout import LayoutCheck, check_layout, find_layout, missing_message
from samlora.data.registry import DatasetSpec, describe_layout, get_dataset, missing_files
from samlora.data.split_files import SplitFileError
from samlora.utils.io import sha256_file, write_json

log = logging.getLogger(__name__)

SOURCE_JSON = "source.json"
EXTRACTED = "extracted"  # folder under raw_dir/<id>/ holding the extracted archives
LOCK_FILE = Path("data") / "checksums.lock.json"  # relative to the project root


def lock_file_path() -> Path:
    """The committed lock file of pinned archive hashes, under the project root.

    Resolved against :data:`samlora.config.REPO_ROOT` (read at call time), never the
    working directory, so every run reads and writes the same file.
    """
    return Path(config.REPO_ROOT) / LOCK_FILE


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
        CorruptArchiveError: an archive cannot be read (its hash is then not pinned).
        UnsafeArchiveError: an archive member would land outside the extraction folder.
        DownloadError: no network, an HTTP error, or a connection dropped mid-download.
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
    elif _user_placed(spec, dest):  # a downloadable dataset the user fetched by hand
        log.info("%s: using the files placed in %s instead of downloading", spec.id, dest)
        root, info = _from_placed(spec, dest, allow_subset)
    else:
        root, info = _from_archives(spec, dest, Path(lock_file), allow_subset)
    check: LayoutCheck = check_layout(spec, root, allow_subset)
    n_files = sum(len(r.files()) for r in check.records)
    record = {"dataset": spec.id, "root": str(root.resolve()), "files": n_files,
              "cases": len(check.records), "subset": check.subset_info(),
              "homepage": spec.source.homepage, **info, **_unlabelled(spec, check)}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_bytes_if_changed(dest / SOURCE_JSON, text.encode())
    log.info("%s: %d files in %s (%s)", spec.id, n_files, root, info["origin"])
    return root


def _user_placed(spec: DatasetSpec, dest: Path) -> bool:
    """True when ``dest`` holds something the download step did not write there: an archive
    or folder the user placed (any name but the registry's archives and their traces)."""
    if not dest.is_dir():
        return False
    own = {a.filename for a in spec.source.archives}
    for entry in dest.iterdir():
        name = entry.name
        if name.startswith(".") or name in (EXTRACTED, SOURCE_JSON):
            continue
        if any(name == f or name.startswith((f"{f}.part", f"{f}.bad-")) for f in own):
            continue
        return True
    return False


def _unlabelled(spec: DatasetSpec, check: LayoutCheck) -> dict[str, Any]:
    """``{"unlabelled": {...}}`` for cases the layout holds without a reference label
    (logged: they are prepared and predicted, not scored), else ``{}``."""
    cases = [r.case for r in check.records if r.mask is None]
    if not cases:
        return {}
    note = spec.source.unlabelled or "this source ships no reference label for them"
    log.warning("%s: %d case(s) have %s; they are prepared and predicted, not scored",
                spec.id, len(cases), note)
    return {"unlabelled": {"count": len(cases), "cases": cases, "note": note}}


def _from_mirror(spec: DatasetSpec, mirror: Path) -> tuple[Path, dict[str, Any]]:
    """The mirror's folder of ``spec`` (checked by the caller)."""
    if not mirror.is_dir():
        shown = str(mirror) if mirror.is_absolute() else f"{mirror} (= {mirror.resolve()})"
        raise MissingFilesError(
            f"data.mirror: folder {shown} does not exist; set data.mirror in params.yaml to "
            f"the folder holding {spec.folder}/ in its official layout, or to null to fetch "
            f"{spec.id} without a mirror")
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


def _extraction_record(archives: Sequence[Path], digests: Sequence[str],
                       subdirs: Sequence[str] | None = None) -> dict[str, Any]:
    """What an extraction folder records of the archives it was extracted from."""
    subs = list(subdirs) if subdirs is not None else [""] * len(archives)
    return {"archives": [{"file": p.name, "sha256": d, "into": s}
                         for p, d, s in zip(archives, digests, subs, strict=True)]}


def _ensure_extracted(archives: Sequence[Path], extracted: Path, record: dict[str, Any],
                      subdirs: Sequence[str] | None = None) -> None:
    """Extract ``archives`` into ``extracted`` unless it was extracted from these very files."""
    if extracted_from(extracted) == record:
        return
    if extracted.exists():
        log.info("%s: extracted from other archives (or their hashes are not recorded); "
                 "extracting again", extracted)
    extract_all(archives, extracted, subdirs, record)


def _from_placed(spec: DatasetSpec, dest: Path, allow_subset: bool
                 ) -> tuple[Path, dict[str, Any]]:
    """Use a layout or archives the user placed in ``dest`` (registration-only datasets).

    A layout placed outside ``extracted/`` is used as it is; otherwise the placed archives
    are (re-)extracted whenever they differ from those ``extracted/`` was made from.
    """
    archives = sorted(p for p in dest.iterdir() if p.is_file() and is_archive(p)) \
        if dest.is_dir() else []
    info: dict[str, Any] = {"origin": "placed", "location": str(dest.resolve())}
    extracted = dest / EXTRACTED
    digests = [sha256_file(p) for p in archives]
    try:
        root, partial = find_layout(spec, dest, allow_subset)
    except SplitFileError as exc:  # a seeded split is drawn from the extracted data
        if not archives:
            raise
        _ensure_extracted(archives, extracted, _extraction_record(archives, digests))
        raise SplitFileError(f"{exc} (the placed archives are extracted to {extracted}, "
                             "where that command finds the cases)") from exc
    if archives:
        info["archives"] = [{"file": p.name, "sha256": d} for p, d in zip(archives, digests)]
        if root is None or root.is_relative_to(extracted):
            _ensure_extracted(archives, extracted, _extraction_record(archives, digests))
            root, partial = find_layout(spec, dest, allow_subset)
    if root is not None:
        return root, info
    if partial is not None:
        missing = missing_files(spec.records(partial))
        raise MissingFilesError(missing_message(spec, partial, missing) + "\n"
                                + _registration_message(spec, dest))
    raise RegistrationRequiredError(_registration_message(spec, dest))


def _from_archives(spec: DatasetSpec, dest: Path, lock_file: Path, allow_subset: bool
                   ) -> tuple[Path, dict[str, Any]]:
    """Download (or reuse) every archive, verify it, extract it, find the layout.

    An archive without a published or pinned hash has the hash seen pinned in the lock
    file only after the archives have extracted and the layout has been found in them, so
    that a corrupt or incomplete download is never pinned.
    """
    if not spec.source.archives:
        raise ValueError(f"{spec.id}: the registry lists no archive to download")
    pinned = read_lock(lock_file)
    paths, digests, listed, to_pin = [], [], [], []
    for arc in spec.source.archives:
        path = dest / arc.filename
        expected = arc.sha256 or pinned.get(arc.url)
        origin = "the registry" if arc.sha256 else f"the lock file {lock_file}"
        try:
            digest, fetched = download_verified(arc.url, path, expected, origin)
        except DownloadRefusedError as exc:
            raise _refused(spec, path, exc) from exc
        paths.append(path)
        digests.append(digest)
        listed.append({"url": arc.url, "file": arc.filename, "sha256": digest,
                       **({"fetched_from": fetched} if fetched not in (None, arc.url) else {})})
        if expected is None:
            to_pin.append((arc.url, digest))
    extracted = dest / EXTRACTED
    subdirs = [a.into for a in spec.source.archives]
    _ensure_extracted(paths, extracted, _extraction_record(paths, digests, subdirs), subdirs)
    root, partial = find_layout(spec, extracted, allow_subset)
    if root is None:
        where = partial or extracted
        unpinned = "; no hash was pinned" if to_pin else ""
        raise MissingFilesError(
            missing_message(spec, where, missing_files(spec.records(where)))
            + f"\n(extracted from {', '.join(str(p) for p in paths)}{unpinned}; if an archive "
            f"is incomplete, delete it and run the download step again)")
    for url, digest in to_pin:
        pin_hash(lock_file, url, digest)
    return root, {"origin": "download", "location": [a.url for a in spec.source.archives],
                  "archives": listed}


def _refused(spec: DatasetSpec, path: Path, exc: DownloadRefusedError) -> DownloadRefusedError:
    """The refused download of ``path`` as placement instructions naming the homepage."""
    return DownloadRefusedError(
        f"{spec.id}: {exc.url} {exc.why}, not {path.name}, so it cannot be downloaded "
        f"automatically; open {spec.source.homepage} in a browser, download {path.name} "
        f"there and put it at {path.resolve()}, then run the download step again (nothing "
        f"the server sent was kept or pinned){exc.note}", exc.url, exc.why, exc.note)


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


def _move_aside(path: Path, digest: str) -> Path:
    """Rename ``path`` to ``<name>.bad-<first 12 hex of its sha256>`` (never delete it)."""
    aside = path.with_name(f"{path.name}.bad-{digest[:12]}")
    os.replace(path, aside)
    return aside


def download_verified(url: str, path: Path, expected: str | None,
                      origin: str = "the registry") -> tuple[str, str | None]:
    """Download ``url`` to ``path`` through ``<name>.part`` and verify its SHA-256.

    An existing ``path`` with the expected hash (or with none expected) is kept and nothing
    is fetched. An existing ``path`` with another hash is moved aside to
    ``<name>.bad-<sha12>`` (never deleted: it may be a file the user placed), then
    downloaded again. Pinning a hash seen for the first time is the caller's business.
    Only a file with an expected hash may come over http after its https certificate
    failed verification (the hash then vouches for it).

    Args:
        url: where the file comes from.
        path: where it goes.
        expected: hex SHA-256 it must have, or None (any).
        origin: where ``expected`` comes from, for messages ("the registry", a lock file).

    Returns:
        (the hex SHA-256 of ``path``, the URL it was fetched from or None when ``path``
        was already there).

    Raises:
        ChecksumError: the download's hash differs (the download is deleted).
        DownloadRefusedError: the server refused the download or sent an HTML page.
        DownloadError: the download failed; the message names a file moved aside.
    """
    moved = ""
    if path.is_file():
        actual = sha256_file(path)
        if expected is None or actual == expected:
            if expected is not None:
                log.info("%s: present, sha256 verified", path)
            return actual, None
        aside = _move_aside(path, actual)
        moved = (f"; the earlier {path.name} (sha256 {actual}, not the expected one) was "
                 f"moved to {aside}")
        log.warning("%s: sha256 %s differs from the expected %s (from %s); moved it to %s "
                    "and downloading %s again", path, actual, expected, origin, aside, url)
    part = path.with_name(path.name + ".part")
    try:
        fetched = http_download(url, part, target=path, http_fallback=expected is not None)
    except DownloadError as exc:
        if not moved:
            raise
        if isinstance(exc, DownloadRefusedError):
            raise DownloadRefusedError(f"{exc}{moved}", exc.url, exc.why, moved) from exc
        raise DownloadError(f"{exc}{moved}") from exc
    actual = sha256_file(part)
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        via = f" (fetched from {fetched})" if fetched != url else ""
        raise ChecksumError(
            f"{url}: SHA-256 mismatch for {path.name}{via}: expected {expected} (from "
            f"{origin}), got {actual}; the download was deleted. If the archive changed "
            f"upstream, check it and update {origin}{moved}.")
    os.replace(part, path)
    return actual, fetched
