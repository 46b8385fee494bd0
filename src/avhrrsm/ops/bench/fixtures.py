"""Synthetic inputs the benchmarks measure on, in the stages' real layouts: global dynamic
inputs and a global sinusoidal GLASS-MODIS day, one tile's stack and static layers, a sample
set made by the real chain, and stand-ins for the global configuration's input files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio

from avhrrsm.config import with_synthetic_folder
from avhrrsm.grid import Window, window_for_bounds
from avhrrsm.io.netcdf import NcVar, pack, write_netcdf


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
    write_global_era5land(Path(patterns["era5land"].format(year=year, month=1)), year, n_days)
    static = xr.Dataset(
        {"land_mask": (("lat", "lon"), land.astype(np.int8))}, coords=lat_lon_coords(window)
    )
    static["crs"] = crs_variable()
    static.to_zarr(folder / "static.zarr", mode="w")
    return patterns


def write_global_era5land(path: Path, year: int, n_days: int) -> None:
    """A global ERA5-Land file of the first ``n_days`` of ``year`` as the new CDS gives it
    (hourly swvl1, longitudes 0..359.9)."""
    era_lat = np.round(90.0 - 0.1 * np.arange(1801), 6)
    era_lon = np.round(0.1 * np.arange(3600), 6)
    ey, ex = np.meshgrid(np.deg2rad(era_lat), np.deg2rad(era_lon), indexing="ij")
    hours = pd.date_range(f"{year}-01-01", periods=24 * n_days, freq="h")
    hourly = np.empty((len(hours), 1801, 3600), dtype=np.float32)
    for k, hour in enumerate(hours):
        hourly[k] = 0.25 + 0.1 * np.sin(ex + hour.day_of_year / 10.0) * np.cos(ey)
    seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy()
    write_netcdf(
        path,
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


def write_global_inference_tiles(
    folder: Path, static_path: Path, year: int, n_days: int, tile_deg: float = 30.0
) -> dict[str, str]:
    """The inference tile stores of the global grid (``tile_deg`` tiles) for the first
    ``n_days`` of ``year``, in :func:`avhrrsm.infer.predict_tile`'s layout: soil moisture over
    the land of ``static_path`` (a smooth field with a little noise, in the valid range), its
    standard error (larger on gap-filled days) and quality flags. Returns tile id -> store."""
    import xarray as xr

    from avhrrsm.grid import tiles
    from avhrrsm.static import read_static_layers
    from avhrrsm.store import create_store, write_region
    from avhrrsm.variables import (
        FLAG_GAP_FILLED,
        QUALITY_ATTRS,
        SM_ATTRS,
        SM_UNCERTAINTY_ATTRS,
    )

    window = Window(0, 3600, 0, 7200)
    land = read_static_layers(static_path, window)["land_mask"]
    days = pd.date_range(f"{year}-01-01", periods=n_days, freq="D")
    rng = np.random.default_rng(5)
    variables = {
        "soil_moisture": (("time", "lat", "lon"), np.float32, SM_ATTRS),
        "sm_uncertainty": (("time", "lat", "lon"), np.float32, SM_UNCERTAINTY_ATTRS),
        "quality_flag": (("time", "lat", "lon"), np.int8, QUALITY_ATTRS),
    }
    dims = dict.fromkeys(variables, ("time", "lat", "lon"))
    time_coord = xr.DataArray(days.values, dims="time", attrs={"standard_name": "time"})
    paths = {}
    for tile_id, tile in tiles(window, tile_deg):
        rows, cols = tile.within(window)
        yy, xx = np.meshgrid(np.deg2rad(tile.lat()), np.deg2rad(tile.lon()), indexing="ij")
        tile_land = land[rows, cols]
        sm = np.empty((n_days, *tile.shape), np.float32)
        for k, day in enumerate(days):
            base = 0.25 + 0.1 * np.sin(xx + day.day_of_year / 10.0) * np.cos(yy)
            noise = 0.01 * rng.standard_normal(tile.shape)
            sm[k] = np.where(tile_land, np.clip(base + noise, 0.0, 0.6), np.nan)
        cloudy = rng.random(sm.shape) < 0.3
        quality = np.where(tile_land & cloudy, FLAG_GAP_FILLED, 0).astype(np.int8)
        uncertainty = np.where(tile_land, np.where(cloudy, 0.03, 0.02), np.nan).astype(np.float32)
        path = folder / "inference" / f"{tile_id}.zarr"
        create_store(
            path, tile, variables, {"time": 32, "lat": tile.shape[0], "lon": tile.shape[1]},
            {"title": f"avhrrsm inference tile {tile_id} {year}", "tile": tile_id},
            extra_coords={"time": time_coord},
        )  # fmt: skip
        write_region(
            path, tile, tile,
            {"soil_moisture": sm, "sm_uncertainty": uncertainty, "quality_flag": quality}, dims,
        )  # fmt: skip
        paths[tile_id] = str(path)
    return paths


def write_global_sinusoidal_day(path: Path, rows_per_block: int = 1200) -> tuple[int, int]:
    """A global daily 1 km sinusoidal GeoTIFF (43200 x 21600, the MODIS grid) like GLASS-MODIS:
    a smooth field inside the projection's valid area, 20 % random gaps, nodata -9999; written
    in blocks of rows so memory stays small. Returns (width, height)."""
    from avhrrsm.synth.glass_modis import (
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


def inference_scaler(work: Path, length: int, samples: int = 4000, seed: int = 1) -> Any:
    """The normalisation a model trained on :func:`write_inference_inputs`' tile would carry:
    fitted on ``samples`` random sequences of its stack and static layers (the target a
    plausible soil moisture). Inputs far outside a model's training range drive its gates
    into saturation and its arithmetic into subnormal numbers, which would time something no
    trained model does."""
    import xarray as xr

    from avhrrsm.learn.features import Scaler
    from avhrrsm.variables import DYNAMIC_FEATURES, STATIC_FEATURES

    rng = np.random.default_rng(seed)
    with xr.open_zarr(work / "stack.zarr") as stack, xr.open_zarr(work / "static.zarr") as static:
        n_days, n_rows, n_cols = (stack.sizes[d] for d in ("time", "lat", "lon"))
        ends = rng.integers(length - 1, n_days, samples)
        rows, cols = rng.integers(0, n_rows, samples), rng.integers(0, n_cols, samples)
        lags = ends[:, None] - np.arange(length - 1, -1, -1)[None, :]  # oldest first
        series = np.stack(
            [stack[name].values[lags, rows[:, None], cols[:, None]] for name in DYNAMIC_FEATURES],
            axis=-1,
        )
        layers = np.stack([static[name].values[rows, cols] for name in STATIC_FEATURES], axis=-1)
    target = rng.uniform(0.05, 0.45, samples).astype(np.float32)
    return Scaler.fit(series.astype(np.float32), layers.astype(np.float32), target)


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


def write_global_standins(workdir: Path) -> None:
    """Empty stand-ins for the files the global configuration (workflow/configs/global.yaml)
    looks at when planning its DAG (``workdir/data/...``), so it is planned without the data."""
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
