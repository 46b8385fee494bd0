"""Entry point of rule `samples_year`: the sample set of one target year."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.learn.samples import draw_year_samples

with run_job(snakemake, seed=snakemake.params.seed) as job:
    draw_year_samples(
        out_path=snakemake.output[0],
        year=int(snakemake.wildcards.year),
        stack_path=snakemake.input.stack,
        previous_stack_path=snakemake.input.get("previous"),
        static_path=snakemake.input.static,
        split_path=snakemake.input.split,
        region=snakemake.params.region,
        tile_deg=snakemake.params.tile_deg,
        settings=snakemake.params.samples,
        seed=snakemake.params.seed,
        global_attrs=job.attrs,
        workers=snakemake.threads,
    )
