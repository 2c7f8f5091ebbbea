# samlora workflow: download (datasets, checkpoints) -> prepare -> train -> predict ->
# evaluate -> aggregate -> report.
# Experiment values come from params.yaml (plus presets given with --configfile);
# cluster facts live in workflow/profiles/. Target rules have no wildcards; DVC calls them.

configfile: "params.yaml"


include: "workflow/rules/common.smk"
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
    aggregate_results,
    render_report,


rule all:
    input:
        rules.report_all.input,
    default_target: True


rule prepare_all:
    input:
        expand("data/processed/{dataset}/index.csv", dataset=DATASETS),


rule checkpoints_all:
    input:
        sorted(
            {checkpoint_path(config["methods"][m]["backbone"]) for m in METHODS} - {None}
        ),


rule train_all:
    input:
        train_targets(),


rule evaluate_all:
    input:
        "results/summary.csv",
        "results/metrics.json",
