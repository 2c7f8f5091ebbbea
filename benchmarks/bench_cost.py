"""Measure per-image step times per backbone and input size: the table `plan --cost` reads.

For each backbone of params.yaml at the input size its runs use (random weights, batch 1,
fp32), in its own process:

- ``train_s``: one full training step of a method whose encoder trains (SAM: topolora_sam,
  LoRA in the encoder; SAM 2: sam2lora; a baseline: its own method): forward, loss,
  backward and AdamW;
- ``encode_s``: the image encoder's forward under ``torch.inference_mode`` (SAM, SAM 2;
  for a baseline, its whole forward: what predicting an image costs);
- ``decoder_s``: a decoder_only step on a stored encoding (what a frozen-encoder method
  costs per image once the embedding cache holds its views; SAM backbones only, 0 elsewhere:
  no SAM 2 or baseline method of params.yaml trains a frozen encoder).

Rows are written to ``benchmarks/step_times.csv`` (replacing the rows of the same backbone,
size and device, so CPU and GPU figures sit side by side), with the device's name and the
date, and under the ``step_times`` key of the results file.

    python benchmarks/bench_cost.py [--only sam_tiny:128 ...] [--steps 2]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch
from _timing import seconds_per_step

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "benchmarks" / "step_times.csv"
COLUMNS = ("backbone", "arch", "img_size", "device", "device_name", "train_s", "encode_s",
           "decoder_s", "steps", "measured")
#: (backbone, input size) measured by default: every size the studies of params.yaml use.
DEFAULT = ("sam_tiny:128", "litemedsam:256", "sam_vit_b:1024", "sam2_hiera_b_plus:1024",
           "unet_r34:512", "deeplabv3p_r50:512", "segformer_b0:512", "mask2former_swin_t:512")
#: The method timed for a full step, per backbone family.
TRAIN_METHOD = {"sam": "topolora_sam", "sam2": "sam2lora"}


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor() or "cpu"


class _Stored:
    """A stand-in embedding cache holding one precomputed encoding."""

    def __init__(self, encoded: torch.Tensor) -> None:
        self.encoded = encoded

    def encodings(self, model, images, digests, views):  # noqa: ANN001 - cache protocol
        return self.encoded


def bench_one(backbone: str, size: int, steps: int) -> dict:
    from samlora.config import load_config
    from samlora.losses import build_loss
    from samlora.models.registry import build_model
    from samlora.training.prompted import model_step, prompt_settings, training_prompts

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = load_config([REPO / "params.yaml"])
    bcfg = dict(cfg.backbones[backbone])
    family = str(bcfg.get("family", "sam"))
    bcfg.update(img_size=size, checkpoint=None)
    if family == "baseline":
        bcfg["pretrained"] = None
        method = next(m for m, c in cfg.methods.items() if str(c.backbone) == backbone)
    else:
        method = TRAIN_METHOD[family]
    torch.manual_seed(0)
    batch = {"image": torch.rand(1, 3, size, size) * 255,
             "mask": (torch.rand(1, 1, size, size) > 0.9).float(),
             "digest": ["0" * 64], "view": ["bench"]}

    def timed(name: str, cache=None) -> float:  # noqa: ANN001
        model = build_model(cfg.methods[name], bcfg, pretrained=False).to(dev).train()
        loss_fn = build_loss(cfg.methods[name].loss)
        prompt_fn = training_prompts(prompt_settings(cfg.methods[name]), 0, 0)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)

        def step() -> None:
            loss, _, _ = model_step(model, batch, loss_fn, dev, prompt_fn,
                                    cache=cache(model) if cache else None)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()  # warm-up
        return seconds_per_step(step, steps, dev)

    train_s = timed(method)
    encode_s = decoder_s = 0.0
    model = build_model(cfg.methods[method], bcfg, pretrained=False).to(dev).eval()
    images = batch["image"].to(dev)
    with torch.inference_mode():
        run = (lambda: model.encode(images)) if hasattr(model, "encode") else \
            (lambda: model(images))
        run()
        encode_s = seconds_per_step(run, steps, dev)
    if family == "sam":  # frozen-encoder methods: decoder steps on stored encodings
        with torch.no_grad():
            encoded = model.encode(images)
        decoder_s = timed("decoder_only", cache=lambda m: _Stored(encoded))
    return {"backbone": backbone, "arch": str(bcfg["arch"]), "img_size": size,
            "device": dev.type, "device_name": device_name(dev), "train_s": round(train_s, 4),
            "encode_s": round(encode_s, 4), "decoder_s": round(decoder_s, 4), "steps": steps,
            "measured": dt.date.today().isoformat()}


def write_rows(rows: list[dict], table: Path = TABLE) -> None:
    """Merge ``rows`` into the table: a row replaces the one of its backbone, size and
    device; the file is rewritten through a temporary file and a rename."""
    old = []
    if table.is_file():
        with open(table, newline="") as f:
            old = list(csv.DictReader(f))
    key = lambda r: (r["backbone"], str(r["img_size"]), r["device"])  # noqa: E731
    new = {key(r): r for r in rows}
    merged = [r for r in old if key(r) not in new] + rows
    merged.sort(key=lambda r: (r["device"], r["backbone"], int(r["img_size"])))
    tmp = table.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows({c: r.get(c, "") for c in COLUMNS} for r in merged)
    tmp.replace(table)


def from_benchmarks(args: argparse.Namespace) -> int:
    """Rows from the Snakemake benchmark files of a finished run (samlora.study.measured)."""
    sys.path.insert(0, str(REPO / "src"))
    from samlora.config import load_config
    from samlora.study.measured import rows_from_benchmarks
    from samlora.study.studies import expand

    if not args.device_name:
        sys.exit("bench_cost.py: --from-benchmarks needs --device-name (the GPU or CPU the "
                 "jobs ran on), so the table says where its figures come from")
    studies = expand(load_config(args.params or [REPO / "params.yaml"]))
    table = []
    if args.table.is_file():
        with open(args.table, newline="") as f:
            table = list(csv.DictReader(f))
    rows, notes = rows_from_benchmarks(args.from_benchmarks, studies, args.device,
                                       args.device_name, table)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not rows:
        sys.exit(f"bench_cost.py: no benchmark file under {args.from_benchmarks} belongs to "
                 "a run of these studies")
    for row in rows:
        print(json.dumps(row), flush=True)
    write_rows(rows, args.table)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--only", nargs="+", default=list(DEFAULT), help="backbone:size")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # child: BACKBONE SIZE
    parser.add_argument("--from-benchmarks", type=Path, metavar="DIR",
                        help="instead of measuring: read the workflow's benchmark files "
                             "(logs/benchmarks) of the studies in --params")
    parser.add_argument("--params", type=Path, action="append",
                        help="with --from-benchmarks: params.yaml, then presets")
    parser.add_argument("--device", default="cuda", help="with --from-benchmarks: cuda, cpu")
    parser.add_argument("--device-name", default="",
                        help="with --from-benchmarks: the device the jobs ran on")
    args = parser.parse_args(argv)
    if args.one:
        json.dump(bench_one(args.one[0], int(args.one[1]), args.steps), sys.stdout)
        return 0
    if args.from_benchmarks:
        return from_benchmarks(args)
    rows = []
    for item in args.only:
        backbone, size = item.split(":")
        out = subprocess.run([sys.executable, __file__, "--one", backbone, size,
                              "--steps", str(args.steps)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    write_rows(rows, args.table)
    sys.path.insert(0, str(REPO / "src"))
    from samlora.utils.io import update_json

    update_json(args.out, {"step_times": {"table": str(args.table.relative_to(REPO))
                                          if args.table.is_relative_to(REPO) else
                                          str(args.table), "rows": rows}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
