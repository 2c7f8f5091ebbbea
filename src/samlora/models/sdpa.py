"""SAM's ViT attention through ``F.scaled_dot_product_attention``, same math.

segment_anything's ``Attention.forward`` materialises ``q @ kᵀ`` (one HW×HW matrix per
head), adds the decomposed relative-position bias to it, then a softmax copy. This module
swaps the forward of the attention modules segment_anything built (no vendored model) for
one that passes the same bias to ``scaled_dot_product_attention`` as ``attn_mask``: the
same scores, softmax and weighted sum (default scale 1/sqrt(head dim), SAM's), computed by
PyTorch's fused kernels where the device has them. The relative-position terms use the
unscaled query, as segment_anything's do. LoRA layers on ``qkv`` (peft) are called as
before: the swap changes only what follows the projection.

:func:`use_chunked` keeps the library's arithmetic and changes where its memory goes: a
global-attention block at 1024² holds a 4096×4096 score matrix per head (805 MB for ViT-B's
12 heads) and keeps its softmax for the backward pass, four times per encoder. Chunked, the
scores are computed for a band of query rows at a time (the rows' slice of the
relative-position tables, so the same sums), and under autograd each band is recomputed in
the backward pass (``torch.utils.checkpoint``) instead of being stored.

The backbone's ``attention`` switches them: ``eager`` (the library's code, default),
``sdpa`` or ``chunked``; ``benchmarks/bench_speed.py`` measures what each gives.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, ImageEncoderViT, get_rel_pos
from torch import nn
from torch.utils.checkpoint import checkpoint

MODES = ("eager", "sdpa", "chunked")
#: ``chunked``: query rows per band (times the key count: the largest score block held).
CHUNK_QUERIES = 1024


def _rel_terms(r_q: torch.Tensor, rh: torch.Tensor, rw: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``add_decomposed_rel_pos``'s two terms for queries ``r_q`` (B, rows, W, C) and the
    rows' tables ``rh`` (rows, kH, C), ``rw`` (W, kW, C): (B, rows, W, kH) and (…, kW)."""
    return (torch.einsum("bhwc,hkc->bhwk", r_q, rh),
            torch.einsum("bhwc,wkc->bhwk", r_q, rw))


def _rel_pos_bias(q: torch.Tensor, module: Attention, hw: tuple[int, int]) -> torch.Tensor:
    """The decomposed relative-position bias (B, heads, HW, HW) for queries ``q`` (B,
    heads, HW, C), as ``add_decomposed_rel_pos`` adds it to the scores."""
    h, w = hw
    b, heads, _, c = q.shape
    rel_h, rel_w = _rel_terms(q.reshape(b * heads, h, w, c), get_rel_pos(h, h, module.rel_pos_h),
                              get_rel_pos(w, w, module.rel_pos_w))
    bias = rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return bias.reshape(b, heads, h * w, h * w)


def _sdpa_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    b, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, HW, C)
    bias = _rel_pos_bias(q, self, (h, w)) if self.use_rel_pos else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return self.proj(out)


def _band(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rh: torch.Tensor | None,
          rw: torch.Tensor | None, scale: float, rows: int, w: int) -> torch.Tensor:
    """segment_anything's attention for ``rows`` query rows: q (B, rows·w, C) against all
    keys, with those rows' relative-position tables ``rh`` (rows, H, C) and ``rw``."""
    attn = (q * scale) @ k.transpose(-2, -1)
    if rh is not None:
        b, _, c = q.shape
        rel_h, rel_w = _rel_terms(q.reshape(b, rows, w, c), rh, rw)
        attn = (attn.view(b, rows, w, rh.shape[1], -1) + rel_h[:, :, :, :, None]
                + rel_w[:, :, :, None, :]).view(b, rows * w, -1)
    return attn.softmax(dim=-1) @ v


def _chunked_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    b, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, b * self.num_heads, h * w, -1).unbind(0)
    rh = get_rel_pos(h, h, self.rel_pos_h) if self.use_rel_pos else None
    rw = get_rel_pos(w, w, self.rel_pos_w) if self.use_rel_pos else None
    step = max(1, CHUNK_QUERIES // w)
    if h * w <= CHUNK_QUERIES:  # a window: small enough to keep as the library does
        out = _band(q, k, v, rh, rw, self.scale, h, w)
    else:
        recompute = torch.is_grad_enabled()
        bands = []
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            args = (q[:, r0 * w:r1 * w], k, v, None if rh is None else rh[r0:r1], rw,
                    self.scale, r1 - r0, w)
            bands.append(checkpoint(_band, *args, use_reentrant=False) if recompute
                         else _band(*args))
        out = torch.cat(bands, dim=1)
    out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return self.proj(out)


def _swap(model: nn.Module, forward: Callable[..., torch.Tensor], kernels: str) -> int:
    """Give every segment_anything ViT ``Attention`` in ``model`` this ``forward`` and mark
    its encoder with ``kernels`` (the embedding cache keys entries by it); the count."""
    count = 0
    for module in model.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(forward, module)
            count += 1
        if isinstance(module, ImageEncoderViT):
            module.samlora_kernels = kernels
    return count


def use_chunked(model: nn.Module) -> int:
    """Compute every segment_anything ViT ``Attention`` in ``model`` in bands of query
    rows, recomputed in the backward pass (see the module docstring); returns the count."""
    return _swap(model, _chunked_forward, "chunked")


def use_sdpa(model: nn.Module) -> int:
    """Route every segment_anything ViT ``Attention`` in ``model`` through SDPA; returns
    how many modules were switched (0 for TinyViT, whose attention is another class)."""
    return _swap(model, _sdpa_forward, "sdpa")


def use_eager(model: nn.Module) -> None:
    """Undo :func:`use_sdpa` or :func:`use_chunked` (the class's own forward again)."""
    for module in model.modules():
        if isinstance(module, Attention) and "forward" in module.__dict__:
            del module.forward
        if isinstance(module, ImageEncoderViT):
            module.__dict__.pop("samlora_kernels", None)
