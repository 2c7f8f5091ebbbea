"""AdamW and the learning-rate schedules of a run, over optimiser steps.

A run is sized either by epochs or by optimiser steps (the ``train`` block's ``steps``):

- ``steps: null`` (default): the loop runs ``epochs`` epochs, each of
  :func:`steps_per_epoch` optimiser steps (one step per ``grad_accum`` batches, the last
  window of an epoch possibly shorter). TopoLoRA-SAM's protocol (50 epochs).
- ``steps: N``: the loop runs :func:`epochs_needed` epochs and stops after exactly ``N``
  optimiser steps; the last epoch may be partial (:func:`batches_in_epoch` says how many
  of its batches to consume). ``epochs`` is then ignored. SAM2LoRA's protocol.

and follows one of three schedules (``schedule``), all LambdaLR multipliers of ``lr``, so a
scheduler's ``state_dict`` is only its step count and resumes exactly from ``last.pt``:

- ``cosine`` (default): linear warmup over ``warmup_steps``, then one cosine decay from
  ``lr`` to ``min_lr`` over the rest of the run (:func:`cosine_factor`).
- ``cosine_restarts``: linear warmup, then cosine annealing with warm restarts
  (:func:`restart_factor`): the first cycle lasts ``restart_steps`` optimiser steps, each
  next one ``restart_mult`` times longer, every cycle decays from ``lr`` to ``min_lr`` and
  the lr jumps back to ``lr`` at each restart. After the warmup it equals
  ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0=restart_steps,
  T_mult=restart_mult, eta_min=min_lr)`` stepped once per optimiser step.
- ``cosine_epoch``: TopoLoRA-SAM's code, ``torch.optim.lr_scheduler.CosineAnnealingLR(
  T_max=epochs, eta_min=0)`` stepped once per *epoch*: the lr is constant within an epoch,
  ``lr * (1 + cos(pi * e / epochs)) / 2`` in epoch ``e`` (0-based), so the last epoch still
  trains at a positive lr and 0 is reached only after the run (:func:`epoch_cosine_factor`,
  still a per-optimiser-step LambdaLR factor with ``e = step // steps_per_epoch``). As the
  reference, it decays to 0 whatever ``min_lr`` says (``min_lr`` is ignored) and has no
  warmup (``warmup_steps`` must be 0); it is defined by epochs, so ``steps`` must be null.

How the loop uses them (one ``sched.step()`` after every ``opt.step()``)::

    n = len(loader)
    total = total_steps(train, n)
    sched = build_schedule(opt, train, total)
    for epoch in range(start, epochs_needed(train, n)):
        limit = batches_in_epoch(train, n, epoch)  # n except in a partial last epoch
        ...  # consume the first `limit` batches, stepping every grad_accum and at `limit`

Stopping the pass once ``total - sched.last_epoch`` optimiser steps are taken (the
LambdaLR step count of a fresh or resumed scheduler) ends on the same step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

#: The ``train`` keys of this module that may be absent, with the value an absent key means
#: (today's behaviour: sized by epochs, one cosine decay).
TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": None,
    "schedule": "cosine",
    "restart_steps": 1000,
    "restart_mult": 1,
}
#: Values of ``train.schedule``.
SCHEDULES = ("cosine", "cosine_restarts", "cosine_epoch")


def build_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def cosine_factor(step: int, total_steps: int, warmup_steps: int, floor: float) -> float:
    """Multiplier of the base lr at ``step``: linear warmup, then cosine decay to ``floor``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def restart_factor(step: int, warmup: int, t0: int, mult: int, floor: float) -> float:
    """Multiplier of the base lr at ``step``: linear warmup, then cosine warm restarts.

    Steps ``0 .. warmup-1`` ramp linearly to 1 (as :func:`cosine_factor`). From step
    ``warmup`` on, ``s = step - warmup`` falls in cycle ``i`` (0-based) of length
    ``t0 * mult**i``; at position ``t`` of that cycle the factor is
    ``floor + (1 - floor) * (1 + cos(pi * t / T_i)) / 2``, i.e. 1 at each cycle's first step,
    approaching ``floor`` at its end. Integer arithmetic locates the cycle, so restarts fall
    exactly on the step torch's ``CosineAnnealingWarmRestarts`` restarts at.

    Args:
        step: optimiser steps taken so far (the LambdaLR step count), >= 0.
        warmup: linear-warmup steps, >= 0.
        t0: steps in the first cycle after the warmup, >= 1.
        mult: growth of each next cycle's length, integer >= 1 (1: equal cycles).
        floor: ``min_lr / lr``, the factor every cycle decays towards.
    """
    if step < 0 or warmup < 0 or t0 < 1 or mult < 1:
        raise ValueError(f"restart_factor: bad arguments step={step}, warmup={warmup}, "
                         f"t0={t0}, mult={mult}")
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    t_cur, t_i = step - warmup, t0
    if mult == 1:
        t_cur %= t0
    else:
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= mult
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))


def epoch_cosine_factor(step: int, per_epoch: int, epochs: int) -> float:
    """Multiplier of the base lr at ``step`` under a per-epoch cosine (``cosine_epoch``).

    ``(1 + cos(pi * e / epochs)) / 2`` with ``e = step // per_epoch`` the epoch the step
    falls in: torch's ``CosineAnnealingLR(T_max=epochs, eta_min=0)`` stepped once per epoch
    (its closed form). 1 through epoch 0, positive through the last epoch ``epochs - 1``,
    0 from step ``epochs * per_epoch`` on (the epoch is capped at ``epochs``, so it stays 0
    rather than rising again as torch's would past ``T_max``).

    Args:
        step: optimiser steps taken so far (the LambdaLR step count), >= 0.
        per_epoch: optimiser steps in one epoch (:func:`steps_per_epoch`), >= 1.
        epochs: epochs of the run, ``T_max``, >= 1.
    """
    if step < 0 or per_epoch < 1 or epochs < 1:
        raise ValueError(f"epoch_cosine_factor: bad arguments step={step}, "
                         f"per_epoch={per_epoch}, epochs={epochs}")
    epoch = min(step // per_epoch, epochs)
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    lr: float = 1e-4,
    min_lr: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine schedule from ``lr`` to ``min_lr`` over ``total_steps`` optimiser steps."""
    floor = min_lr / lr if lr > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_factor(step, total_steps, warmup_steps, floor)
    )


def _setting(train: Mapping[str, Any], key: str) -> Any:
    return train[key] if key in train else TRAIN_DEFAULTS[key]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_train_block(train: Mapping[str, Any], where: str) -> None:
    """Check the settings that size a run and shape its schedule; ValueError naming the key.

    Checks ``steps`` (null or an integer >= 1), ``schedule`` (one of :data:`SCHEDULES`),
    ``restart_steps`` and ``restart_mult`` (integers >= 1), each defaulting as in
    :data:`TRAIN_DEFAULTS` when absent, and the keys they combine with: ``epochs`` (an
    integer >= 1, required unless ``steps`` is set), ``grad_accum`` (integer >= 1), ``lr``
    (> 0), ``min_lr`` (0 <= min_lr <= lr) and ``warmup_steps`` (integer >= 0, and below
    ``steps`` when that is set, or the run would end inside its warmup). ``cosine_epoch``
    further needs ``steps`` null (it is defined by epochs; the error names ``schedule``)
    and ``warmup_steps`` 0 (it has no warmup). Other keys of the block are left to the
    params schema.

    Args:
        train: a resolved ``train`` block (global block merged with any run overrides).
        where: the block's name in messages, e.g. ``"train"`` or ``"params.yaml: train"``;
            errors read ``f"{where}.<key>: ..."``.
    """
    def bad(key: str, why: str) -> ValueError:
        value = train.get(key, TRAIN_DEFAULTS.get(key))
        return ValueError(f"{where}.{key}: {why} (got {value!r})")

    def need_int(key: str, minimum: int) -> None:
        value = _setting(train, key) if key in TRAIN_DEFAULTS else train[key]
        if not _is_int(value) or value < minimum:
            raise bad(key, f"must be an integer >= {minimum}")

    for key in ("grad_accum", "lr", "min_lr", "warmup_steps"):
        if key not in train:
            raise ValueError(f"{where}.{key}: missing")
    steps = _setting(train, "steps")
    if steps is not None:
        need_int("steps", 1)
    elif "epochs" not in train:
        raise ValueError(f"{where}.epochs: missing (needed when steps is null)")
    else:
        need_int("epochs", 1)
    need_int("grad_accum", 1)
    need_int("warmup_steps", 0)
    if steps is not None and train["warmup_steps"] >= steps:
        raise bad("warmup_steps", f"must be below steps ({steps}): the run would end "
                                  "inside its warmup")
    lr, min_lr = train["lr"], train["min_lr"]
    if not _is_number(lr) or not lr > 0:
        raise bad("lr", "must be a number > 0")
    if not _is_number(min_lr) or min_lr < 0:
        raise bad("min_lr", "must be a number >= 0")
    if min_lr > lr:
        raise bad("min_lr", f"must not exceed lr ({lr}): the schedule decays to it")
    schedule = _setting(train, "schedule")
    if schedule not in SCHEDULES:
        raise bad("schedule", f"must be one of {', '.join(SCHEDULES)}")
    if schedule == "cosine_epoch":
        if steps is not None:
            raise ValueError(f"{where}.schedule: cosine_epoch is defined by epochs, so "
                             f"steps must be null (got steps={steps!r})")
        if train["warmup_steps"] != 0:
            raise bad("warmup_steps", "must be 0 with schedule cosine_epoch (it has no "
                                      "warmup, as TopoLoRA-SAM's CosineAnnealingLR)")
    need_int("restart_steps", 1)
    need_int("restart_mult", 1)


def steps_per_epoch(train: Mapping[str, Any], n_batches_per_epoch: int) -> int:
    """Optimiser steps in one full epoch: ``ceil(n_batches_per_epoch / grad_accum)``.

    A final window shorter than ``grad_accum`` batches still takes a step.
    """
    if not _is_int(n_batches_per_epoch) or n_batches_per_epoch < 1:
        raise ValueError(f"n_batches_per_epoch must be an integer >= 1 "
                         f"(got {n_batches_per_epoch!r}): an empty training set")
    accum = train["grad_accum"]
    if not _is_int(accum) or accum < 1:
        raise ValueError(f"train.grad_accum: must be an integer >= 1 (got {accum!r})")
    return math.ceil(n_batches_per_epoch / accum)


def total_steps(train: Mapping[str, Any], n_batches_per_epoch: int) -> int:
    """Optimiser steps of the whole run.

    ``steps`` when set, else ``epochs * ceil(n_batches_per_epoch / grad_accum)``. This is
    the length the ``cosine`` schedule decays over.
    """
    check_train_block(train, "train")
    steps = _setting(train, "steps")
    if steps is not None:
        steps_per_epoch(train, n_batches_per_epoch)  # an empty loader is still an error
        return steps
    return train["epochs"] * steps_per_epoch(train, n_batches_per_epoch)


def epochs_needed(train: Mapping[str, Any], n_batches_per_epoch: int) -> int:
    """Epochs the loop iterates: ``epochs``, or ``ceil(steps / steps_per_epoch)`` when
    ``steps`` is set (then ``epochs`` is ignored and the last epoch may be partial)."""
    check_train_block(train, "train")
    per_epoch = steps_per_epoch(train, n_batches_per_epoch)
    steps = _setting(train, "steps")
    if steps is None:
        return train["epochs"]
    return math.ceil(steps / per_epoch)


def batches_in_epoch(train: Mapping[str, Any], n_batches_per_epoch: int, epoch: int) -> int:
    """Batches the loop consumes in ``epoch`` (0-based) so the run ends on its last step.

    ``n_batches_per_epoch`` in every epoch of an epoch-sized run and in every full epoch
    of a step-sized one; in a step-sized run's partial last epoch, ``remaining * grad_accum``
    (fewer than ``n_batches_per_epoch``), whose last batch closes a full accumulation
    window, so stopping after it leaves exactly ``steps`` optimiser steps. 0 for an epoch
    at or past :func:`epochs_needed`.
    """
    if not _is_int(epoch) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0 (got {epoch!r})")
    if epoch >= epochs_needed(train, n_batches_per_epoch):
        return 0
    steps = _setting(train, "steps")
    if steps is None:
        return n_batches_per_epoch
    remaining = steps - epoch * steps_per_epoch(train, n_batches_per_epoch)
    return min(n_batches_per_epoch, remaining * train["grad_accum"])


def build_schedule(
    optimizer: torch.optim.Optimizer, train: Mapping[str, Any], total: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The run's lr schedule, a LambdaLR stepped once per optimiser step.

    ``schedule: cosine``: warmup over ``warmup_steps``, then cosine from ``train["lr"]`` to
    ``min_lr`` over ``total`` steps (the same schedule as :func:`build_scheduler`).
    ``schedule: cosine_restarts``: warmup, then :func:`restart_factor` with
    ``t0 = restart_steps``, ``mult = restart_mult``, floor ``min_lr``; it does not use
    ``total`` (its cycles run on for as long as the loop steps), which is still checked.
    ``schedule: cosine_epoch``: :func:`epoch_cosine_factor` with ``per_epoch = total //
    epochs`` (an epoch-sized run's ``total`` is ``epochs * steps_per_epoch``; a ``total``
    that is not a multiple of ``epochs`` is an error); ``min_lr`` is not used.

    The factor is a plain function, so ``state_dict()`` holds the step count only (no
    lambda state) and ``load_state_dict`` of a checkpoint resumes the lr exactly.

    Args:
        optimizer: built with ``lr=train["lr"]`` (the factor multiplies each group's
            initial lr).
        train: the run's ``train`` block (checked by :func:`check_train_block`).
        total: the run's optimiser steps, :func:`total_steps`.
    """
    check_train_block(train, "train")
    if not _is_int(total) or total < 1:
        raise ValueError(f"build_schedule: total must be an integer >= 1 (got {total!r})")
    lr, warmup = train["lr"], train["warmup_steps"]
    floor = train["min_lr"] / lr
    schedule = _setting(train, "schedule")
    if schedule == "cosine":
        return build_scheduler(optimizer, total, warmup, lr, train["min_lr"])
    if schedule == "cosine_epoch":
        epochs = train["epochs"]
        if total % epochs:
            raise ValueError(f"build_schedule: total ({total}) must be a multiple of "
                             f"train.epochs ({epochs}) for schedule cosine_epoch")
        per_epoch = total // epochs
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: epoch_cosine_factor(step, per_epoch, epochs)
        )
    t0, mult = _setting(train, "restart_steps"), _setting(train, "restart_mult")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: restart_factor(step, warmup, t0, mult, floor)
    )
