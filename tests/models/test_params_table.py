"""params_table: the published parameter budgets on the real ViT-B architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from samlora.config import load_config
from samlora.models.params_table import COLUMNS, params_table

BASE_SAM = 93_735_472


def test_vit_b_budgets(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    cfg.methods.topolora_r16 = {**cfg.methods.topolora_sam,
                                "lora": {**cfg.methods.topolora_sam.lora, "r": 16, "alpha": 32}}
    table = params_table(cfg, methods=["topolora_sam", "topolora_r16", "decoder_only"])
    assert list(table.columns) == COLUMNS
    rows = table.set_index("method")
    topo = rows.loc["topolora_sam"]
    assert topo.backbone == "sam_vit_b"
    assert (topo.lora, topo.adapter, topo.decoder) == (737_280, 133_888, 4_058_340)
    assert topo.trainable == 4_929_508
    assert topo.total == BASE_SAM + 737_280 + 133_888
    assert round(topo.pct, 2) == 5.21
    assert rows.loc["topolora_r16", "trainable"] == 5_666_788
    assert rows.loc["topolora_r16", "lora"] == 1_474_560
    dec = rows.loc["decoder_only"]
    assert (dec.total, dec.trainable, dec.lora, dec.adapter) == (BASE_SAM, 4_058_340, 0, 0)


def test_arch_override_and_unknown_method(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    table = params_table(cfg, arch_override="tiny")
    assert list(table["method"]) == list(cfg.methods)
    baseline = table["backbone"].map(lambda b: cfg.backbones[b].family == "baseline")
    assert (table.loc[~baseline, "total"] < 1_000_000).all()
    # baselines switch to their *_tiny variants (smp's smallest ResNet keeps U-Net/DeepLab ~11M)
    assert baseline.any() and (table.loc[baseline, "total"] < 12_000_000).all()
    with pytest.raises(KeyError, match="unknown methods"):
        params_table(cfg, methods=["nope"])
