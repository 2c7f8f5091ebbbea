# Official backbone checkpoints: fetched once per file, checked by size and SHA-256, and
# shared by every training run on that backbone. A localrule: on a cluster it runs on the
# submitting host, which has internet access where GPU nodes often do not.
import re


def checkpoint_path(backbone):
    """models/pretrained/<file> of a backbone's official checkpoint, or None (random weights)."""
    spec = config["backbones"][backbone].get("checkpoint")
    return f"models/pretrained/{spec['file']}" if spec else None


# checkpoint file name -> backbone id, for every backbone that has one
CHECKPOINT_BACKBONES = {
    Path(checkpoint_path(b)).name: b for b in config["backbones"] if checkpoint_path(b)
}


rule fetch_checkpoint:
    output:
        "models/pretrained/{ckpt}",
    wildcard_constraints:
        ckpt="|".join(re.escape(f) for f in CHECKPOINT_BACKBONES) or "(?!)",
    params:
        backbone=lambda wildcards: CHECKPOINT_BACKBONES[wildcards.ckpt],
    log:
        "logs/fetch_checkpoint/{ckpt}.log",
    resources:
        attempt=attempt_number,
    shell:
        LOGGED
        + "python -m samlora checkpoint {PARAMS_ARGS} --backbone {params.backbone} "
        "--models-dir models/pretrained"
