"""SpatialAdapter's ``adapter.variant`` (code | text) and ``adapter.init`` (zero | default)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.models.adapter import SpatialAdapter
from samlora.models.registry import build_model


def _n(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_of_both_variants_at_256() -> None:
    code = SpatialAdapter(256, 256)
    assert code.variant == "code" and code.init == "zero"
    assert _n(code) == 133_888
    assert [name for name, _ in code.named_children()] == [
        "depthwise", "expand", "norm", "act", "project"]
    text = SpatialAdapter(256, 256, variant="text")
    assert _n(text) == 68_352 == 2_304 + 256 + 65_536 + 256
    assert _n(SpatialAdapter(256, 7, variant="text")) == 68_352  # hidden is unused
    assert text.depthwise.bias is not None and text.project.bias is not None
    assert isinstance(text.act, torch.nn.ReLU)


def test_text_variant_computes_the_paper_formula() -> None:
    torch.manual_seed(0)
    c = 16
    adapter = SpatialAdapter(c, c, variant="text", init="default")
    z = torch.randn(2, c, 9, 7)
    dw, pw = adapter.depthwise, adapter.project
    expected = z + F.conv2d(F.relu(F.conv2d(z, dw.weight, dw.bias, padding=1, groups=c)),
                            pw.weight, pw.bias)
    torch.testing.assert_close(adapter(z), expected)
    assert not torch.allclose(adapter(z), z)


@pytest.mark.parametrize("variant", ["code", "text"])
def test_zero_init_is_the_identity_and_default_init_is_not(variant: str) -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 32, 8, 8)
    zero = SpatialAdapter(32, 16, variant=variant)
    for mode in (True, False):
        zero.train(mode)
        assert torch.equal(zero(z), z)
    default = SpatialAdapter(32, 16, variant=variant, init="default")
    assert default.project.weight.abs().sum() > 0
    for mode in (True, False):
        default.train(mode)
        assert not torch.allclose(default(z), z)


def test_unknown_variant_or_init_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"adapter\.variant"):
        SpatialAdapter(8, 8, variant="paper")
    with pytest.raises(ValueError, match=r"adapter\.init"):
        SpatialAdapter(8, 8, init="kaiming")


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


def _topolora_with(cfg, adapter: dict):
    method = OmegaConf.merge(cfg.methods.topolora_sam,
                             {"backbone": "sam_tiny", "lora": None, "adapter": adapter})
    return build_model(method, dict(cfg.backbones.sam_tiny), pretrained=False)


def test_segmenter_builds_the_configured_adapter(cfg) -> None:
    default = _topolora_with(cfg, {"hidden": 16})
    assert (default.adapter.variant, default.adapter.init) == ("code", "zero")
    assert default.adapter.project.weight.abs().sum() == 0
    model = _topolora_with(cfg, {"hidden": 16, "variant": "text", "init": "default"})
    adapter = model.adapter
    assert (adapter.variant, adapter.init) == ("text", "default")
    c = adapter.channels
    assert _n(adapter) == 9 * c + c + c * c + c
    assert adapter.project.weight.abs().sum() > 0
    assert all(p.requires_grad for p in adapter.parameters())
    with pytest.raises(ValueError, match=r"adapter\.variant"):
        _topolora_with(cfg, {"hidden": 16, "variant": "bogus"})
    with pytest.raises(ValueError, match=r"adapter\.init"):
        _topolora_with(cfg, {"hidden": 16, "init": "bogus"})
