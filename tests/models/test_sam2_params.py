"""SAM 2.1 parameter budgets on the real-size architectures (random weights, no download)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from samlora.config import load_config
from samlora.models.params_table import params_table

HIERA_T_TOTAL = 38_962_498  # the whole SAM2Base of SAM 2.1 hiera_t, memory modules included
HIERA_T_UNUSED = 7_521_777  # memory attention/encoder, object-pointer heads, memory tokens
# encoder_attn + decoder_attn LoRA per unit rank on hiera_t: Σ (in + 3·out) over the 12 trunk
# qkv (18,144) + Σ (in + out) over the decoder's 28 attention projections (11,776)
HIERA_T_LORA_PER_RANK = 18_144 + 11_776


@pytest.fixture(scope="module")
def cfg(repo_root: Path) -> DictConfig:
    cfg = load_config([repo_root / "params.yaml"])
    plain = {**cfg.methods.decoder_only, "backbone": "sam2_hiera_t", "lora": None,
             "decoder": "freeze"}
    cfg.methods.sam2_plain = plain
    for size in ("t", "s", "l"):
        cfg.methods[f"sam2lora_{size}"] = {**cfg.methods.sam2lora, "backbone": f"sam2_hiera_{size}"}
    return cfg


def test_hiera_t_total_and_sam2lora_budget(cfg: DictConfig) -> None:
    rows = params_table(cfg, methods=["sam2_plain", "sam2lora_t"]).set_index("method")
    assert rows.loc["sam2_plain", "total"] == HIERA_T_TOTAL
    assert rows.loc["sam2_plain", "trainable"] == 0
    lora = rows.loc["sam2lora_t"]
    r = cfg.methods.sam2lora.lora.r
    assert cfg.methods.sam2lora.lora.alpha == 2 * r
    assert lora.lora == lora.trainable == HIERA_T_LORA_PER_RANK * r
    assert (lora.adapter, lora.decoder) == (0, 0)
    assert lora.total == HIERA_T_TOTAL + lora.lora
    assert lora.pct < 5.0
    # stricter: also under 5 % of the parameters the segmenter actually holds
    assert 100 * lora.trainable / (lora.total - HIERA_T_UNUSED) < 5.0


@pytest.mark.parametrize("method", [
    "sam2lora",  # the configured backbone (hiera_b+)
    "sam2lora_s",
    "sam2lora_l",
])
def test_sam2lora_below_5_percent(cfg: DictConfig, method: str) -> None:
    row = params_table(cfg, methods=[method]).iloc[0]
    assert cfg.backbones[row.backbone].family == "sam2"
    assert 0 < row.trainable == row.lora and row.pct < 5.0


def test_tiny_override_builds_every_method(cfg: DictConfig) -> None:
    table = params_table(cfg, methods=["sam2lora", "topolora_sam"], arch_override="tiny")
    assert (table["total"] < 2_000_000).all() and (table["trainable"] > 0).all()
