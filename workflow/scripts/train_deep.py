"""Entry point of rule `train_deep`: train one deep model at one sequence length."""

from pathlib import Path

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.learn.train import train_deep_model
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
model = snakemake.wildcards.model
length = int(snakemake.wildcards.length)
params = {**dict(snakemake.params.items()), "model": model, "sequence_length": length}
train_deep_model(
    samples_path=snakemake.input.samples,
    run_dir=Path(snakemake.output.model).parent,
    model_name=model,
    hyperparameters=snakemake.params.hyperparameters,
    sequence_length=length,
    training=snakemake.params.training,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    global_attrs=provenance_attrs("train_deep", params, snakemake.input),
)
