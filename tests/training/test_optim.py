"""Learning-rate schedules: cosine and cosine warm restarts (against torch), run sizing
by epochs or steps, train-block checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from samlora.training.optim import (
    TRAIN_DEFAULTS,
    batches_in_epoch,
    build_optimizer,
    build_schedule,
    build_scheduler,
    check_train_block,
    cosine_factor,
    epoch_cosine_factor,
    epochs_needed,
    restart_factor,
    steps_per_epoch,
    total_steps,
)


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


# --- step-sized runs and cosine warm restarts -------------------------------------------


def _train(**over: object) -> dict[str, object]:
    """A train block as params.yaml gives it (only the keys the schedule reads)."""
    block: dict[str, object] = {"epochs": 50, "grad_accum": 4, "lr": 1e-4, "min_lr": 1e-6,
                                "warmup_steps": 0}
    block.update(over)
    return block


def _torch_restart_lrs(n: int, lr: float, t0: int, mult: int, eta_min: float) -> list[float]:
    """lr before each of ``n`` optimiser steps under torch's CosineAnnealingWarmRestarts."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=t0, T_mult=mult, eta_min=eta_min)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(("t0", "mult", "n"), [(5, 1, 23), (7, 1, 50), (3, 2, 3 + 6 + 12 + 24 + 5),
                                               (4, 2, 70), (2, 3, 2 + 6 + 18 + 9)])
@pytest.mark.parametrize("warmup", [0, 3])
def test_restart_factor_matches_torch_warm_restarts(t0: int, mult: int, n: int,
                                                    warmup: int) -> None:
    lr, floor = 2e-3, 0.01
    expected = _torch_restart_lrs(n, lr, t0, mult, floor * lr)
    got = [lr * restart_factor(warmup + k, warmup, t0, mult, floor) for k in range(n)]
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == pytest.approx(e, rel=1e-12, abs=1e-15), f"step {k}"


def test_restart_factor_known_values() -> None:
    # T_0=4, T_mult=2: cycles of 4, 8, 16 steps start at 0, 4, 12, 28
    for start in (0, 4, 12, 28):
        assert restart_factor(start, 0, 4, 2, 0.0) == 1.0
    assert restart_factor(2, 0, 4, 2, 0.0) == pytest.approx(0.5)        # half of cycle 0
    assert restart_factor(4 + 4, 0, 4, 2, 0.0) == pytest.approx(0.5)    # half of cycle 1
    assert restart_factor(12 + 8, 0, 4, 2, 0.2) == pytest.approx(0.6)   # half of cycle 2
    assert restart_factor(3, 0, 4, 1, 0.0) == pytest.approx(0.5 * (1 + math.cos(0.75 * math.pi)))
    # warmup ramps as the plain cosine schedule's does, then the first cycle starts at 1
    assert [restart_factor(k, 4, 10, 1, 0.0) for k in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert restart_factor(4 + 10, 4, 10, 1, 0.0) == 1.0                  # first restart
    with pytest.raises(ValueError):
        restart_factor(0, 0, 0, 1, 0.0)


def test_restart_schedule_drives_the_optimizer_lr_like_torch() -> None:
    train = _train(lr=1e-2, min_lr=1e-4, schedule="cosine_restarts", restart_steps=3,
                   restart_mult=2, warmup_steps=2, steps=30)
    w = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([w], lr=train["lr"], weight_decay=3e-4)
    sched = build_schedule(opt, train, total_steps(train, 8))
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:2] == pytest.approx([0.5e-2, 1e-2])
    expected = _torch_restart_lrs(28, 1e-2, 3, 2, 1e-4)
    assert lrs[2:] == pytest.approx(expected, rel=1e-12)


def test_cosine_schedule_is_todays_scheduler() -> None:
    train = _train(lr=1e-2, min_lr=1e-4, warmup_steps=3)
    total = total_steps(train, 10)   # 50 epochs x ceil(10 / 4) = 150 steps
    assert total == 150
    runs = []
    for make in (lambda o: build_schedule(o, train, total),
                 lambda o: build_scheduler(o, total, 3, 1e-2, 1e-4)):
        w = torch.nn.Parameter(torch.zeros(1))
        opt = build_optimizer([w], lr=1e-2, weight_decay=0.0)
        sched = make(opt)
        lrs = []
        for _ in range(total + 1):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        runs.append(lrs)
    assert runs[0] == runs[1]
    assert runs[0][-1] == pytest.approx(1e-4)


@pytest.mark.parametrize("schedule", ["cosine", "cosine_restarts"])
def test_schedule_resumes_exactly_from_its_state_dict(schedule: str) -> None:
    train = _train(lr=1e-2, min_lr=1e-4, warmup_steps=2, schedule=schedule,
                   restart_steps=4, restart_mult=2, steps=40)

    def fresh() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        w = torch.nn.Parameter(torch.zeros(1))
        opt = build_optimizer([w], lr=1e-2, weight_decay=3e-4)
        return opt, build_schedule(opt, train, 40)

    def advance(opt: torch.optim.Optimizer, sched: object, k: int) -> list[float]:
        out = []
        for _ in range(k):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()  # type: ignore[attr-defined]
        return out

    opt, sched = fresh()
    straight = advance(opt, sched, 40)
    opt, sched = fresh()
    first = advance(opt, sched, 13)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    assert state["scheduler"]["lr_lambdas"] == [None]   # only the step count is kept
    opt, sched = fresh()
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    assert first + advance(opt, sched, 27) == straight


def test_state_dict_keys_are_todays() -> None:
    w = torch.nn.Parameter(torch.zeros(1))
    today = build_scheduler(build_optimizer([w], lr=1e-3, weight_decay=0.0), 10)
    w2 = torch.nn.Parameter(torch.zeros(1))
    restarts = build_schedule(build_optimizer([w2], lr=1e-4, weight_decay=0.0),
                              _train(schedule="cosine_restarts"), 10)
    assert set(restarts.state_dict()) == set(today.state_dict())


def test_epoch_sized_run_by_default() -> None:
    train = _train(epochs=3)
    assert steps_per_epoch(train, 10) == 3             # 4 + 4 + a short window of 2
    assert total_steps(train, 10) == 9
    assert epochs_needed(train, 10) == 3
    assert [batches_in_epoch(train, 10, e) for e in range(4)] == [10, 10, 10, 0]
    assert total_steps(_train(epochs=2, grad_accum=1), 7) == 14


def test_step_sized_run_stops_on_exactly_its_last_step() -> None:
    train = _train(epochs=999, steps=7)                 # epochs is ignored
    assert total_steps(train, 10) == 7
    assert epochs_needed(train, 10) == 3                # 3 + 3 + 1 steps
    assert [batches_in_epoch(train, 10, e) for e in range(4)] == [10, 10, 4, 0]
    assert epochs_needed(_train(steps=6), 10) == 2      # a whole number of epochs
    assert batches_in_epoch(_train(steps=6), 10, 1) == 10
    assert epochs_needed(_train(steps=1), 10) == 1
    assert batches_in_epoch(_train(steps=1), 10, 0) == 4


@pytest.mark.parametrize(("n_batches", "accum", "steps"),
                         [(10, 4, 7), (10, 4, 6), (9, 3, 5), (5, 1, 12), (3, 4, 5), (1, 4, 3)])
def test_loop_over_batches_in_epoch_takes_exactly_steps(n_batches: int, accum: int,
                                                       steps: int) -> None:
    """The loop's accumulation rule (step every ``accum`` batches and at the epoch's end),
    run over ``batches_in_epoch`` batches, takes exactly ``steps`` optimiser steps."""
    train = _train(grad_accum=accum, steps=steps)
    taken = 0
    for epoch in range(epochs_needed(train, n_batches)):
        limit = batches_in_epoch(train, n_batches, epoch)
        assert 1 <= limit <= n_batches
        for i in range(limit):
            if (i + 1) % accum == 0 or i + 1 == n_batches:
                taken += 1
        assert (limit == n_batches) or (limit % accum == 0)
    assert taken == steps == total_steps(train, n_batches)


def test_defaults_are_todays_behaviour() -> None:
    assert TRAIN_DEFAULTS == {"steps": None, "schedule": "cosine", "restart_steps": 1000,
                              "restart_mult": 1}
    check_train_block(_train(), "train")
    check_train_block(_train(**TRAIN_DEFAULTS), "train")


def test_params_yaml_train_block_passes(repo_root: Path) -> None:
    block = yaml.safe_load((repo_root / "params.yaml").read_text())["train"]
    check_train_block(block, "params.yaml: train")
    for key, value in TRAIN_DEFAULTS.items():
        assert block[key] == value


@pytest.mark.parametrize(("over", "key"), [
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"steps": True}, "steps"),
    ({"schedule": "linear"}, "schedule"),
    ({"schedule": "cosine_restarts", "restart_steps": 0}, "restart_steps"),
    ({"restart_steps": "1000"}, "restart_steps"),
    ({"restart_mult": 0}, "restart_mult"),
    ({"restart_mult": 1.5}, "restart_mult"),
    ({"epochs": 0}, "epochs"),
    ({"grad_accum": 0}, "grad_accum"),
    ({"lr": 0.0}, "lr"),
    ({"min_lr": -1e-6}, "min_lr"),
    ({"min_lr": 1e-3}, "min_lr"),               # above lr
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"steps": 10, "warmup_steps": 10}, "warmup_steps"),
])
def test_bad_values_name_the_key(over: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=rf"^methods\.sam2lora\.train\.{key}: "):
        check_train_block(_train(**over), "methods.sam2lora.train")


def test_missing_keys_and_empty_loader() -> None:
    block = _train()
    del block["epochs"]
    with pytest.raises(ValueError, match=r"train\.epochs: missing"):
        check_train_block(block, "train")
    check_train_block({**block, "steps": 100}, "train")   # epochs not needed for a step run
    del block["lr"]
    with pytest.raises(ValueError, match=r"train\.lr: missing"):
        check_train_block(block, "train")
    for fn in (total_steps, epochs_needed):
        with pytest.raises(ValueError, match="empty training set"):
            fn(_train(steps=5), 0)
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="total"):
        build_schedule(build_optimizer([w], lr=1e-4, weight_decay=0.0), _train(), 0)


# --- cosine_epoch: TopoLoRA-SAM's CosineAnnealingLR stepped once per epoch --------------


def _lrs(opt: torch.optim.Optimizer, sched: object, k: int) -> list[float]:
    """lr before each of ``k`` optimiser steps, stepping ``sched`` after each."""
    out = []
    for _ in range(k):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()  # type: ignore[attr-defined]
    return out


def test_cosine_epoch_matches_torch_cosine_annealing_stepped_per_epoch() -> None:
    epochs, n_batches = 5, 3
    train = _train(epochs=epochs, grad_accum=1, lr=1e-2, schedule="cosine_epoch")
    total = total_steps(train, n_batches)
    assert total == epochs * steps_per_epoch(train, n_batches) == 15
    w = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([w], lr=1e-2, weight_decay=3e-4)
    sched = build_schedule(opt, train, total)
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    ours = _lrs(opt, sched, total)
    after = opt.param_groups[0]["lr"]

    w2 = torch.nn.Parameter(torch.zeros(1))
    ref_opt = torch.optim.AdamW([w2], lr=1e-2, weight_decay=3e-4)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=epochs)
    theirs = []
    for _ in range(epochs):
        for _ in range(n_batches):
            theirs.append(ref_opt.param_groups[0]["lr"])
            ref_opt.step()
        ref.step()
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    # constant within an epoch; the last epoch still trains at a positive lr ...
    for e in range(epochs):
        assert len(set(ours[3 * e:3 * e + 3])) == 1
    assert ours[0] == 1e-2
    assert ours[-1] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 4 / 5)))
    assert min(ours) > 0
    # ... and 0 is reached only at epoch 5, after training
    assert after == 0.0
    assert ref_opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)


def test_cosine_epoch_factor_known_values_and_min_lr_ignored() -> None:
    assert [epoch_cosine_factor(k, 2, 2) for k in range(6)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.5, 0.0, 0.0])
    assert epoch_cosine_factor(100, 2, 2) == 0.0           # capped at T_max: stays 0
    with pytest.raises(ValueError):
        epoch_cosine_factor(0, 0, 2)
    # min_lr (1e-6 here) is not a floor: the reference's eta_min is 0
    train = _train(epochs=2, grad_accum=1, schedule="cosine_epoch")
    w = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([w], lr=1e-4, weight_decay=0.0)
    sched = build_schedule(opt, train, total_steps(train, 3))
    assert _lrs(opt, sched, 6) == pytest.approx([1e-4] * 3 + [0.5e-4] * 3)
    assert opt.param_groups[0]["lr"] == 0.0


def test_cosine_epoch_with_accumulation_counts_optimiser_steps_per_epoch() -> None:
    train = _train(epochs=4, grad_accum=4, schedule="cosine_epoch")   # 10 batches: 3 steps
    total = total_steps(train, 10)
    assert total == 12
    w = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([w], lr=1e-4, weight_decay=0.0)
    lrs = _lrs(opt, build_schedule(opt, train, total), total)
    expected = [1e-4 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4) for _ in range(3)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_cosine_epoch_resumes_exactly_from_its_state_dict() -> None:
    train = _train(epochs=8, grad_accum=2, lr=1e-2, schedule="cosine_epoch")
    total = total_steps(train, 5)                      # 8 epochs x 3 steps
    assert total == 24

    def fresh() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        w = torch.nn.Parameter(torch.zeros(1))
        opt = build_optimizer([w], lr=1e-2, weight_decay=3e-4)
        return opt, build_schedule(opt, train, total)

    opt, sched = fresh()
    straight = _lrs(opt, sched, total)
    opt, sched = fresh()
    first = _lrs(opt, sched, 13)                       # stops inside epoch 4
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    assert state["scheduler"]["lr_lambdas"] == [None]   # only the step count is kept
    opt, sched = fresh()
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    assert first + _lrs(opt, sched, total - 13) == straight


def test_cosine_epoch_needs_epochs_and_no_warmup() -> None:
    with pytest.raises(ValueError, match=r"^train\.schedule: cosine_epoch"):
        check_train_block(_train(schedule="cosine_epoch", steps=100), "train")
    with pytest.raises(ValueError, match=r"^train\.warmup_steps: "):
        check_train_block(_train(schedule="cosine_epoch", warmup_steps=5), "train")
    check_train_block(_train(schedule="cosine_epoch"), "train")
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="multiple of train.epochs"):
        build_schedule(build_optimizer([w], lr=1e-4, weight_decay=0.0),
                       _train(epochs=4, schedule="cosine_epoch"), 10)
