"""Entry point of rule `stack_year`: unpack Snakemake's job and call avhrrsm.stacks."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.stacks import build_year_stack

with run_job(snakemake) as job:
    build_year_stack(
        out_path=snakemake.output[0],
        year=int(snakemake.wildcards.year),
        patterns=snakemake.params.inputs,
        static_path=snakemake.input.static,
        region=snakemake.params.region,
        tile_deg=snakemake.params.tile_deg,
        settings=snakemake.params.stacks,
        global_attrs=job.attrs,
        layouts=snakemake.params.layouts,
        workers=snakemake.threads,
    )
