"""The keys of the config's ``samples`` section each sample stage reads: its rule passes only
these, so that a key reruns only the jobs whose outputs depend on it. A module of its own with
no imports: the Snakefile reads it at parse time (and every job parses the Snakefile), so it
must not bring the stages' numpy, xarray and torch with it."""

# the split map (avhrrsm.learn.splitting)
SPLIT_SETTINGS = ("wet_threshold", "block_deg", "split_fractions", "guard_pixels")
# the per-year sample sets (avhrrsm.learn.samples)
YEAR_SETTINGS = (
    "stored_lags",
    "holdout_years",
    "wet_threshold",
    "per_year",
    "wet_min_fraction",
    "gap_simulation",
)
