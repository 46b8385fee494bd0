"""Entry point of rule `product_year`: the daily product files of one year."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.product import write_year_product

with run_job(snakemake) as job:
    write_year_product(
        out_dir=snakemake.output.files,
        summary_png=snakemake.output.summary,
        year=int(snakemake.wildcards.year),
        tile_paths=dict(zip(snakemake.params.tile_ids, snakemake.input.tiles, strict=True)),
        static_path=snakemake.input.static,
        region=snakemake.params.region,
        tile_deg=snakemake.params.tile_deg,
        settings=snakemake.params.product,
        model_path=snakemake.input.model,
        model_name=snakemake.params.model_name,
        provenance={**job.attrs, "avhrrsm_config_sha256": snakemake.params.config_sha256},
        workers=snakemake.threads,
    )
