"""SpatialAdapter: parameter count, identity at initialisation, gradients."""

from __future__ import annotations

import torch

from samlora.models.adapter import SpatialAdapter


def test_parameter_count_at_256() -> None:
    adapter = SpatialAdapter(256, 256)
    assert sum(p.numel() for p in adapter.parameters()) == 133_888
    assert all(m.bias is None for m in (adapter.depthwise, adapter.expand, adapter.project))


def test_starts_as_identity_and_keeps_shape() -> None:
    torch.manual_seed(0)
    adapter = SpatialAdapter(32, 16)
    z = torch.randn(2, 32, 8, 8)
    for mode in (True, False):
        adapter.train(mode)
        assert torch.equal(adapter(z), z)


def test_gradient_reaches_the_last_conv_and_then_all() -> None:
    torch.manual_seed(0)
    adapter = SpatialAdapter(8, 4)
    z = torch.randn(2, 8, 6, 6)
    target = torch.randn_like(z)
    opt = torch.optim.SGD(adapter.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        ((adapter(z) - target) ** 2).mean().backward()
        opt.step()
    assert adapter.project.weight.abs().sum() > 0
    assert adapter.expand.weight.grad.abs().sum() > 0
    assert adapter.depthwise.weight.grad.abs().sum() > 0
