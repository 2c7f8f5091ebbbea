"""Cosine schedule with warmup: known values."""

from __future__ import annotations

import math

import pytest
import torch

from samlora.training.optim import build_optimizer, build_scheduler, cosine_factor


def test_cosine_known_values() -> None:
    assert cosine_factor(0, 10, 0, 0.0) == pytest.approx(1.0)
    assert cosine_factor(5, 10, 0, 0.0) == pytest.approx(0.5)
    assert cosine_factor(10, 10, 0, 0.0) == pytest.approx(0.0)
    assert cosine_factor(10, 10, 0, 0.1) == pytest.approx(0.1)
    assert cosine_factor(0, 10, 4, 0.0) == pytest.approx(0.25)   # warmup
    assert cosine_factor(7, 10, 4, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_scheduler_steps_lr_to_floor() -> None:
    w = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([w], lr=1e-2, weight_decay=0.0)
    sched = build_scheduler(opt, total_steps=4, lr=1e-2, min_lr=1e-4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-2)
    assert lrs == sorted(lrs, reverse=True)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_no_trainable_parameters_is_an_error() -> None:
    frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    with pytest.raises(ValueError, match="no trainable"):
        build_optimizer([frozen], lr=1e-3, weight_decay=0.0)
