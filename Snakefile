# samlora workflow: download (datasets, checkpoints) -> prepare -> train -> predict ->
# evaluate -> aggregate -> report.
# Experiment values come from params.yaml (plus presets given with --configfile);
# cluster facts live in workflow/profiles/. Target rules have no wildcards; DVC calls them.
# `snakemake all` runs studies.enabled; `snakemake <study>` or `--config study=<name>` one.

configfile: "params.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    **WILDCARDS,


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    prepare_all,
    checkpoints_all,
    train_all,
    evaluate_all,
    report_all,
    download_dataset,
    fetch_checkpoint,
    aggregate_study,
    human_baseline,
    collect_metrics,
    render_report,
    report_index,


rule all:
    input:
        rules.report_all.input,
    default_target: True


rule prepare_all:
    input:
        expand("data/processed/{dataset}/index.csv", dataset=DATASETS),


rule checkpoints_all:
    input:
        sorted({checkpoint_path(r.backbone) for s in SELECTED for r in STUDIES[s].runs} - {None}),


rule train_all:
    input:
        [t for s in SELECTED for t in study_train_targets(s)],


rule evaluate_all:
    input:
        expand("results/{study}/summary.csv", study=SELECTED),
        "results/metrics.json",


# One target rule per study: `snakemake <study>` runs it alone.
for _study in STUDIES:

    rule:
        name:
            _study
        input:
            f"results/{_study}/summary.csv",
            study_reports(_study),

