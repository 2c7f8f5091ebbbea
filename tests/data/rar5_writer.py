"""A store-only RAR5 writer for tests (no RAR writer is installed; libarchive only reads RAR).

Writes the block structure of the RAR 5.0 format (RARLAB technote "RAR 5.0 archive format"):
the signature ``52 61 72 21 1A 07 01 00``, a main archive header, one file header per member
(method 0: the data stored as is, with its CRC32), and an end-of-archive header. Every
header starts with the CRC32 of its size field and body; numbers are "vint"s (7 bits per
byte, least significant first, high bit = more bytes follow). Members are regular files,
directories, and, to build hostile archives, Unix symlinks (a file-system redirection
extra record) or files with any Unix mode (e.g. a character device).
"""

from __future__ import annotations

import dataclasses
import stat
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

SIGNATURE = b"Rar!\x1a\x07\x01\x00"

_MAIN, _FILE, _END = 1, 2, 5  # header types
_HAS_EXTRA, _HAS_DATA = 0x0001, 0x0002  # header flags
_IS_DIR, _HAS_CRC = 0x0001, 0x0004  # file flags
_HOST_UNIX = 1
_REDIRECTION, _UNIX_SYMLINK = 0x05, 0x0001  # extra record type, redirection type


@dataclasses.dataclass(frozen=True)
class Member:
    """One archive member.

    Attributes:
        name: path inside the archive, ``/``-separated, stored byte for byte (so ``../x`` or
            ``/abs`` can be written).
        data: file contents (None for a directory or a symlink).
        mode: Unix ``st_mode`` stored as the member's attributes; 0 = the usual one for
            its kind.
        link: symlink target (then the member is a symlink).
    """

    name: str
    data: bytes | None = None
    mode: int = 0
    link: str | None = None


def vint(n: int) -> bytes:
    """``n`` as a RAR5 variable-length integer."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _block(kind: int, fields: bytes, extra: bytes = b"", data_size: int | None = None) -> bytes:
    flags = (_HAS_EXTRA if extra else 0) | (_HAS_DATA if data_size is not None else 0)
    body = vint(kind) + vint(flags)
    if extra:
        body += vint(len(extra))
    if data_size is not None:
        body += vint(data_size)
    body += fields + extra
    size = vint(len(body))
    return struct.pack("<I", zlib.crc32(size + body)) + size + body


def _file_header(m: Member) -> bytes:
    name = m.name.encode("utf-8")
    is_dir = m.data is None and m.link is None
    data = m.data or b""
    if m.link is not None:
        mode = m.mode or (stat.S_IFLNK | 0o777)
        target = m.link.encode("utf-8")
        record = vint(_REDIRECTION) + vint(_UNIX_SYMLINK) + vint(0) + vint(len(target)) + target
        extra = vint(len(record)) + record
    else:
        mode = m.mode or ((stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644))
        extra = b""
    flags = _IS_DIR if is_dir else _HAS_CRC if m.link is None else 0
    fields = vint(flags) + vint(len(data)) + vint(mode)
    if flags & _HAS_CRC:
        fields += struct.pack("<I", zlib.crc32(data))
    fields += vint(0) + vint(_HOST_UNIX) + vint(len(name)) + name  # method 0: stored
    return _block(_FILE, fields, extra, len(data)) + data  # readers want a data size


def rar5_bytes(members: Iterable[Member]) -> bytes:
    """A complete RAR5 archive holding ``members`` in order."""
    parts = [SIGNATURE, _block(_MAIN, vint(0))]
    parts += [_file_header(m) for m in members]
    parts.append(_block(_END, vint(0)))
    return b"".join(parts)


def write_rar5(path: Path, files: dict[str, bytes], dirs: Iterable[str] = (),
               extra: Iterable[Member] = ()) -> Path:
    """Write ``files`` (name -> bytes), after directory entries ``dirs``, plus ``extra``."""
    members = [Member(d) for d in dirs] + [Member(n, d) for n, d in files.items()] + list(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rar5_bytes(members))
    return path
