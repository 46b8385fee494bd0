"""Entry point of rule `product_year`: the daily product files of one year."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.logs import configure_logging
from avhrrsm.product import write_year_product
from avhrrsm.provenance import provenance_attrs

configure_logging(snakemake.log[0])
year = int(snakemake.wildcards.year)
params = {**dict(snakemake.params.items()), "year": year}
provenance = provenance_attrs("product_year", params, snakemake.input)
provenance["avhrrsm_config_sha256"] = snakemake.params.config_sha256
write_year_product(
    out_dir=snakemake.output.files,
    summary_png=snakemake.output.summary,
    year=year,
    tile_paths=dict(zip(snakemake.params.tile_ids, snakemake.input.tiles, strict=True)),
    static_path=snakemake.input.static,
    region=snakemake.params.region,
    tile_deg=snakemake.params.tile_deg,
    settings=snakemake.params.product,
    model_path=snakemake.input.model,
    model_name=snakemake.params.model_name,
    provenance=provenance,
)
