# Reports: papermill renders each study's notebook templates from its own results, and an
# index links every study's reports.


rule render_report:
    input:
        notebook="notebooks/{report}.ipynb",
        summary="results/{study}/summary.csv",
        per_image=lambda wildcards: study_metrics(wildcards.study),
        example=lambda wildcards: f"{example_result(wildcards.study)}/predictions.json",
    output:
        ipynb="reports/{study}/{report}.ipynb",
        html=report("reports/{study}/{report}.html", category="Reports",
                    subcategory="{study}", labels={"study": "{study}", "report": "{report}"}),
    params:
        tracked=lambda wildcards: tracked("report", "evaluate.threshold"),
        example_dir=lambda wildcards: example_result(wildcards.study),
    log:
        "logs/render_report/{study}/{report}.log",
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("render_report")
        + "python -m samlora report {PARAMS_ARGS} --notebook {input.notebook} "
        "--summary {input.summary} --inputs {input.per_image:q} "
        "--example-run '{params.example_dir}' --out {output.ipynb}"


rule report_index:
    input:
        [f for s in SELECTED for f in study_reports(s)],
    output:
        report("reports/index.html", category="Index",
               labels={"page": "every study and report"}),
    params:
        studies=",".join(SELECTED),
    log:
        "logs/report_index.log",
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("report_index")
        + "python -m samlora report-index {PARAMS_ARGS} --studies {params.studies} "
        "--out {output}"


rule report_all:
    input:
        "reports/index.html",
        "results/metrics.json",
