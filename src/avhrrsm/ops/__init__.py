"""Operations around the workflow, apart from the science: reproducibility audits of a run
(:mod:`~avhrrsm.ops.audit`), the benchmarks (:mod:`~avhrrsm.ops.bench`), the SLURM profile
(:mod:`~avhrrsm.ops.slurm_profile`), and where the workflow's own files lie
(:mod:`~avhrrsm.ops.checkout`).

Nothing in the science modules imports from here; these modules sit on top of them. The
workflow's files (Snakefile, profiles, configs) are passed in as paths; only the command line
finds them, from its ``--workflow`` option or the current folder upwards.
"""
