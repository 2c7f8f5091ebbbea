"""Safe extraction of zip and tar archives: nothing may land outside the target folder."""

from __future__ import annotations

import gzip
import json
import logging
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from samlora.data.errors import CorruptArchiveError, UnsafeArchiveError
from samlora.utils.io import make_temp_dir, write_json

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
MARKER = ".samlora-extracted.json"  # inside an extraction folder: what it was extracted from

# What reading a damaged or truncated zip/tar raises (besides the OSError of bz2/gzip streams).
_READ_ERRORS = (zipfile.BadZipFile, tarfile.ReadError, tarfile.CompressionError,
                tarfile.HeaderError, tarfile.StreamError, EOFError, zlib.error,
                lzma.LZMAError, gzip.BadGzipFile, NotImplementedError)


def is_archive(path: Path) -> bool:
    """True if ``path``'s name ends in one of :data:`ARCHIVE_SUFFIXES`."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _inside(name: str) -> str | None:
    """``name`` normalised relative to the target folder, or None if it would escape it."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    norm = os.path.normpath(name)
    if norm == ".." or norm.startswith("../") or ".." in PurePosixPath(name).parts:
        return None
    return norm


def _refuse(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{archive}: refusing to extract member {member!r} ({_one_line(why)}); the archive is "
        "unsafe: delete it and get the dataset from its official source")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _kind(archive: Path) -> str:
    """"zip" or "tar", from the file name (for messages about unreadable files)."""
    return "zip" if archive.name.lower().endswith(".zip") else "tar"


def _corrupt(archive: Path, kind: str, why: object) -> CorruptArchiveError:
    return CorruptArchiveError(
        f"{archive}: not a readable {kind} archive ({_one_line(str(why)) or type(why).__name__}"
        f"); it is truncated or damaged: delete it (or replace it with a complete copy) and "
        "run the download step again")


def _unreadable(exc: BaseException) -> bool:
    """True if ``exc`` says the archive's bytes are damaged (not e.g. a full disk)."""
    if isinstance(exc, _READ_ERRORS):
        return True
    # bz2 raises a bare OSError("Invalid data stream"); system errors carry an errno.
    return type(exc) is OSError and exc.errno is None


def _link_target_ok(member: str, target: str) -> bool:
    """True if a link at ``member`` pointing to ``target`` stays inside the target folder."""
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return False
    joined = os.path.normpath(os.path.join(os.path.dirname(member), target))
    return _inside(joined) is not None


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        if _inside(info.filename) is None:
            raise _refuse(archive, info.filename, "absolute path or '..' component")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            if not _link_target_ok(info.filename, target):
                raise _refuse(archive, info.filename, f"link to {target!r} outside the folder")


def _check_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for m in tf.getmembers():
        if _inside(m.name) is None:
            raise _refuse(archive, m.name, "absolute path or '..' component")
        if m.issym() and not _link_target_ok(m.name, m.linkname):
            raise _refuse(archive, m.name, f"symlink to {m.linkname!r} outside the folder")
        if m.islnk() and _inside(m.linkname) is None:
            raise _refuse(archive, m.name, f"hard link to {m.linkname!r} outside the folder")
        if m.isdev() or m.isfifo():
            raise _refuse(archive, m.name, "device or FIFO")


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest`` after checking every member.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component, or is a link
            pointing outside ``dest`` (nothing is extracted then), or tarfile's ``data``
            filter refuses one (e.g. a chain of symlinks leading outside ``dest``).
        CorruptArchiveError: ``archive`` is truncated, damaged, or neither a zip nor a tar file.
    """
    archive, dest = Path(archive), Path(dest)
    kind = _kind(archive)
    try:
        if zipfile.is_zipfile(archive):
            kind = "zip"
            with zipfile.ZipFile(archive) as zf:
                _check_zip(archive, zf)
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            kind = "tar"
            with tarfile.open(archive) as tf:
                _check_tar(archive, tf)
                tf.extractall(dest, filter="data")
        else:
            why = "no zip directory found" if kind == "zip" else "no tar header found"
            raise _corrupt(archive, kind, why)
    except tarfile.FilterError as exc:
        member = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise _refuse(archive, member, str(exc)) from exc
    except Exception as exc:
        if not _unreadable(exc):
            raise
        raise _corrupt(archive, kind, exc) from exc


def extracted_from(target: Path) -> Any:
    """The record :func:`extract_all` wrote into ``target``; None if absent or unreadable."""
    try:
        return json.loads((Path(target) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _swap_in(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``, replacing an existing ``target`` folder."""
    if not target.exists():
        os.replace(new, target)
        return
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    os.replace(target, trash / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(trash / target.name, target)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def extract_all(archives: Sequence[Path], target: Path,
                subdirs: Sequence[str] | None = None, record: Any = None) -> Path:
    """Extract ``archives`` into a temporary folder, then swap it in as ``target``.

    An interrupted or refused extraction leaves ``target`` as it was (absent, or the
    previous extraction); the new one replaces it only once complete.

    Args:
        archives: zip/tar files, extracted in order into the same folder.
        target: the folder to create or replace.
        subdirs: per archive, a relative sub-folder of ``target`` to extract into
            ("" = ``target`` itself); None = all into ``target``.
        record: JSON-serialisable description of the sources (e.g. their hashes), saved as
            ``target/``:data:`MARKER` and read back by :func:`extracted_from`.

    Returns:
        ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(target.parent, f".{target.name}.tmp-")
    try:
        for archive, sub in zip(archives, subdirs or [""] * len(archives), strict=True):
            if sub and _inside(sub) is None:
                raise UnsafeArchiveError(f"{archive}: sub-folder {sub!r} leaves {target}")
            log.info("extracting %s", archive)
            safe_extract(archive, tmp / sub if sub else tmp)
        if record is not None:
            write_json(tmp / MARKER, record)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
