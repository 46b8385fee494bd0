"""Entry point of rule `train_xgboost`: the XGBoost benchmark at one sequence length."""

from pathlib import Path

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.device import device_provenance
from avhrrsm.jobs import run_job
from avhrrsm.learn.boost import train_xgboost

device = device_provenance(snakemake.params.device)
with run_job(snakemake, seed=snakemake.params.seed, device=device) as job:
    train_xgboost(
        samples_path=snakemake.input.samples,
        run_dir=Path(snakemake.output.model).parent,
        hyperparameters=snakemake.params.hyperparameters,
        sequence_length=int(snakemake.wildcards.length),
        device=snakemake.params.device,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        global_attrs=job.attrs,
    )
