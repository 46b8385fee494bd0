# Inference: the product's model over every land pixel-day, one job per (year, tile). A year
# reads the last L-1 days of the previous year's stack where that year is part of the run.
#
# On a cluster the tiles run in groups (group `inference`, profiles/slurm/): as many tiles to
# one allocation as fill hpc.gpu_group_minutes at the projected cost of a tile
# (avhrrsm.requests.inference_group_size; `avhrrsm slurm-profile --configfile` writes it).
#
# hpc.cpu_inference_share of the tiles run on CPU cores instead (rule inference_tile_cpu, the
# same job without a GPU, group `inference_cpu`: tiles side by side on a group job's cores),
# so that a node's cores take part of the work its one GPU would otherwise do alone
# (avhrrsm.requests.cpu_inference_tiles; none where hpc.gpus_per_job is 0).


rule inference_tile:
    input:
        unpack(previous_stack),
        stack=stack_path("{year}"),
        static=run_path("static", "static_layers.zarr"),
        model=product_model_file(),
        uncertainty=uncertainty_model_file(),
    output:
        directory(inference_tile_path("{year}", "{tile}")),
    log:
        log_path("inference_{year}_{tile}"),
    benchmark:
        benchmark_path("inference_{year}_{tile}")
    wildcard_constraints:
        year=r"\d{4}",
        tile=GPU_TILES,
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


use rule inference_tile as inference_tile_cpu with:
    wildcard_constraints:
        year=r"\d{4}",
        tile=CPU_TILES,
    threads: INFERENCE_TILE_CPU_REQUEST.threads
    resources:
        mem_mb=INFERENCE_TILE_CPU_REQUEST.mem_mb,
        runtime=INFERENCE_TILE_CPU_REQUEST.runtime,
        gpu=0,
    message:
        "Predict soil moisture for tile {wildcards.tile} of {wildcards.year} on CPU cores [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
