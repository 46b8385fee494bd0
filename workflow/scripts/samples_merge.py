"""Entry point of rule `samples_merge`: one sample set and its manifest."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.learn.samples import merge_sample_sets

with run_job(snakemake) as job:
    merge_sample_sets(
        year_paths=snakemake.input.years,
        out_path=snakemake.output.samples,
        manifest_path=snakemake.output.manifest,
        global_attrs=job.attrs,
    )
