"""Benchmark forward+backward of every method at 512²; merges a "methods" key into a JSON file.

Each method of params.yaml runs twice, at 512×512 with one image per step and random
weights: on its backbone family's tiny configuration (SAM ``tiny``, SAM 2 ``tiny``, each
baseline's ``*_tiny``), and on a real-size backbone (SAM ViT-B for SAM methods, SAM 2.1
Hiera-T for SAM 2 methods, the baseline's own architecture). Per image: the time of
forward + loss + backward (no optimiser step; prompted methods draw their training prompts)
and the peak memory (CUDA: allocated bytes; CPU: the process's peak RSS, which includes the
Python/torch runtime, also reported alone as ``runtime_mb``). Each (method, scale) runs in
its own process so peaks are its own.

    python benchmarks/bench_methods.py --out benchmarks/results.json --steps 3

Other scripts write other keys of the same file; this one reads it, replaces ``methods``
and writes it back through a temporary file and a rename.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch
from _timing import peak_bytes, seconds_per_step

REPO = Path(__file__).resolve().parents[1]
SIZE = 512
SCALES = ("tiny", "real")
REAL_BACKBONE = {"sam": "sam_vit_b", "sam2": "sam2_hiera_t"}  # baselines keep their own


def backbone_for(cfg, method: str, scale: str) -> tuple[str, dict]:
    """The backbone id and config a method is benchmarked on, at SIZE px, random weights."""
    from samlora.models.baselines.nets import get_arch as baseline_arch
    from samlora.models.sam import get_arch as sam_arch
    from samlora.models.sam2_build import get_arch as sam2_arch

    name = str(cfg.methods[method].backbone)
    bcfg = dict(cfg.backbones[name])
    family = str(bcfg.get("family", "sam"))
    if family == "baseline":
        if scale == "tiny":
            bcfg["arch"] = baseline_arch(bcfg["arch"]).tiny
        bcfg["pretrained"] = None
    else:
        name = REAL_BACKBONE[family]
        bcfg = dict(cfg.backbones[name])
        if scale == "tiny":
            {"sam": sam_arch, "sam2": sam2_arch}[family]("tiny")  # fails loudly if absent
            bcfg["arch"] = "tiny"
    bcfg.update(img_size=SIZE, checkpoint=None)
    return (f"{family}/{bcfg['arch']}" if scale == "tiny" else name), bcfg


def bench_one(method: str, scale: str, steps: int) -> dict:
    """Time ``steps`` forward+backward passes of one method at one scale (after a warm-up)."""
    from samlora.config import load_config
    from samlora.losses import build_loss
    from samlora.models.registry import build_model
    from samlora.models.segmenter import count_parameters
    from samlora.training.prompted import model_step, prompt_settings, training_prompts

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runtime = peak_bytes(dev)
    cfg = load_config([REPO / "params.yaml"])
    backbone, bcfg = backbone_for(cfg, method, scale)
    torch.manual_seed(0)
    model = build_model(cfg.methods[method], bcfg, pretrained=False).to(dev).train()
    counts = count_parameters(model)
    loss_fn = build_loss(cfg.methods[method].loss)
    prompt_fn = training_prompts(prompt_settings(cfg.methods[method]), 0, 0)  # prompted methods
    batch = {"image": torch.rand(1, 3, SIZE, SIZE) * 255,
             "mask": (torch.rand(1, 1, SIZE, SIZE) > 0.9).float()}

    def step() -> None:
        loss, _, _ = model_step(model, batch, loss_fn, dev, prompt_fn)
        if loss.requires_grad:  # zero_shot: nothing to differentiate
            loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    dt = seconds_per_step(step, steps, dev)
    return {"method": method, "scale": scale, "backbone": backbone, "arch": bcfg["arch"],
            "img_size": SIZE, "device": dev.type, "steps": steps,
            "fwd_bwd_s_per_image": dt, "peak_memory_mb_per_image": peak_bytes(dev) / 2**20,
            "runtime_mb": runtime / 2**20 if dev.type == "cpu" else 0.0,
            "total_params": counts["total"], "trainable_params": counts["trainable"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--methods", nargs="+", help="default: every method in params.yaml")
    parser.add_argument("--scales", nargs="+", choices=SCALES, default=list(SCALES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # child: METHOD SCALE
    args = parser.parse_args(argv)
    if args.one:
        json.dump(bench_one(args.one[0], args.one[1], args.steps), sys.stdout)
        return 0
    if not args.methods:
        from samlora.config import load_config

        args.methods = list(load_config([REPO / "params.yaml"]).methods)
    rows = []
    for method in args.methods:
        for scale in args.scales:
            out = subprocess.run([sys.executable, __file__, "--one", method, scale,
                                  "--steps", str(args.steps)],
                                 check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out))
            print(json.dumps(rows[-1]), flush=True)
    sys.path.insert(0, str(REPO / "src"))
    from samlora.utils.io import update_json

    update_json(args.out, {"methods": {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "device": "cuda" if torch.cuda.is_available() else "cpu"},
        "rows": rows}})  # keeps the keys other benchmark scripts wrote
    return 0


if __name__ == "__main__":
    sys.exit(main())
