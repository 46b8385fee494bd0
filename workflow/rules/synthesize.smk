# The embedded synthetic world: a hidden daily soil-moisture truth and every input product
# derived from it, written in the real products' formats, so that the real readers, regridding
# and models run end to end without the terabytes of real data.


rule synthesize:
    output:
        directory(synthetic_dir()),
    log:
        log_path("synthesize"),
    benchmark:
        benchmark_path("synthesize")
    conda:
        "../../envs/geo.yaml"
    threads: request_threads("synthesize")
    resources:
        mem_mb=request_mem_mb("synthesize"),
        runtime=request_runtime("synthesize"),
    params:
        code=code_version("synthesize"),
        region=config["region"],
        years=config["years"],
        synthetic=config["synthetic"],
        # only the products the world writes: pointing another input elsewhere keeps the world
        inputs=synthetic_input_patterns(),
    message:
        "Writing the synthetic world (seed {params.synthetic[seed]}) for years {params.years} [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/synthesize.py"
