"""Benchmark the frozen-encoder embedding cache: decoder_only epochs with and without it.

For each backbone (SAM ViT-B at 1024 px with random weights, LiteMedSAM at 256 px with its
packaged weights), ``decoder_only`` trains over ``--images`` real DRIVE training images
(batch 1, params.yaml's flips + rot90 augmentation drawn per epoch, AdamW):

- ``uncached_epoch_s``: an epoch that encodes every image (``train.embedding_cache: off``);
- ``cold_epoch_s``: the first epoch with the cache (it encodes and stores each view);
- ``warm_epoch_s``: an epoch whose views are all stored (the same epoch index again, so the
  same views: what every epoch costs once the ≤ 8 dihedral views of each image are in);
- ``speedup``: uncached / warm (target ≥ 10), and the warm epoch's ``hit_rate``.

Uncached and cached epochs alternate (A/B) ``--repeats`` times in one process; the figures
are medians. They go under the ``embedding_cache`` key of the results file.

    python benchmarks/bench_cache.py --out benchmarks/results.json [--images 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _prepare(mirror: Path, out: Path) -> Path:
    from samlora.data.prepare import prepare_dataset

    prepare_dataset("drive", mirror / "DRIVE", out / "drive", {"red_threshold": 0.1, "radius": 3})
    return out / "drive"


def _epoch(model, loader, opt, loss_fn, cache) -> float:
    import torch

    from samlora.training.prompted import model_step

    t0 = time.perf_counter()
    for batch in loader:
        loss, _, _ = model_step(model, batch, loss_fn, torch.device("cpu"), cache=cache)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def bench_backbone(cfg, backbone: str, processed: Path, images: int, repeats: int,
                   models_dir: Path, cache_root: Path) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from samlora.data.datasets import SegmentationDataset
    from samlora.losses import build_loss
    from samlora.models.registry import build_model
    from samlora.training.embed_cache import EmbeddingCache

    torch.manual_seed(0)
    method = {**dict(cfg.methods.decoder_only), "backbone": backbone}
    bcfg = dict(cfg.backbones[backbone])
    model = build_model(method, bcfg, models_dir=models_dir,
                        pretrained=bcfg.get("checkpoint") is not None and backbone == "litemedsam")
    ds = SegmentationDataset(processed, split="train", size=model.img_size,
                             augment=dict(cfg.train.augment), seed=0)
    ds.restricted(ds.cases[:images])
    loss_fn = build_loss(dict(method["loss"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cache = EmbeddingCache.for_model(model, {"backbone": backbone, "img_size": model.img_size},
                                     cache_root)

    def loader():
        return DataLoader(ds, batch_size=1, shuffle=False)

    ds.set_epoch(0)
    cold = _epoch(model, loader(), opt, loss_fn, cache)
    uncached, warm = [], []
    for _ in range(repeats):
        uncached.append(_epoch(model, loader(), opt, loss_fn, None))
        cache.hits = cache.misses = 0
        warm.append(_epoch(model, loader(), opt, loss_fn, cache))
    hit_rate = cache.hit_rate()
    u, w = statistics.median(uncached), statistics.median(warm)
    return {"img_size": model.img_size, "images": len(ds), "repeats": repeats,
            "weights": "pretrained" if backbone == "litemedsam" else "random",
            "uncached_epoch_s": round(u, 3), "cold_epoch_s": round(cold, 3),
            "warm_epoch_s": round(w, 3), "speedup": round(u / w, 1),
            "hit_rate": round(hit_rate, 3), "target_speedup": 10.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--mirror", type=Path, default=Path(os.environ.get(
        "SAMLORA_MIRROR", REPO.parent / "shared" / "data")))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backbones", default="sam_vit_b,litemedsam")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from samlora.config import load_config
    from samlora.utils.io import update_json

    cfg = load_config([REPO / "params.yaml"])
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        processed = _prepare(args.mirror.resolve(), work / "processed")
        result = {name: bench_backbone(cfg, name, processed, args.images, args.repeats,
                                       work / "pretrained", work / "embeddings")
                  for name in args.backbones.split(",")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    print(json.dumps(result, indent=1), flush=True)
    update_json(args.out, {"embedding_cache": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
