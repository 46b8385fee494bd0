"""Entry point of rule `validation_sites`: every in-situ input read once, into sites.nc."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.validate.run import validation_sites

with run_job(snakemake) as job:
    validation_sites(
        output=snakemake.output[0],
        insitu=snakemake.params.insitu,
        static_path=snakemake.input.static,
        region=snakemake.params.region,
        settings=snakemake.params.validation,
        provenance=job.attrs,
        nsidc0712=snakemake.params.nsidc0712,
    )
