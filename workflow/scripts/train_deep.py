"""Entry point of rule `train_deep`: train one deep model at one sequence length."""

from pathlib import Path

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.device import device_provenance
from avhrrsm.jobs import run_job
from avhrrsm.learn.train import train_deep_model

device = device_provenance(snakemake.params.training["device"])
with run_job(snakemake, seed=snakemake.params.seed, device=device) as job:
    train_deep_model(
        samples_path=snakemake.input.samples,
        run_dir=Path(snakemake.output.model).parent,
        model_name=snakemake.wildcards.model,
        hyperparameters=snakemake.params.hyperparameters,
        sequence_length=int(snakemake.wildcards.length),
        training=snakemake.params.training,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        global_attrs=job.attrs,
    )
