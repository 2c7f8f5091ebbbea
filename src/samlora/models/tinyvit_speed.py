"""LiteMedSAM's TinyViT encoder, faster on CPUs, same function.

A profile of one 256² forward on the CPU puts a third of the time in oneDNN convolutions,
a tenth in layout copies between them and another tenth in BatchNorm. Two changes, both
exact up to float rounding (a test holds them to 1e-4 of the library's output):

- channels-last weights (``memory_format=torch.channels_last``): oneDNN convolutions then
  run in their native layout instead of reordering every activation;
- each ``Conv2d_BN`` (TinyViT's conv + BatchNorm pair) whose weights are all frozen and
  whose BatchNorm is in eval mode (:class:`~samlora.models.segmenter.SamSegmenter` keeps
  frozen BatchNorm in eval mode) runs as one convolution with BatchNorm folded into its
  weight and bias. The fold is computed from the module's own tensors and redone when
  any of them changes (a checkpoint load), so the state dict, the checkpoint format and
  the frozen-weights fingerprint stay the library's.

The LiteMedSAM backbone always builds this way (:func:`samlora.models.segmenter.build_segmenter`);
the embedding cache keys its entries by these kernels too. ``benchmarks/bench_speed.py
--backbone litemedsam --variants tinyvit`` measures what it gives.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn


def _folded(self: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    c, bn = self.c, self.bn
    key = tuple(t._version for t in (c.weight, bn.weight, bn.bias, bn.running_mean,
                                     bn.running_var)) + tuple(id(t) for t in (c.weight,
                                                                            bn.weight))
    cached = self.__dict__.get("_samlora_fold")
    if cached is None or cached[0] != key:
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = (c.weight * scale[:, None, None, None]).contiguous(
                memory_format=torch.channels_last)
            bias = bn.bias - bn.running_mean * scale
        cached = (key, weight, bias)
        self.__dict__["_samlora_fold"] = cached
    return cached[1], cached[2]


def _conv_bn_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    frozen = not any(p.requires_grad for p in self.parameters())
    if self.bn.training or not frozen:
        return self.bn(self.c(x))  # the library's path (training BatchNorm, trainable)
    weight, bias = _folded(self)
    c = self.c
    return F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), c.stride, c.padding,
                    c.dilation, c.groups)


def speed_up_tinyvit(encoder: nn.Module, fold: bool = True) -> int:
    """Channels-last weights, and folded frozen conv + BatchNorm pairs (``fold``); returns
    the number of pairs that may run folded."""
    encoder.to(memory_format=torch.channels_last)
    encoder.samlora_kernels = "channels_last+folded_bn" if fold else "channels_last"
    count = 0
    if fold:
        for module in encoder.modules():
            if type(module).__name__ == "Conv2d_BN":
                module.forward = types.MethodType(_conv_bn_forward, module)
                count += 1
    return count


def slow_down_tinyvit(encoder: nn.Module) -> None:
    """Undo :func:`speed_up_tinyvit`: the library's layout and forward (benchmarks)."""
    encoder.to(memory_format=torch.contiguous_format)
    encoder.__dict__.pop("samlora_kernels", None)
    for module in encoder.modules():
        if type(module).__name__ == "Conv2d_BN":
            module.__dict__.pop("forward", None)
            module.__dict__.pop("_samlora_fold", None)
