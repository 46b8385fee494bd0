"""Per-year stacks of the dynamic inputs and the training target on the 0.05 degree grid.

One Zarr store per year (``time x lat x lon``, chunked by day-block x tile) with:

- ``albedo_bsa_vis``, ``albedo_bsa_nir``, ``albedo_bsa_shortwave`` (1), ``lst`` (K):
  GLASS-AVHRR, checked to lie on the 0.05 degree grid, scaling and fill values applied;
- ``era5land_swvl1`` (m3 m-3): hourly -> daily mean over UTC days (all 24 hours required),
  longitudes wrapped to -180..180, 0.1 -> 0.05 degrees by NaN-aware bilinear interpolation
  (see :mod:`avhrrsm.regrid` for why bilinear);
- ``glass_modis_sm`` (m3 m-3), the training target, 2000-2020 only (all missing otherwise):
  0.01 -> 0.05 degree block mean, valid only where at least ``modis_min_valid_fraction`` of
  the 25 fine pixels are;
- ``{input}_fill_flag`` per input: gaps are filled so that inference is seamless, first by
  linear interpolation in time over gaps of at most ``max_interp_days``, then with the mean of
  the observed values within +-``seasonal_window_days``/2 days (a within-year seasonal
  climatology, so that years stay independent jobs), then from the nearest land pixel of the
  same day, then (days with no observation anywhere) with the pixel's mean of the year, or
  its nearest land pixel's. Flag values: -1 water, 0 observed, 1 interpolated in time,
  2 seasonal mean, 3 nearest pixel, 4 annual mean. The target is never filled.

Pass 1 reads the inputs day-block by day-block (memory: one block of the whole region); pass 2
fills gaps tile by tile (memory: one year of one tile).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from avhrrsm.atomic import atomic_path
from avhrrsm.grid import STEP_DEG, Window, region_window, tiles
from avhrrsm.io.errors import InputError
from avhrrsm.io.gridded import (
    AVHRR_VARIABLES,
    GLASS_MODIS_YEARS,
    read_era5land,
    read_glass_avhrr,
    read_glass_modis,
)
from avhrrsm.logs import progress
from avhrrsm.regrid import bilinear_to_points, block_reduce_mean
from avhrrsm.store import create_store, write_region

LOGGER = logging.getLogger(__name__)
INPUTS = (*AVHRR_VARIABLES, "era5land_swvl1")
TARGET = "glass_modis_sm"
MODIS_STRIPE_ROWS = (
    100  # 5 degrees of 0.05 degree rows: a global stripe of 0.01 degree pixels is 72 MB
)
FLAG_WATER, FLAG_OBSERVED, FLAG_INTERPOLATED, FLAG_SEASONAL, FLAG_NEAREST, FLAG_ANNUAL = (
    -1,
    0,
    1,
    2,
    3,
    4,
)
FLAG_ATTRS = {
    "flag_values": np.array([-1, 0, 1, 2, 3, 4], np.int8),
    "flag_meanings": "water observed temporal_interpolation seasonal_window_mean nearest_land_pixel annual_mean",
    "units": "1",
}
VARIABLE_ATTRS: Mapping[str, Mapping[str, str]] = {
    "albedo_bsa_vis": {"long_name": "AVHRR black-sky albedo, visible (GLASS-AVHRR)", "units": "1"},
    "albedo_bsa_nir": {
        "long_name": "AVHRR black-sky albedo, near infrared (GLASS-AVHRR)",
        "units": "1",
    },
    "albedo_bsa_shortwave": {
        "long_name": "AVHRR black-sky albedo, shortwave (GLASS-AVHRR)",
        "units": "1",
    },
    "lst": {
        "long_name": "AVHRR land surface temperature (GLASS-AVHRR)",
        "standard_name": "surface_temperature",
        "units": "K",
    },
    "era5land_swvl1": {
        "long_name": "ERA5-Land volumetric soil water layer 1 (0-7 cm), daily mean, bilinear to 0.05 degree",
        "units": "m3 m-3",
    },
    TARGET: {
        "long_name": "GLASS-MODIS surface soil moisture, 0.01 degree block mean (training target)",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
        "units": "m3 m-3",
    },
}


def missing_keys() -> tuple[str, ...]:
    """The variables whose missing days are counted while reading."""
    return (*AVHRR_VARIABLES, TARGET)


def year_days(year: int) -> pd.DatetimeIndex:
    return pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")


def _subset_on_grid(
    array: xr.DataArray, window: Window, path: str | Path, factor: int = 1
) -> np.ndarray:
    """The window's cells of a (lat, lon) field whose pixels are ``STEP_DEG / factor`` degrees.

    The file's grid must be the 0.05 degree grid (refined by ``factor``): same pixel centres.
    """
    step = STEP_DEG / factor
    lat, lon = array["lat"].values, array["lon"].values
    west, south, east, north = window.bounds()
    rows = np.flatnonzero((lat < north) & (lat > south))
    cols = np.flatnonzero((lon > west) & (lon < east))
    expected = (window.shape[0] * factor, window.shape[1] * factor)
    if (len(rows), len(cols)) != expected:
        raise InputError(
            path,
            f"does not cover lon {west}..{east}, lat {south}..{north} at {step:g} degrees",
            f"found {len(rows)} x {len(cols)} pixels, expected {expected[0]} x {expected[1]}",
        )
    want_lat = north - step * (np.arange(expected[0]) + 0.5)
    want_lon = west + step * (np.arange(expected[1]) + 0.5)
    if (
        np.abs(lat[rows] - want_lat).max() > step * 1e-3
        or np.abs(lon[cols] - want_lon).max() > step * 1e-3
    ):
        raise InputError(
            path,
            f"pixel centres are not on the {step:g} degree grid",
            "GLASS products must be aligned to the global grid (centres at k*step + step/2)",
        )
    return array.values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def era5land_daily_on_grid(path: str | Path, window: Window, day: pd.Timestamp) -> np.ndarray:
    """The UTC-day mean (all 24 hours required) of ERA5-Land swvl1, bilinear onto the window.

    Points with fewer than 24 valid hours are missing (logged); the bilinear interpolation
    then leaves them out.
    """
    hourly = read_era5land(path, day)
    counts = hourly.notnull().sum("time").values
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (hourly.fillna(0.0).sum("time").values / counts).astype(np.float32)
    land_points = counts > 0
    incomplete = land_points & (counts < 24)
    n_hours = hourly.sizes["time"]
    if n_hours < 24:
        LOGGER.warning("%s: %s has only %d hour(s); the day is missing", path, day.date(), n_hours)
    elif incomplete.any():
        LOGGER.warning(
            "%s: %s has fewer than 24 valid hours at %d point(s); left out",
            path,
            day.date(),
            int(incomplete.sum()),
        )
    values = np.where(counts == 24, values, np.nan)
    lat, lon = hourly["lat"].values, hourly["lon"].values
    if len(lon) == 3600:  # a global file: repeat the first column after the last, for 179.95..180
        lon = np.append(lon, lon[0] + 360.0)
        values = np.concatenate([values, values[:, :1]], axis=-1)
    return bilinear_to_points(values, lat, lon, window.lat(), window.lon())


def read_inputs_block(
    patterns: Mapping[str, str],
    window: Window,
    days: pd.DatetimeIndex,
    modis_min_valid_fraction: float,
    missing: dict[str, int],
) -> dict[str, np.ndarray]:
    """AVHRR inputs and the GLASS-MODIS target for a block of days (missing days counted)."""
    out = {
        name: np.full((len(days), *window.shape), np.nan, dtype=np.float32)
        for name in (*AVHRR_VARIABLES, TARGET)
    }
    for k, day in enumerate(days):
        fields = dict(year=day.year, month=day.month, day=day.day, doy=day.day_of_year)
        for variable in AVHRR_VARIABLES:
            path = Path(patterns["glass_avhrr"].format(variable=variable, **fields))
            if not path.is_file():
                missing[variable] += 1
                continue
            out[variable][k] = _subset_on_grid(read_glass_avhrr(path, variable), window, path)
            if np.isnan(out[variable][k]).all():
                # a file that is all fill over the region: kept as a gap, counted and logged
                key = f"{variable} (all fill)"
                missing[key] = missing.get(key, 0) + 1
                LOGGER.warning("%s: all fill values over the region; the day is a gap", path)
        if day.year in GLASS_MODIS_YEARS:
            path = Path(patterns["glass_modis"].format(**fields))
            if not path.is_file():
                missing[TARGET] += 1
                continue
            # in stripes of MODIS_STRIPE_ROWS cells, so that a global day is never held whole
            for start in range(0, window.shape[0], MODIS_STRIPE_ROWS):
                stripe = Window(
                    window.row_start + start,
                    min(window.row_stop, window.row_start + start + MODIS_STRIPE_ROWS),
                    window.col_start,
                    window.col_stop,
                )
                fine = _subset_on_grid(
                    read_glass_modis(path, stripe.bounds()), stripe, path, factor=5
                )
                rows = slice(start, start + stripe.shape[0])
                out[TARGET][k, rows], _ = block_reduce_mean(fine, 5, modis_min_valid_fraction)
    return out


def fill_gaps(
    values: np.ndarray, land: np.ndarray, max_interp_days: int, seasonal_window_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the gaps of a (time, y, x) series on land; returns (filled, flag). See module doc."""
    n_days = values.shape[0]
    filled = values.astype(np.float32).copy()
    flag = np.full(values.shape, FLAG_OBSERVED, dtype=np.int8)
    observed = np.isfinite(values)
    flag[~observed] = FLAG_NEAREST  # provisional: refined below
    # 1. linear interpolation in time over short gaps (vectorised over pixels)
    index = np.arange(n_days)[:, None, None]
    previous = np.maximum.accumulate(np.where(observed, index, -1), axis=0)
    following = np.minimum.accumulate(np.where(observed, index, n_days)[::-1], axis=0)[::-1]
    short = (
        ~observed
        & land[None]
        & (previous >= 0)
        & (following < n_days)
        & (following - previous - 1 <= max_interp_days)
    )
    if short.any():
        before = np.take_along_axis(values, np.clip(previous, 0, n_days - 1), axis=0)
        after = np.take_along_axis(values, np.clip(following, 0, n_days - 1), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = (index - previous) / (following - previous)
        interpolated = before + weight * (after - before)
        filled[short] = interpolated[short]
        flag[short] = FLAG_INTERPOLATED
    # 2. seasonal window mean of the observed values (land only: water never donates)
    still = ~np.isfinite(filled) & land
    if still.any():
        size = (seasonal_window_days, 1, 1)
        sums = ndimage.uniform_filter(
            np.where(observed, values, 0.0).astype(np.float64), size, mode="nearest"
        )
        counts = ndimage.uniform_filter(observed.astype(np.float64), size, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            seasonal = sums / counts
        use = still & (counts > 1e-9)
        filled[use] = seasonal[use]
        flag[use] = FLAG_SEASONAL
    # 3. nearest land pixel of the same day
    for t in np.flatnonzero((~np.isfinite(filled) & land).any(axis=(1, 2))):
        _fill_from_nearest(filled[t], flag[t], land, FLAG_NEAREST)
    # 4. days with no observation anywhere near: the pixel's mean of the year ...
    still = ~np.isfinite(filled) & land
    if still.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            annual = np.where(observed, values, 0.0).sum(axis=0) / observed.sum(axis=0)
        for t in np.flatnonzero(still.any(axis=(1, 2))):
            use = still[t] & np.isfinite(annual)
            filled[t][use] = annual[use]
            flag[t][use] = FLAG_ANNUAL
            # ... or its nearest land pixel's
            if (~np.isfinite(filled[t]) & land).any():
                _fill_from_nearest(filled[t], flag[t], land, FLAG_NEAREST)
    filled[:, ~land] = np.nan
    flag[:, ~land] = FLAG_WATER
    return filled, flag


def read_block_days(window: Window, chunk_days: int, memory_budget_mb: float) -> int:
    """Days read at once in pass 1: a chunk's worth, fewer when the region is large.

    One day of the whole region costs (inputs + target) float32 arrays, twice over for
    temporaries; a global day is about 1.2 GB, so a global year is read a day at a time.
    """
    per_day = window.shape[0] * window.shape[1] * 4 * (len(INPUTS) + 1) * 2
    return int(max(1, min(chunk_days, memory_budget_mb * 2**20 // per_day)))


def _fill_from_nearest(
    day: np.ndarray, flag: np.ndarray, land: np.ndarray, flag_value: int
) -> None:
    """Fill the land gaps of one day in place from the nearest valid land pixel."""
    donors = np.isfinite(day) & land
    gaps = ~np.isfinite(day) & land
    if not donors.any() or not gaps.any():
        return
    _, (rows, cols) = ndimage.distance_transform_edt(~donors, return_indices=True)
    day[gaps] = day[rows, cols][gaps]
    flag[gaps] = flag_value


def build_year_stack(
    out_path: str | Path,
    year: int,
    patterns: Mapping[str, str],
    static_path: str | Path,
    region: Mapping[str, float],
    tile_deg: float,
    settings: Mapping[str, float],
    global_attrs: Mapping[str, str],
    day_count: int | None = None,
) -> dict[str, int]:
    """Write the stack of ``year``; returns the counts of missing input days per variable.

    ``day_count`` limits the stack to the first days of the year (benchmarks, quick checks).
    """
    window = region_window(region)
    days = year_days(year)[:day_count]
    with xr.open_zarr(static_path) as static:
        land = static["land_mask"].values.astype(bool)
    if land.shape != window.shape:
        raise InputError(
            static_path,
            f"static layers have shape {land.shape}, the region needs {window.shape}",
            "rebuild the static layers for this region",
        )
    chunk_days = int(settings["chunk_days"])
    tile_px = int(round(tile_deg / STEP_DEG))
    variables = {
        name: (("time", "lat", "lon"), np.float32, VARIABLE_ATTRS[name])
        for name in (*INPUTS, TARGET)
    }
    variables.update(
        {
            f"{name}_fill_flag": (
                ("time", "lat", "lon"),
                np.int8,
                {**FLAG_ATTRS, "long_name": f"gap filling of {name}"},
            )
            for name in INPUTS
        }
    )
    time = xr.DataArray(
        days.values, dims="time", attrs={"standard_name": "time", "long_name": "time (UTC day)"}
    )
    attrs = {
        "title": f"avhrrsm input stack {year} on the global 0.05 degree grid",
        "year": str(year),
        "target_available": str(year in GLASS_MODIS_YEARS).lower(),
        "gap_filling": f"linear in time up to {settings['max_interp_days']} days, then mean within "
        f"+-{int(settings['seasonal_window_days']) // 2} days, then nearest land pixel",
        "era5land_regridding": "daily mean of 24 UTC hours, NaN-aware bilinear 0.1 -> 0.05 degree",
        "glass_modis_aggregation": f"0.01 -> 0.05 degree block mean, >= {settings['modis_min_valid_fraction']} valid",
        **global_attrs,
    }
    missing = dict.fromkeys(missing_keys(), 0)
    dims = dict.fromkeys(variables, ("time", "lat", "lon"))
    with atomic_path(out_path) as tmp:
        create_store(
            tmp,
            window,
            variables,
            {"time": chunk_days, "lat": tile_px, "lon": tile_px},
            attrs,
            extra_coords={"time": time},
        )
        # pass 1: inputs as observed, block of days by block of days
        block_days = read_block_days(window, chunk_days, float(settings["memory_budget_mb"]))
        blocks = [days[i : i + block_days] for i in range(0, len(days), block_days)]
        for block in progress(blocks, len(blocks), f"stack {year}: reading", LOGGER):
            arrays = read_inputs_block(
                patterns, window, block, float(settings["modis_min_valid_fraction"]), missing
            )
            era = np.empty((len(block), *window.shape), dtype=np.float32)
            for k, day in enumerate(block):
                path = Path(patterns["era5land"].format(year=day.year, month=day.month))
                era[k] = era5land_daily_on_grid(path, window, day)
            arrays["era5land_swvl1"] = era
            start = days.get_loc(block[0])
            write_region(tmp, window, window, arrays, dims, starts={"time": start})
        # pass 2: gap filling, tile by tile
        tile_list = tiles(window, tile_deg)
        for tile_id, tile in progress(tile_list, len(tile_list), f"stack {year}: filling", LOGGER):
            rows, cols = tile.within(window)
            with xr.open_zarr(tmp) as stored:
                raw = {name: stored[name][:, rows, cols].values for name in INPUTS}
            out = {}
            for name in INPUTS:
                out[name], out[f"{name}_fill_flag"] = fill_gaps(
                    raw[name],
                    land[rows, cols],
                    int(settings["max_interp_days"]),
                    int(settings["seasonal_window_days"]),
                )
                if np.isnan(out[name][:, land[rows, cols]]).any():
                    source = patterns["era5land" if name == "era5land_swvl1" else "glass_avhrr"]
                    raise InputError(
                        source,
                        f"{name} has no valid value in {year} over tile {tile_id}",
                        "the stack cannot be filled; check that year's input files",
                    )
            write_region(tmp, window, tile, out, dims)
    for name, count in missing.items():
        if count:
            LOGGER.warning(
                "stack %d: %s on %d day(s); filled (inputs) or left missing (target)",
                year,
                name,
                count,
            )
    LOGGER.info("stack %d written to %s", year, out_path)
    return missing


def open_stack(path: str | Path, window: Window, variables: tuple[str, ...]) -> xr.Dataset:
    """A year's stack for reading (lazy, without dask), checked to hold ``variables`` over the
    region ``window``; errors name the file."""
    try:
        stack = xr.open_zarr(path, chunks=None)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(path, f"cannot be opened as a Zarr stack ({err})", "rebuild it") from err
    missing = [name for name in variables if name not in stack]
    if missing:
        raise InputError(path, f"stack lacks variables {missing}", "rebuild the stack")
    if (stack.sizes["lat"], stack.sizes["lon"]) != window.shape:
        raise InputError(
            path,
            f"stack covers {stack.sizes['lat']} x {stack.sizes['lon']} pixels, the region "
            f"needs {window.shape[0]} x {window.shape[1]}",
            "rebuild the stacks for this region",
        )
    return stack


def open_year_stacks(
    year: int,
    path: str | Path,
    previous_path: str | Path | None,
    window: Window,
    variables: tuple[str, ...],
) -> tuple[xr.Dataset, xr.Dataset | None]:
    """The stack of ``year`` and, where given, the previous year's (checked to be ``year - 1``),
    whose last days give the sequences of early January their history."""
    stack = open_stack(path, window, variables)
    if previous_path is None:
        return stack, None
    previous = open_stack(previous_path, window, variables)
    if int(previous["time"].dt.year[-1]) != year - 1:
        raise InputError(previous_path, f"is not the stack of {year - 1}", "check the inputs")
    return stack, previous
