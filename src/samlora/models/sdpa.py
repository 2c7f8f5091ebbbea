"""SAM's ViT attention through ``F.scaled_dot_product_attention``, same math.

segment_anything's ``Attention.forward`` materialises ``q @ kᵀ`` (one HW×HW matrix per
head), adds the decomposed relative-position bias to it, then a softmax copy. This module
swaps the forward of the attention modules segment_anything built (no vendored model) for
one that passes the same bias to ``scaled_dot_product_attention`` as ``attn_mask``: the
same scores, softmax and weighted sum (default scale 1/sqrt(head dim), SAM's), computed by
PyTorch's fused kernels where the device has them. The relative-position terms use the
unscaled query, as segment_anything's do. LoRA layers on ``qkv`` (peft) are called as
before: the swap changes only what follows the projection.

:func:`use_sdpa` is switched by the backbone's ``attention`` (``eager``, the library's
code, or ``sdpa``); ``benchmarks/bench_attention.py`` measures what it gives.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, ImageEncoderViT, get_rel_pos
from torch import nn

MODES = ("eager", "sdpa")


def _rel_pos_bias(q: torch.Tensor, module: Attention, hw: tuple[int, int]) -> torch.Tensor:
    """The decomposed relative-position bias (B, heads, HW, HW) for queries ``q`` (B,
    heads, HW, C), as ``add_decomposed_rel_pos`` adds it to the scores."""
    h, w = hw
    b, heads, _, c = q.shape
    rh = get_rel_pos(h, h, module.rel_pos_h)
    rw = get_rel_pos(w, w, module.rel_pos_w)
    r_q = q.reshape(b * heads, h, w, c)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
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


def use_sdpa(model: nn.Module) -> int:
    """Route every segment_anything ViT ``Attention`` in ``model`` through SDPA; returns
    how many modules were switched (0 for TinyViT, whose attention is another class)."""
    count = 0
    for module in model.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_sdpa_forward, module)
            count += 1
        if isinstance(module, ImageEncoderViT):
            module.samlora_kernels = "sdpa"  # the embedding cache keys entries by it
    return count


def use_eager(model: nn.Module) -> None:
    """Undo :func:`use_sdpa` (the class's own forward again)."""
    for module in model.modules():
        if isinstance(module, Attention) and "forward" in module.__dict__:
            del module.forward
        if isinstance(module, ImageEncoderViT):
            module.__dict__.pop("samlora_kernels", None)
