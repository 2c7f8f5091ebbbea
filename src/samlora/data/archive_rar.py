"""RAR archives (RAR4 and RAR5) read through libarchive, for :mod:`samlora.data.archives`.

The Python package ``libarchive-c`` binds the system's ``libarchive.so`` (Debian:
``libarchive13``), which reads both RAR formats, so no non-free ``unrar`` is needed. It is
imported on first use: only datasets shipped as RAR (FIVES, GRAPE) need it.
:mod:`samlora.data.archives` checks every member this module lists before it asks for any
to be written. libarchive 3.6 does not verify the CRC32 of members stored without
compression; the download's SHA-256 (registry or lock file) covers the archive's bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Leading bytes of RAR archives and the libarchive format that reads them.
RAR_FORMATS = ((b"Rar!\x1a\x07\x01\x00", "rar5"), (b"Rar!\x1a\x07\x00", "rar"))

#: ``(name, kind, link)`` of a member; kind: file, dir, symlink, hardlink or special.
Member = tuple[str, str, str]


class RarReadError(ValueError):
    """libarchive could not read the archive (truncated, damaged or encrypted)."""


def rar_format(path: Path) -> str | None:
    """The libarchive format of a RAR file (``rar5`` or ``rar``), None if it is not one."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    return next((fmt for magic, fmt in RAR_FORMATS if head.startswith(magic)), None)


def _libarchive(label: str) -> Any:
    """The ``libarchive`` module, or a one-line error saying how to install it."""
    try:
        import libarchive
    except (ImportError, OSError, AttributeError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise RuntimeError(
            f"{label}: RAR archives are read through libarchive, which could not be loaded "
            f"({why}); install the Python package libarchive-c (pinned in requirements.txt) "
            "and the system library (Debian/Ubuntu: apt-get install libarchive13; conda: "
            "libarchive), or set LIBARCHIVE to the path of libarchive.so") from exc
    return libarchive


def _member(entry: Any) -> Member:
    name = entry.pathname or ""
    if entry.issym:
        return name, "symlink", entry.linkpath or ""
    if entry.islnk:
        return name, "hardlink", entry.linkpath or ""
    if entry.isdir:
        return name, "dir", ""
    return name, "file" if entry.isfile else "special", ""


def list_members(path: Path, fmt: str, label: str) -> list[Member]:
    """Every member of the archive, read from its headers (nothing is written).

    Raises:
        RarReadError: libarchive cannot read the archive.
    """
    lib = _libarchive(label)
    try:
        with lib.file_reader(str(path), format_name=fmt) as reader:
            return [_member(e) for e in reader]
    except lib.ArchiveError as exc:
        raise RarReadError(exc.msg) from exc


def _write(entry: Any, kind: str, link: str, target: Path, link_target: Path | None) -> None:
    if kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    if kind == "symlink":
        target.symlink_to(link)
    elif kind == "hardlink":
        if link_target is None or not link_target.is_file():
            raise RarReadError(f"hard link {entry.pathname!r} to a member it lacks ({link!r})")
        shutil.copyfile(link_target, target)
    else:
        with open(target, "wb") as fh:
            for block in entry.get_blocks():
                fh.write(block)


def extract_members(path: Path, fmt: str, label: str, dest: Path,
                    where: Callable[[str], str | None]) -> None:
    """Write each member to ``dest / where(name)``; a member ``where`` maps to None is skipped.

    Only call this with members already checked (:func:`list_members`): ``where`` must map
    names (and hard-link targets) inside ``dest``.

    Raises:
        RarReadError: libarchive cannot read the archive, or a hard link's target is absent.
    """
    lib = _libarchive(label)
    try:
        with lib.file_reader(str(path), format_name=fmt) as reader:
            for entry in reader:
                name, kind, link = _member(entry)
                rel = where(name)
                if rel is None:
                    continue
                hard = where(link) if kind == "hardlink" else None
                _write(entry, kind, link, dest / rel, dest / hard if hard else None)
    except lib.ArchiveError as exc:
        raise RarReadError(exc.msg) from exc
