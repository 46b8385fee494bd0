"""Entry point of rule `validation`: in-situ validation, intercomparison and the report."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.validate.run import run_validation

with run_job(snakemake) as job:
    years = snakemake.params.years
    run_validation(
        outputs=dict(snakemake.output.items()),
        product_dirs=dict(zip(years, snakemake.input.products, strict=True)),
        stack_paths=dict(zip(years, snakemake.input.stacks, strict=True)),
        static_path=snakemake.input.static,
        insitu=snakemake.params.insitu,
        patterns=snakemake.params.patterns,
        cci_invalid_flag_bits=snakemake.params.cci_invalid_flag_bits,
        nsidc0712=snakemake.params.nsidc0712,
        truth_folder=snakemake.params.truth,
        years=years,
        region=snakemake.params.region,
        settings=snakemake.params.validation,
        comparison={
            "summary_json": snakemake.input.comparison_summary,
            "scatter": snakemake.input.comparison_scatter,
        },
        provenance={
            **job.attrs,
            "avhrrsm_config_sha256": snakemake.params.config_sha256,
            "model": snakemake.params.model,
        },
    )
