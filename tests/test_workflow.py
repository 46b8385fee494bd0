"""The real workflow, run through Snakemake: config validation at parse time, DAG, end to end."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import REPO_ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(args, cwd, timeout=600):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO_ROOT / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def workdir(tmp_path) -> Path:
    shutil.copy(REPO_ROOT / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def test_dry_run_default_config_is_fast(workdir):
    start = time.monotonic()
    result = _snakemake(["-n", "--cores", "1"], cwd=workdir)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "synthesize" in result.stdout and "static_layers" in result.stdout
    assert re.search(r"stack_year\s+6\b", result.stdout)  # one job per configured year
    assert elapsed < 30  # the target is 10 s; generous for a loaded CI machine


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (["synthetic={'sed': 3}"], "synthetic.sed: unknown key (did you mean 'seed'?)"),
        (["years=[1970]"], "years[0]: 1970 is out of range"),
        (
            ["region={'lon_min': 'west', 'lon_max': 1, 'lat_min': 0, 'lat_max': 1}"],
            "region.lon_min: 'west' has the wrong type",
        ),
    ],
)
def test_bad_config_stops_before_any_job(workdir, override, fragment):
    result = _snakemake(["-n", "--cores", "1", "--config", *override], cwd=workdir)
    assert result.returncode != 0
    assert fragment in result.stderr + result.stdout
    assert not (workdir / "results").exists()


def test_typo_in_config_file_is_named(workdir):
    (workdir / "config.yaml").write_text("run: x\nyeras: [2001]\n")
    result = _snakemake(["-n", "--cores", "1"], cwd=workdir)
    assert result.returncode != 0
    assert "yeras: unknown key (did you mean 'years'?)" in result.stderr + result.stdout


@pytest.mark.slow
def test_end_to_end_tiny_config(tiny_run):
    """The real workflow on the tiny config: every rule runs, logs and benchmarks are written."""
    run = tiny_run
    workdir = run.parents[1]
    world = run / "synthetic"
    assert (world / "world.json").is_file()
    assert (run / "logs" / "synthesize.log").read_text().count("synthetic world written") == 1
    assert (run / "benchmarks" / "synthesize.tsv").is_file()
    assert not list(run.glob(".synthetic.tmp-*"))
    static = run / "static" / "static_layers.zarr"
    assert static.is_dir() and (run / "logs" / "static_layers.log").is_file()
    assert (run / "benchmarks" / "static_layers.tsv").is_file()
    for year in (2001, 2015):
        assert (run / "stacks" / f"{year}.zarr").is_dir()
        assert (run / "logs" / f"stack_year_{year}.log").is_file()
        assert (run / "benchmarks" / f"stack_year_{year}.tsv").is_file()
    # the learning stage: sample sets, five models, the sweep and the comparison
    manifest = json.loads((run / "samples" / "manifest.json").read_text())
    assert manifest["samples"] > 0 and [y["year"] for y in manifest["years"]] == [2001, 2015]
    for model in ("lstm", "bilstm", "atlstm", "transformer"):
        assert (run / "models" / model / "L4" / "model.pt").is_file()
        assert (run / "models" / model / "L4" / "checkpoints" / "epoch_001.pt").is_file()
    assert (run / "models" / "atlstm" / "L1" / "model.pt").is_file()
    assert (run / "models" / "xgboost" / "L4" / "model.ubj").is_file()
    comparison = run / "comparison"
    rows = list(csv.DictReader((comparison / "metrics.csv").open()))
    overall = {r["model"]: float(r["rmse_m3m3"]) for r in rows if r["subset"] == "all"}
    assert set(overall) == {"era5land_swvl1", "lstm", "bilstm", "atlstm", "transformer", "xgboost"}
    for model in ("lstm", "bilstm", "atlstm", "transformer"):
        # the deep models beat raw ERA5-Land clearly, even this tiny and this briefly trained
        assert overall[model] < 0.7 * overall["era5land_swvl1"], (model, overall)
    summary = json.loads((comparison / "summary.json").read_text())
    assert summary["winner"] in overall and summary["winner"] in summary["statement"]
    for figure in ("scatter_density", "metric_vs_sequence_length", "attention_per_lag"):
        assert (comparison / f"{figure}.png").stat().st_size > 1000
    # inference tiles and the daily product of every year
    for year, n_days in ((2001, 365), (2015, 365)):
        files = sorted((run / "product" / str(year)).glob("avhrrsm_sm_*.nc"))
        assert len(files) == n_days, year
        assert (run / "product" / f"summary_{year}.png").stat().st_size > 1000
        assert list((run / "inference" / str(year)).glob("h*v*.zarr"))
    # validation: per-site metrics, summaries, intercomparison and the report
    validation = run / "validation"
    results = xr.open_dataset(validation / "results.nc")
    assert results.sizes["site"] > 0 and set(results["product"].values) == {
        "avhrrsm",
        "era5land",
        "esa_cci",
    }
    assert np.isfinite(results["r"].sel(product="avhrrsm").values).any()
    assert {"point", "field", "9km"} <= set(results["scale"].values)
    summary = list(csv.DictReader((validation / "network_summary.csv").open()))
    assert any(row["network"] == "all" and row["product"] == "avhrrsm" for row in summary)
    page = (validation / "report.html").read_text()
    assert "Model comparison" in page and "Every site and its status" in page
    inter = json.loads((validation / "intercomparison.json").read_text())
    assert inter["coverage_fraction_of_land_pixel_days"]["avhrrsm"] == 1.0
    # every site of every network with its status; each scored site is in the results file
    statuses = inter["site_status"]
    assert sum(row["status"] == "scored" for row in statuses) > 0
    assert {row["network"] for row in statuses} >= {"COSMOS-UK", "SMAP-CVS"}
    assert inter["sources_without_sites"] == []
    # a synthetic run scores the product against the truth on every land pixel-day, by class
    scores = {(row["group"], row["subset"]): row for row in inter["truth_scores"]}
    everything = scores[("all", "all land pixel-days")]
    assert everything["share"] == 1.0 and 0 < everything["rmse"] < 0.1
    observed = scores[("class", "every input observed")]
    filled = scores[("class", "LST gap-filled: temporal interpolation")]
    assert observed["n_pixel_days"] > 0 and filled["n_pixel_days"] > 0
    assert observed["rmse_low"] <= observed["rmse"] <= observed["rmse_high"]
    assert {("year", "2001"), ("year", "2015")} <= set(scores)
    assert "against the synthetic truth (every land pixel-day)" in page
    # the uncertainty scored against the truth in the same classes, with its reliability figure
    assert 0 < everything["rms_sigma"] < 0.1 and 0 < everything["mean_sigma"]
    assert 0 < everything["coverage_68"] < everything["coverage_90"] < everything["coverage_95"]
    assert len(everything["pit_histogram"]) == 20
    assert sum(everything["pit_histogram"]) == pytest.approx(1.0)
    assert "Reliability of the uncertainty" in page
    # the run's manifest and provenance page
    assert (run / "MANIFEST.json").is_file() and (run / "provenance.html").is_file()
    report_dir = workdir.parent / f"{workdir.name}-report"
    report_dir.mkdir(exist_ok=True)
    report = _snakemake(
        ["--configfile", "config.yaml", "--report", str(report_dir / "report.html")], cwd=workdir
    )
    assert report.returncode == 0, report.stderr[-3000:]
    page = (report_dir / "report.html").read_text()
    assert "Model comparison" in page
    # provenance (the manifest and the provenance page) and the rule graph are in the report
    assert "Provenance" in page and "MANIFEST.json" in page and "provenance.html" in page
    assert "rulegraph" in page and "inference_tile" in page
    # A second run has nothing to do.
    again = _snakemake(["--cores", "2", "--configfile", "config.yaml"], cwd=workdir)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def _numbers_close(x, y, where=""):
    """Every number of two JSON documents equal to 1e-12 (relative), everything else equal."""
    if isinstance(x, dict):
        assert set(x) == set(y), where
        for key in x:
            _numbers_close(x[key], y[key], f"{where}/{key}")
    elif isinstance(x, list):
        assert len(x) == len(y), where
        for k, (p, q) in enumerate(zip(x, y, strict=True)):
            _numbers_close(p, q, f"{where}[{k}]")
    elif isinstance(x, float) or isinstance(y, float):
        assert (np.isnan(x) and np.isnan(y)) or abs(x - y) <= 1e-12 * max(abs(x), 1e-300), (
            where,
            x,
            y,
        )
    else:
        assert x == y, where


def test_map_reduce_validation_equals_one_job(tiny_run, tmp_path, monkeypatch):
    """The workflow's validation (sites once, one part per year, the merge) gives the numbers
    one pass over all years in one process gives: the site metrics and series bit for bit, the
    region's and the truth's figures to 1e-12."""
    from avhrrsm.config import input_patterns
    from avhrrsm.validate.run import run_validation

    parts = tiny_run / "validation" / "parts"
    assert (parts / "sites.nc").is_file()
    assert {p.name for p in parts.glob("*.nc")} == {"sites.nc", "2001.nc", "2015.nc"}
    config = json.loads((tiny_run / "MANIFEST.json").read_text())["config"]
    monkeypatch.chdir(tiny_run.parents[1])
    inputs = input_patterns(config)
    names = {"results": "results.nc", "network_summary": "network_summary.csv",
             "intercomparison": "intercomparison.json", "modis_consistency": "modis_consistency.nc",
             "report": "report.html", "boxplots": "boxplots.png", "site_map": "site_r_map.png",
             "scatter": "scatter_density.png", "timeseries": "timeseries.png",
             "modis_map": "modis_consistency.png", "homogeneity": "homogeneity.png"}  # fmt: skip
    years = config["years"]
    run_validation(
        outputs={key: tmp_path / name for key, name in names.items()},
        product_dirs={y: tiny_run / "product" / str(y) for y in years},
        stack_paths={y: tiny_run / "stacks" / f"{y}.zarr" for y in years},
        static_path=tiny_run / "static" / "static_layers.zarr",
        insitu={n: inputs[n] for n in ("ismn", "cosmos", "smap_cvs", "smap_cvs_sites")},
        patterns={n: inputs[n] for n in ("era5land", "esa_cci")},
        years=years,
        region=config["region"],
        settings=config["validation"],
        comparison={
            "summary_json": tiny_run / "comparison" / "summary.json",
            "scatter": tiny_run / "comparison" / "scatter_density.png",
        },
        provenance={},
        cci_invalid_flag_bits=config["layouts"]["esa_cci"]["invalid_flag_bits"],
        nsidc0712=config["layouts"]["nsidc0712"],
        truth_folder=tiny_run / "synthetic" / "truth",
    )
    merged = tiny_run / "validation"
    one, many = xr.open_dataset(tmp_path / "results.nc"), xr.open_dataset(merged / "results.nc")
    for name in one.data_vars:
        np.testing.assert_array_equal(one[name].values, many[name].values, err_msg=name)
    for name in ("r", "ubrmse", "n", "regional_mean_soil_moisture"):
        np.testing.assert_allclose(
            xr.open_dataset(tmp_path / "modis_consistency.nc")[name].values,
            xr.open_dataset(merged / "modis_consistency.nc")[name].values,
            rtol=1e-12,
            err_msg=name,
        )
    assert (tmp_path / "network_summary.csv").read_text() == (
        merged / "network_summary.csv"
    ).read_text()
    single = json.loads((tmp_path / "intercomparison.json").read_text())
    mapped = json.loads((merged / "intercomparison.json").read_text())
    assert single["truth_scores"] and single["homogeneity"]["periods"]
    _numbers_close(single, mapped)


def test_the_workflow_parse_imports_no_stage_libraries():
    """Every DAG parse (and every cluster job, which parses the Snakefile again) imports what
    common.smk imports: none of torch, xarray, rasterio (issue 33: 2.3 s of each parse)."""
    text = (REPO_ROOT / "workflow" / "rules" / "common.smk").read_text()
    modules = sorted(set(re.findall(r"^\s*from (avhrrsm[\w.]*) import", text, re.MULTILINE)))
    assert "avhrrsm.config" in modules and "avhrrsm.requests" in modules
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        + "; ".join(f"import {name}" for name in modules)
        + "; print(sorted(m for m in ('torch', 'xarray', 'rasterio', 'zarr') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT / "src")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]", (modules, done.stdout)
