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
    resources:
        attempt=attempt_number,
        mem_mb=16000,
        runtime=720,
    shell:
        LOGGED
        + "python -m samlora train {PARAMS_ARGS} --run-name '{wildcards.run}' "
        "--out 'runs/{wildcards.run}'"
