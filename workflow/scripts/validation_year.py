"""Entry point of rule `validation_year`: one year's part of the validation, {year}.nc."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.validate.run import validation_year

with run_job(snakemake) as job:
    validation_year(
        output=snakemake.output[0],
        year=int(snakemake.wildcards.year),
        product_dir=snakemake.input.product,
        stack_path=snakemake.input.stack,
        static_path=snakemake.input.static,
        sites_path=snakemake.input.sites,
        patterns=snakemake.params.patterns,
        region=snakemake.params.region,
        settings=snakemake.params.validation,
        provenance=job.attrs,
        cci_invalid_flag_bits=snakemake.params.cci_invalid_flag_bits,
        truth_folder=snakemake.params.truth,
        workers=snakemake.threads,
    )
