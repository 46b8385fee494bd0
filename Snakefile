# avhrrsm: global daily 0.05 degree surface soil moisture from AVHRR with deep learning.
#
# This file is the table of contents of the workflow. Each stage lives in one rule file:
#
#   workflow/rules/common.smk      config validation, paths under results/{run}/, input patterns
#   workflow/rules/synthesize.smk  the embedded synthetic world in the real products' formats
#   workflow/rules/static.smk      static layers on the 0.05 degree grid (terrain, soil texture)
#   workflow/rules/stacks.smk      per-year stacks of the dynamic inputs and the training target
#   workflow/rules/samples.smk     train/validation/test split map, per-year sample sets, merge
#   workflow/rules/train.smk       the four deep models and the XGBoost benchmark
#   workflow/rules/uncertainty.smk the product model's error model, on the validation split
#   workflow/rules/compare.smk     the model comparison of the paper on the test split
#   workflow/rules/inference.smk   the product's model over every land pixel-day, per (year, tile)
#   workflow/rules/product.smk     one CF-NetCDF file per day, and a summary figure per year
#   workflow/rules/validation.smk  in-situ validation at three scales, intercomparison, report
#   workflow/rules/manifest.smk    the run's manifest (checksums, provenance) for `avhrrsm audit`


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/static.smk"
include: "workflow/rules/stacks.smk"
include: "workflow/rules/samples.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/uncertainty.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/product.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/manifest.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        manifest_path(),
        lost_outputs(),
