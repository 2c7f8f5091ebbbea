# Data: fetch each dataset (mirror, official archive, or files placed after registration),
# then convert it to PNGs (native size or data.resolution) + index.csv. A dataset that
# needs registration fails its download job with a message saying where to get it and
# where to put it; `snakemake --keep-going prepare_all` carries on with the others.


rule download_dataset:
    output:
        "data/raw/{dataset}/source.json",
    params:
        tracked=lambda wildcards: tracked("data.mirror", "data.raw_dir", "data.allow_subset"),
    log:
        "logs/download_dataset/{dataset}.log",
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("download_dataset")
        + "python -m samlora download {PARAMS_ARGS} --dataset {wildcards.dataset}"


rule prepare_dataset:
    input:
        "data/raw/{dataset}/source.json",
    output:
        "data/processed/{dataset}/index.csv",
    params:
        tracked=lambda wildcards: tracked(
            "data.fov",
            "data.processed_dir",
            "data.soft_maps",
            "data.reference",
            "data.resolution",
            "data.allow_subset",
        ),
        split_variant=lambda wildcards: split_variant(wildcards.dataset),
    log:
        "logs/prepare_dataset/{dataset}.log",
    resources:
        attempt=attempt_number,
        mem_mb=4000,
    conda:
        "../../environment.yml"
    shell:
        logged("prepare_dataset")
        + "python -m samlora prepare {PARAMS_ARGS} --dataset {wildcards.dataset}"
