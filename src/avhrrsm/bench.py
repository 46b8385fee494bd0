"""Benchmarks of the figures that decide whether the global product is feasible.

``avhrrsm bench`` (``make bench``) writes ``benchmarks/results.json`` and
``benchmarks/RESULTS.md``. Every speed is given with a reference measured in the same run
(these machines are noisy; absolute times alone mean little). Sections so far:

- ``regrid_block``: block mean (1 km -> 5 km, 90 m-like -> 5 km), file to file, against
  ``gdalwarp -r average`` on the same GeoTIFF; megapixels per second, ratio, max difference.
- ``regrid_bilinear``: ERA5-Land 0.1 -> 0.05 degree against ``gdalwarp -r bilinear``.
- ``stack_global``: a stack job on the global 7200 x 3600 grid for 2 and 4 days (synthetic
  global inputs in the real layouts): wall time and peak memory (RSS) of the job process.
- ``inference``: per deep model, model-only forward throughput (pixel-days per second, batch
  sizes swept) against the whole tile job (read, normalise, predict, write) on a 10 degree
  tile, the ratio, and the job's peak memory.
- ``training``: samples per second in training steps and the fraction of a step spent
  assembling the batch, per deep model, on a sample set made by the real chain.
- ``dag``: wall time of ``snakemake -n`` on the global 1982-2021 config, the number of jobs,
  and of SLURM submissions after job grouping.
- ``gpu_projection``: the global 40-year inference on one H100, from each model's FLOPs per
  pixel-day and its measured CPU efficiency (needs ``inference`` in the same results).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio

from avhrrsm.config import REPO_ROOT, load_yaml, with_synthetic_folder
from avhrrsm.grid import Window, window_for_bounds
from avhrrsm.io.netcdf import NcVar, pack, write_netcdf
from avhrrsm.io.rasters import write_geotiff
from avhrrsm.regrid import bilinear_to_points, block_reduce_mean

LOGGER = logging.getLogger(__name__)
BENCH_SECTIONS = (
    "regrid_block",
    "regrid_bilinear",
    "glass_hdf4",
    "modis_sinusoidal",
    "stack_global",
    "inference",
    "training",
    "dag",
    "gpu_projection",
)
TARGETS = {
    "block_vs_gdalwarp_ratio": 3.0,
    "stack_peak_memory_gib": 4.0,
    "tile_vs_model_only_ratio": 0.7,
    "global_dry_run_seconds": 20.0,
    "sinusoidal_vs_gdalwarp_ratio": 1.0,
}
PROFILE_CONFIG = REPO_ROOT / "profiles" / "default" / "config.yaml"


def _best_of(function: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def gdalwarp_to_window(
    gdalwarp: str, source: Path, target: Path, window: Window, method: str
) -> None:
    """Run GDAL's reference warper from ``source`` onto a 0.05 degree grid window."""
    west, south, east, north = window.bounds()
    subprocess.run(
        [
            gdalwarp,
            "-q",
            "-overwrite",
            "-r",
            method,
            "-t_srs",
            "EPSG:4326",
            "-te",
            *map(str, (west, south, east, north)),
            "-ts",
            str(window.shape[1]),
            str(window.shape[0]),
            "-dstnodata",
            "nan",
            "-ot",
            "Float32",
            "-co",
            "COMPRESS=NONE",
            str(source),
            str(target),
        ],
        check=True,
    )


def bench_regrid_block(work: Path, gdalwarp: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    results = {}
    for label, factor, extent in (("1km_to_5km", 5, 20.0), ("90m_to_5km", 20, 5.0)):
        step = 0.05 / factor
        window = window_for_bounds(0.0, 40.0, extent, 40.0 + extent)
        fine = rng.uniform(0, 0.5, (window.shape[0] * factor, window.shape[1] * factor)).astype(
            np.float32
        )
        fine[rng.random(fine.shape) < 0.2] = -9999.0
        source = write_geotiff(work / f"{label}.tif", fine, 0.0, 40.0 + extent, step, -9999.0)
        ours_path = work / f"{label}_ours.tif"

        def ours(
            source: Path = source,
            target: Path = ours_path,
            north: float = 40.0 + extent,
            factor: int = factor,
        ) -> np.ndarray:
            with rasterio.open(source) as src:
                data = src.read(1, out_dtype="float32")
                # nodata to NaN in one vectorised pass, as xarray's mask_and_scale does
                data = np.where(data == src.nodata, np.float32(np.nan), data)
            mean, _ = block_reduce_mean(data, factor)
            write_geotiff(target, mean, 0.0, north, 0.05, float("nan"))
            return mean

        gdal_path = work / f"{label}_gdal.tif"
        t_ours = _best_of(ours)
        t_gdal = _best_of(
            partial(gdalwarp_to_window, gdalwarp, source, gdal_path, window, "average")
        )
        with rasterio.open(gdal_path) as src:
            reference = src.read(1)
        megapixels = fine.size / 1e6
        results[label] = {
            "input_megapixels": megapixels,
            "ours_mpix_per_s": megapixels / t_ours,
            "gdalwarp_mpix_per_s": megapixels / t_gdal,
            "ratio": t_gdal / t_ours,
            "max_abs_diff": float(np.nanmax(np.abs(ours() - reference))),
        }
    return results


def bench_regrid_bilinear(work: Path, gdalwarp: str) -> dict[str, Any]:
    lat = np.round(60.0 - 0.1 * np.arange(401), 6)
    lon = np.round(-20.0 + 0.1 * np.arange(601), 6)
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    field = (0.3 + 0.1 * np.sin(yy / 3.0) * np.cos(xx / 4.0)).astype(np.float32)
    source = write_geotiff(work / "era.tif", field, lon[0] - 0.05, lat[0] + 0.05, 0.1, -9999.0)
    window = window_for_bounds(-19.0, 21.0, 39.0, 59.0)
    t_ours = _best_of(lambda: bilinear_to_points(field, lat, lon, window.lat(), window.lon()))
    t_gdal = _best_of(
        lambda: gdalwarp_to_window(gdalwarp, source, work / "era_gdal.tif", window, "bilinear")
    )
    ours = bilinear_to_points(field, lat, lon, window.lat(), window.lon())
    with rasterio.open(work / "era_gdal.tif") as src:
        reference = src.read(1)
    out_mpix = window.shape[0] * window.shape[1] / 1e6
    return {
        "output_megapixels": out_mpix,
        "ours_mpix_per_s": out_mpix / t_ours,
        "gdalwarp_mpix_per_s": out_mpix / t_gdal,
        "ratio": t_gdal / t_ours,
        "max_abs_diff": float(np.nanmax(np.abs(ours - reference))),
    }


def write_global_inputs(folder: Path, year: int, n_days: int) -> dict[str, str]:
    """Global GLASS-AVHRR (HDF4) and ERA5-Land files for the first ``n_days`` of ``year``, and
    static layers."""
    import xarray as xr

    from avhrrsm.store import crs_variable, lat_lon_coords
    from avhrrsm.synth.hdf4 import Sds, write_glass_hdf4

    window = Window(0, 3600, 0, 7200)
    lat, lon = window.lat(), window.lon()
    yy, xx = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    land = (np.sin(3 * xx) * np.cos(2 * yy) + 0.3 * np.cos(5 * yy)) > 0.2
    patterns = {
        "glass_albedo": str(folder / "albedo" / "GLASS02B05.V04.A{year}{doy:03d}.*.hdf"),
        "glass_lst": str(folder / "lst" / "GLASS08B31.V40.A{year}{doy:03d}.*.hdf"),
        "era5land": str(folder / "era5" / "era5_{year}_{month:02d}.nc"),
        "glass_modis": str(folder / "modis" / "{year}{doy:03d}*.tif"),
    }
    rng = np.random.default_rng(3)
    for day in pd.date_range(f"{year}-01-01", periods=n_days):
        base = 0.25 + 0.1 * np.sin(xx + day.day_of_year / 10.0) * np.cos(yy)
        cloud = rng.random(land.shape) < 0.3
        name = dict(year=year, doy=day.day_of_year)
        lst = pack(np.where(land & ~cloud, 290.0 - 20 * base, np.nan), 0.01, 0.0, 0, np.uint16)
        write_glass_hdf4(
            patterns["glass_lst"].replace("*", "2021047").format(**name),
            window,
            {"LST": Sds(lst, 0, {"scale_factor": 0.01, "add_offset": 0.0})},
        )
        if (day.day_of_year - 1) % 8:
            continue  # albedo: one file per 8-day composite
        albedo = {
            sds: Sds(pack(np.where(land, values, np.nan), 1e-4, 0.0, -1, np.int16), -1)
            for sds, values in (
                ("ABD_BSA_VIS", 0.15 - 0.1 * base),
                ("ABD_BSA_NIR", 0.3 - 0.1 * base),
                ("ABD_BSA_shortwave", 0.22 - 0.1 * base),
            )
        }
        write_glass_hdf4(
            patterns["glass_albedo"].replace("*", "2019353").format(**name), window, albedo
        )
    era_lat = np.round(90.0 - 0.1 * np.arange(1801), 6)
    era_lon = np.round(0.1 * np.arange(3600), 6)
    ey, ex = np.meshgrid(np.deg2rad(era_lat), np.deg2rad(era_lon), indexing="ij")
    hours = pd.date_range(f"{year}-01-01", periods=24 * n_days, freq="h")
    hourly = np.empty((len(hours), 1801, 3600), dtype=np.float32)
    for k, hour in enumerate(hours):
        hourly[k] = 0.25 + 0.1 * np.sin(ex + hour.day_of_year / 10.0) * np.cos(ey)
    seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy()
    write_netcdf(
        patterns["era5land"].format(year=year, month=1),
        {"valid_time": len(hours), "latitude": 1801, "longitude": 3600},
        {
            "valid_time": NcVar(
                ("valid_time",), seconds, np.int64, {"units": "seconds since 1970-01-01"}
            ),
            "latitude": NcVar(("latitude",), era_lat),
            "longitude": NcVar(("longitude",), era_lon),
            "swvl1": NcVar(
                ("valid_time", "latitude", "longitude"),
                hourly,
                np.float32,
                {"units": "m**3 m**-3"},
                np.float32(np.nan),
            ),
        },
    )
    del hourly
    static = xr.Dataset(
        {"land_mask": (("lat", "lon"), land.astype(np.int8))}, coords=lat_lon_coords(window)
    )
    static["crs"] = crs_variable()
    static.to_zarr(folder / "static.zarr", mode="w")
    return patterns


STACK_JOB = """
import json, resource, sys, time
from avhrrsm.config import validate_config
from avhrrsm.stacks import build_year_stack
folder, year, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
patterns = json.loads(sys.argv[4])
start = time.perf_counter()
build_year_stack(folder + f"/stack_{days}.zarr", year, patterns, folder + "/static.zarr",
                 {"lon_min": -180, "lon_max": 180, "lat_min": -90, "lat_max": 90}, 10,
                 validate_config({})["stacks"], {}, day_count=days)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def bench_glass_hdf4(work: Path) -> dict[str, Any]:
    """Reading one global GLASS HDF4 day (LST) and 8-day composite (three albedo SDS) whole
    into the 0.05 degree grid (7200 x 3600), through the workflow's reader."""
    from avhrrsm.io.glass import read_glass_bands, read_glass_sds
    from avhrrsm.io.layouts import GLASS_ALBEDO, GLASS_LST
    from avhrrsm.synth.hdf4 import Sds, write_glass_hdf4

    window = Window(0, 3600, 0, 7200)
    yy, xx = np.meshgrid(np.deg2rad(window.lat()), np.deg2rad(window.lon()), indexing="ij")
    land = (np.sin(3 * xx) * np.cos(2 * yy) + 0.3 * np.cos(5 * yy)) > 0.2
    field = 0.25 + 0.1 * np.sin(xx) * np.cos(yy)
    lst = pack(np.where(land, 290.0 - 20 * field, np.nan), 0.01, 0.0, 0, np.uint16)
    lst_path = write_glass_hdf4(
        work / "GLASS08B31.V40.A2001001.2021047.hdf", window, {"LST": Sds(lst, 0)}
    )
    albedo = pack(np.where(land, 0.3 - 0.1 * field, np.nan), 1e-4, 0.0, -1, np.int16)
    albedo_path = write_glass_hdf4(
        work / "GLASS02B05.V04.A2001001.2019353.hdf",
        window,
        {name: Sds(albedo, -1) for name in GLASS_ALBEDO.sds.values()},
    )
    t_lst = _best_of(lambda: read_glass_sds(lst_path, GLASS_LST, "lst", window))
    t_albedo = _best_of(
        lambda: read_glass_bands(albedo_path, GLASS_ALBEDO, list(GLASS_ALBEDO.sds), window)
    )
    megapixels = window.shape[0] * window.shape[1] / 1e6
    return {
        "megapixels_per_sds": megapixels,
        "lst_day_seconds": t_lst,
        "albedo_composite_seconds": t_albedo,
        "mpix_per_s": 4 * megapixels / (t_lst + t_albedo),
        "file_mb": {
            "lst": lst_path.stat().st_size / 1e6,
            "albedo": albedo_path.stat().st_size / 1e6,
        },
    }


def write_global_sinusoidal_day(path: Path, rows_per_block: int = 1200) -> tuple[int, int]:
    """A global daily 1 km sinusoidal GeoTIFF (43200 x 21600, the MODIS grid) like GLASS-MODIS:
    a smooth field inside the projection's valid area, 20 % random gaps, nodata -9999; written
    in blocks of rows so memory stays small. Returns (width, height)."""
    from avhrrsm.synth.products import (
        MODIS_GRID_NORTH_M,
        MODIS_GRID_WEST_M,
        MODIS_PIXEL_M,
        MODIS_SINUSOIDAL,
    )

    width, height = 43200, 21600
    radius = 6371007.181
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": MODIS_SINUSOIDAL,
        "transform": rasterio.transform.from_origin(
            MODIS_GRID_WEST_M, MODIS_GRID_NORTH_M, MODIS_PIXEL_M, MODIS_PIXEL_M
        ),
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 3,
        "BIGTIFF": "YES",
    }
    rng = np.random.default_rng(5)
    x = MODIS_GRID_WEST_M + MODIS_PIXEL_M * (np.arange(width) + 0.5)
    with rasterio.open(path, "w", **profile) as out:
        for row0 in range(0, height, rows_per_block):
            rows = min(rows_per_block, height - row0)
            y = MODIS_GRID_NORTH_M - MODIS_PIXEL_M * (np.arange(row0, row0 + rows) + 0.5)
            lat = y / radius
            lon = x[None, :] / (radius * np.cos(lat)[:, None])
            inside = np.abs(lon) <= np.pi
            value = 0.25 + 0.1 * np.sin(3 * lon) * np.cos(2 * lat)[:, None]
            gap = rng.random(value.shape) < 0.2
            data = np.where(inside & ~gap, value, -9999.0).astype(np.float32)
            out.write(data, 1, window=rasterio.windows.Window(0, row0, width, rows))
    return width, height


def bench_modis_sinusoidal(work: Path, gdalwarp: str) -> dict[str, Any]:
    """A global 1 km sinusoidal day -> the global 0.05 degree grid: the workflow's reader
    (area-weighted mean and valid fraction, 5 degree stripes) against `gdalwarp -r average`
    (the mean only), file to array/file."""
    from avhrrsm.io.glass_modis import glass_modis_on_grid

    source = work / "GLASS_MODIS_SM_A2001001.tif"
    start = time.perf_counter()
    width, height = write_global_sinusoidal_day(source)
    write_seconds = time.perf_counter() - start
    window = Window(0, 3600, 0, 7200)
    start = time.perf_counter()
    ours, _ = glass_modis_on_grid([source], window, 0.0)
    t_ours = time.perf_counter() - start
    target = work / "modis_gdal.tif"
    start = time.perf_counter()
    gdalwarp_to_window(gdalwarp, source, target, window, "average")
    t_gdal = time.perf_counter() - start
    with rasterio.open(target) as src:
        reference = src.read(1)
    both = np.isfinite(ours) & np.isfinite(reference)
    megapixels = width * height / 1e6
    return {
        "input_megapixels": megapixels,
        "write_seconds": write_seconds,
        "ours_seconds": t_ours,
        "gdalwarp_seconds": t_gdal,
        "ours_mpix_per_s": megapixels / t_ours,
        "gdalwarp_mpix_per_s": megapixels / t_gdal,
        "ratio": t_gdal / t_ours,
        "max_abs_diff": float(np.max(np.abs(ours[both] - reference[both]))),
        "cells": int(ours.size),
        "missing_differ_cells": int((np.isnan(ours) != np.isnan(reference)).sum()),
    }


def bench_stack_global(work: Path, day_counts: tuple[int, ...] = (2, 4)) -> dict[str, Any]:
    year = 1999  # before GLASS-MODIS: inputs only
    patterns = write_global_inputs(work, year, max(day_counts))
    results = {}
    for days in day_counts:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                STACK_JOB,
                str(work),
                str(year),
                str(days),
                json.dumps(patterns),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[f"{days}_days"] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def run_benchmarks(
    out_dir: str | Path = "benchmarks", sections: tuple[str, ...] | None = None
) -> dict[str, Any]:
    out_dir = Path(out_dir)
    work = out_dir / "tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gdalwarp = shutil.which("gdalwarp")
    # A partial run (--section) updates its sections and keeps the others' last figures.
    previous = out_dir / "results.json"
    results: dict[str, Any] = (
        json.loads(previous.read_text()) if sections and previous.is_file() else {}
    )
    results["machine"] = {
        "python": platform.python_version(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }
    todo = sections or BENCH_SECTIONS
    for name in todo:
        LOGGER.info("benchmark %s", name)
        if name.startswith("regrid") and gdalwarp is None:
            results[name] = {"skipped": "gdalwarp not installed (apt-get install gdal-bin)"}
            continue
        if name == "modis_sinusoidal" and gdalwarp is None:
            results[name] = {"skipped": "gdalwarp not installed (apt-get install gdal-bin)"}
            continue
        if name == "regrid_block":
            results[name] = bench_regrid_block(work, gdalwarp)
        elif name == "glass_hdf4":
            results[name] = bench_glass_hdf4(work)
        elif name == "modis_sinusoidal":
            results[name] = bench_modis_sinusoidal(work, gdalwarp)
        elif name == "regrid_bilinear":
            results[name] = bench_regrid_bilinear(work, gdalwarp)
        elif name == "stack_global":
            results[name] = bench_stack_global(work)
        elif name == "inference":
            results[name] = bench_inference(work)
        elif name == "training":
            results[name] = bench_training(work)
        elif name == "dag":
            results[name] = bench_dag(work)
        elif name == "gpu_projection":
            if "inference" not in results:
                results[name] = {"skipped": "needs the inference section's figures"}
            else:
                results[name] = gpu_projection(results["inference"])
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out_dir / "RESULTS.md").write_text(render_markdown(results))
    shutil.rmtree(work, ignore_errors=True)
    return results


def target_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's four targets against this run's figures (missing sections are omitted)."""
    verdicts = []
    block = results.get("regrid_block", {})
    if block and "skipped" not in block:
        worst = min(block.values(), key=lambda r: r["ratio"])
        verdicts.append(
            {
                "target": "block aggregation >= 3x `gdalwarp -r average`, equal values",
                "figure": f"{worst['ratio']:.2f}x (worst case), max abs diff "
                f"{max(r['max_abs_diff'] for r in block.values()):.1e}",
                "met": worst["ratio"] >= TARGETS["block_vs_gdalwarp_ratio"]
                and max(r["max_abs_diff"] for r in block.values()) < 1e-5,
            }
        )
    inference = {k: v for k, v in results.get("inference", {}).items() if isinstance(v, dict)}
    if inference:
        worst = min(r["ratio_vs_model_only_same_batch"] for r in inference.values())
        verdicts.append(
            {
                "target": "tile job >= 70% of model-only throughput",
                "figure": f"{worst:.2f} (worst model, same batch size)",
                "met": worst >= TARGETS["tile_vs_model_only_ratio"],
            }
        )
    stack = results.get("stack_global", {})
    peaks = [r["peak_rss_gib"] for r in stack.values()] + [
        r["peak_rss_gib"] for r in inference.values()
    ]
    if stack:
        days = sorted(stack, key=lambda k: int(k.split("_")[0]))
        first, last = stack[days[0]]["peak_rss_gib"], stack[days[-1]]["peak_rss_gib"]
        flat = last <= 1.1 * first
        verdicts.append(
            {
                "target": "peak memory of any job <= 4 GiB at global size, independent of days",
                "figure": f"{max(peaks):.2f} GiB at most; stack job {first:.2f} GiB "
                f"({days[0].split('_')[0]} days) -> {last:.2f} GiB ({days[-1].split('_')[0]} days)",
                "met": max(peaks) <= TARGETS["stack_peak_memory_gib"] and flat,
            }
        )
    sinusoidal = results.get("modis_sinusoidal", {})
    if sinusoidal and "skipped" not in sinusoidal:
        verdicts.append(
            {
                "target": "global 1 km sinusoidal day -> 0.05 degree >= 1x `gdalwarp -r average`, "
                "equal values",
                "figure": f"{sinusoidal['ratio']:.2f}x, max abs diff {sinusoidal['max_abs_diff']:.1e}, "
                f"{sinusoidal['missing_differ_cells']} of {sinusoidal['cells']:,} cells missing in "
                "one only",
                "met": sinusoidal["ratio"] >= TARGETS["sinusoidal_vs_gdalwarp_ratio"]
                and sinusoidal["max_abs_diff"] < 1e-5
                and sinusoidal["missing_differ_cells"] <= 1e-6 * sinusoidal["cells"],
            }
        )
    dag = results.get("dag", {})
    if dag:
        verdicts.append(
            {
                "target": "global 40-year dry run <= 20 s",
                "figure": f"{dag['seconds']:.1f} s for {dag['jobs']:,} jobs",
                "met": dag["seconds"] <= TARGETS["global_dry_run_seconds"],
            }
        )
    return verdicts


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Benchmark results", "", f"Machine: {results['machine']}", ""]
    verdicts = target_verdicts(results)
    if verdicts:
        lines += ["## Targets", "", "| target | this machine | verdict |", "|---|---|---|"]
        lines += [
            f"| {v['target']} | {v['figure']} | {'met' if v['met'] else '**missed**'} |"
            for v in verdicts
        ]
        lines.append("")
    block = results.get("regrid_block", {})
    if "skipped" not in block and block:
        lines += [
            "## Block aggregation against `gdalwarp -r average` (file to file)",
            "",
            "| case | input MP | ours MP/s | gdalwarp MP/s | ratio | max abs diff | target (>= 3x) |",
            "|---|---|---|---|---|---|---|",
        ]
        for case, r in block.items():
            met = "met" if r["ratio"] >= TARGETS["block_vs_gdalwarp_ratio"] else "**missed**"
            lines.append(
                f"| {case} | {r['input_megapixels']:.1f} | {r['ours_mpix_per_s']:.1f} | "
                f"{r['gdalwarp_mpix_per_s']:.1f} | {r['ratio']:.2f} | {r['max_abs_diff']:.2e} | {met} |"
            )
        lines.append("")
    bil = results.get("regrid_bilinear", {})
    if "skipped" not in bil and bil:
        lines += [
            "## ERA5-Land 0.1 -> 0.05 degree bilinear against `gdalwarp -r bilinear`",
            "",
            f"ours {bil['ours_mpix_per_s']:.1f} MP/s (output), gdalwarp {bil['gdalwarp_mpix_per_s']:.1f} "
            f"MP/s, ratio {bil['ratio']:.2f}, max abs diff {bil['max_abs_diff']:.2e} "
            "(ours in memory, gdalwarp file to file).",
            "",
        ]
    hdf4 = results.get("glass_hdf4", {})
    if hdf4:
        lines += [
            "## A global GLASS HDF4 day read into the 0.05 degree grid",
            "",
            f"LST day (1 SDS) {hdf4['lst_day_seconds']:.2f} s, albedo composite (3 SDS) "
            f"{hdf4['albedo_composite_seconds']:.2f} s: {hdf4['mpix_per_s']:.0f} MP/s through "
            f"`io.glass.read_glass_sds` (pyhdf, deflate-compressed chunks; files "
            f"{hdf4['file_mb']['lst']:.1f} MB and {hdf4['file_mb']['albedo']:.1f} MB).",
            "",
        ]
    sinusoidal = results.get("modis_sinusoidal", {})
    if sinusoidal and "skipped" not in sinusoidal:
        met = sinusoidal["ratio"] >= TARGETS["sinusoidal_vs_gdalwarp_ratio"]
        lines += [
            "## GLASS-MODIS: a global 1 km sinusoidal day -> 0.05 degree against `gdalwarp -r average`",
            "",
            f"{sinusoidal['input_megapixels']:.0f} MP in (43200 x 21600, the MODIS grid). Ours "
            f"(`io.glass_modis.glass_modis_on_grid`: the area-weighted mean and the valid "
            f"fraction, in 5 degree stripes) {sinusoidal['ours_seconds']:.1f} s "
            f"({sinusoidal['ours_mpix_per_s']:.1f} MP/s); gdalwarp (the mean only, file to "
            f"file) {sinusoidal['gdalwarp_seconds']:.1f} s: ratio {sinusoidal['ratio']:.2f} "
            f"({'met' if met else '**missed**'}, target >= 1x); max abs diff "
            f"{sinusoidal['max_abs_diff']:.1e} where both have a value; "
            f"{sinusoidal['missing_differ_cells']} of {sinusoidal['cells']:,} cells have a value "
            "in one only (GDAL's exact transformer, `-et 0`, gives the same cells as its default: "
            "the difference is in which source pixels a whole-file warp selects for a cell).",
            "",
        ]
    stack = results.get("stack_global", {})
    if stack:
        lines += [
            "## A stack job at global size (7200 x 3600), inputs in the real formats (GLASS HDF4, CDS NetCDF)",
            "",
            "| days | seconds | peak RSS (GiB) | target (<= 4 GiB, flat in days) |",
            "|---|---|---|---|",
        ]
        for case, r in stack.items():
            met = "met" if r["peak_rss_gib"] <= TARGETS["stack_peak_memory_gib"] else "**missed**"
            lines.append(
                f"| {case.split('_')[0]} | {r['seconds']:.1f} | {r['peak_rss_gib']:.2f} | {met} |"
            )
        days = np.array([int(case.split("_")[0]) for case in stack], dtype=float)
        seconds = np.array([r["seconds"] for r in stack.values()])
        if len(days) >= 2:
            slope, intercept = np.polyfit(days, seconds, 1)
            residual = float(np.max(np.abs(seconds - (slope * days + intercept))))
            lines += [
                "",
                f"Time grows linearly with the days: {slope:.1f} s per day plus {intercept:.1f} s "
                f"fixed (largest deviation from the line {residual:.1f} s); memory is bounded by "
                "one chunk of days on one tile, so it stays flat. A year (365 days) would take "
                f"about {(slope * 365 + intercept) / 3600:.1f} h on this machine's core.",
            ]
        lines.append("")
    inference = results.get("inference", {})
    if inference:
        lines += [
            f"## Inference on a {inference['tile_pixels']}-pixel tile x {inference['days']} days "
            f"({inference['threads']} threads)",
            "",
            "Model-only: forward passes over 2^20 pixel-days of ready, normalised inputs in "
            "distinct batches. Tile job: `predict_tile` end to end (load the model, read the "
            "stack, normalise, predict, flag, write the tile store), in its own process.",
            "",
            "| model | device | model-only best (px-days/s) | model-only at the job's batch | "
            "tile job (px-days/s) | ratio (same batch) | ratio (best batch) | peak RSS (GiB) | "
            "target (>= 0.7) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in inference.items():
            if not isinstance(r, dict):
                continue
            same = r["model_only_pixel_days_per_s"][str(r["tile_job_batch_size"])]
            ratio = r["ratio_vs_model_only_same_batch"]
            met = "met" if ratio >= TARGETS["tile_vs_model_only_ratio"] else "**missed**"
            lines.append(
                f"| {name} | {r['device']} | {max(r['model_only_pixel_days_per_s'].values()):,.0f} | "
                f"{same:,.0f} (batch {r['tile_job_batch_size']}) | "
                f"{r['tile_job_pixel_days_per_s']:,.0f} | {ratio:.2f} | "
                f"{r['ratio_vs_model_only_best_batch']:.2f} | {r['peak_rss_gib']:.2f} | {met} |"
            )
        lines.append("")
    lines += _training_markdown(results.get("training", {}))
    lines += _dag_markdown(results.get("dag", {}))
    lines += _projection_markdown(results.get("gpu_projection", {}))
    return "\n".join(lines)


def _training_markdown(training: dict[str, Any]) -> list[str]:
    if not training:
        return []
    lines = [
        f"## Training ({training['epochs']} epochs, batch {training['batch_size']}, "
        f"{training['threads']} threads)",
        "",
        "Samples per second over the training steps (batch assembly, forward, backward, "
        "optimiser step), and the share of a step spent assembling the batch (gathering the "
        "shuffled samples from the tensors the sample set is loaded into once).",
        "",
        "| model | device | train samples | samples/s | waiting for data |",
        "|---|---|---|---|---|",
    ]
    for name, r in training.items():
        if isinstance(r, dict):
            lines.append(
                f"| {name} | {r['device']} | {r['train_samples']:,} | "
                f"{r['samples_per_second']:,.0f} | {100 * r['data_wait_fraction']:.1f}% |"
            )
    return [*lines, ""]


def _dag_markdown(dag: dict[str, Any]) -> list[str]:
    if not dag:
        return []
    met = "met" if dag["seconds"] <= TARGETS["global_dry_run_seconds"] else "**missed**"
    return [
        "## DAG of the global 1982-2021 configuration",
        "",
        f"`snakemake -n` plans {dag['jobs']:,} jobs in {dag['seconds']:.1f} s "
        f"(best of {len(dag['seconds_all'])}; target <= 20 s: {met}). Under SLURM, with the "
        f"workflow profile's job groups ({', '.join(dag['grouped_rules'])}), they are "
        f"{dag['slurm_submissions']:,} submissions ({dag['group_jobs']:,} group jobs; local "
        f"rules {', '.join(dag['local_rules'])} run on the head node).",
        "",
        "| rule | jobs |",
        "|---|---|",
        *(f"| {rule} | {n:,} |" for rule, n in dag["jobs_per_rule"].items()),
        "",
    ]


def _projection_markdown(projection: dict[str, Any]) -> list[str]:
    if not projection or "skipped" in projection:
        return []
    a = projection["assumptions"]
    lines = [
        f"## Projection: the global 40-year inference on one {a['name']}",
        "",
        f"{a['pixel_days']:.3g} pixel-days ({a['global_land_pixels']:.3g} land pixels x "
        f"{a['days']:,} days). Assumptions: each model reaches on the GPU the same fraction of "
        f"attainable GEMM throughput as measured here on the CPU (CPU float32 GEMM: "
        f"{projection['cpu_gemm_gflops']:.0f} GFLOP/s with {a['cpu_threads']} threads; GPU: "
        f"{a['gemm_fraction_of_peak']:.0%} of the {a['bf16_dense_tflops']:.0f} TFLOP/s bf16 dense "
        f"peak, the code path runs in bf16 autocast there); the host work of a tile job (read, "
        f"normalise, flag, write) costs per pixel-day and core what it costs here, on "
        f"{a['host_cores']} host cores; both overlap, so the slower sets the pace. Small "
        "recurrent models use a GPU less well than large GEMMs do, so the GPU-side figure is "
        "optimistic; the host side is the more robust bound.",
        "",
        "| model | FLOPs / pixel-day | CPU: share of GEMM | GPU model-only (px-days/s) | "
        "host side (px-days/s) | bound | projected hours | this 2-core CPU (hours) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in projection.items():
        if isinstance(r, dict) and "flops_per_pixel_day" in r:
            lines.append(
                f"| {name} | {r['flops_per_pixel_day']:,.0f} | {r['cpu_fraction_of_gemm']:.1%} | "
                f"{r['gpu_model_pixel_days_per_s']:.3g} | {r['host_pixel_days_per_s']:.3g} | "
                f"{r['bound']} | {r['projected_hours']:,.1f} | "
                f"{r['cpu_hours_this_machine']:,.0f} |"
            )
    return [*lines, ""]


INFERENCE_JOB = """
import json, resource, sys, time
from avhrrsm.infer import predict_tile
work, tile_id, model = sys.argv[1], sys.argv[2], sys.argv[3]
region = json.loads(sys.argv[4])
start = time.perf_counter()
result = predict_tile(work + "/tile_out.zarr", 1999, tile_id, 10, work + "/stack.zarr", None,
                      work + "/static.zarr", model, region,
                      {"device": "auto", "batch_size": 0, "memory_budget_mb": 1500}, [0.0, 0.6], {},
                      threads=int(sys.argv[5]))
print(json.dumps({"seconds": time.perf_counter() - start, "pixel_days": result.pixel_days,
                  "forward_seconds": result.forward_seconds, "read_seconds": result.read_seconds,
                  "write_seconds": result.write_seconds,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def write_inference_inputs(work: Path, n_days: int, seed: int = 0) -> tuple[dict[str, float], str]:
    """A stack and static layers of one 10 degree tile (200 x 200 pixels, all land), plausible
    values (smooth random fields), in the stage's real layout."""
    import xarray as xr

    from avhrrsm.grid import tiles
    from avhrrsm.store import create_store, write_region
    from avhrrsm.variables import FILL_FLAG_ATTRS, INPUTS, STACK_ATTRS, STATIC_FEATURES, TARGET

    region = {"lon_min": 0.0, "lon_max": 10.0, "lat_min": 40.0, "lat_max": 50.0}
    window = window_for_bounds(0.0, 40.0, 10.0, 50.0)
    rng = np.random.default_rng(seed)
    days = pd.date_range("1999-01-01", periods=n_days, freq="D")
    ranges = {
        "albedo_bsa_vis": (0.03, 0.12),
        "albedo_bsa_nir": (0.15, 0.35),
        "albedo_bsa_shortwave": (0.1, 0.25),
        "lst": (270.0, 310.0),
        "era5land_swvl1": (0.1, 0.45),
    }
    variables = {
        name: (("time", "lat", "lon"), np.float32, STACK_ATTRS[name]) for name in (*INPUTS, TARGET)
    }
    variables.update(
        {f"{n}_fill_flag": (("time", "lat", "lon"), np.int8, FILL_FLAG_ATTRS) for n in INPUTS}
    )
    time_coord = xr.DataArray(days.values, dims="time")
    stack = work / "stack.zarr"
    create_store(
        stack, window, variables, {"time": 32, "lat": 200, "lon": 200}, {}, {"time": time_coord}
    )
    for start in range(0, n_days, 32):
        block = slice(start, min(n_days, start + 32))
        count = block.stop - block.start
        arrays = {}
        for name, (lo, hi) in ranges.items():
            base = rng.random((1, *window.shape), dtype=np.float32)
            noise = rng.random((count, *window.shape), dtype=np.float32)
            arrays[name] = (lo + (hi - lo) * (0.7 * base + 0.3 * noise)).astype(np.float32)
            arrays[f"{name}_fill_flag"] = (noise < 0.3).astype(np.int8)
        arrays[TARGET] = np.full((count, *window.shape), np.nan, np.float32)
        write_region(
            stack,
            window,
            window,
            arrays,
            dict.fromkeys(arrays, ("time", "lat", "lon")),
            {"time": start},
        )
    static_vars = {
        "land_mask": (("lat", "lon"), np.int8, {}),
        **{name: (("lat", "lon"), np.float32, {}) for name in STATIC_FEATURES},
    }
    static = work / "static.zarr"
    create_store(static, window, static_vars, {"lat": 200, "lon": 200}, {})
    fields = {"land_mask": np.ones(window.shape, np.int8)}
    for name in static_vars:
        if name != "land_mask":
            fields[name] = rng.random(window.shape, dtype=np.float32)
    write_region(static, window, window, fields, dict.fromkeys(fields, ("lat", "lon")))
    tile_id = tiles(window, 10)[0][0]
    return region, tile_id


def bench_inference(
    work: Path,
    models: tuple[str, ...] = ("lstm", "bilstm", "atlstm", "transformer"),
    n_days: int = 365,
    batch_sizes: tuple[int, ...] = (1024, 4096, 16384, 65536),
    threads: int = 2,
) -> dict[str, Any]:
    """Model-only forward throughput (batch sizes swept) against the whole tile job (read,
    normalise, predict, write) on a 200 x 200 pixel tile, per deep model (default sizes)."""
    import torch

    from avhrrsm.config import validate_config
    from avhrrsm.infer import auto_batch_size
    from avhrrsm.learn.features import Scaler
    from avhrrsm.learn.models import build_model
    from avhrrsm.learn.predictor import load_predictor
    from avhrrsm.learn.train import write_model_file
    from avhrrsm.variables import DYNAMIC_FEATURES, STATIC_FEATURES

    region, tile_id = write_inference_inputs(work, n_days)
    config = validate_config({})
    length = int(config["samples"]["sequence_length"])
    rng = np.random.default_rng(1)
    scaler = Scaler.fit(
        rng.random((1000, length, len(DYNAMIC_FEATURES)), dtype=np.float32),
        rng.random((1000, len(STATIC_FEATURES)), dtype=np.float32),
        rng.random(1000, dtype=np.float32),
    )
    results: dict[str, Any] = {"tile_pixels": 200 * 200, "days": n_days, "threads": threads}
    for name in models:
        torch.manual_seed(0)
        model = build_model(
            name, scaler.n_model_dynamic, len(STATIC_FEATURES), config["models"][name]
        )
        path = work / f"{name}.pt"
        write_model_file(path, name, config["models"][name], length, model.state_dict(), scaler)
        predictor = load_predictor(path, "auto", threads)
        sweep = {}
        for batch in batch_sizes:
            # distinct batches of ready inputs (2**20 pixel-days, beyond the caches), as in a job
            count = max(4, 2**20 // batch)
            xs = rng.standard_normal((count, batch, length, scaler.n_model_dynamic), np.float32)
            ss = rng.standard_normal((count, batch, len(STATIC_FEATURES)), np.float32)
            predictor(xs[0], ss[0])  # warm-up

            def forward_all(xs=xs, ss=ss, predictor=predictor) -> None:
                for x, s in zip(xs, ss, strict=True):
                    predictor(x, s)

            sweep[str(batch)] = count * batch / _best_of(forward_all, repeat=2)
        job = subprocess.run(
            [
                sys.executable,
                "-c",
                INFERENCE_JOB,
                str(work),
                tile_id,
                str(path),
                json.dumps(region),
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        tile = json.loads(job.stdout.strip().splitlines()[-1])
        used_batch = auto_batch_size(0, predictor.device)
        tile_rate = tile["pixel_days"] / tile["seconds"]
        results[name] = {
            "device": predictor.device.type,
            "model_only_pixel_days_per_s": sweep,
            "tile_job_pixel_days_per_s": tile_rate,
            "tile_job_batch_size": used_batch,
            "ratio_vs_model_only_same_batch": tile_rate / sweep[str(used_batch)],
            "ratio_vs_model_only_best_batch": tile_rate / max(sweep.values()),
            **tile,
        }
        shutil.rmtree(work / "tile_out.zarr", ignore_errors=True)
    return results


# --- training --------------------------------------------------------------------------------

# The tiny test region (1 x 1 degree, two GLASS-MODIS years): the real chain from the synthetic
# world to a sample set, big enough for training throughput (speed does not depend on content).
TRAINING_BENCH_CONFIG: dict[str, Any] = {
    "run": "bench",
    "region": {"lon_min": -0.5, "lon_max": 0.5, "lat_min": 42.0, "lat_max": 43.0},
    "years": [2001, 2002],
    "synthetic": {
        "margin_deg": 0.2,
        "dem_arcsec": 18,
        "soilgrids_resolution_m": 2000,
        "n_ismn_stations": 2,
        "n_cosmos_sites": 1,
        "n_smap_sites": 1,
    },
    "samples": {"per_year": 40000, "block_deg": 0.25},
}


def build_bench_sample_set(work: Path) -> tuple[Path, dict[str, Any]]:
    """World -> static layers -> stacks -> split -> per-year samples -> merged sample set."""
    from avhrrsm.config import validate_config
    from avhrrsm.learn.samples import draw_year_samples, merge_sample_sets
    from avhrrsm.learn.splitting import build_split_map
    from avhrrsm.stacks import build_year_stack
    from avhrrsm.static import build_static_layers
    from avhrrsm.synth import write_world

    config = validate_config(TRAINING_BENCH_CONFIG)
    world = work / "world"
    write_world(world, config["region"], config["years"], config["synthetic"], config["inputs"], 2)
    patterns = {k: with_synthetic_folder(v, world) for k, v in config["inputs"].items()}
    static = work / "static.zarr"
    build_static_layers(
        static, patterns["merit_dem"], patterns["soilgrids"], config["region"], 10, {}
    )
    stacks = {}
    for year in config["years"]:
        stacks[year] = work / f"stack_{year}.zarr"
        build_year_stack(
            stacks[year], year, patterns, static, config["region"], 10, config["stacks"], {}
        )
    split = work / "split.zarr"
    build_split_map(
        split, list(stacks.values()), static, config["region"], config["samples"],
        config["seed"], {},
    )  # fmt: skip
    year_sets = []
    for year, stack in stacks.items():
        year_sets.append(work / f"samples_{year}.zarr")
        draw_year_samples(
            year_sets[-1], year, stack, None, static, split, config["region"], 10,
            config["samples"], config["seed"], {},
        )  # fmt: skip
    samples = work / "samples.zarr"
    merge_sample_sets(year_sets, samples, work / "samples_manifest.json", {})
    return samples, config


def bench_training(
    work: Path,
    models: tuple[str, ...] = ("lstm", "bilstm", "atlstm", "transformer"),
    epochs: int = 2,
    threads: int = 2,
) -> dict[str, Any]:
    """Training throughput (samples per second in training steps) and the fraction of a step
    spent assembling the batch, per deep model at the default sizes and batch size."""
    from avhrrsm.learn.train import train_deep_model

    samples, config = build_bench_sample_set(work / "training")
    training = {**config["training"], "epochs": epochs, "patience": epochs + 1, "resume": False}
    results: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": training["batch_size"],
        "threads": threads,
    }
    for name in models:
        summary = train_deep_model(
            samples_path=samples,
            run_dir=work / "training" / name,
            model_name=name,
            hyperparameters=config["models"][name],
            sequence_length=int(config["samples"]["sequence_length"]),
            training=training,
            seed=int(config["seed"]),
            threads=threads,
            measure_data_wait=True,
        )
        results[name] = {
            "device": summary["device"],
            "train_samples": summary["n_train"],
            **summary["timing"],
        }
    return results


# --- the DAG of the global 40-year configuration ---------------------------------------------


def write_global_standins(workdir: Path) -> Path:
    """Empty stand-ins for the files the global configuration's DAG looks at (data/...), so it
    can be planned without the real data; returns the global config file."""
    data = workdir / "data"
    for year in range(1982, 2022):
        folder = data / "era5land" / str(year)
        folder.mkdir(parents=True, exist_ok=True)
        for month in range(1, 13):
            (folder / f"era5-land_swvl1_{year}_{month:02d}.nc").touch()
    for name in ("merit_dem", "cosmos_uk", "nsidc0712", "soilgrids", "ismn"):
        (data / name).mkdir(parents=True, exist_ok=True)
    for fraction in ("sand", "silt", "clay"):
        (data / "soilgrids" / fraction).mkdir(parents=True, exist_ok=True)
        (data / "soilgrids" / fraction / f"{fraction}_0-5cm_mean.vrt").touch()
    (data / "ismn" / "Data_separate_files_19820101_20211231.zip").touch()
    (data / "nsidc0712_sites.csv").touch()
    return REPO_ROOT / "workflow" / "configs" / "global.yaml"


def snakemake_job_counts(log: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake (dry) run: rule -> number of jobs."""
    table = log.split("Job stats:")[1].split("\n\n")[0]
    counts = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def _dry_run(workdir: Path, config: Path, *extra: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"),
            "-n", "--configfile", str(config), *extra,
        ],
        cwd=workdir, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"dry run failed: {done.stderr[-2000:]}")
    return seconds, done.stdout + done.stderr


def bench_dag(work: Path, repeat: int = 2) -> dict[str, Any]:
    """Wall time of `snakemake -n` on the global 1982-2021 config, its jobs, and the SLURM
    submissions after job grouping (group jobs of the workflow profile, local rules excluded)."""
    workdir = work / "dag"
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_global_standins(workdir)
    times = []
    for _ in range(repeat):
        seconds, log = _dry_run(workdir, config, "--quiet", "rules")
        times.append(seconds)
    counts = snakemake_job_counts(log)
    # the same plan as the SLURM executor sees it: group jobs are printed one by one
    _, slurm_log = _dry_run(workdir, config, "--executor", "slurm", "--jobs", "500")
    group_jobs = len(re.findall(r"Group job \w+", slurm_log))
    grouped_rules = set()
    profile = load_yaml(PROFILE_CONFIG)
    for entry in profile.get("groups", []):
        grouped_rules.add(entry.split("=")[0].strip())
    local = local_rules()
    single = sum(n for rule, n in counts.items() if rule not in grouped_rules | local)
    return {
        "seconds": min(times),
        "seconds_all": times,
        "jobs": sum(counts.values()),
        "jobs_per_rule": counts,
        "local_rules": sorted(local),
        "grouped_rules": sorted(grouped_rules),
        "group_jobs": group_jobs,
        "slurm_submissions": group_jobs + single,
    }


def local_rules() -> set[str]:
    """Rules that run on the head node: declared `localrules:`, and `all` (no action)."""
    names = {"all"}
    for path in (REPO_ROOT / "workflow" / "rules").glob("*.smk"):
        text = path.read_text()
        # `localrules: a, b` on one line, or one indented name per line below it
        for inline, block in re.findall(
            r"^localrules:[ \t]*([\w, \t]*)\n((?:[ \t]+\w+[ \t]*,?[ \t]*\n)*)", text, re.MULTILINE
        ):
            names |= set(re.findall(r"\w+", inline + block))
    return names


# --- GPU projection --------------------------------------------------------------------------

# Assumptions of the projection (stated in RESULTS.md).
GLOBAL_LAND_PIXELS = 9.0e6  # land pixels of the 0.05 degree grid (about 9 million)
GLOBAL_DAYS = 14610  # 1982-01-01 .. 2021-12-31
H100 = {
    "name": "NVIDIA H100 SXM5",
    "bf16_dense_tflops": 989.0,  # datasheet peak, dense tensor cores (inference runs in bf16)
    "gemm_fraction_of_peak": 0.7,  # what large dense GEMMs reach on it
    "host_cores": 16,  # CPU cores beside each GPU that read, normalise and write tiles
}


def model_flops_per_pixel_day(name: str, hyperparameters: dict[str, Any], length: int) -> float:
    """Multiply-add FLOPs (x2) of one forward pass per pixel-day: matmuls counted by torch's
    FlopCounterMode, plus the LSTM recurrences (which it does not see) counted analytically.
    Element-wise work (activations, norms, softmax) is left out."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from avhrrsm.learn.models import build_model
    from avhrrsm.variables import DYNAMIC_FEATURES, FILL_INDICATORS, STATIC_FEATURES

    n_dynamic = len(DYNAMIC_FEATURES) + len(FILL_INDICATORS)  # inputs, then fill indicators
    model = build_model(name, n_dynamic, len(STATIC_FEATURES), hyperparameters)
    # training mode: in eval mode the Transformer takes PyTorch's fused encoder "fast path",
    # whose matmuls the counter does not see (same arithmetic either way)
    model.train()
    batch = 256
    x = torch.zeros(batch, length, n_dynamic)
    s = torch.zeros(batch, len(STATIC_FEATURES))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, s)
    flops = counter.get_total_flops() / batch
    for module in model.modules():
        if isinstance(module, torch.nn.LSTM):
            hidden, directions = module.hidden_size, 2 if module.bidirectional else 1
            for layer in range(module.num_layers):
                inputs = module.input_size if layer == 0 else hidden * directions
                flops += directions * length * 2 * 4 * hidden * (inputs + hidden)
    return float(flops)


def cpu_gemm_flops(threads: int = 2, size: int = 2048) -> float:
    """FLOP/s of a large float32 matrix product on this CPU: the attainable reference."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2 * size**3 / _best_of(lambda: torch.mm(a, b), repeat=5)


def gpu_projection(inference: dict[str, Any], threads: int = 2) -> dict[str, Any]:
    """The global 40-year inference on one H100, projected from this machine's measurements.

    Model part: each model reaches on the CPU a fraction of what a large GEMM reaches there;
    assume the same fraction of the H100's attainable bf16 GEMM throughput. Host part: the tile
    job's time outside the forward pass (read, normalise, flag, write) per pixel-day and core,
    spread over the GPU node's host cores. The two run overlapped; the slower one sets the pace.
    """
    from avhrrsm.config import validate_config

    config = validate_config({})
    length = int(config["samples"]["sequence_length"])
    gemm = cpu_gemm_flops(threads)
    gpu_gemm = H100["bf16_dense_tflops"] * 1e12 * H100["gemm_fraction_of_peak"]
    total = GLOBAL_LAND_PIXELS * GLOBAL_DAYS
    results: dict[str, Any] = {
        "assumptions": {
            **H100,
            "global_land_pixels": GLOBAL_LAND_PIXELS,
            "days": GLOBAL_DAYS,
            "pixel_days": total,
            "cpu_threads": threads,
        },
        "cpu_gemm_gflops": gemm / 1e9,
    }
    for name, measured in inference.items():
        if not isinstance(measured, dict) or "model_only_pixel_days_per_s" not in measured:
            continue
        flops = model_flops_per_pixel_day(name, config["models"][name], length)
        cpu_rate = max(measured["model_only_pixel_days_per_s"].values())
        efficiency = cpu_rate * flops / gemm
        gpu_rate = efficiency * gpu_gemm / flops
        host_core_seconds = (
            (measured["seconds"] - measured["forward_seconds"]) * threads / measured["pixel_days"]
        )
        host_rate = H100["host_cores"] / host_core_seconds
        rate = min(gpu_rate, host_rate)
        results[name] = {
            "flops_per_pixel_day": flops,
            "cpu_model_only_pixel_days_per_s": cpu_rate,
            "cpu_fraction_of_gemm": efficiency,
            "gpu_model_pixel_days_per_s": gpu_rate,
            "host_core_seconds_per_pixel_day": host_core_seconds,
            "host_pixel_days_per_s": host_rate,
            "bound": "GPU" if gpu_rate < host_rate else "host (read/normalise/write)",
            "projected_hours": total / rate / 3600,
            "projected_hours_gpu_only": total / gpu_rate / 3600,
            "cpu_hours_this_machine": total / measured["tile_job_pixel_days_per_s"] / 3600,
        }
    return results
