"""Entry point of rule `samples_merge`: one sample set, its scaler and its manifest."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.learn.samples import merge_sample_sets
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
merge_sample_sets(
    year_paths=snakemake.input.years,
    out_path=snakemake.output.samples,
    manifest_path=snakemake.output.manifest,
    global_attrs=provenance_attrs("samples_merge", dict(snakemake.params.items()), snakemake.input),
)
