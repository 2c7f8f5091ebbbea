"""Test helpers for the download tests: a local HTTP server and archives built in memory.

The server serves ``files`` by path, honours Range requests (or not), records every request,
and can break a response on purpose (see :meth:`Handler._break`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import re
import socket
import struct
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from samlora.data.registry import Archive, DatasetSpec, get_dataset


class Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    honour_range: bool
    requests: list[tuple[str, str | None, int]]  # (path, Range header, status)
    broken: dict[str, str]  # path -> "short", "chunked" or "reset" (see Handler._break)


class Handler(BaseHTTPRequestHandler):
    server: Server

    def _break(self, how: str, data: bytes) -> None:
        """Send only the first half of ``data``, then drop the connection.

        short: Content-Length says all, then a clean close; chunked: a chunked body cut
        before its last chunk (urllib raises IncompleteRead); reset: a TCP reset mid-body
        (ConnectionResetError).
        """
        half = data[: len(data) // 2]
        self.server.requests.append((self.path, None, 200))
        self.send_response(200)
        if how == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(half)
        if how == "reset":
            time.sleep(0.2)  # the client has the headers and is reading the body
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        if data is not None and self.path in self.server.broken:
            return self._break(self.server.broken[self.path], data)
        rng = self.headers.get("Range")
        status, body, headers = 200, data or b"", {}
        if data is None:
            status = 404
        elif rng and self.server.honour_range:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                status, body, headers = 416, b"", {"Content-Range": f"bytes */{len(data)}"}
            else:
                status, body = 206, data[start:]
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        self.server.requests.append((self.path, rng, status))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def running(srv: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """Serve ``srv`` from a thread for the duration of the block, then close it."""
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@contextlib.contextmanager
def serving() -> Iterator[Server]:
    """A :class:`Server` on 127.0.0.1 (any free port) running in a thread."""
    srv = Server(("127.0.0.1", 0), Handler)
    srv.files, srv.honour_range, srv.requests, srv.broken = {}, True, [], {}
    with running(srv):
        yield srv


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def chase_spec(url: str, sha256: str | None = None) -> DatasetSpec:
    spec = get_dataset("chase_db1")
    return dataclasses.replace(spec, source=dataclasses.replace(
        spec.source, archives=(Archive(url, sha256),)))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def url_of(srv: Server, path: str = "/96/1/CHASEDB1.zip") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def tar_file(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x") if m.isfile() else None)
    return path


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info
