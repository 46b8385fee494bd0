# Validation: in-situ metrics at three scales (ISMN, COSMOS, SMAP core sites), the
# intercomparison with ERA5-Land and ESA CCI, consistency with GLASS-MODIS, temporal
# homogeneity, and the report.


rule validation:
    input:
        unpack(insitu_inputs),
        unpack(validation_raw_inputs),
        products=[run_path("product", str(year)) for year in config["years"]],
        stacks=[stack_path(year) for year in config["years"]],
        static=run_path("static", "static_layers.zarr"),
        comparison_summary=comparison_path("summary_json"),
        comparison_scatter=comparison_path("scatter"),
    output:
        results=validation_path("results"),
        network_summary=report(
            validation_path("network_summary"),
            caption="../report/validation_summary.rst",
            category="Validation",
        ),
        intercomparison=validation_path("intercomparison"),
        modis_consistency=validation_path("modis_consistency"),
        report=report(
            validation_path("report"),
            caption="../report/validation_report.rst",
            category="Validation",
        ),
        boxplots=report(
            validation_path("boxplots"),
            caption="../report/validation_figures.rst",
            category="Validation",
        ),
        site_map=report(
            validation_path("site_map"),
            caption="../report/validation_figures.rst",
            category="Validation",
        ),
        scatter=report(
            validation_path("scatter"),
            caption="../report/validation_figures.rst",
            category="Validation",
        ),
        timeseries=report(
            validation_path("timeseries"),
            caption="../report/validation_figures.rst",
            category="Validation",
        ),
        modis_map=report(
            validation_path("modis_map"),
            caption="../report/validation_figures.rst",
            category="Validation",
        ),
        homogeneity=report(
            validation_path("homogeneity"),
            caption="../report/validation_figures.rst",
            category="Validation",
        ),
    log:
        log_path("validation"),
    benchmark:
        benchmark_path("validation")
    conda:
        "../../envs/learn.yaml"
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        code=code_version("validation"),
        years=config["years"],
        region=config["region"],
        validation=config["validation"],
        insitu={name: INPUTS[name] for name in INSITU_INPUTS},
        patterns={name: INPUTS[name] for name in ("era5land", "esa_cci")},
        cci_invalid_flag_bits=config["layouts"]["esa_cci"]["invalid_flag_bits"],
        nsidc0712=config["layouts"]["nsidc0712"],
        # a synthetic run scores the product against the world's hidden truth too
        truth=(
            run_path("synthetic", "truth")
            if all(uses_synthetic(name) for name in STACK_PRODUCTS)
            else None
        ),
        model=config["inference"]["model"],
        config_sha256=CONFIG_SHA256,
    message:
        "Validate the product against in-situ networks and peer products"
    script:
        "../scripts/validation.py"
