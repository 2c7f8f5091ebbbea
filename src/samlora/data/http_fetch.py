"""HTTP(S) and file downloads of dataset archives, resumable, with one-line error messages.

Every failure is a :class:`DownloadError` naming the URL and the file it was meant to
become, and saying what to do: check the network, place the file by hand, or run the
step again to resume from the ``.part`` file (which is kept). A server that refuses the
download (HTTP 401/403) or answers with an HTML page instead of the file (a browser check,
a landing page) raises :class:`DownloadRefusedError`; the page is never saved. An https
URL whose certificate fails verification is fetched over http only when the caller
allows it (a pinned SHA-256 then checks what arrives).
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

from samlora.data.errors import DownloadError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_PART = ".part"
#: Leading bytes of the archive formats a dataset may come in (zip, gzip, bzip2, xz, RAR, 7z).
_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"Rar!\x1a\x07",
          b"7z\xbc\xaf\x27\x1c")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class DownloadRefusedError(DownloadError):
    """The server refused the download (HTTP 401/403) or sent an HTML page, not the file.

    Attributes:
        url: the URL asked for.
        why: what the server did, e.g. ``answered with an HTML page (Content-Type
            text/html)``, for callers that add where to get the file instead.
        note: more the caller should say (e.g. that an earlier file was moved aside).
    """

    def __init__(self, message: str, url: str, why: str, note: str = "") -> None:
        super().__init__(message)
        self.url, self.why, self.note = url, why, note


def _looks_like_html(head: bytes) -> bool:
    """True when ``head`` starts (after a BOM and white space) like an HTML document."""
    text = head[:512].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return text.startswith((b"<!doctype", b"<html", b"<head", b"<!--"))


def _is_archive(head: bytes) -> bool:
    """True when ``head`` starts with an archive's magic bytes (tar: ``ustar`` at 257)."""
    return head.startswith(_MAGIC) or head[257:262] == b"ustar"


def _cert_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification error behind ``exc`` (urllib wraps it), or None."""
    inner = exc.reason if isinstance(exc, URLError) else exc
    return inner if isinstance(inner, ssl.SSLCertVerificationError) else None


def http_url(url: str) -> str:
    """``url`` with its scheme replaced by ``http`` (same host, port, path and query)."""
    return urlunsplit(("http", *urlsplit(url)[1:]))


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
                  target: Path | None = None, http_fallback: bool = False) -> str:
    """Download ``url`` into ``part``, resuming an existing ``part`` with an HTTP Range request.

    A server that ignores the range (status 200) or answers a different one restarts the
    download from byte 0. Handles http(s) and file URLs.

    Args:
        url: what to fetch.
        part: the partial file written to (kept on failure, to resume from).
        timeout: socket timeout in seconds.
        target: the file ``part`` becomes once verified (named in messages); default
            ``part`` without its ``.part`` suffix.
        http_fallback: when an https URL's certificate fails verification, fetch the same
            URL over http instead (only for files whose SHA-256 the caller checks).

    Returns:
        The URL the file came from (``url``, or its http form after a fallback).

    Raises:
        DownloadRefusedError: HTTP 401/403, or an HTML page instead of the file (nothing
            of it is written).
        DownloadError: no connection, a certificate that fails verification (without
            ``http_fallback``), another HTTP error status, or the connection dropped
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
                return url
            part.unlink()
            return http_download(url, part, timeout, target, http_fallback)
        raise _http_error(url, target, exc.code, exc.reason) from exc
    except (URLError, HTTPException, OSError) as exc:
        cert = _cert_failure(exc)
        if cert is not None and urlsplit(url).scheme == "https":
            return _after_cert_failure(url, part, timeout, target, http_fallback, cert)
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
        try:
            head = resp.read(_CHUNK)
        except (HTTPException, OSError) as exc:
            raise _dropped(url, target, part, offset, total, _reason(exc)) from exc
        _refuse_html(url, target, resp.headers.get("Content-Type"), head, resumed)
        _copy(resp, head, part, "ab" if resumed else "wb", offset, total, url, target)
    return url


def _after_cert_failure(url: str, part: Path, timeout: float, target: Path,
                        http_fallback: bool, cert: ssl.SSLCertVerificationError) -> str:
    """Fetch ``url`` over http after its certificate failed, or say why not."""
    why = " ".join(str(getattr(cert, "verify_message", None) or cert).split())
    plain = http_url(url)
    if not http_fallback:
        raise DownloadError(
            f"{url}: cannot download {target.name}: the server's TLS certificate fails "
            f"verification ({why}) and no SHA-256 is pinned for the file, so it is not "
            f"fetched over http instead; download it yourself, check it, and place it at "
            f"{target}, then run the download step again")
    log.warning("%s: TLS certificate verification failed (%s); fetching %s instead (its "
                "SHA-256 is checked against the pinned value)", url, why, plain)
    return http_download(plain, part, timeout, target, http_fallback=False)


def _refuse_html(url: str, target: Path, content_type: str | None, head: bytes,
                 resumed: bool) -> None:
    """Raise :class:`DownloadRefusedError` when the body is an HTML page, not the file."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _HTML_TYPES and not (not resumed and _is_archive(head)):
        why = f"answered with an HTML page (Content-Type {ctype})"
    elif not resumed and _looks_like_html(head):
        why = f"answered with an HTML page (it starts {head.lstrip()[:15]!r})"
    else:
        return
    raise DownloadRefusedError(
        f"{url}: the server {why}, not {target.name} (a browser check or a landing page), "
        f"and nothing was saved; download the file in a browser from the dataset's homepage "
        f"and place it at {target}, then run the download step again", url, why)


def _http_error(url: str, target: Path, code: int, reason: object) -> DownloadError:
    if code in (401, 403):
        why = f"answered HTTP {code} {reason}"
        return DownloadRefusedError(
            f"{url}: the server {why}, not {target.name} (it refuses the download); download "
            f"the file in a browser from the dataset's homepage and place it at {target}, "
            "then run the download step again", url, why)
    if code in (404, 410):
        return DownloadError(
            f"{url}: HTTP {code} {reason} for {target.name}: the file is not (or no longer) "
            f"at this URL; get the file from the dataset's homepage and place it at {target}, "
            "then run the download step again")
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


def _copy(resp: Any, head: bytes, part: Path, mode: str, done: int, total: int | None,
          url: str, target: Path) -> None:
    """Write ``head`` (the body's first block) and stream the rest of ``resp`` into
    ``part``, logging progress about every 10 % (or 10 s)."""
    last = time.monotonic()
    next_pct = 10
    block: bytes | None = head
    with open(part, mode) as fh:
        while True:
            if block is None:
                try:
                    block = resp.read(_CHUNK)
                except (HTTPException, OSError) as exc:  # IncompleteRead, reset, timeout
                    raise _dropped(url, target, part, done, total, _reason(exc)) from exc
            if not block:
                break
            fh.write(block)
            done += len(block)
            block = None
            pct = 100 * done // total if total else 0
            if (total and pct >= next_pct) or time.monotonic() - last > 10:
                log.info("%s: %.1f MB%s", url, done / 1e6, f" ({pct}%)" if total else "")
                last, next_pct = time.monotonic(), pct + 10
    if total is not None and done != total:
        raise _dropped(url, target, part, done, total, "the server closed the connection early")
