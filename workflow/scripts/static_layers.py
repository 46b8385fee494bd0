"""Entry point of rule `static_layers`: unpack Snakemake's job and call avhrrsm.static."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.jobs import run_job
from avhrrsm.static import build_static_layers

with run_job(snakemake) as job:
    build_static_layers(
        out_path=snakemake.output[0],
        merit_folder=snakemake.params.inputs["merit_dem"],
        soilgrids_pattern=snakemake.params.inputs["soilgrids"],
        region=snakemake.params.region,
        tile_deg=snakemake.params.tile_deg,
        global_attrs=job.attrs,
        workers=snakemake.threads,
    )
