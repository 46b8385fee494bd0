"""Entry point of rule `validation`: the years' parts merged, the metrics and the report."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.validate.run import merge_validation

with run_job(snakemake) as job:
    years = snakemake.params.years
    merge_validation(
        outputs=dict(snakemake.output.items()),
        sites_path=snakemake.input.sites,
        year_parts=dict(zip(years, snakemake.input.years, strict=True)),
        static_path=snakemake.input.static,
        insitu=snakemake.params.insitu,
        region=snakemake.params.region,
        settings=snakemake.params.validation,
        comparison={
            "summary_json": snakemake.input.comparison_summary,
            "scatter": snakemake.input.comparison_scatter,
            "uncertainty": snakemake.input.uncertainty,
        },
        provenance={
            **job.attrs,
            "avhrrsm_config_sha256": snakemake.params.config_sha256,
            "model": snakemake.params.model,
        },
    )
