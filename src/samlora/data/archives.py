"""Safe extraction of zip, tar and RAR archives: nothing may land outside the target folder.

Every member of an archive is checked before anything is written: no absolute path, no
``..`` component, no link pointing outside the target folder, no device or FIFO. macOS
metadata (``__MACOSX/`` folders and ``._*`` AppleDouble files) is skipped. RAR archives
(RAR4 and RAR5, e.g. FIVES and GRAPE on figshare) are read through libarchive
(:mod:`samlora.data.archive_rar`).

:func:`extract_all` extracts a dataset's archives into a temporary folder and swaps it in
once complete. Several archives extracted into the same folder each keep their own top
folder; one without a top folder (its files at its root) goes into a folder named after
it (``ROI images.rar`` -> ``ROI images/``), so that side-by-side archives cannot mix their
files. An archive found among the extracted files (REFUGE2's download is a zip of six zips)
is extracted in place into a folder of its stem (``REFUGE-Test-GT.zip`` ->
``REFUGE-Test-GT/``; an archive whose only top folder already has that name is not
doubled), its members checked the same way, and then deleted; such nesting is followed
:data:`MAX_NESTING` levels deep.
"""

from __future__ import annotations

import filecmp
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
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from samlora.data.archive_rar import RarReadError, extract_members, list_members, rar_format
from samlora.data.errors import CorruptArchiveError, UnsafeArchiveError
from samlora.utils.io import make_temp_dir, write_json

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".rar")
MARKER = ".samlora-extracted.json"  # inside an extraction folder: what it was extracted from
MAX_NESTING = 3  # levels of archives inside extracted archives that are extracted too

# What reading a damaged or truncated zip/tar raises (besides the OSError of bz2/gzip streams).
_READ_ERRORS = (zipfile.BadZipFile, tarfile.ReadError, tarfile.CompressionError,
                tarfile.HeaderError, tarfile.StreamError, EOFError, zlib.error,
                lzma.LZMAError, gzip.BadGzipFile, NotImplementedError)


def is_archive(path: Path) -> bool:
    """True if ``path``'s name ends in one of :data:`ARCHIVE_SUFFIXES` (not a ``._`` file)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES) and not path.name.startswith("._")


def archive_stem(path: Path) -> str:
    """``path``'s name without its archive suffix (``a.tar.gz`` -> ``a``)."""
    lower = path.name.lower()
    cut = max((len(s) for s in ARCHIVE_SUFFIXES if lower.endswith(s)), default=0)
    return path.name[: len(path.name) - cut]


def is_macos_metadata(name: str) -> bool:
    """True for members under ``__MACOSX/`` and ``._*`` AppleDouble files (never extracted)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return "__MACOSX" in parts or (bool(parts) and parts[-1].startswith("._"))


def _inside(name: str) -> str | None:
    """``name`` normalised relative to the target folder, or None if it would escape it."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    norm = os.path.normpath(name)
    if norm == ".." or norm.startswith("../") or ".." in PurePosixPath(name).parts:
        return None
    return norm


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _refuse(label: str, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{label}: refusing to extract member {member!r} ({_one_line(why)}); the archive is "
        "unsafe: delete it and get the dataset from its official source")


def _kind(archive: Path) -> str:
    """"zip", "rar" or "tar", from the file name (for messages about unreadable files)."""
    name = archive.name.lower()
    return "zip" if name.endswith(".zip") else "rar" if name.endswith(".rar") else "tar"


def _corrupt(label: str, kind: str, why: object) -> CorruptArchiveError:
    return CorruptArchiveError(
        f"{label}: not a readable {kind} archive ({_one_line(str(why)) or type(why).__name__}"
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


@dataclass(frozen=True)
class _Member:
    """One archive member as the checks see it: ``kind`` is file, dir, symlink, hardlink or
    special (a device, FIFO or socket); ``link`` the target of a link."""

    name: str
    kind: str = "file"
    link: str = ""


def _through_link(path: str, links: set[str]) -> bool:
    """True if ``path``, followed component by component, goes on below one of ``links``."""
    cur: list[str] = []
    for part in (p for p in path.replace("\\", "/").split("/") if p not in ("", ".")):
        if cur and "/".join(cur) in links:
            return True
        if part != "..":
            cur.append(part)
        elif cur:
            cur.pop()
    return False


def _check(label: str, members: Sequence[_Member], no_path_through_links: bool = False,
           symlink: str = "symlink") -> None:
    """Refuse the whole archive if any member would land, or point, outside the folder.

    ``symlink``: the word messages use for a symbolic link ("link" for zip members).
    ``no_path_through_links``: also refuse a member, or a link's target, whose path goes
    through a symlink of the same archive (where it would resolve is not known from the
    names); for RAR, which has no counterpart of tarfile's ``data`` filter.
    """
    links = {_inside(m.name) for m in members if m.kind == "symlink"} - {None}
    for m in members:
        if _inside(m.name) is None:
            raise _refuse(label, m.name, "absolute path or '..' component")
        if m.kind == "special":
            raise _refuse(label, m.name, "device or FIFO")
        if m.kind == "symlink" and not _link_target_ok(m.name, m.link):
            raise _refuse(label, m.name, f"{symlink} to {m.link!r} outside the folder")
        if m.kind == "hardlink" and _inside(m.link) is None:
            raise _refuse(label, m.name, f"hard link to {m.link!r} outside the folder")
        target = os.path.join(os.path.dirname(m.name), m.link) if m.kind == "symlink" \
            else m.link
        if no_path_through_links and (_through_link(m.name, links) or (
                m.kind in ("symlink", "hardlink") and _through_link(target, links))):
            raise _refuse(label, m.name, "path through a symlink of the archive")


def _zip_members(zf: zipfile.ZipFile) -> list[_Member]:
    out = []
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            out.append(_Member(info.filename, "symlink",
                               zf.read(info).decode("utf-8", "replace")))
        elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            out.append(_Member(info.filename, "special"))
        else:
            out.append(_Member(info.filename, "dir" if info.is_dir() else "file"))
    return out


def _tar_member(m: tarfile.TarInfo) -> _Member:
    if m.issym():
        return _Member(m.name, "symlink", m.linkname)
    if m.islnk():
        return _Member(m.name, "hardlink", m.linkname)
    if m.isdev() or m.isfifo():
        return _Member(m.name, "special")
    return _Member(m.name, "dir" if m.isdir() else "file")


def _kept(name: str) -> str | None:
    """Where a checked member goes, relative to the folder; None for one that is skipped."""
    rel = _inside(name)
    return None if rel in (None, ".") or is_macos_metadata(name) else rel


def _extract_rar(archive: Path, fmt: str, dest: Path, label: str) -> None:
    """Check every RAR member (a first pass over the headers), then write the kept ones."""
    try:
        members = [_Member(*m) for m in list_members(archive, fmt, label)]
        _check(label, members, no_path_through_links=True)
        dest.mkdir(parents=True, exist_ok=True)
        extract_members(archive, fmt, label, dest, _kept)
    except RarReadError as exc:
        raise _corrupt(label, "rar", exc) from exc


def safe_extract(archive: Path, dest: Path, label: str | None = None) -> None:
    """Extract a zip, tar or RAR archive into ``dest`` after checking every member.

    The format is told by the file's first bytes, not its name (figshare serves FIVES
    under a bare number). macOS metadata members are skipped.

    Args:
        archive: the archive file.
        dest: the folder to extract into (created).
        label: how messages name the archive (default: its path), e.g. the outer archive
            and the member path of an archive inside another.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component, is a link
            pointing outside ``dest`` or a device (nothing is extracted then), or tarfile's
            ``data`` filter refuses one (e.g. a chain of symlinks leading outside ``dest``).
        CorruptArchiveError: ``archive`` is truncated, damaged, or not a zip, tar or RAR file.
        RuntimeError: a RAR archive, and libarchive cannot be loaded.
    """
    archive, dest = Path(archive), Path(dest)
    label = label or str(archive)
    kind = _kind(archive)
    try:
        if zipfile.is_zipfile(archive):
            kind = "zip"
            with zipfile.ZipFile(archive) as zf:
                members = _zip_members(zf)
                _check(label, members, symlink="link")
                zf.extractall(dest, [m.name for m in members if not is_macos_metadata(m.name)])
        elif (fmt := rar_format(archive)) is not None:
            _extract_rar(archive, fmt, dest, label)
        elif tarfile.is_tarfile(archive):
            kind = "tar"
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                _check(label, [_tar_member(m) for m in members])
                tf.extractall(dest, [m for m in members if not is_macos_metadata(m.name)],
                              filter="data")
        else:
            why = {"zip": "no zip directory found", "rar": "no RAR signature found",
                   "tar": "no tar header found"}[kind]
            raise _corrupt(label, kind, why)
    except tarfile.FilterError as exc:
        member = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise _refuse(label, member, str(exc)) from exc
    except Exception as exc:
        if not _unreadable(exc):
            raise
        raise _corrupt(label, kind, exc) from exc


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


def _merge(src: Path, dst: Path, label: str, top: Path) -> None:
    """Move ``src`` to ``dst``, merging folders; an identical file already there is kept."""
    if not dst.exists() and not dst.is_symlink():
        os.replace(src, dst)
    elif dst.is_dir() and not dst.is_symlink() and src.is_dir() and not src.is_symlink():
        for child in sorted(src.iterdir()):
            _merge(child, dst / child.name, label, top)
    elif not (src.is_file() and dst.is_file() and filecmp.cmp(src, dst, shallow=False)):
        raise UnsafeArchiveError(
            f"{label}: its member {dst.relative_to(top)} would overwrite a different file "
            "extracted from another archive; extract the archives by hand and place the "
            "folders instead")


def _extract_beside(archive: Path, folder: Path, label: str, own_folder: bool) -> Path:
    """Extract ``archive`` into ``folder`` (see the module docstring) and return where.

    ``own_folder``: always into ``folder/<stem>`` (an archive inside an archive); else an
    archive with a single top folder keeps it and only one without goes into its stem.
    """
    stem = archive_stem(archive)
    if _inside(stem) in (None, "."):
        raise _refuse(label, stem, "archive name without a usable folder name")
    stage = make_temp_dir(folder, ".unpack-")
    try:
        safe_extract(archive, stage, label)
        kids = list(stage.iterdir())
        single = len(kids) == 1 and kids[0].is_dir() and not kids[0].is_symlink()
        if single and (not own_folder or kids[0].name == stem):
            src, where = kids[0], folder / kids[0].name
        else:
            src, where = stage, folder / stem
        _merge(src, where, label, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return where


def _extract_nested(folder: Path, label: str, top: Path, depth: int = 1) -> None:
    """Extract every archive found under ``folder`` in place (then delete it), recursively."""
    found = sorted(Path(d) / f for d, _, files in os.walk(folder) for f in files
                   if is_archive(Path(f)) and not (Path(d) / f).is_symlink())
    for inner in found:
        rel = inner.relative_to(top).as_posix()
        if depth > MAX_NESTING:
            log.warning("%s: %s is nested more than %d archives deep; left unextracted",
                        label, rel, MAX_NESTING)
            continue
        log.info("extracting %s (inside %s)", rel, label)
        where = _extract_beside(inner, inner.parent, f"{label} (inner archive {rel})", True)
        inner.unlink()
        _extract_nested(where, label, top, depth + 1)


def extract_all(archives: Sequence[Path], target: Path,
                subdirs: Sequence[str] | None = None, record: Any = None) -> Path:
    """Extract ``archives`` into a temporary folder, then swap it in as ``target``.

    An interrupted or refused extraction leaves ``target`` as it was (absent, or the
    previous extraction); the new one replaces it only once complete. Archives inside the
    extracted files are extracted too (see the module docstring).

    Args:
        archives: zip/tar/RAR files, extracted in order into the same folder.
        target: the folder to create or replace.
        subdirs: per archive, a relative sub-folder of ``target`` to extract into
            ("" = ``target`` itself); None = all into ``target``. With several archives, one
            extracted into ``target`` itself without a top folder goes into ``<stem>/``.
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
            archive = Path(archive)
            if sub and _inside(sub) is None:
                raise UnsafeArchiveError(f"{archive}: sub-folder {sub!r} leaves {target}")
            log.info("extracting %s", archive)
            if sub or len(archives) == 1:
                where = tmp / sub if sub else tmp
                safe_extract(archive, where)
            else:
                where = _extract_beside(archive, tmp, str(archive), False)
            _extract_nested(where, str(archive), tmp)
        if record is not None:
            write_json(tmp / MARKER, record)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
