"""HPC behaviour without a cluster: a failed year does not stop the others and reruns alone;
the 40-year global configuration plans quickly."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from conftest import REPO_ROOT, TEST_CONFIG
from test_workflow import _snakemake

YEARS = ["--config", "years=[1999,2001]"]


def job_counts(log: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run: rule -> number of jobs."""
    table = log.split("Job stats:")[1].split("\n\n")[0]
    counts = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def test_a_failed_year_does_not_stop_the_others_and_reruns_alone(tmp_path):
    shutil.copy(TEST_CONFIG, tmp_path / "config.yaml")
    base = ["--cores", "2", "--configfile", "config.yaml", *YEARS]
    first = _snakemake([*base, "--until", "synthesize"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "results" / "test"
    era5 = run / "synthetic" / "era5land" / "era5-land_swvl1_1999_06.nc"
    original = era5.read_bytes()
    era5.write_bytes(original[:2048])  # a truncated download
    broken = _snakemake([*base, "--keep-going"], cwd=tmp_path, timeout=900)
    assert broken.returncode != 0
    assert "era5-land_swvl1_1999_06.nc" in (run / "logs" / "stack_year_1999.log").read_text()
    assert not (run / "stacks" / "1999.zarr").exists() and not list((run / "stacks").glob(".1999*"))
    # the other year went all the way: stack, models, its inference and product
    assert (run / "stacks" / "2001.zarr").is_dir()
    assert len(list((run / "product" / "2001").glob("*.nc"))) == 365
    assert not (run / "product" / "1999").exists()
    era5.write_bytes(original)  # the input is fixed
    rerun = _snakemake(base, cwd=tmp_path, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    assert job_counts(log) == {
        "stack_year": 1,
        "inference_tile": 2,
        "product_year": 1,
        "validation": 1,
        "all": 1,
    }, log[-4000:]
    assert "Input stack of 1999" in log and "Input stack of 2001" not in log
    assert "Predict soil moisture for tile h17v04 of 1999" in log and " of 2001" not in log


def test_global_forty_year_dry_run_plans_quickly(tmp_path):
    """The 1982-2021 global configuration (real-data layout; empty stand-ins for the inputs
    the DAG looks at) plans in under 20 s."""
    data = tmp_path / "data"
    for year in range(1982, 2022):
        for month in range(1, 13):
            path = data / "era5land" / str(year) / f"era5-land_swvl1_{year}_{month:02d}.nc"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    for folder in ("merit_dem", "cosmos_uk", "smap_cvs"):
        (data / folder).mkdir(parents=True)
    (data / "soilgrids").mkdir()
    for fraction in ("sand", "silt", "clay"):
        (data / "soilgrids" / f"{fraction}_0-5cm_mean.tif").touch()
    (data / "ismn").mkdir()
    (data / "ismn" / "Data_separate_files_19820101_20211231.zip").touch()
    config = REPO_ROOT / "workflow" / "configs" / "global.yaml"
    start = time.monotonic()
    result = _snakemake(["-n", "--quiet", "rules", "--configfile", str(config)], cwd=tmp_path)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    assert counts["stack_year"] == 40
    assert counts["inference_tile"] == 40 * 72  # 30 degree tiles of the globe
    assert counts["product_year"] == 40
    assert seconds < 20, f"the global dry run took {seconds:.1f} s"
    Path(tmp_path / "dry_run_seconds.txt").write_text(f"{seconds:.2f}\n")
