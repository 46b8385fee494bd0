"""Entry point of rule `train_xgboost`: train the XGBoost benchmark."""

from pathlib import Path

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.learn.boost import train_xgboost
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
length = int(snakemake.wildcards.length)
params = {**dict(snakemake.params.items()), "sequence_length": length}
train_xgboost(
    samples_path=snakemake.input.samples,
    run_dir=Path(snakemake.output.model).parent,
    hyperparameters=snakemake.params.hyperparameters,
    sequence_length=length,
    device=snakemake.params.device,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    global_attrs=provenance_attrs("train_xgboost", params, snakemake.input),
)
