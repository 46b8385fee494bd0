"""Benchmarks of the figures that decide whether the global product is feasible.

``avhrrsm bench`` (``make bench``) writes ``benchmarks/results.json`` and
``benchmarks/RESULTS.md``. Every speed is given with a reference measured in the same run
(these machines are noisy; absolute times alone mean little). Sections so far:

- ``regrid_block``: block mean (1 km -> 5 km, 90 m-like -> 5 km), file to file, against
  ``gdalwarp -r average`` on the same GeoTIFF; megapixels per second, ratio, max difference.
- ``regrid_bilinear``: ERA5-Land 0.1 -> 0.05 degree against ``gdalwarp -r bilinear``.
- ``stack_global``: a stack job on the global 7200 x 3600 grid for 2 and 4 days (synthetic
  global inputs in the real layouts): wall time and peak memory (RSS) of the job process.
- ``product_validation_global``: the product job and the validation year job on the global
  grid for 4 and 8 days (seconds per global day, fixed seconds, peak memory) and the product
  on two workers (its parallel efficiency); the figures :mod:`avhrrsm.requests` costs them by.
- ``inference``: per deep model, model-only forward throughput (pixel-days per second, batch
  sizes swept; FLOPs per pixel-day and the GFLOP/s reached) against the whole tile job (read,
  prepare, predict, write) on a 10 degree tile, the ratio, and the job's peak memory; the
  host-only rate (the tile job with a null model) at 1 and 2 threads; on a CUDA device, the
  40-year global inference from the measured tile-job rates, naming the card ("not measured"
  elsewhere: nothing is projected from assumptions).
- ``training``: samples per second in training steps and the fraction of a step spent
  assembling the batch, per deep model, on a sample set made by the real chain.
- ``dag``: wall time of ``snakemake -n`` on the global 1982-2021 config, the number of jobs,
  and of SLURM submissions after job grouping.
- ``schedule``: the global DAG (``snakemake --dag``, the profile's job groups) list-scheduled
  on 1, 4, 16 and 64 nodes of 32 cores and one GPU from each job's projected cost
  (:mod:`avhrrsm.requests`): wall time, critical path, longest job, utilisation.
- ``run_cost``: the real 40-year global run's jobs, CPU-hours, memory, GPU-hours, disk and wall
  time, from a finished run of this machine scaled per rule (uses ``dag`` and ``stack_global``
  where measured); rewrites the README's cost table.
"""

BENCH_SECTIONS = (
    "regrid_block",
    "regrid_bilinear",
    "glass_hdf4",
    "modis_sinusoidal",
    "stack_global",
    "product_validation_global",
    "inference",
    "training",
    "dag",
    "schedule",
    "run_cost",
)
