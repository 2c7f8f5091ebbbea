"""HTTP(S) and file downloads of dataset archives, resumable, with one-line error messages.

Every failure is a :class:`DownloadError` naming the URL and the file it was meant to
become, and saying what to do: check the network, place the file by hand, or run the
step again to resume from the ``.part`` file (which is kept).
"""

from __future__ import annotations

import logging
import re
import time
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from samlora.data.errors import DownloadError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_PART = ".part"


def _range_total(header: str | None) -> int | None:
    """Total size from a ``Content-Range: bytes a-b/N`` or ``bytes */N`` header."""
    m = re.search(r"/(\d+)\s*$", header or "")
    return int(m.group(1)) if m else None


def _range_start(header: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", header or "")
    return int(m.group(1)) if m else None


def _reason(exc: BaseException) -> str:
    """A one-line description of ``exc`` (URLError wraps the socket error in ``reason``)."""
    inner = getattr(exc, "reason", None) if isinstance(exc, URLError) else None
    text = str(inner if inner is not None else exc) or type(exc).__name__
    return " ".join(text.split())


def _target_of(part: Path) -> Path:
    return part.with_name(part.name.removesuffix(_PART))


def http_download(url: str, part: Path, timeout: float = 60.0,
                  target: Path | None = None) -> None:
    """Download ``url`` into ``part``, resuming an existing ``part`` with an HTTP Range request.

    A server that ignores the range (status 200) or answers a different one restarts the
    download from byte 0. Handles http(s) and file URLs.

    Args:
        url: what to fetch.
        part: the partial file written to (kept on failure, to resume from).
        timeout: socket timeout in seconds.
        target: the file ``part`` becomes once verified (named in messages); default
            ``part`` without its ``.part`` suffix.

    Raises:
        DownloadError: no connection, an HTTP error status, or the connection dropped
            before the whole body arrived.
    """
    target = _target_of(part) if target is None else target
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
            return http_download(url, part, timeout, target)
        raise _http_error(url, target, exc.code, exc.reason) from exc
    except (URLError, HTTPException, OSError) as exc:
        raise DownloadError(
            f"{url}: cannot download {target.name} ({_reason(exc)}); check the network "
            f"connection and run the download step again, or download the file yourself and "
            f"place it at {target}") from exc
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
        _copy(resp, part, "ab" if resumed else "wb", offset, total, url, target)


def _http_error(url: str, target: Path, code: int, reason: object) -> DownloadError:
    if code in (401, 403, 404, 410):
        what = ("the file is not (or no longer) at this URL" if code in (404, 410) else
                "the server refuses the download")
        return DownloadError(
            f"{url}: HTTP {code} {reason} for {target.name}: {what}; get the file from the "
            f"dataset's homepage and place it at {target}, then run the download step again")
    return DownloadError(
        f"{url}: HTTP {code} {reason} for {target.name}; the server failed: run the download "
        f"step again later, or download the file yourself and place it at {target}")


def _dropped(url: str, target: Path, part: Path, done: int, total: int | None,
             why: str) -> DownloadError:
    of = f" of {total:,}" if total is not None else ""
    return DownloadError(
        f"{url}: connection dropped after {done:,}{of} bytes of {target.name} ({why}); run the "
        f"download step again to resume from {part}, or download the file yourself and place "
        f"it at {target}")


def _copy(resp: Any, part: Path, mode: str, done: int, total: int | None, url: str,
          target: Path) -> None:
    """Stream ``resp`` into ``part``, logging progress about every 10 % (or 10 s)."""
    last = time.monotonic()
    next_pct = 10
    with open(part, mode) as fh:
        while True:
            try:
                block = resp.read(_CHUNK)
            except (HTTPException, OSError) as exc:  # IncompleteRead, reset, timeout
                raise _dropped(url, target, part, done, total, _reason(exc)) from exc
            if not block:
                break
            fh.write(block)
            done += len(block)
            pct = 100 * done // total if total else 0
            if (total and pct >= next_pct) or time.monotonic() - last > 10:
                log.info("%s: %.1f MB%s", url, done / 1e6, f" ({pct}%)" if total else "")
                last, next_pct = time.monotonic(), pct + 10
    if total is not None and done != total:
        raise _dropped(url, target, part, done, total, "the server closed the connection early")
