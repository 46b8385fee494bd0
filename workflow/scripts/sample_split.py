"""Entry point of rule `sample_split`: the train/validation/test split map."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.learn.splitting import build_split_map

with run_job(snakemake, seed=snakemake.params.seed) as job:
    build_split_map(
        out_path=snakemake.output[0],
        stack_paths=snakemake.input.stacks,
        static_path=snakemake.input.static,
        region=snakemake.params.region,
        settings=snakemake.params.samples,
        seed=snakemake.params.seed,
        global_attrs=job.attrs,
        workers=snakemake.threads,
    )
