"""Entry point of rule `uncertainty_calibration`: the product model's error model."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.learn.uncertainty import calibrate_uncertainty

with run_job(snakemake) as job:
    calibrate_uncertainty(
        samples_path=snakemake.input.samples,
        model_path=snakemake.input.model,
        out_path=snakemake.output[0],
        settings=snakemake.params.uncertainty,
        valid_range=snakemake.params.valid_range,
        device=snakemake.params.device,
        threads=snakemake.threads,
        global_attrs=job.attrs,
    )
