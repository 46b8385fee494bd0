# Training sample sets: the train/validation/test split map (spatial blocks, stratified by
# wetness), the samples of every target year, and their merge with the scaler and manifest.


rule sample_split:
    input:
        stacks=[stack_path(year) for year in target_years()],
        static=run_path("static", "static_layers.zarr"),
    output:
        directory(run_path("samples", "split.zarr")),
    log:
        log_path("sample_split"),
    benchmark:
        benchmark_path("sample_split")
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("sample_split")
    resources:
        mem_mb=request_mem_mb("sample_split"),
        runtime=request_runtime("sample_split"),
    params:
        code=code_version("sample_split"),
        region=config["region"],
        samples={key: config["samples"][key] for key in SPLIT_SETTINGS},
        seed=config["seed"],
    message:
        "Train/validation/test split of the region's pixels (spatial blocks) [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/sample_split.py"


rule samples_year:
    input:
        unpack(previous_stack),
        stack=stack_path("{year}"),
        static=run_path("static", "static_layers.zarr"),
        split=run_path("samples", "split.zarr"),
    output:
        directory(run_path("samples", "{year}.zarr")),
    log:
        log_path("samples_year_{year}"),
    benchmark:
        benchmark_path("samples_year_{year}")
    wildcard_constraints:
        year=r"\d{4}",
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("samples_year")
    resources:
        mem_mb=request_mem_mb("samples_year"),
        runtime=request_runtime("samples_year"),
    params:
        code=code_version("samples_year"),
        region=config["region"],
        tile_deg=config["tile_deg"],
        samples={key: config["samples"][key] for key in YEAR_SETTINGS},
        seed=config["seed"],
    message:
        "Training samples of {wildcards.year} [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/samples_year.py"


rule samples_merge:
    input:
        years=[run_path("samples", f"{year}.zarr") for year in target_years()],
    output:
        samples=directory(run_path("samples", "samples.zarr")),
        manifest=run_path("samples", "manifest.json"),
    log:
        log_path("samples_merge"),
    benchmark:
        benchmark_path("samples_merge")
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("samples_merge")
    resources:
        mem_mb=request_mem_mb("samples_merge"),
        runtime=request_runtime("samples_merge"),
    params:
        code=code_version("samples_merge"),
        years=target_years(),
    message:
        "Merge the sample sets of {params.years}; scaler from the training split [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/samples_merge.py"
