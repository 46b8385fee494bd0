# Inference: the product's model over every land pixel-day, one job per (year, tile). A year
# reads the last L-1 days of the previous year's stack where that year is part of the run.
#
# On a cluster the tiles run in groups (group `inference`, profiles/slurm/): as many tiles to
# one allocation as fill hpc.gpu_group_minutes at the projected cost of a tile
# (avhrrsm.requests.inference_group_size; `avhrrsm slurm-profile --configfile` writes it).


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
    # one request for every tile job (requests.envelope_request): a function per job would
    # cost the DAG of 2,880 tiles more time than anything else it evaluates
    threads: INFERENCE_TILE_REQUEST.threads
    resources:
        mem_mb=INFERENCE_TILE_REQUEST.mem_mb,
        runtime=INFERENCE_TILE_REQUEST.runtime,
        gpu=config["hpc"]["gpus_per_job"],
    params:
        code=code_version("inference_tile"),
        region=config["region"],
        tile_deg=config["tile_deg"],
        inference=config["inference"],
        valid_range=config["product"]["valid_range"],
    message:
        "Predict soil moisture for tile {wildcards.tile} of {wildcards.year} [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/inference_tile.py"
