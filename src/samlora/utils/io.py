"""Atomic file writes and hashing: a failed step never leaves a half-written output."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: swap and restore (not thread-safe, but rare)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` would give a new file (folder) under the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new temporary folder in ``parent`` with the umask's mode (mkdtemp gives 0700),
    so that once renamed into place it is as readable as any folder the lab creates."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, default_mode(directory=True))
    return tmp


#: OS errors of the disk rather than of a file: re-raised naming the output being written.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffix, so writers that pick a format from the
    suffix (PIL, pandas, safetensors) behave as they would for ``path`` itself. The file
    gets the mode the umask gives a new file (0644 under umask 022), not mkstemp's 0600,
    so colleagues sharing a lab folder can read every output.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                   suffix=f".tmp{path.suffix}")
    except OSError as err:
        if err.errno in _DISK_ERRNOS:  # name the output, not mkstemp's random name
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    try:
        os.fchmod(fd, default_mode())  # mkstemp creates 0600: give the umask's mode
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # again: some writers (safetensors) replace the file with a 0600 one of their own
        os.chmod(tmp_path, default_mode())
        os.replace(tmp_path, path)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        if err.errno in _DISK_ERRNOS and err.filename != str(path):
            raise OSError(err.errno, err.strerror, str(path)) from err  # name the output
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def update_json(path: str | os.PathLike[str], updates: dict[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` into the JSON object at ``path`` (created if absent), atomically.

    Top-level keys in ``updates`` replace those in the file; other keys are kept, so several
    benchmark scripts can share one results file.

    Returns:
        The merged object, as written.
    """
    path = Path(path)
    merged: dict[str, Any] = {}
    if path.is_file():
        merged = json.loads(path.read_text())
        if not isinstance(merged, dict):
            raise ValueError(f"{path}: expected a JSON object, found {type(merged).__name__}")
    merged.update(updates)
    write_json(path, merged)
    return merged


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_prob_png(path: str | os.PathLike[str], prob: np.ndarray) -> None:
    """Save an H×W probability map in [0, 1] as a 16-bit PNG (value = round(p · 65535))."""
    from PIL import Image

    if prob.ndim != 2:
        raise ValueError(f"{path}: expected an H×W probability map, got shape {prob.shape}")
    q = np.round(np.clip(prob, 0.0, 1.0) * 65535.0).astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(q).save(tmp, format="PNG")


def read_prob_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a probability map written by :func:`write_prob_png` as float32 in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.dtype != np.uint16:
        arr = arr.astype(np.uint16)
    return arr.astype(np.float32) / 65535.0


class UnreadableCheckpointError(RuntimeError):
    """A ``.pt``/``.pth`` file that ``torch.load(weights_only=True)`` cannot read."""


def torch_load_safe(path: str | os.PathLike[str], what: str, remedy: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with failures as one clear line.

    A pickle that needs arbitrary objects is refused, never retried with
    ``weights_only=False`` (that would run code from the file).

    Args:
        path: the file to read.
        what: what the file should be, for the message ("a SAM checkpoint").
        remedy: what the user should do about a bad file ("delete it and ...").

    Raises:
        UnreadableCheckpointError: naming the file, why it cannot be read and ``remedy``.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        why = ("it is a pickle of arbitrary Python objects, which samlora never unpickles"
               if "weights_only" in str(err) else f"not a torch file: {_first_line(err)}")
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        why = f"torn or not a torch file: {type(err).__name__}: {_first_line(err)}"
    raise UnreadableCheckpointError(f"{path}: cannot be read as {what} ({why}); {remedy}")


def _first_line(err: BaseException) -> str:
    """The first sentence of an error's first line (library messages can run long)."""
    text = str(err).strip()
    if not text:
        return "no details"
    line = text.splitlines()[0]
    return line.split(". ", 1)[0].rstrip(".")
