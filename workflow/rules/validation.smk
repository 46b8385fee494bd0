# Validation: in-situ metrics at three scales (ISMN, COSMOS, SMAP core sites), the
# intercomparison with ERA5-Land and ESA CCI, consistency with GLASS-MODIS, temporal
# homogeneity, and the report. Map and reduce: the sites are read once, each year's product
# by a job of its own (its part: sums, series at the sites, counts), and the merge scores.


rule validation_sites:
    input:
        unpack(insitu_inputs),
        static=run_path("static", "static_layers.zarr"),
    output:
        validation_sites_path(),
    log:
        log_path("validation_sites"),
    benchmark:
        benchmark_path("validation_sites")
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("validation_sites")
    resources:
        mem_mb=request_mem_mb("validation_sites"),
        runtime=request_runtime("validation_sites"),
    params:
        code=code_version("validation_sites"),
        region=config["region"],
        validation=config["validation"],
        insitu={name: INPUTS[name] for name in INSITU_INPUTS},
        nsidc0712=config["layouts"]["nsidc0712"],
    message:
        "Read the in-situ sites of the region [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/validation_sites.py"


rule validation_year:
    input:
        unpack(validation_raw_inputs),
        product=run_path("product", "{year}"),
        stack=stack_path("{year}"),
        static=run_path("static", "static_layers.zarr"),
        sites=validation_sites_path(),
    output:
        validation_year_path("{year}"),
    log:
        log_path("validation_year_{year}"),
    benchmark:
        benchmark_path("validation_year_{year}")
    wildcard_constraints:
        year=r"\d{4}",
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("validation_year")
    resources:
        mem_mb=request_mem_mb("validation_year"),
        runtime=request_runtime("validation_year"),
    params:
        code=code_version("validation_year"),
        region=config["region"],
        validation=config["validation"],
        patterns={name: INPUTS[name] for name in ("era5land", "esa_cci")},
        cci_invalid_flag_bits=config["layouts"]["esa_cci"]["invalid_flag_bits"],
        truth=synthetic_truth(),
    message:
        "Validation part of {wildcards.year}: the product at the sites and over the region [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/validation_year.py"


rule validation:
    input:
        sites=validation_sites_path(),
        years=[validation_year_path(year) for year in config["years"]],
        static=run_path("static", "static_layers.zarr"),
        comparison_summary=comparison_path("summary_json"),
        comparison_scatter=comparison_path("scatter"),
        uncertainty=uncertainty_model_file(),
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
    threads: request_threads("validation")
    resources:
        mem_mb=request_mem_mb("validation"),
        runtime=request_runtime("validation"),
    params:
        code=code_version("validation"),
        years=config["years"],
        region=config["region"],
        validation=config["validation"],
        insitu={name: INPUTS[name] for name in INSITU_INPUTS},
        model=config["inference"]["model"],
        config_sha256=CONFIG_SHA256,
    message:
        "Merge the validation years: in-situ metrics, intercomparison and the report [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/validation.py"
