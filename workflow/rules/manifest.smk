# The run's manifest: every output with its sha256, size, the rule that made it and the
# checksum of its provenance record, with the resolved config (what `avhrrsm audit` reads),
# and a readable provenance page for `snakemake --report`.


localrules:
    manifest,


rule manifest:
    input:
        run_outputs(),
    output:
        manifest=report(
            manifest_path(),
            caption="../report/manifest.rst",
            category="Provenance",
        ),
        page=report(
            run_path("provenance.html"),
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        log_path("manifest"),
    benchmark:
        benchmark_path("manifest")
    conda:
        "../../envs/geo.yaml"
    threads: request_threads("manifest")
    resources:
        mem_mb=request_mem_mb("manifest"),
        runtime=request_runtime("manifest"),
    params:
        code=code_version("manifest"),
        config=config,
        # the folder MANIFEST.json lies in
        run_dir=lambda wildcards, output: str(Path(output.manifest).parent),
    message:
        "Manifest and provenance of every output of the run [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/manifest.py"
