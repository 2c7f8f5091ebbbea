"""Benchmark one `topolora_sam` training step; writes figures to a JSON file.

For each config (the tiny demo SAM at its own size, SAM ViT-B at 512²): images/s of a full
step (forward, backward, AdamW), peak memory (RSS on CPU, allocated on CUDA), the step's
FLOPs (torch's FLOP counter) and achieved FLOP/s as a share of this machine's fp32 matmul
rate, measured in the same run. Each config runs in its own process so peak memory is its own.
The figures go under the ``machine`` and ``train_step`` keys of the results file; other keys
(written by the other benchmark scripts) are kept.

    python benchmarks/bench_train_step.py --out benchmarks/results.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from _timing import peak_bytes, seconds_per_step, sync

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"tiny": ("sam_tiny", None), "vit_b_512": ("sam_vit_b", 512)}


def matmul_gflops(n: int = 4096, reps: int = 5) -> float:
    """Best-of-``reps`` fp32 GFLOP/s of an n×n matmul on the benchmark device."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    a @ b
    best = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def bench_one(name: str, batch: int, steps: int) -> dict:
    """Time ``steps`` training steps of topolora_sam on one backbone config."""
    from torch.utils.flop_counter import FlopCounterMode

    from samlora.config import load_config
    from samlora.losses import build_loss
    from samlora.models.registry import build_model
    from samlora.models.segmenter import count_parameters

    backbone, size = CONFIGS[name]
    cfg = load_config([REPO / "params.yaml"])
    method = dict(cfg.methods.topolora_sam)
    bcfg = dict(cfg.backbones[backbone])
    if size:
        bcfg["img_size"] = size
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model(method, bcfg, pretrained=False).to(dev).train()
    loss_fn = build_loss(method["loss"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    s = model.img_size
    x = torch.rand(batch, 3, s, s, device=dev) * 255
    y = (torch.rand(batch, 1, s, s, device=dev) > 0.9).float()

    def step() -> None:
        loss, _ = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    with FlopCounterMode(display=False) as counter:
        loss, _ = loss_fn(model(x), y)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    dt = seconds_per_step(step, steps, dev)
    peak = peak_bytes(dev)
    return {"config": name, "img_size": s, "batch": batch, "device": dev.type,
            "step_s": dt, "images_per_s": batch / dt, "peak_memory_mb": peak / 2**20,
            "step_gflop": flops / 1e9, "achieved_gflops": flops / dt / 1e9,
            "trainable": count_parameters(model)["trainable"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one config
    args = parser.parse_args(argv)
    if args.one:
        batch = 4 if args.one == "tiny" else 1
        steps = args.steps * (5 if args.one == "tiny" else 1)
        json.dump(bench_one(args.one, batch, steps), sys.stdout)
        return 0
    gflops = matmul_gflops()
    rows = []
    for name in args.configs:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(args.steps)],
                             check=True, capture_output=True, text=True).stdout
        row = json.loads(out)
        row["achieved_vs_matmul"] = row["achieved_gflops"] / gflops
        rows.append(row)
    result = {"machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(),
                          "torch": torch.__version__, "matmul_fp32_gflops": gflops},
              "train_step": rows}
    sys.path.insert(0, str(REPO / "src"))
    from samlora.utils.io import update_json

    update_json(args.out, result)  # keeps the keys other benchmark scripts wrote
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
