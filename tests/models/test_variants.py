"""Method variants of params.yaml: what each trains, their real-size budgets, the adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from samlora.config import load_config
from samlora.models.params_table import adapter_budgets, params_table
from samlora.models.registry import build_model
from samlora.models.segmenter import count_parameters

BASE_SAM = 93_735_472  # SAM vit_b, segment_anything's own build
DECODER = 4_058_340
LORA_R8, LORA_R16, ADAPTER = 737_280, 1_474_560, 133_888
SAM_VARIANTS = ["topolora_sam", "topolora_sam_r16", "decoder_only", "lora_only",
                "adapter_only", "cldice_only", "full_ft", "zero_shot"]


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


def test_every_studied_method_exists_and_variants_differ_as_named(cfg) -> None:
    from samlora.study.studies import expand

    used = {r.base_method for s in expand(cfg).values() for r in s.runs}
    assert used <= set(cfg.methods)
    assert {"topolora_sam", "decoder_only", "lora_only", "adapter_only", "cldice_only",
            "sam2lora", "sam2lora_zero_shot", "unet_r34", "deeplabv3p_r50", "segformer_b0",
            "mask2former_swin_t"} <= used
    m = cfg.methods
    assert m.topolora_sam.lora.r == 8 and m.topolora_sam.lora.alpha == 16
    assert m.topolora_sam_r16.lora.r == 16
    for name in ("decoder_only", "lora_only", "adapter_only"):
        assert m[name].loss.cldice == 0, name
    assert m.cldice_only.loss.cldice == m.topolora_sam.loss.cldice == 0.5
    assert not m.cldice_only.lora and not m.cldice_only.adapter
    assert m.lora_only.lora and not m.lora_only.adapter
    assert m.adapter_only.adapter and not m.adapter_only.lora


def _trainable_groups(model: torch.nn.Module) -> set[str]:
    c = count_parameters(model)
    return {k for k in ("lora", "adapter", "encoder", "decoder", "head") if c[k]}


def test_variants_train_what_they_name_on_tiny_sam(cfg) -> None:
    tiny = dict(cfg.backbones.sam_tiny)
    expected = {"topolora_sam": {"lora", "adapter", "decoder"},
                "topolora_sam_r16": {"lora", "adapter", "decoder"},
                "decoder_only": {"decoder"}, "lora_only": {"lora", "decoder"},
                "adapter_only": {"adapter", "decoder"}, "cldice_only": {"decoder"},
                "full_ft": {"encoder", "decoder"}, "zero_shot": set()}
    for name, groups in expected.items():
        model = build_model(cfg.methods[name], tiny)
        assert _trainable_groups(model) == groups, name
        c = count_parameters(model)
        if name == "full_ft":
            assert c["trainable"] == c["total"]
            assert all(p.requires_grad for p in model.parameters())
        if name == "zero_shot":
            assert not any(p.requires_grad for p in model.parameters())


def test_real_size_budgets_of_the_sam_variants(cfg) -> None:
    table = params_table(cfg, methods=SAM_VARIANTS).set_index("method")
    assert (table["backbone"] == "sam_vit_b").all()
    topo = table.loc["topolora_sam"]
    assert (topo.total, topo.trainable) == (BASE_SAM + LORA_R8 + ADAPTER, 4_929_508)
    assert (topo.lora, topo.adapter, topo.decoder, topo.encoder) == (LORA_R8, ADAPTER, DECODER, 0)
    assert round(topo.pct, 2) == 5.21
    assert table.loc["topolora_sam_r16", "trainable"] == 5_666_788
    assert table.loc["topolora_sam_r16", "lora"] == LORA_R16
    assert table.loc["lora_only", "trainable"] == LORA_R8 + DECODER
    assert table.loc["adapter_only", "trainable"] == ADAPTER + DECODER
    assert table.loc["decoder_only", "trainable"] == DECODER
    assert table.loc["cldice_only", "trainable"] == DECODER
    full = table.loc["full_ft"]
    assert full.total == full.trainable == BASE_SAM and full.pct == 100.0
    assert full.encoder == BASE_SAM - DECODER  # image encoder 89,670,912 + prompt 6,220
    zero = table.loc["zero_shot"]
    assert (zero.total, zero.trainable, zero.pct) == (BASE_SAM, 0, 0.0)


def test_adapter_budget_both_ways() -> None:
    rows = dict(adapter_budgets().itertuples(index=False))
    assert rows["reference code, hidden 256"] == ADAPTER == 133_888
    assert rows["reference code, hidden 124"] == 66_040  # the paper's ~66K
    assert rows["paper formula, its Conv1x1 alone"] == 65_792  # ~66K too
    assert rows["paper text variant, with biases"] == 68_352
    assert rows["reference code, hidden 128"] == 68_096


@pytest.mark.slow  # builds every method and sweep variant at real size: ~40 s here
def test_params_cli_prints_every_method_and_both_adapter_figures(repo_root: Path,
                                                                 capsys) -> None:
    from samlora.cli import main

    assert main(["params", "--params", str(repo_root / "params.yaml")]) == 0
    out = capsys.readouterr().out
    cfg = load_config([repo_root / "params.yaml"])
    for name in cfg.methods:
        assert f"\n{name} " in out or f" {name} " in out, name
    assert "4929508" in out and "5666788" in out and "93735472" in out
    assert "133888" in out and "66040" in out and "~66K" in out
    assert "68352" in out  # the paper's text variant, with biases
    # SAM2LoRA's rank ladder on Hiera-L: share of the whole SAM 2.1 model
    ladder = {int(line.split()[0]): line.split() for line in
              out.split("rank ladder on Hiera-L", 1)[1].splitlines()[2:8]}
    assert {r: float(ladder[r][2]) for r in (32, 64, 1024)} == {32: 1.68, 64: 3.31,
                                                                 1024: 35.42}
    # the studies' sweep variants that change the model, each with its own count
    main, lite = out.split("the SAM methods on LiteMedSAM", 1)
    rows = {line.split()[0]: line.split() for line in main.splitlines() if line.strip()}
    lite_rows = {line.split()[0]: line.split() for line in lite.splitlines()[2:] if line.strip()}
    assert lite_rows["decoder_only"][1] == "litemedsam" and "topolora_sam" in lite_rows
    for variant in ("topolora_sam-r4-alpha8", "topolora_sam-r32-alpha64",
                    "sam2lora-r1024-alpha2048", "sam2lora-targets=encoder_attn"):
        assert variant in rows, variant
    lora = {v: int(rows[v][3]) for v in ("topolora_sam-r4-alpha8", "topolora_sam-r32-alpha64")}
    assert lora["topolora_sam-r4-alpha8"] < 4929508 < lora["topolora_sam-r32-alpha64"]
