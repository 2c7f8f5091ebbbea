"""A method's prompt settings, seeded training prompts, and the shared model step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samlora.models.prompts import PromptSpec, erode_square2, sample_prompts
from samlora.training.prompted import (
    TRAIN_STREAM,
    PromptSettings,
    evaluation_prompts,
    model_step,
    prompt_settings,
    training_prompts,
)


def _batch(n: int = 2) -> dict:
    mask = torch.zeros(n, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    return {"image": torch.zeros(n, 3, 32, 32), "mask": mask, "fov": torch.ones_like(mask),
            "case": [f"c{i}" for i in range(n)]}


def test_settings_defaults_and_validation() -> None:
    assert prompt_settings({"loss": {}}) == PromptSettings()
    assert prompt_settings({"prompts": None}).train_points == 0
    s = prompt_settings({"prompts": {"train_points": 3, "eval_modes": ["none", "box"]}})
    assert s.train_points == 3 and s.eval_modes == ("none", "box") and s.erode_radius == 1
    with pytest.raises(ValueError, match="must list 'none'"):
        prompt_settings({"prompts": {"eval_modes": ["box"]}})
    with pytest.raises(ValueError, match="unknown mode"):
        prompt_settings({"prompts": {"eval_modes": ["none", "scribble"]}})
    with pytest.raises(ValueError, match="unknown key"):
        prompt_settings({"prompts": {"train_pts": 3}})
    with pytest.raises(ValueError, match=">= 0"):
        prompt_settings({"prompts": {"train_points": -1}})


def test_training_prompts_are_reproducible_per_epoch() -> None:
    s = PromptSettings(train_points=4)
    assert training_prompts(PromptSettings(), seed=0, epoch=0) is None
    first = [training_prompts(s, 7, 3)(_batch()) for _ in range(2)]
    assert torch.equal(first[0]["points"], first[1]["points"])  # a resumed epoch 3
    other = training_prompts(s, 7, 4)(_batch())
    assert not torch.equal(first[0]["points"], other["points"])
    sampler = training_prompts(s, 7, 3)
    a, b = sampler(_batch()), sampler(_batch())  # consecutive batches of one epoch differ
    assert not torch.equal(a["points"], b["points"])
    assert (a["point_labels"] == 1).all() and a["boxes"] is None
    val = [training_prompts(s, 7, None)(_batch()) for _ in range(2)]
    assert torch.equal(val[0]["points"], val[1]["points"])


def test_evaluation_prompts_follow_the_case_not_the_batch() -> None:
    s = PromptSettings(eval_modes=("none", "5pt1neg"), eval_seed=3)
    assert evaluation_prompts(_batch(), "none", s) is None
    pair = evaluation_prompts(_batch(2), "5pt1neg", s)
    alone = evaluation_prompts({k: v[1:] for k, v in _batch(2).items()}, "5pt1neg", s)
    assert torch.equal(pair["points"][1], alone["points"][0])
    assert not torch.equal(pair["points"][0], pair["points"][1])  # cases c0 and c1


def test_reference_negatives_off_makes_5pt1neg_five_positives() -> None:
    """SAM2LoRA's code: num_neg_points defaults to 0, so "5pt+1neg" draws no negative."""
    ours = PromptSettings(eval_modes=("none", "5pt1neg"), eval_seed=3)
    theirs = prompt_settings({"prompts": {"eval_modes": ["none", "5pt1neg"], "eval_seed": 3,
                                          "negatives": False}})
    with_neg = evaluation_prompts(_batch(), "5pt1neg", ours)
    without = evaluation_prompts(_batch(), "5pt1neg", theirs)
    assert (with_neg["point_labels"] == 0).sum(dim=1).tolist() == [1, 1]
    assert without["point_labels"].shape == (2, 5) and (without["point_labels"] == 1).all()
    five = evaluation_prompts(_batch(), "5pt", ours)
    assert torch.equal(without["points"], five["points"])  # the same positives as 5pt
    with pytest.raises(ValueError, match="prompts.negatives must be true or false"):
        prompt_settings({"prompts": {"negatives": "no"}})



def test_training_sampler_switches_reach_the_sampler() -> None:
    """SAM2LoRA's training sampler: 200 positives with replacement from the 2×2-eroded mask."""
    s = prompt_settings({"prompts": {"train_points": 200, "replacement": True,
                                     "erode": "square2"}})
    assert (s.replacement, s.erode) == (True, "square2")
    batch = _batch()
    batch["mask"] = torch.zeros(2, 1, 32, 32)
    batch["mask"][:, :, 8:12, 8:12] = 1                  # 16 px: fewer than 200
    p = training_prompts(s, 7, 0)(batch)
    assert p["points"].shape == (2, 200, 2) and (p["point_labels"] == 1).all()
    inner = erode_square2(batch["mask"][0, 0].numpy() > 0.5)
    xy = p["points"][0].long().numpy()
    assert inner[xy[:, 1], xy[:, 0]].all()
    assert len(torch.unique(p["points"][0], dim=0)) <= int(inner.sum())
    # the sampler is sample_prompts with those settings, from the (seed, epoch) generator
    ref = sample_prompts(batch["mask"], PromptSpec(positive=200),
                         np.random.default_rng([7, TRAIN_STREAM, 0]), replacement=True,
                         erode="square2")
    assert torch.equal(p["points"], ref["points"])


def test_training_sampler_defaults_are_todays() -> None:
    s = PromptSettings(train_points=4)
    assert (s.replacement, s.erode) == (False, "disk")
    assert prompt_settings({"prompts": {"train_points": 4}}) == s
    explicit = prompt_settings({"prompts": {"train_points": 4, "replacement": False,
                                            "erode": "disk"}})
    assert explicit == s
    assert torch.equal(training_prompts(s, 7, 3)(_batch())["points"],
                       training_prompts(explicit, 7, 3)(_batch())["points"])
    # evaluation prompts do not read the training switches
    theirs = PromptSettings(eval_modes=("none", "5pt"), replacement=True, erode="square2")
    ours = PromptSettings(eval_modes=("none", "5pt"))
    assert torch.equal(evaluation_prompts(_batch(), "5pt", theirs)["points"],
                       evaluation_prompts(_batch(), "5pt", ours)["points"])
    with pytest.raises(ValueError, match=r"prompts\.replacement must be true or false"):
        prompt_settings({"prompts": {"replacement": "yes"}})
    with pytest.raises(ValueError, match=r"prompts\.erode: 'cross'"):
        prompt_settings({"prompts": {"erode": "cross"}})


class _Recorder(torch.nn.Module):
    """Records which forward was called; logits from a single weight."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.calls: list[str] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append("forward")
        return self.w * images[:, :1]

    def forward_with_iou(self, images: torch.Tensor, prompts: dict | None) -> tuple:
        self.calls.append("prompted" if prompts is not None else "iou")
        return self.w * images[:, :1], torch.full((len(images), 1), 0.5) * self.w


def test_model_step_picks_the_forward() -> None:
    from samlora.losses import build_loss

    plain = build_loss({"bce": 1.0, "dice": 0.0, "cldice": 0.0})
    with_iou = build_loss({"bce": 1.0, "dice": 0.0, "cldice": 0.0, "iou_l1": 0.1})
    model, dev = _Recorder(), torch.device("cpu")
    model_step(model, _batch(), plain, dev)
    _, terms, _ = model_step(model, _batch(), with_iou, dev)
    model_step(model, _batch(), plain, dev, training_prompts(PromptSettings(train_points=2), 0, 0))
    assert model.calls == ["forward", "iou", "prompted"]
    # logits 0 → IoU of an empty prediction with a 16×16 square is 0; predicted 0.5
    assert terms["iou_l1"] == pytest.approx(0.5)
