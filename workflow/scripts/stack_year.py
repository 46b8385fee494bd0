"""Entry point of rule `stack_year`: unpack Snakemake's job and call avhrrsm.stacks."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs
from avhrrsm.stacks import build_year_stack

configure_logging(snakemake.log[0])
year = int(snakemake.wildcards.year)
params = {**dict(snakemake.params.items()), "year": year}
build_year_stack(
    out_path=snakemake.output[0],
    year=year,
    patterns=snakemake.params.inputs,
    static_path=snakemake.input.static,
    region=snakemake.params.region,
    tile_deg=snakemake.params.tile_deg,
    settings=snakemake.params.stacks,
    global_attrs=provenance_attrs("stack_year", params, snakemake.input),
)
