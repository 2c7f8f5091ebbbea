"""The body of each CLI step: parse nothing, call the library, save the resolved config."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig

from samlora.config import save_config, select

log = logging.getLogger(__name__)


def _mirror(cfg: DictConfig) -> Path | None:
    return Path(cfg.data.mirror) if cfg.data.mirror else None


def run_download(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.data.download import fetch_dataset

    root = fetch_dataset(args.dataset, Path(cfg.data.raw_dir), _mirror(cfg),
                         lock_file=Path("data/checksums.lock.json"))
    log.info("%s: official layout at %s", args.dataset, root)


def run_prepare(cfg: DictConfig, args: argparse.Namespace) -> None:
    import json

    from samlora.data.prepare import prepare_dataset

    source = Path(cfg.data.raw_dir) / args.dataset / "source.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: missing; run the download step for {args.dataset}")
    root = Path(json.loads(source.read_text())["root"])
    out = Path(cfg.data.processed_dir) / args.dataset
    save_config(select(cfg, ["data.fov"]) | {"dataset": args.dataset, "source_root": str(root)},
                out / "prepare_config.yaml")
    index = prepare_dataset(args.dataset, root, out, cfg.data.fov)
    log.info("%s: %s", args.dataset, index["split"].value_counts().to_dict())


def run_train(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.training.loop import train_run

    if args.method not in cfg.methods:
        raise KeyError(f"unknown method '{args.method}'; params.yaml defines {list(cfg.methods)}")
    train_run(cfg, args.method, args.train_set, args.seed, args.out, args.models_dir)


def run_predict(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.evaluation.predict import predict_dataset

    save_config(select(cfg, ["evaluate"]) | {"run": str(args.run), "test_set": args.test_set},
                args.out / "predict_config.yaml")
    predict_dataset(args.run, Path(cfg.data.processed_dir) / args.test_set, args.out,
                    args.models_dir, batch_size=cfg.evaluate.batch_size,
                    device=cfg.train.device)


def run_evaluate(cfg: DictConfig, args: argparse.Namespace) -> None:
    import json

    from samlora.evaluation.evaluate import evaluate_predictions

    pred = json.loads((args.pred / "predictions.json").read_text())
    train_set = Path(pred["run"]).parent.name
    meta = {"method": pred["method"], "train_set": train_set, "test_set": args.test_set,
            "seed": str(pred["seed"])}
    save_config(select(cfg, ["evaluate"]) | meta, args.pred / "evaluate_config.yaml")
    evaluate_predictions(Path(cfg.data.processed_dir) / args.test_set, args.pred / "probs",
                         args.pred, cfg.evaluate.threshold, list(cfg.evaluate.metrics), meta)


def run_aggregate(cfg: DictConfig, args: argparse.Namespace) -> None:
    from samlora.evaluation.aggregate import aggregate

    summary = aggregate(args.inputs, args.out_csv, args.out_json)
    log.info("summary of %d rows written to %s", len(summary), args.out_csv)


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

    table = params_table(cfg, methods=args.method)
    sys.stdout.write(table.to_string(index=False) + "\n")
