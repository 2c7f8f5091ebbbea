# Evaluation: predict each test set at native resolution, score it in every evaluate.modes
# (ours inside the FOV, and each paper's way), aggregate per study in the study's modes.


rule predict_test_set:
    input:
        weights=f"{RUN_DIR}/adapter.safetensors",
        index="data/processed/{test_set}/index.csv",
    output:
        probs=directory(f"{RESULT_DIR}/probs"),
        done=f"{RESULT_DIR}/predictions.json",
    params:
        tracked=predict_params,
    log:
        "logs/predict_test_set/{run}/{test_set}.log",
    benchmark:
        "logs/benchmarks/predict_test_set/{run}/{test_set}.tsv"
    resources:
        attempt=attempt_number,
        mem_mb=8000,
    conda:
        "../../environment.yml"
    shell:
        logged("predict_test_set", offline=True)
        + "python -m samlora predict {PARAMS_ARGS} --run 'runs/{wildcards.run}' "
        "--test-set {wildcards.test_set} --out 'results/runs/{wildcards.run}/{wildcards.test_set}'"


rule evaluate_test_set:
    input:
        f"{RESULT_DIR}/predictions.json",
        "data/processed/{test_set}/index.csv",
    output:
        per_image=f"{RESULT_DIR}/metrics_per_image.csv",
        summary=f"{RESULT_DIR}/metrics.json",
    params:
        tracked=evaluate_params,
    log:
        "logs/evaluate_test_set/{run}/{test_set}.log",
    benchmark:
        "logs/benchmarks/evaluate_test_set/{run}/{test_set}.tsv"
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("evaluate_test_set")
        + "python -m samlora evaluate {PARAMS_ARGS} "
        "--pred 'results/runs/{wildcards.run}/{wildcards.test_set}' "
        "--test-set {wildcards.test_set}"


rule human_baseline:
    input:
        "data/processed/{test_set}/index.csv",
    output:
        "results/human/{test_set}/metrics_per_image.csv",
    params:
        tracked=evaluate_params,
    log:
        "logs/human_baseline/{test_set}.log",
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("human_baseline")
        + "python -m samlora human {PARAMS_ARGS} --test-set {wildcards.test_set} "
        "--out results/human/{wildcards.test_set}"


rule aggregate_study:
    input:
        lambda wildcards: study_metrics(wildcards.study),
    output:
        csv="results/{study}/summary.csv",
        json="results/{study}/metrics.json",
        comparisons="results/{study}/comparisons.csv",
    params:
        reference=lambda wildcards: STUDIES[wildcards.study].reference,
        modes=lambda wildcards: " ".join(STUDIES[wildcards.study].modes),
        tracked=lambda wildcards: tracked("evaluate.bootstrap"),
    log:
        "logs/aggregate_study/{study}.log",
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("aggregate_study")
        + "python -m samlora aggregate {PARAMS_ARGS} --inputs {input:q} "
        "--out-csv {output.csv} --out-json {output.json} --reference '{params.reference}' "
        "--comparisons {output.comparisons} --modes {params.modes}"


rule collect_metrics:
    input:
        expand("results/{study}/metrics.json", study=SELECTED),
    output:
        "results/metrics.json",
    log:
        "logs/collect_metrics.log",
    resources:
        attempt=attempt_number,
    conda:
        "../../environment.yml"
    shell:
        logged("collect_metrics")
        + "python -m samlora collect {PARAMS_ARGS} --inputs {input} --out {output}"
