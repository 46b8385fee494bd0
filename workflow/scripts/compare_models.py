"""Entry point of rule `compare_models`: the comparison of every model on the test split."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.learn.compare import compare_models
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
compare_models(
    samples_path=snakemake.input.samples,
    model_runs={name: snakemake.input[name] for name in snakemake.params.models},
    sweep_runs={n: snakemake.input[f"L{n}"] for n in snakemake.params.sweep_lengths},
    sweep_model=snakemake.params.sweep_model,
    wet_threshold=snakemake.params.wet_threshold,
    outputs=dict(snakemake.output.items()),
    global_attrs=provenance_attrs(
        "compare_models", dict(snakemake.params.items()), snakemake.input
    ),
)
