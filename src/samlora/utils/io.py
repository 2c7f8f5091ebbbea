"""Atomic file writes and hashing: a failed step never leaves a half-written output."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffix, so writers that pick a format from the
    suffix (PIL, pandas, safetensors) behave as they would for ``path`` itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                               suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
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
