"""samlora's training step against a plain PyTorch loop of the same model, lever by lever.

The plain loop is the obvious code: the same segment_anything / sam2 model (random weights)
with peft's LoRA, the adapter, the losses and AdamW of a params.yaml method, ``loss.backward();
clip; opt.step(); opt.zero_grad()``, fp32, the library's attention, the system allocator.
samlora's side is :func:`samlora.training.loop.train_one_epoch`, the step every run takes
(``benchmarks/_speed_child.py``), with levers:

- in the model (``--variants``, alternated with the plain step in one process: A, B, A, B):
  ``sdpa``, ``chunked`` (``attention:``), ``bf16`` (autocast), ``tinyvit``, ``compile``;
- in the process (``--allocators``): samlora's step under ``train.allocator``'s settings
  (:mod:`samlora.utils.allocator`, the environment ``python -m samlora train`` restarts with)
  against the plain step in a process of the system allocator, the two processes alternated
  ``--rounds`` times. ``auto`` is what a run gets by default: the headline ratio.

Each ratio is the median of the per-pair (or per-round) ratios with their spread. Semantics:
the max relative |Δ| of the loss and of every gradient against the plain step on the same
weights and batch (fp32 levers within 1e-4 of the largest gradient; bf16 with its stated
tolerance). Also: page faults and kernel seconds per step, peak RSS of samlora's step alone
(``--peak``), prediction images/s (``--predict``), the machine. Figures go under
``speed_<method>_<backbone>_<size>`` in the results file.

    python benchmarks/bench_speed.py --size 1024 --pairs 2 --rounds 2 --peak eager chunked
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
VARIANTS = ("samlora", "sdpa", "chunked", "bf16")  # LiteMedSAM: tinyvit, tinyvit+bf16
#: Process-level settings besides train.allocator's own: glibc's thresholds at their
#: largest accepted values (glibc ignores an mmap threshold above 32 MiB).
EXTRA_ALLOCATORS = {"glibc-thresholds": {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
    "MALLOC_TOP_PAD_": str(256 << 20)}}
SYSTEM = {"LD_PRELOAD": "", "MALLOC_CONF": "", "GLIBC_TUNABLES": ""}


def machine() -> dict:
    """The machine the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "memory_gb": round(mem / 2**30, 1), "platform": platform.platform(),
            "libc": " ".join(platform.libc_ver()), "python": platform.python_version(),
            "torch": torch.__version__,
            "transparent_hugepages": thp.read_text().strip() if thp.is_file() else None,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


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


def predict_rate(method: str, backbone: str | None, size: int, variant: str,
                 batch: int, batches: int) -> dict:
    """Images/s of the model's forward under inference_mode, as predict runs it."""
    from _speed_child import setup, with_levers

    base, _, x, _, _ = setup(size, method, backbone)
    model, bf16 = with_levers(base, variant)
    model.eval()
    x = x.expand(batch, -1, -1, -1).contiguous()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        model(x)
        t0 = time.perf_counter()
        for _ in range(batches):
            model(x)
        dt = time.perf_counter() - t0
    from _timing import peak_bytes

    from samlora.utils.allocator import current

    return {"variant": variant, "size": size, "batch": batch, "allocator": current(),
            "images_per_s": batch * batches / dt,
            "peak_rss_mb": peak_bytes(torch.device("cpu")) / 2**20}


def _run_child(mode: str, variant: str, args, env: dict | None = None) -> dict:
    extra = ["--backbone", args.backbone] if args.backbone else []
    cmd = [sys.executable, __file__, mode, variant, "--size", str(args.size), "--pairs",
           str(args.pairs), "--method", args.method, *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env={**os.environ, **(env or {})})
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def _allocator_env(name: str) -> dict[str, str]:
    from samlora.utils.allocator import MARKER, resolve

    if name in EXTRA_ALLOCATORS:
        return {**SYSTEM, **EXTRA_ALLOCATORS[name], MARKER: name}
    chosen, additions = resolve(name)
    return {**SYSTEM, **additions, MARKER: chosen}


def compare_allocators(names: list[str], variant: str, args) -> list[dict]:
    """samlora's step under each allocator against the plain step under the system one,
    processes alternated ``args.rounds`` times; per-round ratio of the medians."""
    rows = {n: [] for n in names}
    plains = []
    for _ in range(args.rounds):
        plains.append(_run_child("--child", variant, args, SYSTEM))
        for name in names:
            rows[name].append(_run_child("--child", variant, args, _allocator_env(name)))
    out = [{"allocator": "system", "rounds": plains}]
    for name in names:
        ratios = [statistics.median(r["samlora_s"]) / statistics.median(p["plain_s"])
                  for r, p in zip(rows[name], plains)]
        out.append({"allocator": name, "runs_as": rows[name][0]["allocator"],
                    "ratio_vs_plain_median": statistics.median(ratios),
                    "ratio_vs_plain_spread": [min(ratios), max(ratios)],
                    "samlora_s": [r["samlora_s"] for r in rows[name]],
                    "plain_s": [p["plain_s"] for p in plains],
                    "page_faults_per_step": statistics.median(
                        r["page_faults_per_step"]["samlora"] for r in rows[name]),
                    "kernel_s_per_step": statistics.median(
                        r["kernel_s_per_step"]["samlora"] for r in rows[name]),
                    "plain_page_faults_per_step": statistics.median(
                        p["page_faults_per_step"]["plain"] for p in plains),
                    "plain_kernel_s_per_step": statistics.median(
                        p["kernel_s_per_step"]["plain"] for p in plains)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternated process pairs")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--allocators", nargs="*", default=["auto", "hugepages",
                                                            "glibc-thresholds"])
    parser.add_argument("--allocator-variant", default="samlora",
                        help="the model levers of samlora's side in the allocator rounds")
    parser.add_argument("--peak", nargs="*", default=[], help="variants whose peak RSS of "
                        "samlora's step alone is measured (under train.allocator: auto)")
    parser.add_argument("--predict", nargs="*", default=[], help="variants whose predict "
                        "images/s are measured (batch 2, under train.allocator: auto)")
    parser.add_argument("--method", default="topolora_sam",
                        help="a params.yaml method (topolora_sam: SAM ViT-B)")
    parser.add_argument("--backbone", help="run the method on this backbone instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--peak-child", help=argparse.SUPPRESS)
    parser.add_argument("--predict-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child or args.peak_child or args.predict_child:
        from _speed_child import child, peak_rss_child

        if args.child:
            row = child(args.size, args.child, args.pairs, args.method, args.backbone)
        elif args.peak_child:
            row = peak_rss_child(args.size, args.peak_child, args.pairs + 1, args.method,
                                 args.backbone)
        else:
            row = predict_rate(args.method, args.backbone, args.size, args.predict_child,
                               2, args.pairs)
        json.dump(row, sys.stdout)
        return 0
    results = {"machine": machine(), "size": args.size, "method": args.method,
               "backbone": args.backbone, "variants": [], "allocators": [], "peak": [],
               "predict": []}
    rates = matmul_rates()
    results["matmul_gflops"] = rates
    for variant in args.variants:
        if "bf16" in variant and rates["bf16"] < rates["fp32"] / 2:
            results["variants"].append({"variant": variant, "skipped": (
                f"bf16 matmul runs at {rates['bf16']:.1f} GFLOP/s here against "
                f"{rates['fp32']:.1f} in fp32 (no bf16 instructions): a bf16 step would be "
                "slower, not faster")})
            continue
        results["variants"].append(_run_child("--child", variant, args, SYSTEM))
    if args.allocators:
        results["allocators"] = compare_allocators(args.allocators, args.allocator_variant,
                                                   args)
    auto = _allocator_env("auto")
    results["peak"] = [_run_child("--peak-child", v, args, auto) for v in args.peak]
    results["predict"] = [_run_child("--predict-child", v, args, auto) for v in args.predict]
    from samlora.utils.io import update_json

    key = f"speed_{args.method}_{args.backbone or 'default'}_{args.size}"
    update_json(args.out, {key: results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
