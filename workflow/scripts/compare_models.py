"""Entry point of rule `compare_models`: the model comparison on the test split."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.learn.compare import compare_models

with run_job(snakemake) as job:
    compare_models(
        samples_path=snakemake.input.samples,
        model_runs={name: snakemake.input[name] for name in snakemake.params.models},
        sweep_runs={n: snakemake.input[f"L{n}"] for n in snakemake.params.sweep_lengths},
        replicate_runs={
            name: [snakemake.input[f"{name}_seed{k}"] for k in range(1, snakemake.params.seeds)]
            for name in snakemake.params.models
        },
        sweep_model=snakemake.params.sweep_model,
        wet_threshold=snakemake.params.wet_threshold,
        outputs=dict(snakemake.output.items()),
        global_attrs=job.attrs,
    )
