"""SDPA attention gives segment_anything's scores: same outputs and gradients (fp32), on
the windowed and the global blocks, with relative positions learnt (non-zero) and LoRA."""

from __future__ import annotations

import pytest
import torch

from samlora.models.sam import build_sam
from samlora.models.sdpa import use_eager, use_sdpa


def _encoder(size: int = 128):
    torch.manual_seed(0)
    sam = build_sam("tiny", size)
    enc = sam.image_encoder.train()
    with torch.no_grad():  # zero-initialised in the library: make the bias matter
        for block in enc.blocks:
            block.attn.rel_pos_h.normal_(0, 0.5)
            block.attn.rel_pos_w.normal_(0, 0.5)
    return enc


def _run(enc, x):
    enc.zero_grad(set_to_none=True)
    out = enc(x)
    (out.square().mean()).backward()
    grads = {n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None}
    return out.detach(), grads


def test_outputs_and_gradients_match_the_library_attention() -> None:
    enc = _encoder()
    windows = {b.window_size for b in enc.blocks}
    assert 0 in windows and len(windows) > 1  # a global block and windowed ones
    x = torch.randn(2, 3, 128, 128)
    ref_out, ref_grads = _run(enc, x)
    assert use_sdpa(enc) == len(enc.blocks)
    out, grads = _run(enc, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    use_eager(enc)
    again, _ = _run(enc, x)
    assert torch.equal(again, ref_out)


def test_lora_on_qkv_still_trains_through_sdpa() -> None:
    from peft import LoraConfig, inject_adapter_in_model

    enc = _encoder()
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=["qkv"],
                                       init_lora_weights=False), enc)
    x = torch.randn(1, 3, 128, 128)
    ref_out, ref_grads = _run(enc, x)
    use_sdpa(enc)
    out, grads = _run(enc, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    lora = [n for n in grads if "lora_" in n]
    assert lora
    for name in lora:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_bf16_autocast_stays_close(dtype) -> None:
    enc = _encoder().eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        ref = enc(x)
        use_sdpa(enc)
        with torch.autocast("cpu", dtype=dtype):
            out = enc(x).float()
    assert (out - ref).abs().max() / ref.abs().max() < 0.05  # bf16's 8-bit mantissa


def test_params_yaml_runs_vit_b_with_chunked_attention() -> None:
    """The 1024² ViT-B step's memory (bench_speed.py: 9.3 GB eager, 5.1 GB chunked)."""
    from pathlib import Path

    from samlora.config import load_config

    cfg = load_config([Path(__file__).resolve().parents[2] / "params.yaml"])
    assert cfg.backbones.sam_vit_b.attention == "chunked"


def test_the_backbone_switch_routes_the_built_model(caplog) -> None:
    import logging

    from samlora.models.registry import build_model

    method = {"lora": None, "adapter": None, "decoder": "train"}
    backbone = {"family": "sam", "arch": "tiny", "img_size": 128, "checkpoint": None}
    with caplog.at_level(logging.INFO):
        model = build_model(method, backbone | {"attention": "sdpa"}, pretrained=False)
    assert "attention blocks through scaled_dot_product_attention" in caplog.text
    switched = [m for m in model.modules() if "forward" in m.__dict__]
    assert switched and len(switched) == len(model.sam.image_encoder.blocks)
    eager = build_model(method, backbone, pretrained=False)
    assert not [m for m in eager.modules() if "forward" in m.__dict__]
    with caplog.at_level(logging.INFO):
        chunked = build_model(method, backbone | {"attention": "chunked"}, pretrained=False)
    assert chunked.sam.image_encoder.samlora_kernels == "chunked"
    assert "bands of query rows" in caplog.text
    with pytest.raises(ValueError, match="attention 'flash' is not one of"):
        build_model(method, backbone | {"attention": "flash"}, pretrained=False)


@pytest.mark.parametrize("band", [8, 48, 10_000])
def test_chunked_attention_is_the_library_attention(band, monkeypatch) -> None:
    """Bands of query rows (one row, uneven bands with a short last one, and a band wider
    than the image: the library's code path), recomputed in the backward pass: the
    library's outputs and gradients, with LoRA on qkv and learnt relative positions."""
    from peft import LoraConfig, inject_adapter_in_model

    from samlora.models import sdpa

    monkeypatch.setattr(sdpa, "CHUNK_QUERIES", band)
    enc = _encoder()
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=["qkv"],
                                       init_lora_weights=False), enc)
    x = torch.randn(2, 3, 128, 128)
    ref_out, ref_grads = _run(enc, x)
    assert sdpa.use_chunked(enc) == len(enc.blocks)
    assert enc.samlora_kernels == "chunked"
    out, grads = _run(enc, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], rtol=1e-5, atol=1e-7, msg=name)
    with torch.inference_mode():  # prediction: bands, nothing kept for a backward pass
        torch.testing.assert_close(enc(x), ref_out, rtol=1e-5, atol=1e-6)


def test_chunked_attention_stores_no_global_score_matrix(monkeypatch) -> None:
    """What autograd keeps for the backward pass: with chunked global attention, no
    tensor of a block's full HW×HW scores (the library keeps its softmax)."""
    from samlora.models import sdpa

    monkeypatch.setattr(sdpa, "CHUNK_QUERIES", 16)
    enc = _encoder(192)
    x = torch.randn(1, 3, 192, 192)
    tokens = (192 // 16) ** 2  # the tiny ViT's 12×12 patch grid (its head dim is 64)

    def score_matrices() -> int:
        """Saved tensors shaped like a global block's scores (…, HW, HW)."""
        shapes: list[tuple[int, ...]] = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            shapes.append(tuple(t.shape))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            enc(x).square().mean()
        return sum(1 for s in shapes if s[-2:] == (tokens, tokens))

    globals_ = sum(1 for b in enc.blocks if b.window_size == 0)
    assert score_matrices() >= globals_ >= 1  # the library keeps each global softmax
    sdpa.use_chunked(enc)
    assert score_matrices() == 0
