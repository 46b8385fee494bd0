# The daily product: the inference tiles of a year mosaicked into one CF-NetCDF file per day,
# and the year's summary figure.


rule product_year:
    input:
        tiles=lambda wildcards: [
            inference_tile_path(wildcards.year, tile) for tile in region_tiles()
        ],
        static=run_path("static", "static_layers.zarr"),
        model=product_model_file(),
    output:
        files=directory(run_path("product", "{year}")),
        summary=report(
            run_path("product", "summary_{year}.png"),
            caption="../report/product_summary.rst",
            category="Product",
            subcategory="{year}",
        ),
    log:
        log_path("product_{year}"),
    benchmark:
        benchmark_path("product_{year}")
    wildcard_constraints:
        year=r"\d{4}",
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("product_year")
    resources:
        mem_mb=request_mem_mb("product_year"),
        runtime=request_runtime("product_year"),
    params:
        code=code_version("product_year"),
        tile_ids=region_tiles(),
        region=config["region"],
        tile_deg=config["tile_deg"],
        product=config["product"],
        model_name=config["inference"]["model"],
        config_sha256=CONFIG_SHA256,
    message:
        "Daily product files of {wildcards.year} [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/product_year.py"
