"""Run state on disk: the resumable checkpoint and the final trainable weights."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

LAST = "last.pt"
WEIGHTS = "adapter.safetensors"


def frozen_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the frozen parameters: proves predict rebuilt the same base model."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if not p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def save_resume_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Atomically write the end-of-epoch checkpoint a killed run resumes from."""
    with atomic_path(run_dir / LAST) as tmp:
        torch.save(state, tmp)


def load_resume_state(run_dir: Path) -> dict[str, Any] | None:
    """The last end-of-epoch checkpoint, or None for a fresh run (weights_only load)."""
    path = run_dir / LAST
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a torn or foreign file: say which, never train from it silently
        raise RuntimeError(f"{path}: cannot read the resume checkpoint ({err}); "
                           "delete it to restart the run from scratch") from err


def save_weights(path: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, str]) -> None:
    """Write trainable weights as safetensors with a string manifest in its metadata."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in manifest.items()})


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read trainable weights and the manifest written by :func:`save_weights`."""
    from safetensors import safe_open

    if not path.is_file():
        raise FileNotFoundError(f"{path}: trained weights not found (run the train step first)")
    with safe_open(str(path), framework="pt") as f:
        manifest = dict(f.metadata() or {})
    return load_file(str(path)), manifest
