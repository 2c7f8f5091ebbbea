"""Frozen-encoder embedding cache: each (image, view) is encoded once, for every run.

A method whose image encoder has no trainable parameter (``decoder_only``, ``adapter_only``,
``cldice_only``, ``zero_shot``) computes the same encoder output for an input every time
it sees it. The cache keeps that output on disk, one safetensors file per (image, view):

    <root>/<encoder key>/<image digest>-<view>.safetensors

- The **encoder key** hashes what the output depends on: the architecture and input size,
  the encoder's own weights (a SHA-256 over its tensors: pretrained or seeded random), the
  input geometry and the precision. Every run and seed on that encoder shares one folder,
  and so does predict.
- The **image digest** is the SHA-256 of the prepared image file (not its case id), so a
  re-prepared dataset never reads stale entries.
- The **view** names the augmentation: ``id`` (none), or our dihedral flips and rot90
  (``h1v0r3``). Only these are exact: a random scale, crop or colour jitter draws a new
  input every time, so :func:`cache_reason` turns the cache off for those pipelines and
  says why.

Each missing entry is encoded alone (a batch of one, in eval mode, without gradients), so
an entry is a pure function of its image, whatever the batch it first appeared in; with
``train.batch_size: 1`` a cached run gives bit for bit the weights of an uncached one.
Files are written atomically: concurrent jobs on one cache at worst encode twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

#: Bumped when the stored format or the encoder call changes.
FORMAT = 1
DEFAULT_ROOT = Path("models/embeddings")
#: ``train.embedding_cache`` values: auto = on where exact, off = never.
MODES = ("auto", "off")


def encoder_digest(encoder: torch.nn.Module) -> str:
    """SHA-256 over the encoder's parameters and persistent buffers (names and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(encoder.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
                 .tobytes())
    return h.hexdigest()


def cache_reason(model: torch.nn.Module, augment: Mapping[str, Any] | None,
                 mode: str = "auto") -> str | None:
    """Why the cache cannot serve ``model`` with ``augment``; None when it can.

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES` (naming ``train.embedding_cache``).
    """
    if mode not in MODES:
        raise ValueError(f"train.embedding_cache: {mode!r} is not one of {list(MODES)}")
    if mode == "off":
        return "train.embedding_cache is off"
    if not hasattr(model, "encode") or not hasattr(model, "image_encoder_module"):
        return f"{type(model).__name__} has no separable image encoder"
    if any(p.requires_grad for p in model.image_encoder_module().parameters()):
        return "the image encoder trains (LoRA or full fine-tuning)"
    if augment is not None and augment.get("pipeline", "samlora") != "samlora":
        return (f"augmentation pipeline {augment['pipeline']!r} draws new inputs every epoch "
                "(only flips and rot90 are cached exactly)")
    return None


class EmbeddingCache:
    """The on-disk encoder outputs of one encoder (see the module docstring).

    Args:
        folder: ``<root>/<encoder key>``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_model(cls, model: torch.nn.Module, identity: Mapping[str, Any],
                  root: Path = DEFAULT_ROOT) -> EmbeddingCache:
        """The cache of ``model``'s encoder; ``identity`` adds what else shapes its output
        (architecture, input size, geometry, precision), as JSON-able values."""
        encoder = model.image_encoder_module()
        key = {"format": FORMAT, "encoder": encoder_digest(encoder), **identity}
        kernels = getattr(encoder, "samlora_kernels", None)
        if kernels:  # other kernels, other rounding: their own entries
            key["kernels"] = kernels
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode())
        folder = Path(root) / digest.hexdigest()[:24]
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "key.json"
        if not meta.is_file():
            with atomic_path(meta) as tmp:
                tmp.write_text(json.dumps(key, indent=1, sort_keys=True, default=str) + "\n")
        return cls(folder)

    def path(self, image_digest: str, view: str) -> Path:
        return self.folder / f"{image_digest[:32]}-{view}.safetensors"

    @torch.no_grad()
    def encodings(self, model: torch.nn.Module, images: torch.Tensor,
                  digests: Sequence[str], views: Sequence[str]) -> torch.Tensor:
        """``B×C×h×w`` encoder outputs of a batch: read where stored, else computed one
        image at a time by ``model.encode`` (encoder in eval mode) and stored."""
        out: list[torch.Tensor] = []
        encoder = model.image_encoder_module()
        modes = [(m, m.training) for m in encoder.modules()]  # frozen BN stays in eval
        try:
            for i, (digest, view) in enumerate(zip(digests, views, strict=True)):
                path = self.path(digest, view)
                if path.is_file():
                    self.hits += 1
                    out.append(load_file(str(path))["encoding"].to(images.device))
                    continue
                self.misses += 1
                encoder.eval()
                enc = model.encode(images[i:i + 1])[0]
                with atomic_path(path) as tmp:
                    save_file({"encoding": enc.detach().to("cpu").contiguous()}, str(tmp))
                out.append(enc)
        finally:
            for module, training in modes:
                module.training = training
        return torch.stack(out)

    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def cache_for(model: torch.nn.Module, augment: Mapping[str, Any] | None, mode: str,
              identity: Mapping[str, Any], root: Path, what: str) -> EmbeddingCache | None:
    """The cache ``model`` uses for ``what`` (``training``, ``prediction``), or None with the
    reason logged (see :func:`cache_reason`)."""
    reason = cache_reason(model, augment, mode)
    if reason is not None:
        log.info("embedding cache off for %s: %s", what, reason)
        return None
    cache = EmbeddingCache.for_model(model, identity, root)
    log.info("embedding cache on for %s: %s", what, cache.folder)
    return cache
