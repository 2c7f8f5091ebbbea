"""lora.init: peft's kaiming (default) or SAM2LoRA's A ~ N(0, 1/r) std 1/sqrt(r), B = 0."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from samlora.models.lora import LORA_INITS, apply_lora, init_lora_gaussian_sqrt_r
from samlora.models.sam import build_sam


class _Block(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(torch.relu(self.lin1(x)))


class _Encoder(nn.Module):
    """Modules named as a SAM image encoder's FFNs: ``blocks.<i>.mlp.lin1/lin2``."""

    def __init__(self, dim: int = 256, hidden: int = 512, depth: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Module() for _ in range(depth))
        for block in self.blocks:
            block.mlp = _Block(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block.mlp(x)
        return x


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = _Encoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(x)


def _cfg(**over: object) -> dict[str, object]:
    cfg: dict[str, object] = {"r": 16, "alpha": 32, "dropout": 0.0, "targets": "encoder_ffn"}
    cfg.update(over)
    return cfg


def _factors(model: nn.Module, which: str) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for n, p in model.named_parameters()
                      if f".{which}." in n])


def test_gaussian_sqrt_r_draws_a_with_std_one_over_sqrt_r() -> None:
    torch.manual_seed(0)
    model = _Toy()
    names = apply_lora(model, _cfg(init="gaussian_sqrt_r"))
    assert len(names) == 6
    a = _factors(model, "lora_A")
    assert a.numel() == 3 * 16 * (256 + 512)   # 36,864 entries
    assert a.std().item() == pytest.approx(0.25, rel=0.03)
    assert abs(a.mean().item()) < 0.01
    assert torch.count_nonzero(_factors(model, "lora_B")) == 0


def test_default_keeps_peft_kaiming() -> None:
    def build(**over: object) -> nn.Module:
        torch.manual_seed(0)
        model = _Toy()
        apply_lora(model, _cfg(**over))
        return model

    default = build()
    a = _factors(default, "lora_A")
    # kaiming_uniform(a=sqrt(5)) on fan_in f: U(-1/sqrt(f), 1/sqrt(f)), std 1/sqrt(3 f)
    std = a.std().item()
    assert std < 0.05 and abs(std - 0.25) > 0.2
    assert a.abs().max().item() <= 1 / math.sqrt(256)
    assert torch.count_nonzero(_factors(default, "lora_B")) == 0
    # "kaiming" written out is the default: the same draws for the same seed
    assert torch.equal(_factors(build(init="kaiming"), "lora_A"), a)
    assert not torch.equal(_factors(build(init="gaussian_sqrt_r"), "lora_A"), a)


def test_gaussian_init_is_seeded_by_the_global_rng() -> None:
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = _Toy()
        apply_lora(model, _cfg(init="gaussian_sqrt_r", r=4))
        runs.append(_factors(model, "lora_A"))
    assert torch.equal(runs[0], runs[1])
    assert runs[0].std().item() == pytest.approx(0.5, rel=0.05)   # 1/sqrt(4)


def test_output_at_init_is_the_unadapted_output() -> None:
    torch.manual_seed(0)
    sam = build_sam("tiny", 256).eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        before = sam.image_encoder(x)
        names = apply_lora(sam, _cfg(r=8, alpha=16, init="gaussian_sqrt_r"))
        after = sam.image_encoder(x)
    assert len(names) == 2 * len(sam.image_encoder.blocks)
    assert _factors(sam, "lora_A").std().item() == pytest.approx(1 / math.sqrt(8), rel=0.05)
    torch.testing.assert_close(after, before)


def test_hook_counts_every_adapter_and_unknown_init_is_named() -> None:
    model = _Toy()
    apply_lora(model, _cfg())
    assert init_lora_gaussian_sqrt_r(model) == 6
    assert LORA_INITS == ("kaiming", "gaussian_sqrt_r")
    with pytest.raises(ValueError, match=r"^lora\.init: 'gaussian'"):
        apply_lora(_Toy(), _cfg(init="gaussian"))
