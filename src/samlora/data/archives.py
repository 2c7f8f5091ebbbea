"""Safe extraction of zip and tar archives: nothing may land outside the target folder."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from samlora.data.errors import UnsafeArchiveError

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


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
    return UnsafeArchiveError(f"{archive}: refusing to extract member {member!r}: {why}")


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
            pointing outside ``dest`` (nothing is extracted then).
        ValueError: ``archive`` is neither a zip nor a tar file.
    """
    archive, dest = Path(archive), Path(dest)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_zip(archive, zf)
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            _check_tar(archive, tf)
            tf.extractall(dest, filter="data")
    else:
        raise ValueError(f"{archive}: not a zip or tar archive")


def extract_all(archives: Sequence[Path], target: Path,
                subdirs: Sequence[str] | None = None) -> Path:
    """Extract ``archives`` into a temporary folder, then rename it to ``target``.

    An interrupted or refused extraction leaves no ``target`` behind.

    Args:
        archives: zip/tar files, extracted in order into the same folder.
        target: the folder to create; it must not exist yet.
        subdirs: per archive, a relative sub-folder of ``target`` to extract into
            ("" = ``target`` itself); None = all into ``target``.

    Returns:
        ``target``.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target}: already exists; remove it to extract again")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        for archive, sub in zip(archives, subdirs or [""] * len(archives), strict=True):
            if sub and _inside(sub) is None:
                raise UnsafeArchiveError(f"{archive}: sub-folder {sub!r} leaves {target}")
            log.info("extracting %s", archive)
            safe_extract(archive, tmp / sub if sub else tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
