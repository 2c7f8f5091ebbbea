# Evaluation: predict each test set at native resolution, score inside the FOV, aggregate.


rule predict_test_set:
    input:
        weights=f"{RUN_DIR}/adapter.safetensors",
        index="data/processed/{test_set}/index.csv",
    output:
        probs=directory(f"{RESULT_DIR}/probs"),
        done=f"{RESULT_DIR}/predictions.json",
    params:
        tracked=predict_params,
        run_dir=RUN_DIR,
        out_dir=RESULT_DIR,
    log:
        "logs/predict_test_set/{study}/{method}/{train_set}/seed{seed}/{test_set}.log",
    resources:
        mem_mb=8000,
    shell:
        "python -m samlora predict {PARAMS_ARGS} --run {params.run_dir} "
        "--test-set {wildcards.test_set} --out {params.out_dir} > {log} 2>&1"


rule evaluate_test_set:
    input:
        f"{RESULT_DIR}/predictions.json",
        "data/processed/{test_set}/index.csv",
    output:
        per_image=f"{RESULT_DIR}/metrics_per_image.csv",
        summary=f"{RESULT_DIR}/metrics.json",
    params:
        tracked=evaluate_params,
        out_dir=RESULT_DIR,
    log:
        "logs/evaluate_test_set/{study}/{method}/{train_set}/seed{seed}/{test_set}.log",
    shell:
        "python -m samlora evaluate {PARAMS_ARGS} --pred {params.out_dir} "
        "--test-set {wildcards.test_set} > {log} 2>&1"


rule aggregate_results:
    input:
        metrics_targets(),
    output:
        csv="results/summary.csv",
        json="results/metrics.json",
    log:
        "logs/aggregate_results.log",
    shell:
        "python -m samlora aggregate {PARAMS_ARGS} --inputs {input} "
        "--out-csv {output.csv} --out-json {output.json} > {log} 2>&1"
