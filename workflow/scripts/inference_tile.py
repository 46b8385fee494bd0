"""Entry point of rule `inference_tile`: predict one tile of one year."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.infer import predict_tile
from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
year = int(snakemake.wildcards.year)
tile = snakemake.wildcards.tile
params = {**dict(snakemake.params.items()), "year": year, "tile": tile}
predict_tile(
    out_path=snakemake.output[0],
    year=year,
    tile_id=tile,
    tile_deg=snakemake.params.tile_deg,
    stack_path=snakemake.input.stack,
    previous_stack_path=snakemake.input.get("previous"),
    static_path=snakemake.input.static,
    model_path=snakemake.input.model,
    region=snakemake.params.region,
    settings=snakemake.params.inference,
    valid_range=snakemake.params.valid_range,
    global_attrs=provenance_attrs("inference_tile", params, snakemake.input),
    threads=snakemake.threads,
)
