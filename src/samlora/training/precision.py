"""Numeric precision of a training run (``train.precision``).

- ``fp32``: no autocast (the default).
- ``bf16``: bfloat16 autocast of the forward pass, on CPU or CUDA; no loss scaling
  (bfloat16 keeps fp32's exponent range).
- ``fp16-mixed``: float16 autocast with a :class:`torch.amp.GradScaler`, CUDA only (what
  Lightning calls ``16-mixed``, and what torch AMP does in SAM2LoRA's code).
- ``amp``: the reference codes' mixed precision wherever the run lands: ``fp16-mixed`` on
  CUDA, ``bf16`` on CPU (Lightning itself replaces ``16-mixed`` by ``bf16-mixed`` on CPU).

Losses are computed in float32 outside autocast (the logits are cast up), so the
precision changes the model's arithmetic, never the loss formula. The scaler's state is
part of the resume checkpoint, so a killed fp16 run resumes exactly.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16-mixed", "amp")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16-mixed": torch.float16}


def resolve(name: str, device: torch.device) -> str:
    """The precision a run uses on ``device`` (``amp`` resolved; bad values refused).

    Raises:
        ValueError: an unknown name, or ``fp16-mixed`` without CUDA (naming the key).
    """
    if name not in PRECISIONS:
        raise ValueError(f"train.precision: {name!r} is not one of {list(PRECISIONS)}")
    if name == "amp":
        return "fp16-mixed" if device.type == "cuda" else "bf16"
    if name == "fp16-mixed" and device.type != "cuda":
        raise ValueError(f"train.precision: fp16-mixed needs a CUDA device (this run is on "
                         f"{device.type}); use bf16, amp or fp32")
    return name


class Precision:
    """Autocast, backward, clipping and the optimiser step of one precision.

    Args:
        name: a value of ``train.precision`` (see the module docstring).
        device: the run's device.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        self.requested = name
        self.name = resolve(name, device)
        self.device = device
        self.dtype = _DTYPES[self.name]
        self.scaler = torch.amp.GradScaler("cuda") if self.name == "fp16-mixed" else None
        if name != self.name:
            log.info("train.precision %s runs as %s on %s", name, self.name, device.type)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to this precision's dtype (a no-op for fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled first under fp16-mixed)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, opt: torch.optim.Optimizer, params: Sequence[torch.nn.Parameter],
             clip: float) -> None:
        """Clip the gradients' norm to ``clip`` (0: no clipping) on unscaled gradients,
        then step ``opt`` (skipped by the scaler when a gradient is not finite)."""
        if self.scaler is not None:
            self.scaler.unscale_(opt)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs (the scaler's scale and growth tracker; empty otherwise)."""
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`'s output (an empty or missing state is a no-op)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
