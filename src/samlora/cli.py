"""One command per workflow step; every Snakemake rule calls one of these.

Each step reads params.yaml (plus presets given with repeated ``--params``), takes Hydra
overrides as trailing ``key=value`` words, and writes its resolved config beside its outputs.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from samlora.config import ConfigError, load_config

log = logging.getLogger("samlora")

DEBUG_ENV = "SAMLORA_DEBUG"
#: Errors of bad input, missing files, downloads and the disk (exit code 2).
USER_ERRORS = (ConfigError, OSError, KeyError, ValueError, RuntimeError)

STEPS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}


def step(name: str, help_text: str) -> Callable:
    """Register ``run_<name>`` and its argument builder as a CLI step."""
    def wrap(add_args: Callable[[argparse.ArgumentParser], None]) -> Callable:
        STEPS[name] = (help_text, add_args)
        return add_args
    return wrap


@step("download", "fetch one dataset (mirror, official archive, or placed files)")
def _download_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)


@step("prepare", "convert one dataset to native-resolution PNGs + index.csv")
def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)


@step("datasets", "list every registered dataset: split counts, image sizes, label kinds, "
      "whether it is present, and where it came from")
def _datasets_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", action="append", help="dataset id (repeatable); default all")


@step("split", "draw a seeded train/test split once and write samlora/data/splits/<id>.json "
      "(refuses to overwrite)")
def _split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--root", type=Path,
                   help="the dataset's layout root (default: the mirror's folder, else the "
                        "root in data/raw/<id>/source.json, else data/raw/<id>)")
    p.add_argument("--splits-dir", type=Path, help="default: the package's splits folder")


@step("checkpoint", "download one backbone's official checkpoint into --models-dir, checked "
      "by size and SHA-256 (an existing file is verified, never trusted)")
def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True, help="a key of `backbones` in params.yaml")
    p.add_argument("--models-dir", type=Path, default=Path("models/pretrained"))


@step("train", "train one run of a study (--run-name), or one method on one dataset with one "
      "seed; resumes after a kill")
def _train_args(p: argparse.ArgumentParser) -> None:
    known = _known_values()
    p.add_argument("--run-name",
                   help="a run of a study in params.yaml, as `python -m samlora plan --runs` "
                        "lists it (instead of --method, --train-set and --seed)")
    p.add_argument("--method", help="a key of `methods` in params.yaml: " + known["methods"])
    p.add_argument("--train-set",
                   help="a prepared dataset id (data.datasets in params.yaml: "
                        f"{known['datasets']})")
    p.add_argument("--seed", type=int,
                   help=f"run seed; the studies in params.yaml use {known['seeds']}")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--models-dir", type=Path, default=Path("models/pretrained"))


@step("plan", "per study: training, prediction and evaluation jobs, which are shared with "
      "other studies, and the training images per run")
def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", action="append", help="study name (repeatable); default all")
    p.add_argument("--runs", action="store_true", help="also list every run by name")
    p.add_argument("--cost", action="store_true",
                   help="also estimate GPU-hours and disk per study and for all of them, "
                        "from the measured step times in benchmarks/step_times.csv")


@step("predict", "write probability maps of a trained run on a test set, at native size")
def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="run folder of the train step")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--test-set", help="a prepared dataset id (its test split)")
    source.add_argument("--images", type=Path,
                        help="a folder of unlabelled images (png, jpg, tif, gif, ppm, bmp…), "
                             "segmented prompt-free into probs/, masks/ (evaluate.threshold, "
                             "inside the FOV), fov/ and predictions.json")
    p.add_argument("--fov", type=Path, help="with --images: a folder of <stem> FOV masks "
                   "(default: computed with data.fov)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models-dir", type=Path, default=Path("models/pretrained"))


@step("evaluate", "metrics per image in each of evaluate.modes (ours: native size inside "
      "the FOV; topolora_ref and sam2lora_ref: each paper's code)")
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", type=Path, required=True, help="folder holding probs/")
    p.add_argument("--test-set", required=True)


@step("human", "score a test set's second annotator against the reference (the human "
      "baseline row of every summary)")
def _human_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test-set", required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for metrics_per_image.csv")


@step("aggregate", "summarise per-image metrics over images and seeds (mean ± std, 95 %% "
      "bootstrap CI) and compare each method with the study's reference")
def _aggregate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", help="method every other is compared with (Wilcoxon, Holm)")
    p.add_argument("--comparisons", type=Path, help="comparisons.csv to write (with --reference)")
    p.add_argument("--modes", nargs="+", help="evaluation modes kept (the study's "
                   "studies.<name>.modes); default every mode of the inputs")
    p.add_argument("--inputs", type=Path, nargs="+", required=True)
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-json", type=Path, required=True)


@step("collect", "merge every study's results/<study>/metrics.json into results/metrics.json")
def _collect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)


@step("report-index", "write reports/index.html linking every study's reports")
def _report_index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--studies", required=True, help="comma-separated study names")
    p.add_argument("--out", type=Path, required=True)


@step("report-partial", "render a study that is not complete yet from the runs it has so far "
      "(results/<study>/partial, reports/<study>/partial), each report listing what it lacks")
def _report_partial_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="a study of params.yaml")


@step("report", "render a notebook of tables and figures (papermill + HTML)")
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notebook", type=Path, required=True, help="template .ipynb")
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--inputs", type=Path, nargs="+", required=True,
                   help="metrics_per_image.csv files")
    p.add_argument("--example-run", type=Path, required=True,
                   help="results/<study>/<method>/<train>/seed<k>/<test> folder to show")
    p.add_argument("--out", type=Path, required=True, help="executed .ipynb (HTML beside it)")


@step("params", "print parameter counts of methods on their real-size backbones")
def _params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", action="append", help="method id (repeatable); default all")


@step("fidelity", "list every difference between samlora and each paper's reference code: "
      "paper text, code, our corrected value, the switch and its reference value")
def _fidelity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paper", choices=["TopoLoRA-SAM", "SAM2LoRA"], help="one paper only")
    p.add_argument("--markdown", action="store_true", help="as the README's markdown table")


@step("export", "merge a SAM / SAM 2 run's LoRA into the dense weights and write an "
      "official-layout checkpoint (SAM 2: memory modules from the base checkpoint or the "
      "seeded random init); the spatial adapter (no slot in either layout) goes to "
      "<out stem>.adapter.safetensors beside it")
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="run folder of the train step")
    p.add_argument("--out", type=Path, required=True,
                   help="checkpoint file (torch.save of a segment_anything state_dict; "
                   "SAM 2: of {'model': SAM2Base state_dict})")
    p.add_argument("--models-dir", type=Path, default=Path("models/pretrained"))


def _known_values(path: Path = Path("params.yaml")) -> dict[str, str]:
    """Methods, datasets and seeds of params.yaml, for ``--help`` (plain YAML, no checks)."""
    import yaml

    from samlora.config import REPO_ROOT

    for candidate in (path, REPO_ROOT / "params.yaml"):
        try:
            data = yaml.safe_load(Path(candidate).read_text())
            seeds = sorted({int(s) for k, v in data["studies"].items() if k != "enabled"
                            for s in (v.get("seeds") or [0])})
            return {"methods": ", ".join(data["methods"]),
                    "datasets": ", ".join(data["data"]["datasets"]),
                    "seeds": ", ".join(str(s) for s in seeds)}
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
    return {"methods": "(see params.yaml)", "datasets": "(see params.yaml)",
            "seeds": "(see params.yaml)"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m samlora", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, (help_text, add_args) in STEPS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--params", type=Path, action="append",
                       help="params file; repeat to add presets on top (default: params.yaml)")
        p.add_argument("--debug", action="store_true",
                       help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")
        add_args(p)
        p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. train.lr=3e-4")
    return parser


#: Steps that run a model: ``python -m samlora`` restarts them under ``train.allocator``.
MODEL_STEPS = ("train", "predict")


def main(argv: Sequence[str] | None = None, restart: bool | None = None) -> int:
    """Entry point of ``python -m samlora`` and the ``samlora`` command; returns the
    process exit code.

    ``restart`` (default: when ``argv`` is None, i.e. the process's own command line): a
    step of :data:`MODEL_STEPS` first restarts the process under the memory allocator of
    ``train.allocator`` (:mod:`samlora.utils.allocator`). A call with an explicit ``argv``
    (a test, another program) runs in the calling process as it is.

    Every error a user can cause (bad params, missing or broken files, downloads, a full
    or read-only disk) is logged as one line naming the file or key and exits with 2; an
    unexpected error is one line too, with exit code 1. ``--debug`` or ``SAMLORA_DEBUG=1``
    shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        cfg = load_config(args.params or [Path("params.yaml")], args.overrides)
        if (argv is None if restart is None else restart) and args.step in MODEL_STEPS:
            from samlora.utils.allocator import restart_with

            restart_with(str(cfg.train.get("allocator", "auto")),
                         sys.argv[1:] if argv is None else list(argv))
        from samlora import steps

        getattr(steps, f"run_{args.step.replace('-', '_')}")(cfg, args)
    except USER_ERRORS as err:
        if debug:
            raise
        first, _, details = describe_error(err).partition("\n")
        log.error("%s", first)
        if details:  # listings (missing files, the expected layout) follow the one line
            log.info("details:\n%s", details)
        return 2
    except Exception as err:  # a defect of samlora, not of the input: still one line
        if debug:
            raise
        log.error("unexpected %s: %s (rerun with --debug for the traceback, and please report "
                  "it)", type(err).__name__, describe_error(err).partition("\n")[0])
        return 1
    return 0


def describe_error(err: BaseException) -> str:
    """One line for ``err``: its message, or for an OS error the file and what to do."""
    if isinstance(err, OSError) and err.filename and err.errno in _OS_HINTS:
        return f"{err.filename}: {err.strerror}; {_OS_HINTS[err.errno]}"
    if isinstance(err, OSError) and err.filename and str(err).startswith("[Errno"):
        return f"{err.filename}: {err.strerror}"
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space there (or point the step's output elsewhere) "
                  "and run the step again",
    errno.EDQUOT: "the disk quota is exceeded: free space (or point the output elsewhere) and "
                  "run the step again",
    errno.EROFS: "the file system is read-only: choose a writable folder for the outputs",
    errno.EACCES: "permission denied: make the folder writable for you, or choose another",
    errno.EPERM: "operation not permitted: make the folder writable for you, or choose another",
}
