"""Run state on disk: the resumable checkpoint and the final trainable weights."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from samlora.utils.io import atomic_path, torch_load_safe

log = logging.getLogger(__name__)

LAST = "last.pt"
WEIGHTS = "adapter.safetensors"
#: Keys every resume checkpoint holds (see ``training.loop.train_run``).
RESUME_KEYS = ("epoch", "model", "optimizer", "scheduler", "torch_rng", "history",
               "fingerprint")


class ResumeStateError(RuntimeError):
    """``last.pt`` is torn, foreign, or not a samlora resume checkpoint."""


class WeightsFileError(RuntimeError):
    """``adapter.safetensors`` is torn, empty or not a safetensors file."""


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
    """The last end-of-epoch checkpoint, or None for a fresh run (weights_only load).

    Raises:
        ResumeStateError: the file is torn, a pickle that needs more than tensors, or not a
            samlora resume checkpoint (it lacks one of :data:`RESUME_KEYS`).
    """
    path = run_dir / LAST
    if not path.is_file():
        return None
    state = torch_load_safe(path, "a resume checkpoint",
                            "delete it to restart the run from scratch")
    if not isinstance(state, dict) or any(k not in state for k in RESUME_KEYS):
        kind = type(state).__name__ if not isinstance(state, dict) else \
            "a mapping without " + ", ".join(k for k in RESUME_KEYS if k not in state)
        raise ResumeStateError(f"{path}: not a samlora resume checkpoint ({kind}); delete it "
                               "to restart the run from scratch")
    return state


def save_weights(path: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, str]) -> None:
    """Write trainable weights as safetensors with a string manifest in its metadata."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in manifest.items()})


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read trainable weights and the manifest written by :func:`save_weights`.

    Raises:
        FileNotFoundError: no such file (the train step has not finished).
        WeightsFileError: the file is empty, torn or not safetensors.
    """
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"{path}: trained weights not found (run the train step first)")
    try:
        with safe_open(str(path), framework="pt") as f:
            manifest = dict(f.metadata() or {})
        return load_file(str(path)), manifest
    except (SafetensorError, OSError, ValueError) as err:
        size = path.stat().st_size
        raise WeightsFileError(f"{path}: not a readable safetensors file ({size} bytes; {err}); "
                               "the train step did not finish writing it: delete it and run "
                               "the train step again") from None
