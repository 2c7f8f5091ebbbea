# Official backbone checkpoints: fetched once per file, checked by size and SHA-256, and
# shared by every training run on that backbone. A localrule: on a cluster it runs on the
# submitting host, which has internet access where GPU nodes often do not.
import re


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
    conda:
        "../../environment.yml"
    shell:
        logged("fetch_checkpoint")
        + "python -m samlora checkpoint {PARAMS_ARGS} --backbone {params.backbone} "
        "--models-dir models/pretrained"
