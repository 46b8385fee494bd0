"""Benchmarks of reading and regridding the inputs, and of a global stack job: the workflow's
readers against GDAL's warper on the same files."""

from __future__ import annotations

import json
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from avhrrsm.grid import Window, window_for_bounds
from avhrrsm.io.netcdf import pack
from avhrrsm.io.rasters import write_geotiff
from avhrrsm.ops.bench.fixtures import (
    write_global_era5land,
    write_global_inputs,
    write_global_sinusoidal_day,
)
from avhrrsm.ops.bench.timing import best_of, job_seconds_by_days, run_job, seconds_line
from avhrrsm.regrid import bilinear_to_points, block_reduce_mean
from avhrrsm.requests import DEFAULT_HPC


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
        t_ours = best_of(ours)
        t_gdal = best_of(
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
    t_ours = best_of(lambda: bilinear_to_points(field, lat, lon, window.lat(), window.lon()))
    t_gdal = best_of(
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
    t_lst = best_of(lambda: read_glass_sds(lst_path, GLASS_LST, "lst", window))
    t_albedo = best_of(
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
    """Global stack jobs of 2 and 4 days on one worker (the slope: seconds per global day),
    and of 4 days on two: the parallel efficiency the requests divide by
    (``parallel_efficiency`` = one-worker time / (2 x two-worker time))."""
    year = 1999  # before GLASS-MODIS: inputs only
    patterns = write_global_inputs(work, year, max(day_counts))
    results: dict[str, Any] = {}
    for days in day_counts:
        results[f"{days}_days"] = run_job(
            "stack", str(work), str(year), str(days), json.dumps(patterns)
        )
    days = max(day_counts)
    two = run_job("stack", str(work), str(year), str(days), json.dumps(patterns), "2")
    results["two_workers"] = {**two, "days": days}
    results["parallel_efficiency"] = results[f"{days}_days"]["seconds"] / (2 * two["seconds"])
    results.update(seconds_line(job_seconds_by_days(results)))
    return results


def bench_product_validation_global(
    work: Path, day_counts: tuple[int, int] = (4, 8)
) -> dict[str, Any]:
    """The product job and the validation year job on the global grid (7200 x 3600, the 72
    tiles of 30 degrees) for 4 and 8 days on one worker (the slope: seconds per global day,
    and the fixed part: imports, the summary figure, the part file), and for 8 days on two
    (the parallel efficiency of the product's blocks of days; a validation year's blocks are
    32 days, so 8 days are one piece). The validation reads its series at the cost model's
    ``hpc.validation_sites`` land sites (ERA5-Land at the sites from the raw hourly file; no
    ESA CCI file, so none of its reading). Inputs: the stack made by the stack job from global
    inputs in the real formats, and inference tiles in the tile job's layout."""
    from avhrrsm.ops.bench.fixtures import write_global_inference_tiles

    year = 1999  # before GLASS-MODIS: the validation compares with ERA5-Land only
    few, many = day_counts
    patterns = write_global_inputs(work, year, many)
    stack = run_job("stack", str(work), str(year), str(many), json.dumps(patterns), "2")
    tiles = write_global_inference_tiles(work, work / "static.zarr", year, many)
    product: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    # the validation reads ERA5-Land's raw hours at the sites: a file of the job's days
    era5 = {
        many: patterns["era5land"],
        few: str(work / f"era5_{few}" / "era5_{year}_{month:02d}.nc"),
    }
    (work / f"era5_{few}").mkdir()
    write_global_era5land(Path(era5[few].format(year=year, month=1)), year, few)
    cci = str(work / "cci_{year}{month:02d}{day:02d}.nc")  # none: no ESA CCI reading
    for days in day_counts:
        product[f"{days}_days"] = run_job(
            "product", str(work), str(year), str(days), json.dumps(tiles)
        )
        validation[f"{days}_days"] = run_job(
            "validation", str(work), str(year), str(days), str(work / f"product_{days}_1"),
            str(work / f"stack_{many}_2.zarr"), json.dumps({"era5land": era5[days], "esa_cci": cci}),
            str(DEFAULT_HPC["validation_sites"]),
        )  # fmt: skip
    two = run_job("product", str(work), str(year), str(many), json.dumps(tiles), "2")
    product["two_workers"] = {**two, "days": many}
    product["parallel_efficiency"] = product[f"{many}_days"]["seconds"] / (2 * two["seconds"])
    for figures in (product, validation):
        figures.update(seconds_line(job_seconds_by_days(figures)))
    return {"stack_job": {**stack, "days": many}, "product": product, "validation": validation}
