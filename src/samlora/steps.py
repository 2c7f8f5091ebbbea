"""The body of each CLI step: parse nothing, call the library, save the resolved config."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from samlora.config import save_config, select

log = logging.getLogger(__name__)


def _mirror(cfg: DictConfig) -> Path | None:
    return Path(cfg.data.mirror) if cfg.data.mirror else None


def run_download(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.data.download import fetch_dataset, lock_file_path

    root = fetch_dataset(args.dataset, Path(cfg.data.raw_dir), _mirror(cfg),
                         lock_file=lock_file_path(),
                         allow_subset=bool(cfg.data.get("allow_subset", False)))
    log.info("%s: official layout at %s", args.dataset, root)


def run_prepare(cfg: DictConfig, args: argparse.Namespace) -> None:
    import json

    from samlora.data.labels import LabelOptions
    from samlora.data.policy import PreparePolicy
    from samlora.data.prepare import prepare_dataset

    from samlora.data.registry import get_dataset

    get_dataset(args.dataset)  # an unknown id: say so before looking for its files
    source = Path(cfg.data.raw_dir) / args.dataset / "source.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: missing; run the download step for {args.dataset}")
    try:
        root = Path(json.loads(source.read_text())["root"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{source}: not a valid source record ({type(err).__name__}: {err}); "
                         f"delete it and run the download step for {args.dataset} again") \
            from None
    out = Path(cfg.data.processed_dir) / args.dataset
    options = LabelOptions(soft_maps=str(cfg.data.get("soft_maps", "majority")))
    policy = PreparePolicy.from_config(cfg.data, args.dataset)
    index = prepare_dataset(args.dataset, root, out, cfg.data.fov, options=options,
                            policy=policy)
    save_config(select(cfg, ["data.fov"]) | {"dataset": args.dataset, "source_root": str(root),
                                             "soft_maps": options.soft_maps,
                                             "allow_subset": policy.allow_subset,
                                             **policy.info()},
                out / "prepare_config.yaml")
    log.info("%s: %s", args.dataset, index["split"].value_counts().to_dict())


def run_datasets(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.data.catalog import catalogue

    table = catalogue(Path(cfg.data.raw_dir), Path(cfg.data.processed_dir), _mirror(cfg),
                      args.dataset)
    sys.stdout.write(table.to_string(index=False) + "\n")


def run_split(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.data.layout import scan_root
    from samlora.data.registry import get_dataset
    from samlora.data.split_files import split_path, write_seeded_split

    path = split_path(args.dataset, args.splits_dir)
    if path.exists():  # checked before scanning the data
        raise FileExistsError(f"split file {path} already exists; splits are drawn once and "
                              "never redrawn (delete it yourself to draw a new one)")
    spec = get_dataset(args.dataset)
    root = scan_root(spec, Path(cfg.data.raw_dir), _mirror(cfg)) if args.root is None \
        else args.root
    if spec.scan is None:
        raise ValueError(f"{args.dataset}: its split is official or conventional and "
                         "committed with the package; nothing to draw")
    cases = spec.scan(Path(root))
    if not cases:
        raise FileNotFoundError(f"{args.dataset}: no case found under {root}")
    written = write_seeded_split(args.dataset, cases, args.seed, args.test_fraction,
                                 splits_dir=args.splits_dir)
    sys.stdout.write(f"{written}\n")


def run_checkpoint(cfg: DictConfig, args: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from samlora.models.checkpoints import fetch_checkpoint
    from samlora.models.hub_weights import fetch_hub_weights, hub_source

    if args.backbone not in cfg.backbones:
        raise KeyError(f"unknown backbone '{args.backbone}'; params.yaml defines "
                       f"{sorted(cfg.backbones)}")
    backbone = OmegaConf.to_container(cfg.backbones[args.backbone], resolve=True)
    hub = hub_source(backbone, f"backbones.{args.backbone}")
    if hub is not None:  # a baseline's Hub weights
        folder = fetch_hub_weights(hub, args.models_dir)
        log.info("%s: pretrained weights verified in %s", args.backbone, folder)
        return
    spec = cfg.backbones[args.backbone].get("checkpoint")
    if not spec:
        raise ValueError(f"backbones.{args.backbone}: no checkpoint and no Hub weights to "
                         f"fetch (random weights, or a local pretrained folder)")
    path = fetch_checkpoint(OmegaConf.to_container(spec, resolve=True), args.models_dir)
    log.info("%s: checkpoint verified at %s", args.backbone, path)


def run_train(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.study.studies import find_run, single_run
    from samlora.training.loop import train_spec
    from samlora.utils.cpus import use_allocated_cpus

    use_allocated_cpus()
    if args.run_name:
        spec = find_run(cfg, args.run_name)
    else:
        missing = [f"--{k.replace('_', '-')}" for k in ("method", "train_set", "seed")
                   if getattr(args, k) is None]
        if missing:
            raise ValueError(f"train: give --run-name, or all of --method, --train-set and "
                             f"--seed (missing {' '.join(missing)})")
        spec = single_run(cfg, args.method, args.train_set, args.seed)
    train_spec(spec, args.out, args.models_dir)


def run_plan(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.study.plan import plan_table, run_table
    from samlora.study.studies import check_datasets, expand

    studies = expand(cfg)
    chosen = args.study or [str(s) for s in cfg.studies.enabled]
    unknown = [s for s in chosen if s not in studies]
    if unknown:
        raise KeyError(f"unknown study {unknown[0]!r}; params.yaml defines {list(studies)}")
    check_datasets(cfg, {n: studies[n] for n in chosen})
    sys.stdout.write(plan_table(studies, chosen).to_string(index=False) + "\n")
    if args.runs:
        sys.stdout.write("\n" + run_table(studies, chosen).to_string(index=False) + "\n")
    if getattr(args, "cost", False):
        from samlora.study.cost import STEP_TIMES, cost_table

        table = cost_table(studies, chosen)
        sys.stdout.write("\nestimated cost: hours on "
                         + "; ".join(table.attrs["devices"])
                         + f" (per-image step times from {STEP_TIMES.name}; `make bench` "
                         "refreshes them, a GPU's figures are used where measured)\n"
                         + table.to_string(index=False) + "\n")


def _current_prompts(cfg: DictConfig, run: Path) -> dict | None:
    """The run's method's ``prompts`` block as params.yaml has it now ({} = prompt-free);
    None when params.yaml no longer defines the method (the run's own block is used)."""
    from omegaconf import OmegaConf

    from samlora.evaluation.predict import read_run_config

    method = read_run_config(run)["method"]
    if method not in cfg.methods:
        return None
    block = cfg.methods[method].get("prompts")
    return OmegaConf.to_container(block, resolve=True) if block else {}


def run_predict(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.data.registry import get_dataset
    from samlora.evaluation.predict import predict_dataset
    from samlora.utils.cpus import use_allocated_cpus

    use_allocated_cpus()
    if getattr(args, "images", None) is not None:  # a folder of unlabelled images
        from samlora.evaluation.predict_images import predict_images

        predict_images(args.run, args.images, args.out, args.models_dir, cfg.data.fov,
                       float(cfg.evaluate.threshold), fov_dir=args.fov, device=cfg.train.device,
                       config=select(cfg, ["evaluate.threshold", "data.fov"])
                       | {"run": str(args.run), "images": str(args.images),
                          "fov_dir": None if args.fov is None else str(args.fov)})
        return
    if getattr(args, "fov", None) is not None:
        raise ValueError("predict: --fov goes with --images (a test set has its FOV masks)")
    get_dataset(args.test_set)  # an unknown id: say so before anything is loaded
    prompts = _current_prompts(cfg, args.run)
    predict_dataset(args.run, Path(cfg.data.processed_dir) / args.test_set, args.out,
                    args.models_dir, batch_size=cfg.evaluate.batch_size,
                    device=cfg.train.device, prompts_cfg=prompts,
                    config=select(cfg, ["evaluate"]) | {"run": str(args.run),
                                                        "test_set": args.test_set,
                                                        "prompts": prompts})


def run_evaluate(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.evaluation.evaluate import evaluate_predictions, read_predictions
    from samlora.study.runspec import label_kind

    pred = read_predictions(args.pred)
    meta = {"method": pred["method"], "train_set": pred["train_set"],
            "test_set": args.test_set, "seed": str(pred["seed"])}
    config = select(cfg, ["evaluate"]) | meta
    modes = pred.get("prompt_modes", ["none"])
    scoring = {"modes": [str(m) for m in cfg.evaluate.get("modes", ["native_fov"])],
               "pixel_mm": (cfg.evaluate.get("pixel_mm") or {}).get(args.test_set)}
    if list(modes) != ["none"]:  # a prompted method: one evaluation per mode
        from samlora.evaluation.prompt_modes import evaluate_prompt_modes

        evaluate_prompt_modes(Path(cfg.data.processed_dir) / args.test_set, args.pred,
                              cfg.evaluate.threshold, list(cfg.evaluate.metrics), meta, modes,
                              label=label_kind(args.test_set, pred.get("target")),
                              config=config, eval_modes=scoring["modes"],
                              pixel_mm=scoring["pixel_mm"])
        return
    evaluate_predictions(Path(cfg.data.processed_dir) / args.test_set, args.pred / "probs",
                         args.pred, cfg.evaluate.threshold, list(cfg.evaluate.metrics), meta,
                         label=label_kind(args.test_set, pred.get("target")), config=config,
                         **scoring)


def run_aggregate(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.evaluation.aggregate import aggregate

    summary = aggregate(args.inputs, args.out_csv, args.out_json,
                        n_resamples=int(cfg.evaluate.get("bootstrap", 1000)), modes=args.modes,
                        native_metrics=list(cfg.evaluate.metrics))
    log.info("summary of %d rows written to %s", len(summary), args.out_csv)
    if args.comparisons is not None:
        from samlora.evaluation.aggregate import write_comparisons

        if not args.reference:
            raise ValueError("aggregate: --comparisons needs --reference (the study's method "
                             "to compare with; studies.<name>.reference in params.yaml)")
        table = write_comparisons(args.inputs, args.reference, args.comparisons,
                                  modes=args.modes)
        log.info("%d paired comparisons with %s written to %s", len(table), args.reference,
                 args.comparisons)


def run_human(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.data.registry import get_dataset
    from samlora.evaluation.evaluate import PER_IMAGE_CSV
    from samlora.evaluation.human import human_per_image
    from samlora.utils.io import atomic_path

    get_dataset(args.test_set)
    table = human_per_image(Path(cfg.data.processed_dir) / args.test_set,
                            list(cfg.evaluate.metrics), float(cfg.evaluate.threshold),
                            modes=[str(m) for m in cfg.evaluate.get("modes", ["native_fov"])])
    with atomic_path(Path(args.out) / PER_IMAGE_CSV) as tmp:
        table.to_csv(tmp, index=False)
    log.info("%s: human baseline on %d test case(s)", args.test_set, len(table))


def run_collect(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.reporting.index import collect_metrics

    merged = collect_metrics(args.inputs, args.out)
    log.info("metrics of %d studies written to %s", len(merged), args.out)


def run_report_index(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.reporting.index import write_index
    from samlora.study.studies import expand

    names = [s for s in args.studies.split(",") if s]
    write_index(expand(cfg, names), args.out)


def run_report_partial(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.reporting.partial import render_partial
    from samlora.study.studies import expand

    studies = expand(cfg)
    if args.study not in studies:
        raise KeyError(f"unknown study {args.study!r}; params.yaml defines {list(studies)}")
    render_partial(cfg, studies[args.study])


def run_report(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.reporting.render import render_notebook

    parameters = {
        "summary_csv": str(args.summary.resolve()),
        "per_image_csvs": [str(p.resolve()) for p in args.inputs],
        "processed_root": str(Path(cfg.data.processed_dir).resolve()),
        "example_run": str(args.example_run.resolve()),
        "example_case": cfg.report.example_case,
        "threshold": float(cfg.evaluate.threshold),
        "figures_dir": str((args.out.parent / "figures").resolve()),
        "tables_dir": str((args.out.parent / "tables").resolve()),
    }
    save_config(select(cfg, ["report", "evaluate.threshold"]),
                args.out.with_name(args.out.stem + "_config.yaml"))
    render_notebook(args.notebook, args.out, args.out.with_suffix(".html"), parameters)


def run_params(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.models.params_table import params_table
    from samlora.study.studies import sweep_variants

    plain = cfg
    variants = {} if args.method else sweep_variants(cfg)
    if variants:  # sweep values that change the model (LoRA rank, placement), as methods
        cfg = OmegaConf.merge(cfg, {"methods": variants})
    table = params_table(cfg, methods=args.method)
    sys.stdout.write(table.to_string(index=False) + "\n")
    if not args.method:
        from samlora.models.params_table import ADAPTER_NOTE, adapter_budgets

        sys.stdout.write("\nspatial adapter at 256 channels\n"
                         + adapter_budgets().to_string(index=False) + "\n" + ADAPTER_NOTE + "\n")
        from samlora.models.params_table import litemedsam_table, rank_ladder

        sys.stdout.write("\nthe SAM methods on LiteMedSAM (TinyViT, 256 px; the CPU demo's "
                         "pretrained backbone)\n"
                         + litemedsam_table(plain).to_string(index=False) + "\n")

        sys.stdout.write("\nSAM2LoRA's rank ladder on Hiera-L (LoRA on trunk qkv + decoder "
                         "attention; the paper's '< 5 %' holds up to r = 64)\n"
                         + rank_ladder().to_string(index=False) + "\n")


def run_fidelity(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.fidelity import markdown_table, table_rows

    if args.markdown:
        sys.stdout.write(markdown_table(args.paper) + "\n")
        return
    import pandas as pd

    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        sys.stdout.write(pd.DataFrame(table_rows(args.paper)).to_string(index=False) + "\n")


def run_export(cfg: DictConfig, args: argparse.Namespace) -> None:
    import torch

    from samlora.evaluation.predict import load_run
    from samlora.models.export import export_sam

    model, rc = load_run(args.run, args.models_dir, torch.device("cpu"))
    record = {"run": str(args.run), "method": rc["method"]}
    if rc["backbone_cfg"].get("family") == "sam2":
        from samlora.models.export_sam2 import export_sam2, run_base

        base, record["memory_modules"] = run_base(rc, args.models_dir)
        written = export_sam2(model, base, args.out)
    else:
        written = export_sam(model, args.out)
    save_config({**record, "files": {k: str(v) for k, v in written.items()}},
                args.out.with_name(args.out.stem + ".export.yaml"))
    for kind, path in written.items():
        sys.stdout.write(f"{kind}: {path}\n")
