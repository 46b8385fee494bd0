"""Entry point of rule `validation`: in-situ validation, intercomparison and the report."""

import _bootstrap  # noqa: F401  (makes avhrrsm importable)

from avhrrsm.logs import configure_logging
from avhrrsm.provenance import provenance_attrs
from avhrrsm.validate.run import run_validation

configure_logging(snakemake.log[0])
years = snakemake.params.years
provenance = provenance_attrs("validation", dict(snakemake.params.items()), snakemake.input)
provenance["avhrrsm_config_sha256"] = snakemake.params.config_sha256
provenance["model"] = snakemake.params.model
run_validation(
    outputs=dict(snakemake.output.items()),
    product_dirs=dict(zip(years, snakemake.input.products, strict=True)),
    stack_paths=dict(zip(years, snakemake.input.stacks, strict=True)),
    static_path=snakemake.input.static,
    insitu=snakemake.params.insitu,
    patterns=snakemake.params.patterns,
    years=years,
    region=snakemake.params.region,
    settings=snakemake.params.validation,
    comparison={
        "summary_json": snakemake.input.comparison_summary,
        "scatter": snakemake.input.comparison_scatter,
    },
    provenance=provenance,
)
