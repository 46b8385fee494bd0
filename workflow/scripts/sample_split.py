"""Entry point of rule `sample_split`: the train/validation/test split map of the region."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.learn.samples import build_split_map
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
build_split_map(
    out_path=snakemake.output[0],
    stack_paths=snakemake.input.stacks,
    static_path=snakemake.input.static,
    region=snakemake.params.region,
    settings=snakemake.params.samples,
    seed=snakemake.params.seed,
    global_attrs=provenance_attrs("sample_split", dict(snakemake.params.items()), snakemake.input),
)
