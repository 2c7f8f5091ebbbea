# Reports: papermill renders each notebook template from the aggregated results.


rule render_report:
    input:
        notebook="notebooks/main_results.ipynb",
        summary="results/summary.csv",
        per_image=metrics_targets(),
        example=f"{example_result()}/predictions.json",
    output:
        ipynb="reports/main_results.ipynb",
        html="reports/main_results.html",
    params:
        tracked=lambda wildcards: tracked("report", "evaluate.threshold"),
        example_dir=example_result(),
    log:
        "logs/render_report/main_results.log",
    shell:
        "python -m samlora report {PARAMS_ARGS} --notebook {input.notebook} "
        "--summary {input.summary} --inputs {input.per_image} "
        "--example-run {params.example_dir} --out {output.ipynb} > {log} 2>&1"


rule report_all:
    input:
        "reports/main_results.ipynb",
        "reports/main_results.html",
