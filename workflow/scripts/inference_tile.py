"""Entry point of rule `inference_tile`: predict one tile of one year."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.device import device_provenance
from avhrrsm.infer import predict_tile
from avhrrsm.jobs import run_job

device = device_provenance(snakemake.params.inference["device"])
with run_job(snakemake, device=device) as job:
    predict_tile(
        out_path=snakemake.output[0],
        year=int(snakemake.wildcards.year),
        tile_id=snakemake.wildcards.tile,
        tile_deg=snakemake.params.tile_deg,
        stack_path=snakemake.input.stack,
        previous_stack_path=snakemake.input.get("previous"),
        static_path=snakemake.input.static,
        model_path=snakemake.input.model,
        uncertainty_path=snakemake.input.uncertainty,
        region=snakemake.params.region,
        settings=snakemake.params.inference,
        valid_range=snakemake.params.valid_range,
        global_attrs=job.attrs,
        threads=snakemake.threads,
    )
