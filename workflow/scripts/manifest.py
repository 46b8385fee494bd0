"""Entry point of rule `manifest`: MANIFEST.json and the provenance page of the run."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.logs import configure_logging
from avhrrsm.ops.audit import build_manifest, write_provenance_page

configure_logging(snakemake.log[0])
manifest = build_manifest(
    outputs=snakemake.input,
    config=snakemake.params.config,
    run_dir=snakemake.params.run_dir,
    out_path=snakemake.output.manifest,
)
write_provenance_page(manifest, snakemake.params.run_dir, snakemake.output.page)
