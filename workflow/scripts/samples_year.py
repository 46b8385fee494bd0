"""Entry point of rule `samples_year`: draw one year's training samples from its stack."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.learn.samples import draw_year_samples
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
year = int(snakemake.wildcards.year)
params = {**dict(snakemake.params.items()), "year": year}
draw_year_samples(
    out_path=snakemake.output[0],
    year=year,
    stack_path=snakemake.input.stack,
    previous_stack_path=snakemake.input.get("previous"),
    static_path=snakemake.input.static,
    split_path=snakemake.input.split,
    region=snakemake.params.region,
    tile_deg=snakemake.params.tile_deg,
    settings=snakemake.params.samples,
    seed=snakemake.params.seed,
    global_attrs=provenance_attrs("samples_year", params, snakemake.input),
)
