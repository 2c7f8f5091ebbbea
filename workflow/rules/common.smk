# Helpers shared by every rule file: config validation, id lists, tracked params, paths.
# No rules here.
import json
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/params.schema.yaml")

STUDY = config["study"]["name"]
METHODS = list(config["study"]["methods"])
SEEDS = [int(s) for s in config["study"]["seeds"]]
PROTOCOLS = list(config["study"]["protocols"])
DATASETS = list(config["data"]["datasets"])
TRAIN_SETS = sorted({p["train"] for p in PROTOCOLS})
# (train set, test set) pairs of the study grid; one training run serves all its test sets
PAIRS = sorted({(p["train"], t) for p in PROTOCOLS for t in p["test"]})
RUN_DIR = "runs/{study}/{method}/{train_set}/seed{seed}"
RESULT_DIR = "results/{study}/{method}/{train_set}/seed{seed}/{test_set}"


wildcard_constraints:
    study=STUDY,
    dataset="|".join(DATASETS),
    train_set="|".join(TRAIN_SETS),
    test_set="|".join(DATASETS),
    method="|".join(METHODS),
    seed=r"\d+",


def param_files():
    """params.yaml, then any preset given with --configfile, in order."""
    base = Path("params.yaml").resolve()
    extra = [f for f in workflow.overwrite_configfiles if Path(f).resolve() != base]
    return ["params.yaml", *extra]


PARAMS_ARGS = " ".join(f"--params {f}" for f in param_files())


def tracked(*keys):
    """JSON of the config sections a job reads: Snakemake reruns the job when they change."""
    out = {}
    for key in keys:
        node = config
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return json.dumps(out, sort_keys=True)


def split_variant(dataset):
    """JSON of the split-file variant data.split_variants picks for one dataset (null = the
    file's own split): a change reruns that dataset's prepare job only."""
    return json.dumps((config["data"].get("split_variants") or {}).get(dataset))


# prompt settings read only at evaluation: editing them reruns predict, not train
EVAL_PROMPT_KEYS = ("eval_modes", "eval_seed")


def train_params(wildcards):
    """What defines a training run: its method (less its evaluation-only prompt settings),
    that method's backbone, train settings."""
    method = config["methods"][wildcards.method]
    params = json.loads(
        tracked(
            f"methods.{wildcards.method}",
            f"backbones.{method['backbone']}",
            "train",
            "data.processed_dir",
        )
    )
    prompts = method.get("prompts")
    if prompts:
        params[f"methods.{wildcards.method}"]["prompts"] = {
            k: v for k, v in prompts.items() if k not in EVAL_PROMPT_KEYS
        }
    return json.dumps(params, sort_keys=True)


def predict_params(wildcards):
    """Prediction settings, and a prompted method's prompts block (which modes to predict)."""
    params = json.loads(tracked("evaluate.batch_size", "data.processed_dir"))
    prompts = config["methods"][wildcards.method].get("prompts")
    if prompts:
        params["prompts"] = prompts
    return json.dumps(params, sort_keys=True)


def evaluate_params(wildcards):
    return tracked("evaluate.threshold", "evaluate.metrics")


def train_targets():
    return [
        f"{RUN_DIR}/adapter.safetensors".format(
            study=STUDY, method=m, train_set=t, seed=s
        )
        for m in METHODS
        for t in TRAIN_SETS
        for s in SEEDS
    ]


def metrics_targets():
    return [
        f"{RESULT_DIR}/metrics_per_image.csv".format(
            study=STUDY, method=m, train_set=tr, seed=s, test_set=te
        )
        for m in METHODS
        for (tr, te) in PAIRS
        for s in SEEDS
    ]


def example_result():
    """The results folder whose test image the report shows: first method, seed, pair."""
    tr, te = PAIRS[-1] if len(PAIRS) > 1 else PAIRS[0]
    return RESULT_DIR.format(
        study=STUDY, method=METHODS[0], train_set=tr, seed=SEEDS[0], test_set=te
    )
