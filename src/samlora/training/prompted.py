"""A method's prompt settings, and the one model step shared by training and validation.

``methods.<name>.prompts`` in params.yaml is optional; absent or null means a prompt-free
method. Its keys: ``train_points`` (positive points per training image, 0 = train
prompt-free), ``eval_modes`` (evaluation modes, see :data:`samlora.models.prompts.EVAL_MODES`;
``none`` must be among them), ``eval_seed`` (seeds the evaluation prompts of each test case)
and ``erode_radius`` (disk radius in px of the erosion positives are drawn from),
``sampling`` (``uniform`` or SAM2LoRA's ``density`` region) and ``negatives`` (false: no mode
draws a negative point, as SAM2LoRA's code, whose ``num_neg_points`` defaults to 0, so that
its "5pt+1neg" mode is 5 positives alone). Two keys shape the *training* prompts only
(:func:`training_prompts`; evaluation prompts are drawn as before whatever they say):
``replacement`` (true: positives drawn with replacement, as SAM2LoRA's code draws its 200;
default false) and ``erode`` (``disk``: by a disk of ``erode_radius``, default; ``square2``:
by a 2×2 square, as SAM2LoRA's ``cv2.erode(mask, np.ones((2, 2)))``, see
:func:`samlora.models.prompts.erode_square2`).
"""

from __future__ import annotations

import contextlib

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from samlora.models.prompts import (
    ERODES,
    EVAL_MODES,
    Prompts,
    PromptSpec,
    case_rng,
    eval_spec,
    prompts_to,
    sample_prompts,
)

#: Separates the training-prompt random stream from other uses of the run seed.
TRAIN_STREAM = 0x5A4D
VAL_STREAM = 0x5A4E

PromptFn = Callable[[Mapping[str, Any]], Prompts | None]


@dataclass(frozen=True)
class PromptSettings:
    """A method's ``prompts`` block with defaults filled in (see the module docstring)."""

    train_points: int = 0
    eval_modes: tuple[str, ...] = ("none",)
    eval_seed: int = 0
    erode_radius: int = 1
    sampling: str = "uniform"  # or "density" (SAM2LoRA's code; models.prompts)
    negatives: bool = True  # False: modes draw no negative point (SAM2LoRA's code: 5pt1neg = 5pt)
    replacement: bool = False  # training positives with replacement (SAM2LoRA's code)
    erode: str = "disk"  # training erosion: disk(erode_radius), or "square2" (SAM2LoRA's code)


def prompt_settings(method_cfg: Mapping[str, Any]) -> PromptSettings:
    """Read ``method_cfg["prompts"]``; a missing or null block gives prompt-free settings.

    Raises:
        ValueError: an unknown key or mode, a negative count, or ``none`` missing from
            ``eval_modes`` (prompt-free results keep their place in the results layout).
    """
    block = method_cfg["prompts"] if "prompts" in method_cfg else None
    if not block:
        return PromptSettings()
    unknown = sorted(set(block) - set(PromptSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"method prompts: unknown key(s) {unknown}; known: "
                         f"{sorted(PromptSettings.__dataclass_fields__)}")
    defaults = PromptSettings()
    s = PromptSettings(
        train_points=int(block.get("train_points", defaults.train_points)),
        eval_modes=tuple(str(m) for m in block.get("eval_modes", defaults.eval_modes)),
        eval_seed=int(block.get("eval_seed", defaults.eval_seed)),
        erode_radius=int(block.get("erode_radius", defaults.erode_radius)),
        sampling=str(block.get("sampling", defaults.sampling)),
        negatives=_flag(block.get("negatives", defaults.negatives), "negatives"),
        replacement=_flag(block.get("replacement", defaults.replacement), "replacement"),
        erode=block.get("erode", defaults.erode),
    )
    if s.erode not in ERODES:
        raise ValueError(f"method prompts.erode: {s.erode!r} is not one of {list(ERODES)}")
    bad = [m for m in s.eval_modes if m not in EVAL_MODES]
    if bad:
        raise ValueError(f"method prompts.eval_modes: unknown mode(s) {bad}; "
                         f"known: {list(EVAL_MODES)}")
    if "none" not in s.eval_modes or len(set(s.eval_modes)) != len(s.eval_modes):
        raise ValueError(f"method prompts.eval_modes must list 'none' and no mode twice, "
                         f"got {list(s.eval_modes)}")
    if s.train_points < 0 or s.erode_radius < 0:
        raise ValueError(f"method prompts: train_points and erode_radius must be >= 0, got "
                         f"{s.train_points} and {s.erode_radius}")
    return s


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"method prompts.{key} must be true or false, got {value!r}")
    return value


def training_prompts(settings: PromptSettings, seed: int, epoch: int | None) -> PromptFn | None:
    """Per-batch sampler of training prompts, or None for a prompt-free method.

    The generator is seeded by (run seed, epoch), so a run resumed at an epoch boundary
    draws the same prompts as one that never stopped; ``epoch=None`` gives the validation
    stream (the same prompts at every validation).

    Returns:
        ``fn(batch) -> prompts`` drawing ``train_points`` positives per image from
        ``batch["mask"]``, image after image from one generator, with the settings'
        ``erode_radius``, ``sampling``, ``replacement`` and ``erode``.
    """
    if settings.train_points == 0:
        return None
    key = [int(seed), TRAIN_STREAM, int(epoch)] if epoch is not None else [int(seed), VAL_STREAM]
    rng = np.random.default_rng(key)
    spec = PromptSpec(positive=settings.train_points)

    def sample(batch: Mapping[str, Any]) -> Prompts | None:
        return sample_prompts(batch["mask"], spec, rng, erode_radius=settings.erode_radius,
                              sampling=settings.sampling, replacement=settings.replacement,
                              erode=settings.erode)

    return sample


def model_step(model: torch.nn.Module, batch: Mapping[str, Any], loss_fn: Any,
               device: torch.device, prompt_fn: PromptFn | None = None,
               autocast: Any = None, cache: Any = None
               ) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """Forward one batch (with prompts when ``prompt_fn`` is given) and compute its loss.

    The model's ``forward_with_iou`` is used when there are prompts or the loss weighs the
    IoU-prediction term; otherwise its plain ``forward`` (so baselines need nothing else).
    ``autocast`` (a context manager factory, :meth:`samlora.training.precision.Precision.
    autocast`) wraps the forward pass; the loss is computed in float32 outside it.
    ``cache`` (an :class:`~samlora.training.embed_cache.EmbeddingCache`) supplies the
    frozen encoder's outputs by the batch's ``digest`` and ``view``.

    Returns:
        (loss with gradient, ``{term: value}``, ``B×1×S×S`` logits).
    """
    images, target = batch["image"].to(device), batch["mask"].to(device)
    prompts = prompts_to(prompt_fn(batch), device) if prompt_fn is not None else None
    with autocast() if autocast is not None else contextlib.nullcontext():
        kwargs = {} if cache is None else {
            "encoded": cache.encodings(model, images, batch["digest"], batch["view"])}
        if prompts is not None or getattr(loss_fn, "needs_iou", False):
            logits, iou = model.forward_with_iou(images, prompts, **kwargs)
        else:
            logits, iou = model(images, **kwargs), None
    logits = logits.float()
    if iou is not None:
        loss, terms = loss_fn(logits, target, iou.float())
    else:
        loss, terms = loss_fn(logits, target)
    return loss, terms, logits


def evaluation_prompts(batch: Mapping[str, Any], mode: str,
                       settings: PromptSettings) -> Prompts | None:
    """Prompts of an evaluation mode for a test batch, or None for mode ``none``.

    Drawn from ``batch["mask"]`` (negatives inside ``batch["fov"]``) with one generator per
    case, seeded by ``settings.eval_seed`` and the case id: the prompts of a case do not
    depend on the batch, the run or the method.
    """
    spec = eval_spec(mode)
    if not settings.negatives:
        spec = dataclasses.replace(spec, negative=0)
    if spec.empty:
        return None
    rngs = [case_rng(settings.eval_seed, case) for case in batch["case"]]
    return sample_prompts(batch["mask"], spec, rngs, fovs=batch.get("fov"),
                          erode_radius=settings.erode_radius, sampling=settings.sampling)
