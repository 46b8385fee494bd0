# Training: the four deep models (one rule, model and sequence length as wildcards) and the
# XGBoost benchmark. Run folders: models/{model}/L{length}/ with the model file, metrics.csv,
# run.json and (deep models) scaler.json and checkpoints/ (kept between attempts: a killed
# training resumes from its last epoch).


rule train_deep:
    input:
        samples=run_path("samples", "samples.zarr"),
    output:
        model=run_path("models", "{model}", "L{length}", "model.pt"),
        metrics=run_path("models", "{model}", "L{length}", "metrics.csv"),
        run=run_path("models", "{model}", "L{length}", "run.json"),
        scaler=run_path("models", "{model}", "L{length}", "scaler.json"),
    log:
        log_path("train_{model}_L{length}"),
    benchmark:
        benchmark_path("train_{model}_L{length}")
    wildcard_constraints:
        model="|".join(DEEP_MODELS),
        length=r"\d+",
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("train_deep")
    resources:
        mem_mb=request_mem_mb("train_deep"),
        runtime=request_runtime("train_deep"),
        gpu=config["hpc"]["gpus_per_job"],
    params:
        code=code_version("train_deep"),
        hyperparameters=lambda wildcards: config["models"][wildcards.model],
        training=config["training"],
        seed=config["seed"],
    message:
        "Train {wildcards.model} with sequences of {wildcards.length} days [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/train_deep.py"


rule train_xgboost:
    input:
        samples=run_path("samples", "samples.zarr"),
    output:
        model=run_path("models", "xgboost", "L{length}", "model.ubj"),
        metrics=run_path("models", "xgboost", "L{length}", "metrics.csv"),
        run=run_path("models", "xgboost", "L{length}", "run.json"),
    log:
        log_path("train_xgboost_L{length}"),
    benchmark:
        benchmark_path("train_xgboost_L{length}")
    wildcard_constraints:
        length=r"\d+",
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("train_xgboost")
    resources:
        mem_mb=request_mem_mb("train_xgboost"),
        runtime=request_runtime("train_xgboost"),
    params:
        code=code_version("train_xgboost"),
        hyperparameters=config["models"]["xgboost"],
        device=config["training"]["device"],
        seed=config["seed"],
    message:
        "Train the XGBoost benchmark with sequences of {wildcards.length} days [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/train_xgboost.py"


# Replicates of the compared models with other seeds (comparison.seeds): replicate k trains
# with seed + k in models/{model}/L{length}/seed{k}/, and the comparison's paired bootstrap
# draws over them. The product is made with the run seed's model (replicate 0).


use rule train_deep as train_deep_replicate with:
    output:
        model=run_path("models", "{model}", "L{length}", "seed{replicate}", "model.pt"),
        metrics=run_path(
            "models", "{model}", "L{length}", "seed{replicate}", "metrics.csv"
        ),
        run=run_path("models", "{model}", "L{length}", "seed{replicate}", "run.json"),
        scaler=run_path(
            "models", "{model}", "L{length}", "seed{replicate}", "scaler.json"
        ),
    log:
        log_path("train_{model}_L{length}_seed{replicate}"),
    benchmark:
        benchmark_path("train_{model}_L{length}_seed{replicate}")
    wildcard_constraints:
        model="|".join(DEEP_MODELS),
        length=r"\d+",
        replicate=r"[1-9]\d*",
    params:
        code=code_version("train_deep"),
        hyperparameters=lambda wildcards: config["models"][wildcards.model],
        training=config["training"],
        seed=lambda wildcards: config["seed"] + int(wildcards.replicate),
    message:
        "Train {wildcards.model} with sequences of {wildcards.length} days, seed replicate {wildcards.replicate} [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"


use rule train_xgboost as train_xgboost_replicate with:
    output:
        model=run_path("models", "xgboost", "L{length}", "seed{replicate}", "model.ubj"),
        metrics=run_path(
            "models", "xgboost", "L{length}", "seed{replicate}", "metrics.csv"
        ),
        run=run_path("models", "xgboost", "L{length}", "seed{replicate}", "run.json"),
    log:
        log_path("train_xgboost_L{length}_seed{replicate}"),
    benchmark:
        benchmark_path("train_xgboost_L{length}_seed{replicate}")
    wildcard_constraints:
        length=r"\d+",
        replicate=r"[1-9]\d*",
    params:
        code=code_version("train_xgboost"),
        hyperparameters=config["models"]["xgboost"],
        device=config["training"]["device"],
        seed=lambda wildcards: config["seed"] + int(wildcards.replicate),
    message:
        "Train the XGBoost benchmark with sequences of {wildcards.length} days, seed replicate {wildcards.replicate} [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
