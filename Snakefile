# avhrrsm: global daily 0.05 degree surface soil moisture from AVHRR with deep learning.
#
# This file is the table of contents of the workflow. Each stage lives in one rule file:
#
#   workflow/rules/common.smk      config validation, paths under results/{run}/, input patterns
#   workflow/rules/synthesize.smk  the embedded synthetic world in the real products' formats
#   workflow/rules/static.smk      static layers on the 0.05 degree grid (terrain, soil texture)
#   workflow/rules/stacks.smk      per-year stacks of the dynamic inputs and the training target
#
# Later stages (regridded stacks, samples, training, inference, product, validation, report)
# join the DAG as they are built; none is stubbed.


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/static.smk"
include: "workflow/rules/stacks.smk"


rule all:
    default_target: True
    input:
        all_targets(),
