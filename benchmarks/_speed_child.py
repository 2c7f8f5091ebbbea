"""One process of bench_speed.py: the plain loop and samlora's step, alternated.

Both sides train the same model (params.yaml's method, random weights, deep-copied so the
weights start equal) on the same batch:

- ``plain``: the obvious loop, ``loss = loss_fn(model(x), y); loss.backward();
  clip_grad_norm_; opt.step(); opt.zero_grad()`` with AdamW, fp32, the library's attention;
- ``samlora`` (plus levers): :func:`samlora.training.loop.train_one_epoch` on a one-batch
  loader, the step every run takes, on the library's model code plus the variant's levers
  (samlora's defaults are levers here: ``chunked`` for SAM ViT-B, ``tinyvit`` for LiteMedSAM).

Tokens of a variant (joined by ``+``): ``sdpa`` (``attention: sdpa``), ``bf16`` (autocast),
``tinyvit`` (LiteMedSAM's faster TinyViT), ``chunked`` (attention in bands of query rows,
recomputed in the backward pass: ``attention: chunked``), ``compile`` (``torch.compile`` of the model's
forward; ``first_call_s``, the first forward and backward, holds the compile time).
"""

from __future__ import annotations

import copy
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from _timing import peak_bytes

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
CPU = torch.device("cpu")


def setup(size: int, method_name: str, backbone_name: str | None):
    from samlora.config import load_config
    from samlora.losses import build_loss
    from samlora.models.registry import build_model

    cfg = load_config([REPO / "params.yaml"])
    method = dict(cfg.methods[method_name])
    backbone = dict(cfg.backbones[backbone_name or method["backbone"]]) | {"img_size": size}
    torch.manual_seed(0)
    model = library_code(build_model(method, backbone, pretrained=False).train())
    loss_fn = build_loss(method["loss"])
    x = torch.rand(1, 3, size, size) * 255
    y = (torch.rand(1, 1, size, size) > 0.9).float()
    return model, loss_fn, x, y, float(cfg.train.grad_clip)


def library_code(model):
    """The model as its library runs it: samlora's default kernels undone (params.yaml's
    ``attention: chunked`` on SAM ViTs, the faster TinyViT on LiteMedSAM); the variant's
    tokens put levers back one by one."""
    from samlora.models.sdpa import use_eager
    from samlora.models.tinyvit_speed import slow_down_tinyvit

    encoder = getattr(getattr(model, "sam", None), "image_encoder", None)
    if encoder is not None:
        use_eager(model)
        slow_down_tinyvit(encoder)
    return model


def with_levers(model, variant: str):
    """A deep copy of ``model`` (same weights) with ``variant``'s levers; (copy, bf16)."""
    from samlora.models.sdpa import use_chunked, use_sdpa
    from samlora.models.tinyvit_speed import speed_up_tinyvit

    other = copy.deepcopy(model)
    tokens = set(variant.split("+"))
    if "sdpa" in tokens:
        use_sdpa(other)
    if "tinyvit" in tokens:
        speed_up_tinyvit(other.sam.image_encoder)
    if "chunked" in tokens:
        use_chunked(other)
    if "compile" in tokens:
        other.forward = torch.compile(other.forward)
    return other.train(), "bf16" in tokens


def trainable(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def forward_loss(model, loss_fn, x, y) -> torch.Tensor:
    """The loss of one prompt-free batch (with the predicted IoU where the loss weighs it,
    as SAM2LoRA's does)."""
    if getattr(loss_fn, "needs_iou", False):
        logits, iou = model.forward_with_iou(x, None)
        return loss_fn(logits.float(), y, iou.float())[0]
    return loss_fn(model(x).float(), y)[0]


def plain_step(model, loss_fn, opt, x, y, clip: float) -> float:
    loss = forward_loss(model, loss_fn, x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable(model), clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def samlora_step(model, loss_fn, opt, sched, batch, clip: float, bf16: bool) -> float:
    from samlora.training.loop import train_one_epoch
    from samlora.training.precision import Precision

    rc = {"train": {"grad_accum": 1, "grad_clip": clip, "log_every": 1000}}
    precision = Precision("bf16" if bf16 else "fp32", CPU)
    return train_one_epoch(model, [batch], loss_fn, opt, sched, rc, CPU, "bench",
                           precision=precision)


def grads(model, loss_fn, x, y, bf16: bool) -> tuple[float, list[torch.Tensor]]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = forward_loss(model, loss_fn, x, y)
    loss.backward()
    params = trainable(model)
    out = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
           for p in params]  # the IoU head gets none in a prompt-free step
    for p in params:
        p.grad = None
    return float(loss.detach()), out


def timed(fn) -> tuple[float, int, float]:
    """(seconds, minor page faults, kernel seconds) of one call."""
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    return t1 - t0, r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime


def child(size: int, variant: str, pairs: int, method: str, backbone: str | None) -> dict:
    """Alternate the plain and samlora steps in this process, each pair in the other order
    than the last (see the module docstring)."""
    from samlora.utils.allocator import current

    base, loss_fn, x, y, clip = setup(size, method, backbone)
    plain = copy.deepcopy(base)
    lever, bf16 = with_levers(base, variant)
    out: dict = {"variant": variant, "method": method, "backbone": backbone, "size": size,
                 "threads": torch.get_num_threads(), "allocator": current()}
    t0 = time.perf_counter()
    ref_loss, ref = grads(plain, loss_fn, x, y, False)  # semantics, on the same weights
    t1 = time.perf_counter()
    loss, got = grads(lever, loss_fn, x, y, bf16)  # torch.compile compiles here
    out["first_call_s"] = {"plain": round(t1 - t0, 3),
                           "samlora": round(time.perf_counter() - t1, 3)}
    out["loss_rel_diff"] = abs(loss - ref_loss) / abs(ref_loss)
    # relative to the largest reference gradient: a parameter whose gradient is ~0 would
    # turn rounding into an arbitrarily large per-parameter ratio
    diff = max(float((g - r).abs().max()) for g, r in zip(got, ref))
    out["grad_max_abs_diff"] = diff
    out["grad_rel_diff"] = diff / max(float(r.abs().max()) for r in ref)
    popt = torch.optim.AdamW(trainable(plain), lr=1e-4)
    lopt = torch.optim.AdamW(trainable(lever), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(lopt, lambda _: 1.0)
    batch = {"image": x, "mask": y}
    run_plain = lambda: plain_step(plain, loss_fn, popt, x, y, clip)
    run_lever = lambda: samlora_step(lever, loss_fn, lopt, sched, batch, clip, bf16)
    first_plain, first_lever = timed(run_plain), timed(run_lever)  # warm-up (and compile)
    times: dict[str, list] = {"plain": [], "samlora": []}
    for i in range(pairs):  # A B, B A, A B, ...: neither side always runs second
        order = (("plain", run_plain), ("samlora", run_lever))
        for name, run in order if i % 2 == 0 else order[::-1]:
            times[name].append(timed(run))
    p, v = times["plain"], times["samlora"]
    out["plain_s"] = [round(t, 3) for t, _, _ in p]
    out["samlora_s"] = [round(t, 3) for t, _, _ in v]
    out["first_step_s"] = {"plain": round(first_plain[0], 3), "samlora": round(first_lever[0], 3)}
    ratios = [b[0] / a[0] for a, b in zip(p, v)]
    out["ratio_median"] = statistics.median(ratios)
    out["ratio_spread"] = [min(ratios), max(ratios)]
    out["page_faults_per_step"] = {"plain": statistics.median(f for _, f, _ in p),
                                   "samlora": statistics.median(f for _, f, _ in v)}
    out["kernel_s_per_step"] = {"plain": statistics.median(k for _, _, k in p),
                                "samlora": statistics.median(k for _, _, k in v)}
    out["peak_rss_mb"] = peak_bytes(CPU) / 2**20
    return out


def peak_rss_child(size: int, variant: str, steps: int, method: str,
                   backbone: str | None) -> dict:
    """Peak RSS of samlora's step alone (no plain model beside it) after ``steps`` steps."""
    from samlora.utils.allocator import current

    base, loss_fn, x, y, clip = setup(size, method, backbone)
    model, bf16 = with_levers(base, variant)
    del base
    opt = torch.optim.AdamW(trainable(model), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    secs = [timed(lambda: samlora_step(model, loss_fn, opt, sched, {"image": x, "mask": y},
                                       clip, bf16))[0] for _ in range(steps)]
    return {"variant": variant, "size": size, "allocator": current(),
            "step_s": [round(s, 3) for s in secs],
            "peak_rss_mb": peak_bytes(CPU) / 2**20}
