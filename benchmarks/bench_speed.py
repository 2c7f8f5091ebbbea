"""samlora's training step against a plain PyTorch loop of the same model, lever by lever.

The plain loop is the obvious code: the same segment_anything model (random weights) with
peft's LoRA, the spatial adapter, the losses and AdamW of params.yaml's ``topolora_sam``,
``loss.backward(); opt.step(); opt.zero_grad()``, fp32, the library's attention, the
default allocator. Each variant is the same model and batch with one or more levers on:

- ``sdpa``: the ViT's attention through ``scaled_dot_product_attention``
  (:mod:`samlora.models.sdpa`, backbone ``attention: sdpa``);
- ``bf16``: bf16 autocast of the forward pass (``train.precision: bf16``);
- an allocator (a separate process: glibc ``MALLOC_*`` thresholds that keep freed
  activation memory for reuse, or jemalloc via ``LD_PRELOAD`` where Debian's
  ``libjemalloc2`` is installed), with page faults and kernel time per step.

In-process variants alternate with the plain step (A, B, A, B, ...), so both see the same
machine state; the ratio reported is the median of the per-pair ratios, with their
spread. Semantics: the max relative |Δ| of the loss and of every gradient against the
plain step on the same weights and batch (fp32 variants must stay within 1e-4; bf16 gets
its own, stated, tolerance). Figures go under ``speed`` in the results file.

    python benchmarks/bench_speed.py --size 512 --pairs 3 [--variants sdpa bf16 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("sdpa", "bf16", "sdpa+bf16")  # for LiteMedSAM: tinyvit, tinyvit+bf16
#: Allocator settings tried in a process of their own (name -> environment).
ALLOCATORS = {
    "glibc-thresholds": {"MALLOC_MMAP_THRESHOLD_": str(1 << 30),
                         "MALLOC_TRIM_THRESHOLD_": str(1 << 31), "MALLOC_TOP_PAD_": str(1 << 28)},
    "jemalloc": {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
}


def _setup(size: int, method_name: str, backbone_name: str | None = None):
    sys.path.insert(0, str(REPO / "src"))
    from samlora.config import load_config
    from samlora.losses import build_loss
    from samlora.models.registry import build_model

    cfg = load_config([REPO / "params.yaml"])
    method = dict(cfg.methods[method_name])
    backbone = dict(cfg.backbones[backbone_name or method["backbone"]]) | {
        "img_size": size, "attention": "eager"}
    if backbone.get("arch") == "litemedsam":
        backbone.pop("attention")
    torch.manual_seed(0)
    model = build_model(method, backbone, pretrained=False).train()
    loss_fn = build_loss(method["loss"])
    x = torch.rand(1, 3, size, size) * 255
    y = (torch.rand(1, 1, size, size) > 0.9).float()
    return model, loss_fn, x, y


def _with_levers(model, variant: str):
    """A copy of ``model`` (same weights) with the variant's levers; (copy, bf16)."""
    import copy

    from samlora.models.sdpa import use_sdpa
    from samlora.models.tinyvit_speed import speed_up_tinyvit

    other = copy.deepcopy(model)
    if "sdpa" in variant:
        use_sdpa(other)
    if "tinyvit" in variant:
        speed_up_tinyvit(other.sam.image_encoder)
    other.train()
    return other, "bf16" in variant


def _trainable(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _step(model, loss_fn, opt, x, y, bf16: bool) -> float:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss, _ = loss_fn(logits.float(), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def _grads(model, loss_fn, x, y, bf16: bool) -> tuple[float, list[torch.Tensor]]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss, _ = loss_fn(logits.float(), y)
    loss.backward()
    params = _trainable(model)
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
             for p in params]  # the IoU head gets none in a prompt-free step
    for p in params:
        p.grad = None
    return float(loss.detach()), grads


def _timed(fn) -> tuple[float, int, float]:
    """(seconds, minor page faults, kernel seconds) of one call."""
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    return t1 - t0, r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime


def child(size: int, variant: str, pairs: int, method: str, backbone: str | None) -> dict:
    """Alternate plain and ``variant`` steps in this process; see the module docstring."""
    plain_model, loss_fn, x, y = _setup(size, method, backbone)
    out: dict = {"variant": variant, "method": method, "backbone": backbone, "size": size,
                 "threads": torch.get_num_threads()}
    models = {"plain": (plain_model, False)}
    if variant != "plain":
        models[variant] = _with_levers(plain_model, variant)
        # semantics first, on the same weights and batch
        ref_loss, ref = _grads(plain_model, loss_fn, x, y, False)
        loss, got = _grads(*models[variant][:1], loss_fn, x, y, models[variant][1])
        out["loss_rel_diff"] = abs(loss - ref_loss) / abs(ref_loss)
        # relative to the largest reference gradient: a parameter whose gradient is ~0
        # would turn rounding into an arbitrarily large per-parameter ratio
        diff = max(float((g - r).abs().max()) for g, r in zip(got, ref))
        out["grad_max_abs_diff"] = diff
        out["grad_rel_diff"] = diff / max(float(r.abs().max()) for r in ref)
    opts = {name: torch.optim.AdamW(_trainable(m), lr=1e-4) for name, (m, _) in models.items()}
    times: dict[str, list] = {name: [] for name in models}
    for name, (m, bf16) in models.items():  # warm-up of each
        _step(m, loss_fn, opts[name], x, y, bf16)
    for _ in range(pairs):
        for name, (m, bf16) in models.items():
            times[name].append(_timed(lambda m=m, b=bf16, o=opts[name]:
                                      _step(m, loss_fn, o, x, y, b)))
    plain, lever = times["plain"], times[variant]
    out["plain_s"] = [round(t, 3) for t, _, _ in plain]
    out["variant_s"] = [round(t, 3) for t, _, _ in lever]
    ratios = [v[0] / p[0] for p, v in zip(plain, lever)]
    out["ratio_median"] = statistics.median(ratios)
    out["ratio_spread"] = [min(ratios), max(ratios)]
    out["page_faults_per_step"] = {"plain": statistics.median(f for _, f, _ in plain),
                                   "variant": statistics.median(f for _, f, _ in lever)}
    out["kernel_s_per_step"] = {"plain": statistics.median(k for _, _, k in plain),
                                "variant": statistics.median(k for _, _, k in lever)}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def matmul_rates(n: int = 1024) -> dict[str, float]:
    """GFLOP/s of an n×n matmul in fp32 and bf16 on this CPU (the precision probe)."""
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        t0 = time.perf_counter()
        a @ b
        rates[name] = 2 * n ** 3 / (time.perf_counter() - t0) / 1e9
    return rates


def _run_child(size: int, variant: str, pairs: int, method: str, backbone: str | None,
               env: dict | None = None) -> dict:
    extra = ["--backbone", backbone] if backbone else []
    res = subprocess.run([sys.executable, __file__, "--child", variant, "--size", str(size),
                          "--pairs", str(pairs), "--method", method, *extra],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--allocators", nargs="*", default=list(ALLOCATORS))
    parser.add_argument("--method", default="topolora_sam",
                        help="a params.yaml method (topolora_sam: SAM ViT-B)")
    parser.add_argument("--backbone", help="run the method on this backbone instead "
                        "(litemedsam, with --size 256 and --variants tinyvit ...)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        json.dump(child(args.size, args.child, args.pairs, args.method, args.backbone),
                  sys.stdout)
        return 0
    results = {"machine": {"cpu": platform.processor() or platform.machine(),
                           "torch": torch.__version__, "threads": torch.get_num_threads()},
               "size": args.size, "variants": [], "allocators": []}
    rates = matmul_rates()
    results["matmul_gflops"] = rates
    for variant in args.variants:
        if "bf16" in variant and rates["bf16"] < rates["fp32"] / 2:
            results["variants"].append({"variant": variant, "skipped": (
                f"bf16 matmul runs at {rates['bf16']:.1f} GFLOP/s here against "
                f"{rates['fp32']:.1f} in fp32 (no bf16 instructions): a bf16 step would be "
                "slower, not faster")})
            print(json.dumps(results["variants"][-1]), flush=True)
            continue
        results["variants"].append(_run_child(args.size, variant, args.pairs, args.method,
                                                 args.backbone))
        print(json.dumps(results["variants"][-1]), flush=True)
    if args.allocators:  # plain against plain, in processes with and without the setting
        base = _run_child(args.size, "plain", args.pairs, args.method, args.backbone)
        results["allocators"].append({"allocator": "default", **base})
        for name in args.allocators:
            env = ALLOCATORS[name]
            if "LD_PRELOAD" in env and not Path(env["LD_PRELOAD"]).is_file():
                results["allocators"].append({"allocator": name, "skipped":
                                              f"{env['LD_PRELOAD']} not installed"})
                continue
            row = _run_child(args.size, "plain", args.pairs, args.method, args.backbone, env)
            row["vs_default"] = (statistics.median(row["plain_s"])
                                 / statistics.median(base["plain_s"]))
            results["allocators"].append({"allocator": name, **row})
            print(json.dumps(results["allocators"][-1]), flush=True)
    sys.path.insert(0, str(REPO / "src"))
    from samlora.utils.io import update_json

    results["method"], results["backbone"] = args.method, args.backbone
    key = f"speed_{args.method}_{args.backbone or 'default'}_{args.size}"
    update_json(args.out, {key: results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
