# Per-year stacks: GLASS-AVHRR albedo and LST, ERA5-Land swvl1 (daily, bilinear) and the
# GLASS-MODIS target (2000-2020) on the 0.05 degree grid, gap-filled with flags. Years are
# independent jobs.


rule stack_year:
    input:
        unpack(stack_inputs),
        static=run_path("static", "static_layers.zarr"),
    output:
        directory(run_path("stacks", "{year}.zarr")),
    log:
        log_path("stack_year_{year}"),
    benchmark:
        benchmark_path("stack_year_{year}")
    wildcard_constraints:
        year=r"\d{4}",
    conda:
        "../../envs/geo.yaml"
    threads: request_threads("stack_year")
    resources:
        mem_mb=request_mem_mb("stack_year"),
        runtime=request_runtime("stack_year"),
    params:
        code=code_version("stack_year"),
        # input patterns in a dict, so that Snakemake leaves {variable}, {doy}, ... alone
        inputs={
            "era5land": INPUTS["era5land"],
            "glass_albedo": INPUTS["glass_albedo"],
            "glass_lst": INPUTS["glass_lst"],
            "glass_modis": INPUTS["glass_modis"],
        },
        region=config["region"],
        tile_deg=config["tile_deg"],
        stacks=config["stacks"],
        layouts={
            name: config["layouts"].get(name, {})
            for name in ("glass_albedo", "glass_lst", "glass_modis")
        },
    message:
        "Input stack of {wildcards.year} on the 0.05 degree grid [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/stack_year.py"
