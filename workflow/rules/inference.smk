# Inference: the product's model over every land pixel-day, one job per (year, tile). A year
# reads the last L-1 days of the previous year's stack where that year is part of the run.


rule inference_tile:
    input:
        unpack(previous_stack),
        stack=stack_path("{year}"),
        static=run_path("static", "static_layers.zarr"),
        model=product_model_file(),
    output:
        directory(inference_tile_path("{year}", "{tile}")),
    log:
        log_path("inference_{year}_{tile}"),
    benchmark:
        benchmark_path("inference_{year}_{tile}")
    wildcard_constraints:
        year=r"\d{4}",
        tile=r"h\d+v\d+",
    conda:
        "../../envs/learn.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=config["hpc"]["gpus_per_job"],
    params:
        code=code_version("inference_tile"),
        region=config["region"],
        tile_deg=config["tile_deg"],
        inference=config["inference"],
        valid_range=config["product"]["valid_range"],
    message:
        "Predict soil moisture for tile {wildcards.tile} of {wildcards.year}"
    script:
        "../scripts/inference_tile.py"
