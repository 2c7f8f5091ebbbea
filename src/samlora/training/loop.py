"""The training loop: AdamW + cosine, gradient accumulation and clipping, resumable epochs."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from samlora.config import save_config
from samlora.study.runspec import RunSpec
from samlora.training.data import (
    check_prepared,
    data_digest_of,
    eval_loader,
    run_datasets,
    train_loader,
)
from samlora.training.identity import run_hash
from samlora.training.manifest import build_manifest
from samlora.training.optim import build_optimizer, build_schedule, epochs_needed, total_steps
from samlora.training.precision import Precision
from samlora.training.progress import progress
from samlora.training.prompted import PromptFn, model_step, prompt_settings, training_prompts
from samlora.training.select import Selection, validation_due
from samlora.training.state import (
    LAST,
    WEIGHTS,
    ResumeStateError,
    frozen_fingerprint,
    load_resume_state,
    save_resume_state,
    save_weights,
)
from samlora.utils import allocator

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def run_config(cfg: Any, method: str, train_set: str, seed: int) -> dict[str, Any]:
    """Everything that defines an ad-hoc run of ``method`` on ``train_set``, as saved in its
    config.yaml (see :meth:`samlora.study.runspec.RunSpec.config`)."""
    from samlora.study.studies import single_run

    return single_run(cfg, method, train_set, seed).config()


def build_run_model(rc: dict[str, Any], models_dir: Path) -> torch.nn.Module:
    """Build the run's model; the seed fixes random-weight backbones for train and predict."""
    from samlora.models.registry import build_model

    torch.manual_seed(rc["seed"])
    return build_model(rc["method_cfg"], rc["backbone_cfg"], models_dir=models_dir)


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader, loss_fn: Any,
             device: torch.device, prompt_fn: PromptFn | None = None,
             precision: Precision | None = None, cache: Any = None) -> dict[str, float]:
    """Mean loss and FOV-restricted Dice (threshold 0.5) over an un-augmented loader.

    ``prompt_fn`` (see :func:`samlora.training.prompted.training_prompts`) gives the
    prompts of each batch for a prompted method; None validates prompt-free. The forward
    pass runs in the training ``precision`` (None: fp32); ``cache`` serves a frozen
    encoder's outputs (:mod:`samlora.training.embed_cache`).
    """
    model.eval()
    losses, dices = [], []
    autocast = precision.autocast if precision is not None else None
    for batch in loader:
        loss, _, logits = model_step(model, batch, loss_fn, device, prompt_fn, autocast, cache)
        target, fov = batch["mask"].to(device), batch["fov"].to(device)
        losses.append(loss.item())
        pred = (logits > 0).float() * fov
        gt = target * fov
        inter = (pred * gt).sum(dim=(1, 2, 3))
        denom = pred.sum(dim=(1, 2, 3)) + gt.sum(dim=(1, 2, 3))
        dices.extend(torch.where(denom > 0, 2 * inter / denom.clamp_min(1e-9),
                                 torch.ones_like(denom)).tolist())
    return {"val_loss": float(np.mean(losses)), "val_dice": float(np.mean(dices))}


def train_one_epoch(model: torch.nn.Module, loader: DataLoader, loss_fn: Any,
                    opt: torch.optim.Optimizer, sched: Any, rc: dict[str, Any],
                    device: torch.device, desc: str, prompt_fn: PromptFn | None = None,
                    max_steps: int | None = None,
                    on_step: Callable[[], None] | None = None,
                    precision: Precision | None = None, cache: Any = None) -> float:
    """One pass over ``loader`` with accumulation every ``grad_accum`` batches; mean loss.

    ``prompt_fn`` samples each batch's training prompts (None: prompt-free). A step-based
    schedule stops the pass after ``max_steps`` optimiser steps (the run's last epoch).
    ``on_step`` is called after every optimiser step (step-wise validation).
    ``precision`` autocasts the forward pass and scales the loss (None: fp32); ``cache``
    serves a frozen encoder's outputs.
    """
    precision = precision or Precision("fp32", device)
    model.train()
    accum, clip = rc["train"]["grad_accum"], rc["train"]["grad_clip"]
    params = [p for p in model.parameters() if p.requires_grad]
    total, n, seen, steps = 0.0, len(loader), 0, 0
    opt.zero_grad(set_to_none=True)
    for i, batch in enumerate(progress(loader, n, desc, rc["train"]["log_every"])):
        loss, _, _ = model_step(model, batch, loss_fn, device, prompt_fn, precision.autocast,
                                cache)
        precision.backward(loss / accum)
        total, seen = total + loss.item(), seen + 1
        if (i + 1) % accum == 0 or i + 1 == n:
            precision.step(opt, params, clip)
            sched.step()
            opt.zero_grad(set_to_none=True)
            steps += 1
            if on_step is not None:
                on_step()
            if max_steps is not None and steps >= max_steps:
                break
    return total / max(seen, 1)


def train_run(cfg: Any, method: str, train_set: str, seed: int, run_dir: Path,
              models_dir: Path = Path("models/pretrained")) -> dict[str, Any]:
    """Train params.yaml's ``method`` on one dataset with one seed (an ad-hoc run); see
    :func:`train_spec`."""
    from samlora.study.studies import single_run

    return train_spec(single_run(cfg, method, train_set, seed), run_dir, models_dir)


def train_spec(spec: RunSpec, run_dir: Path,
               models_dir: Path = Path("models/pretrained")) -> dict[str, Any]:
    """Train one run; resume from ``run_dir/last.pt`` when it holds this very run.

    Writes ``run_dir/dvclive/`` (metrics per epoch) and ``run_dir/last.pt`` after every
    epoch, and on success ``run_dir/config.yaml`` then ``run_dir/adapter.safetensors``.
    ``last.pt`` is resumed only when it holds this run's hash (see
    :mod:`samlora.training.identity`); any other run's checkpoint is ignored.

    Returns:
        The final history row (epoch, train_loss, val_loss, val_dice, lr).
    """
    from samlora.losses import build_loss
    from samlora.models.segmenter import count_parameters, trainable_state_dict

    run_dir = Path(run_dir)
    rc = spec.config()
    train = spec.train
    check_prepared(spec, needed=_may_train(rc["method_cfg"]))
    rc["run_hash"] = run_hash(rc, data_digest_of(spec))
    device = pick_device(train["device"])
    precision = Precision(train.get("precision", "fp32"), device)  # a bad value fails here
    seed_everything(spec.seed)
    model = build_run_model(rc, models_dir)
    fingerprint = frozen_fingerprint(model)
    counts = count_parameters(model)
    log.info("run %s (%s): %s trainable of %s (%.2f %%)", spec.name, rc["run_hash"][:12],
             f"{counts['trainable']:,}", f"{counts['total']:,}", counts["trainable_pct"])
    if counts["trainable"] == 0:  # zero-shot: nothing to train, an empty weights file
        log.info("method %s has no trainable parameters: writing %s without training",
                 spec.method, WEIGHTS)
        _finish(run_dir, rc, {}, build_manifest(model, rc, fingerprint, epochs=0))
        return {}
    check_prepared(spec, needed=True)
    model.to(device)
    train_ds, val_ds = run_datasets(spec, model.img_size)
    cache = run_cache(model, spec, precision, models_dir, training=True)
    loss_fn = build_loss(rc["method_cfg"]["loss"])
    prompting = prompt_settings(rc["method_cfg"])
    n_batches = math.ceil(len(train_ds) / train["batch_size"])
    epochs, total = epochs_needed(train, n_batches), total_steps(train, n_batches)
    opt = build_optimizer(model.parameters(), train["lr"], train["weight_decay"])
    sched = build_schedule(opt, train, total)
    start, history, kept = _maybe_resume(run_dir, model, opt, sched, rc["run_hash"],
                                         fingerprint, precision)
    selection = Selection.from_state(train.get("select", "val_dice"), kept)
    live = _live(run_dir, resume=start > 0)
    every_steps = train.get("val_every_steps")

    def validate_now() -> dict[str, float]:
        return validate(model, eval_loader(val_ds, spec), loss_fn, device,
                        training_prompts(prompting, spec.seed, None), precision, cache)

    for epoch in range(start, epochs):
        train_ds.set_epoch(epoch)
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
        checks: list[dict[str, float]] = []
        on_step = None
        if every_steps and val_ds is not None:
            on_step = _step_validation(epoch, int(every_steps), total, sched, selection,
                                       validate_now, model, checks)
        row["train_loss"] = train_one_epoch(model, train_loader(train_ds, spec, epoch), loss_fn,
                                            opt, sched, rc, device,
                                            f"epoch {epoch + 1}/{epochs}",
                                            training_prompts(prompting, spec.seed, epoch),
                                            max_steps=total - sched.last_epoch, on_step=on_step,
                                            precision=precision, cache=cache)
        if checks:  # the epoch's row carries its last step-wise validation, and all of them
            row.update({k: v for k, v in checks[-1].items() if k != "epoch"})
            row["checks"] = checks
        elif (not every_steps and val_ds is not None
              and validation_due(epoch, epochs, train.get("val_every", 1))):
            row.update(validate_now())
        # step-wise validations were offered as they came; the epoch row decides only
        # for the rules that do not read validation (train_loss, last)
        offered = row if not every_steps or not selection.reads_validation else {}
        if offered and selection.offer(offered, lambda: trainable_state_dict(model)):
            log.info("epoch %d is the best so far by %s", epoch + 1, selection.by)
        if cache is not None:
            log.info("embedding cache: %d read, %d encoded (hit rate %.0f %%)", cache.hits,
                     cache.misses, 100 * cache.hit_rate())
        history.append(row)
        log.info("epoch %d/%d: %s", epoch + 1, epochs,
                 ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                           if k not in ("epoch", "checks")))
        _log_live(live, row)
        save_resume_state(run_dir, {
            "epoch": epoch + 1, "model": trainable_state_dict(model),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(), "history": history,
            "fingerprint": fingerprint, "run_hash": rc["run_hash"],
            "selection": selection.to_state(), "precision": precision.state_dict(),
        })
    if live is not None:
        live.end()
    weights = selection.final(trainable_state_dict(model), epochs)
    log.info("keeping the weights of epoch %d (train.select: %s)", selection.epoch,
             selection.by)
    _finish(run_dir, rc, weights,
            {**build_manifest(model, rc, fingerprint, epochs), **selection.manifest(),
             "precision": precision.name, "allocator": allocator.current()})
    return history[-1] if history else {}


def run_cache(model: torch.nn.Module, spec: RunSpec, precision: Precision | None,
              models_dir: Path, training: bool) -> Any:
    """The embedding cache of ``spec``'s model (None where it cannot serve; see
    :mod:`samlora.training.embed_cache`), under ``models_dir``'s sibling ``embeddings``:
    for training (its inputs are augmented as ``train.augment`` says) or prediction (not)."""
    from samlora.training.embed_cache import cache_for

    train = spec.train
    identity = {"backbone": spec.backbone_cfg, "img_size": int(model.img_size),
                "precision": precision.name if precision is not None else "fp32"}
    return cache_for(model, train["augment"] if training else None,
                     str(train.get("embedding_cache", "auto")), identity,
                     Path(models_dir).parent / "embeddings",
                     "training" if training else "prediction")


def _step_validation(epoch: int, every: int, total: int, sched: Any, selection: Selection,
                     validate_now: Callable[[], dict[str, float]], model: torch.nn.Module,
                     checks: list[dict[str, float]]) -> Callable[[], None]:
    """The ``on_step`` of ``train.val_every_steps``: validate after every ``every``-th
    optimiser step of the run (and the last), offer each to ``selection``, record it."""
    from samlora.models.segmenter import trainable_state_dict

    def on_step() -> None:
        step = int(sched.last_epoch)  # optimiser steps taken by the run so far
        if step % every and step != total:
            return
        check = {"epoch": epoch + 1, "step": step, **validate_now()}
        model.train()
        checks.append(check)
        log.info("step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in check.items()
                                                 if k.startswith("val_")))
        if selection.offer(check, lambda: trainable_state_dict(model)):
            log.info("step %d is the best so far by %s", step, selection.by)

    return on_step


def _may_train(method_cfg: dict[str, Any]) -> bool:
    """False only for a method that visibly trains nothing (no LoRA, no adapter, frozen
    encoder and decoder): zero-shot needs no prepared training data."""
    return bool(method_cfg.get("lora") or method_cfg.get("adapter")
                or method_cfg.get("decoder", "train") != "freeze"
                or method_cfg.get("encoder", "freeze") != "freeze")


def _finish(run_dir: Path, rc: dict[str, Any], tensors: dict[str, torch.Tensor],
            manifest: dict[str, str]) -> None:
    """Write the run's outputs on success: its resolved config, then its weights.

    Both carry the run hash; the weights file comes last and marks the run complete, so
    a failure in between leaves a config that :func:`samlora.evaluation.predict.load_run`
    finds at odds with the weights, never a silent mix.
    """
    save_config(rc, run_dir / "config.yaml")
    save_weights(run_dir / WEIGHTS, tensors, {**manifest, "run_hash": rc["run_hash"]})


def _maybe_resume(run_dir: Path, model: torch.nn.Module, opt: Any, sched: Any,
                  run_id: str, fingerprint: str, precision: Precision | None = None
                  ) -> tuple[int, list[dict[str, float]], dict[str, Any] | None]:
    """Load ``run_dir/last.pt`` when it was written by this very run; else start at 0.

    A checkpoint of another run (a different run hash: an edited lr, epochs, method,
    backbone or training data; or other frozen base weights) is not used: the run starts
    afresh, says so, and overwrites it at the end of its first epoch.
    """
    from samlora.models.segmenter import load_trainable_state_dict

    state = load_resume_state(run_dir)
    if state is None:
        return 0, [], None
    path = run_dir / LAST
    if state.get("run_hash") != run_id or state.get("fingerprint") != fingerprint:
        saved = str(state.get("run_hash") or "none")[:12]
        log.warning("%s was written by a different run (run hash %s, this run %s): "
                    "starting afresh from epoch 0", path, saved, run_id[:12])
        return 0, [], None
    try:
        load_trainable_state_dict(model, state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if precision is not None:
            precision.load_state_dict(state.get("precision"))
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise ResumeStateError(f"{path}: cannot resume from it ({err}); delete it to restart "
                               "the run from scratch") from err
    log.info("resuming %s from epoch %d", run_dir, state["epoch"])
    return int(state["epoch"]), list(state["history"]), state.get("selection")


def _live(run_dir: Path, resume: bool) -> Any:
    try:
        from dvclive import Live
    except ImportError:  # dvclive is optional for library use
        return None
    return Live(dir=str(run_dir / "dvclive"), resume=resume, save_dvc_exp=False,
                dvcyaml=None, report=None)


def _log_live(live: Any, row: dict[str, float]) -> None:
    if live is None:
        return
    for key, value in row.items():
        if key not in ("epoch", "checks"):
            live.log_metric(key, value)
    live.next_step()
