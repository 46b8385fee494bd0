"""Entry point of rule `synthesize`: unpack Snakemake's job and call avhrrsm.synth."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.synth import write_world

with run_job(snakemake, seed=snakemake.params.synthetic["seed"]):
    write_world(
        out_dir=snakemake.output[0],
        region=snakemake.params.region,
        years=snakemake.params.years,
        settings=snakemake.params.synthetic,
        input_patterns=snakemake.params.inputs,
        threads=snakemake.threads,
    )
