# Static layers on the 0.05 degree grid, once per run: land mask, elevation, slope and aspect
# from the MERIT DEM tiles; sand, silt and clay fractions from SoilGrids (Homolosine).


rule static_layers:
    input:
        unpack(static_inputs),
    output:
        directory(run_path("static", "static_layers.zarr")),
    log:
        log_path("static_layers"),
    benchmark:
        benchmark_path("static_layers")
    conda:
        "../../envs/geo.yaml"
    threads: request_threads("static_layers")
    resources:
        mem_mb=request_mem_mb("static_layers"),
        runtime=request_runtime("static_layers"),
    params:
        code=code_version("static_layers"),
        # input patterns in a dict, so that Snakemake leaves {fraction} alone
        inputs={"merit_dem": INPUTS["merit_dem"], "soilgrids": INPUTS["soilgrids"]},
        region=config["region"],
        tile_deg=config["tile_deg"],
    message:
        "Static layers (terrain and soil texture) on the 0.05 degree grid [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/static_layers.py"
