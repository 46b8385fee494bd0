"""Benchmarks of the figures that decide whether the global product is feasible.

``avhrrsm bench`` (``make bench``) writes ``benchmarks/results.json`` and
``benchmarks/RESULTS.md``. Every speed is given with a reference measured in the same run
(these machines are noisy; absolute times alone mean little). Sections so far:

- ``regrid_block``: block mean (1 km -> 5 km, 90 m-like -> 5 km), file to file, against
  ``gdalwarp -r average`` on the same GeoTIFF; megapixels per second, ratio, max difference.
- ``regrid_bilinear``: ERA5-Land 0.1 -> 0.05 degree against ``gdalwarp -r bilinear``.
- ``stack_global``: a stack job on the global 7200 x 3600 grid for 2 and 4 days (synthetic
  global inputs in the real layouts): wall time and peak memory (RSS) of the job process.
"""

from __future__ import annotations

import json
import logging
import os
import platform
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

from avhrrsm.grid import Window, window_for_bounds
from avhrrsm.io.netcdf import NcVar, pack, write_netcdf
from avhrrsm.io.rasters import write_geotiff
from avhrrsm.regrid import bilinear_to_points, block_reduce_mean

LOGGER = logging.getLogger(__name__)
TARGETS = {
    "block_vs_gdalwarp_ratio": 3.0,
    "stack_peak_memory_gib": 4.0,
}


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
                data[data == src.nodata] = np.nan
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
    """Global GLASS-AVHRR and ERA5-Land files for the first ``n_days`` of ``year``, and static layers."""
    import xarray as xr

    from avhrrsm.store import crs_variable, lat_lon_coords

    window = Window(0, 3600, 0, 7200)
    lat, lon = window.lat(), window.lon()
    yy, xx = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    land = (np.sin(3 * xx) * np.cos(2 * yy) + 0.3 * np.cos(5 * yy)) > 0.2
    patterns = {
        "glass_avhrr": str(folder / "avhrr" / "{variable}_{year}{doy:03d}.nc"),
        "era5land": str(folder / "era5" / "era5_{year}_{month:02d}.nc"),
        "glass_modis": str(folder / "modis" / "{year}{doy:03d}.nc"),
    }
    rng = np.random.default_rng(3)
    for day in pd.date_range(f"{year}-01-01", periods=n_days):
        base = 0.25 + 0.1 * np.sin(xx + day.day_of_year / 10.0) * np.cos(yy)
        cloud = rng.random(land.shape) < 0.3
        for variable, values, scale, dtype, fill in (
            ("albedo_bsa_vis", 0.15 - 0.1 * base, 1e-4, np.int16, -32768),
            ("albedo_bsa_nir", 0.3 - 0.1 * base, 1e-4, np.int16, -32768),
            ("albedo_bsa_shortwave", 0.22 - 0.1 * base, 1e-4, np.int16, -32768),
            ("lst", 290.0 - 20 * base, 0.01, np.uint16, 0),
        ):
            data = pack(np.where(land & ~cloud, values, np.nan), scale, 0.0, fill, dtype)
            write_netcdf(
                patterns["glass_avhrr"].format(variable=variable, year=year, doy=day.day_of_year),
                {"lat": 3600, "lon": 7200},
                {
                    "lat": NcVar(("lat",), lat),
                    "lon": NcVar(("lon",), lon),
                    variable: NcVar(
                        ("lat", "lon"),
                        data,
                        dtype,
                        {
                            "scale_factor": scale,
                            "add_offset": 0.0,
                            "units": "K" if variable == "lst" else "1",
                        },
                        dtype(fill),
                    ),
                },
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
    todo = sections or ("regrid_block", "regrid_bilinear", "stack_global")
    for name in todo:
        LOGGER.info("benchmark %s", name)
        if name.startswith("regrid") and gdalwarp is None:
            results[name] = {"skipped": "gdalwarp not installed (apt-get install gdal-bin)"}
            continue
        if name == "regrid_block":
            results[name] = bench_regrid_block(work, gdalwarp)
        elif name == "regrid_bilinear":
            results[name] = bench_regrid_bilinear(work, gdalwarp)
        elif name == "stack_global":
            results[name] = bench_stack_global(work)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out_dir / "RESULTS.md").write_text(render_markdown(results))
    shutil.rmtree(work, ignore_errors=True)
    return results


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Benchmark results", "", f"Machine: {results['machine']}", ""]
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
    stack = results.get("stack_global", {})
    if stack:
        lines += [
            "## A stack job at global size (7200 x 3600)",
            "",
            "| days | seconds | peak RSS (GiB) | target (<= 4 GiB, flat in days) |",
            "|---|---|---|---|",
        ]
        for case, r in stack.items():
            met = "met" if r["peak_rss_gib"] <= TARGETS["stack_peak_memory_gib"] else "**missed**"
            lines.append(
                f"| {case.split('_')[0]} | {r['seconds']:.1f} | {r['peak_rss_gib']:.2f} | {met} |"
            )
        lines.append("")
    return "\n".join(lines)
