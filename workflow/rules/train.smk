# Training: one job per method x train set x seed. GPU resources come from the profile.


rule train_model:
    input:
        "data/processed/{train_set}/index.csv",
        train_checkpoint,
    output:
        weights=f"{RUN_DIR}/adapter.safetensors",
    params:
        tracked=train_params,
        run_dir=RUN_DIR,
    log:
        "logs/train_model/{study}/{method}/{train_set}/seed{seed}.log",
    resources:
        mem_mb=16000,
        runtime=720,
    shell:
        "python -m samlora train {PARAMS_ARGS} --method {wildcards.method} "
        "--train-set {wildcards.train_set} --seed {wildcards.seed} --out {params.run_dir} "
        "> {log} 2>&1"
