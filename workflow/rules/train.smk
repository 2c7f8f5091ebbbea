# Training: one job per run (a RunSpec), shared by every study that needs it. GPU resources
# come from the profile.


rule train_model:
    input:
        train_inputs,
    output:
        weights=f"{RUN_DIR}/adapter.safetensors",
    params:
        tracked=train_params,
    log:
        "logs/train_model/{run}.log",
    benchmark:
        "logs/benchmarks/train_model/{run}.tsv"
    resources:
        attempt=attempt_number,
        mem_mb=16000,
        runtime=720,
    conda:
        "../../environment.yml"
    shell:
        logged("train_model", offline=True)
        + "python -m samlora train {PARAMS_ARGS} --run-name '{wildcards.run}' "
        "--out 'runs/{wildcards.run}'"
