# Helpers shared by the rule files (config validation, the studies, tracked params).
# No rules here. The study layer (samlora.study) expands params.yaml's studies into RunSpecs;
# the rules only look runs up by name.
import json
import re
from pathlib import Path

from omegaconf import OmegaConf
from snakemake.utils import validate

from samlora.config import merge_files, param_files
from samlora.models.hub_weights import hub_source, manifest_path
from samlora.study.studies import all_runs, enabled_studies
from samlora.study.studies import expand as expand_studies


# `--config study=<name>` (or several, comma-separated) narrows `all` to those studies.
# Any other --config key would change Snakemake's view of the params but never reach the
# steps, which compose params.yaml and the --configfile presets: refused.
_OVERRIDES = sorted(k for k in getattr(getattr(workflow, "config_settings", None), "config",
                                       None) or {} if k != "study")
if _OVERRIDES:
    raise ValueError(
        f"--config {', '.join(_OVERRIDES)}: the steps read params.yaml and the --configfile "
        "presets only; put the value in a preset file (--configfile params.yaml my.yaml) or "
        "edit params.yaml (--config takes study=<name> alone)"
    )
STUDY_ARG = config.pop("study", None)


def given_param_files():
    """params.yaml, then any preset given with --configfile, in order."""
    base = Path("params.yaml").resolve()
    extra = [f for f in workflow.overwrite_configfiles if Path(f).resolve() != base]
    return ["params.yaml", *extra]


# The files the steps read: params.yaml, the presets its `preset` key names, then the
# --configfile presets. Snakemake read them as YAML 1.1 (PyYAML), where `lr: 1e-05`, as
# `dvc exp run -S` writes it, is a string; the config is read again from the same files as
# the steps read them (YAML 1.2, samlora.config), so both see the same values.
PARAM_FILES = [str(p) for p in param_files(given_param_files())]
config.clear()
config.update(OmegaConf.to_container(merge_files([Path(f) for f in PARAM_FILES])))
validate(config, schema="../schemas/params.schema.yaml")
# The rules and dvc.yaml name these folders; other values are for the CLI steps alone.
for _key, _fixed in (("raw_dir", "data/raw"), ("processed_dir", "data/processed")):
    if str(config["data"].get(_key, _fixed)).rstrip("/") != _fixed:
        raise ValueError(
            f"data.{_key}: {config['data'][_key]!r}; the workflow (rules and dvc.yaml) uses "
            f"{_fixed}: keep that value, or link {_fixed} to the folder you want"
        )

_CFG = OmegaConf.create(config)
STUDIES = expand_studies(_CFG)
SELECTED = str(STUDY_ARG).split(",") if STUDY_ARG else enabled_studies(_CFG)
for _name in SELECTED:
    if _name not in STUDIES:
        raise ValueError(f"--config study={_name}: unknown study; defined: {list(STUDIES)}")
RUNS = all_runs(STUDIES)
DATASETS = list(config["data"]["datasets"])
RUN_DIR = "runs/{run}"
RESULT_DIR = "results/runs/{run}/{test_set}"
#: Wildcard patterns of every rule (the Snakefile declares them after including this file).
WILDCARDS = {
    "dataset": "|".join(DATASETS),
    "test_set": "|".join(DATASETS),
    "run": "|".join(re.escape(r) for r in RUNS) or "(?!)",
    "study": "|".join(STUDIES) or "(?!)",
}

# Every rule's shell command starts with logged(<rule>): workflow/scripts/job-log.sh appends
# the command's stdout and stderr to the rule's log after a header line (UTC time, rule,
# Snakemake attempt, SLURM job id and restart count, host). Snakemake deletes a log before
# each attempt, on a --retries resubmission and when a requeued SLURM job starts over; the
# script keeps the earlier attempts in it (see the script). Each rule declares
# `attempt=attempt_number` among its resources: a shell command sees Snakemake's attempt
# number only through a resource function. The path is relative to the working folder,
# the repository root, where the Snakefile is.
def logged(rule_name, offline=False):
    """The shell prefix that runs a rule's command through job-log.sh (offline: with the
    Hugging Face libraries kept off the network)."""
    prefix = f"bash workflow/scripts/job-log.sh {{log:q}} {rule_name} {{resources.attempt}} "
    return prefix + (OFFLINE if offline else "")


# Jobs that build models (offline=True) read pretrained weights from models/pretrained
# only, which the fetch_checkpoint localrule fills on the submitting host. Compute nodes
# often have no internet, and no library may download behind the workflow's back.
OFFLINE = "env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "


def attempt_number(wildcards, attempt):
    """Snakemake's attempt of a job: 1, then 2, ... when --retries resubmits it."""
    return attempt


PARAMS_ARGS = " ".join(f"--params {f}" for f in PARAM_FILES)


def checkpoint_path(backbone):
    """The file fetch_checkpoint makes for a backbone (None: random weights, or a local
    folder). It is models/pretrained/<file> of the official checkpoint, or the manifest
    of a baseline's Hub weights."""
    hub = hub_source(config["backbones"][backbone], f"backbones.{backbone}")
    if hub is not None:
        return str(manifest_path(hub, Path("models/pretrained")))
    spec = config["backbones"][backbone].get("checkpoint")
    return f"models/pretrained/{spec['file']}" if spec else None


# what fetch_checkpoint makes (relative to models/pretrained) -> a backbone id that needs it
CHECKPOINT_BACKBONES = {
    str(Path(checkpoint_path(b)).relative_to("models/pretrained")): b
    for b in config["backbones"] if checkpoint_path(b)
}


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


def run_of(wildcards):
    return RUNS[wildcards.run]


def train_params(wildcards):
    """What defines a training run: its identity hash (method settings less evaluation-only
    prompts, backbone, train settings, train sets, target, seed)."""
    return run_of(wildcards).config_hash


def train_inputs(wildcards):
    """Every member's prepared index, and the backbone's checkpoint (if it has one)."""
    spec = run_of(wildcards)
    files = [f"data/processed/{d}/index.csv" for d in spec.train_sets]
    path = checkpoint_path(spec.backbone)
    return files + ([path] if path else [])


def predict_params(wildcards):
    """Prediction settings, and a prompted method's prompts block (which modes to predict)."""
    params = json.loads(tracked("evaluate.batch_size", "data.processed_dir"))
    prompts = run_of(wildcards).method_cfg.get("prompts")
    if prompts:
        params["prompts"] = prompts
    return json.dumps(params, sort_keys=True)


def evaluate_params(wildcards):
    return tracked("evaluate.threshold", "evaluate.metrics", "evaluate.modes", "evaluate.pixel_mm")


def result_dir(spec, test_set):
    return RESULT_DIR.format(run=spec.name, test_set=test_set)


def study_metrics(study):
    """Per-image tables of every (run, test set) a study reports, and the human baseline
    of its test sets that have a second annotator."""
    runs = [
        f"{result_dir(spec, test)}/metrics_per_image.csv"
        for spec, test in STUDIES[study].evaluations
    ]
    return runs + [f"results/human/{t}/metrics_per_image.csv" for t in STUDIES[study].human]


def study_train_targets(study):
    return [f"{RUN_DIR.format(run=r.name)}/adapter.safetensors" for r in STUDIES[study].runs]


def example_result(study):
    """The results folder whose test image a study's report shows: its last evaluation of
    its first run (a transfer test set where there is one)."""
    first = STUDIES[study].runs[0]
    tests = [t for spec, t in STUDIES[study].evaluations if spec == first]
    return result_dir(first, tests[-1])


def study_reports(study):
    return [
        f"reports/{study}/{name}.{ext}"
        for name in STUDIES[study].reports
        for ext in ("ipynb", "html")
    ]
