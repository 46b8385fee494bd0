"""Per-year stacks of the dynamic inputs and the training target on the 0.05 degree grid.

One Zarr store per year (``time x lat x lon``, chunked by day-block x tile) with:

- ``albedo_bsa_vis``, ``albedo_bsa_nir``, ``albedo_bsa_shortwave`` (1), ``lst`` (K):
  GLASS-AVHRR HDF4 files on the global 0.05 degree CMG grid (:mod:`avhrrsm.io.glass`),
  scaling and fill values applied; albedo comes as 8-day composites and every day takes the
  composite that covers it (coordinate ``albedo_composite``);
- ``era5land_swvl1`` (m3 m-3): hourly -> daily mean over UTC days (all 24 hours required),
  longitudes wrapped to -180..180, 0.1 -> 0.05 degrees by NaN-aware bilinear interpolation
  (see :mod:`avhrrsm.regrid` for why bilinear);
- ``glass_modis_sm`` (m3 m-3), the training target, 2000-2020 only (all missing otherwise):
  1 km sinusoidal GeoTIFFs -> 0.05 degree area-weighted average of the valid pixels, valid
  only where they cover at least ``modis_min_valid_fraction`` of the cell;
- ``{input}_fill_flag`` per input: gaps are filled so that inference is seamless, first by
  linear interpolation in time over gaps of at most ``max_interp_days``, then with the mean of
  the observed values within +-``seasonal_window_days``/2 days (a within-year seasonal
  climatology, so that years stay independent jobs), then from the nearest land pixel of the
  same day, then (days with no observation anywhere) with the pixel's mean of the year, or
  its nearest land pixel's. Flag values: -1 water, 0 observed, 1 interpolated in time,
  2 seasonal mean, 3 nearest pixel, 4 annual mean. The target is never filled.
- ``{variable}_land_coverage`` (time) per input and the target: the share of the region's land
  pixels with a valid value that day, as observed; days below ``min_day_coverage`` are counted
  per variable, logged with their dates and listed in the attribute ``days_below_min_coverage``
  (a GLASS-MODIS day that covers a quarter of the region thins the training target). A target
  day whose files lie off the region is an error naming them.

Pass 1 reads the inputs time chunk by time chunk (memory: one block of days of the whole region
per worker); pass 2 fills gaps tile by tile (memory: one year of one tile per worker). Both
passes spread over the job's cores (:mod:`avhrrsm.parallel`): pieces write disjoint chunks.
Where a block is shorter than a chunk (a large region: a global day is about 1.2 GB, so the
globe is read a day at a time into chunks of 32 days), pass 1 writes into a scratch store
chunked by the block beside the stack (removed when the stack is done; it needs about the
disk of the stack's inputs), and pass 2 moves the tiles into the stack whole: a day written
into a chunk of 32 days re-reads and re-compresses the whole chunk, measured at about five
times the cost of writing a day into chunks of two (six variables of a global day, scaled
from eight tiles: 109 s against 20 s on this project's machine).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from avhrrsm.atomic import atomic_path, scratch_path
from avhrrsm.days import year_days
from avhrrsm.grid import STEP_DEG, Window, chunk_groups, region_window, tiles
from avhrrsm.io.chunks import checksummed
from avhrrsm.io.errors import InputError
from avhrrsm.io.glass import composite_start, find_file, read_glass_bands, read_glass_sds
from avhrrsm.io.glass_modis import glass_modis_files, glass_modis_on_grid
from avhrrsm.io.gridded import read_era5land
from avhrrsm.io.layouts import glass_layout, glass_modis_layout
from avhrrsm.parallel import map_pieces, map_shared
from avhrrsm.regrid import bilinear_to_points, outside_source
from avhrrsm.static import read_static_layers
from avhrrsm.store import create_store, write_region
from avhrrsm.variables import (
    AVHRR_VARIABLES,
    COVERAGE_SUFFIX,
    FILL_FLAG_ATTRS,
    FLAG_ANNUAL,
    FLAG_INTERPOLATED,
    FLAG_NEAREST,
    FLAG_OBSERVED,
    FLAG_SEASONAL,
    FLAG_WATER,
    GLASS_MODIS_YEARS,
    INPUTS,
    STACK_ATTRS,
    TARGET,
    coverage_attrs,
)

LOGGER = logging.getLogger(__name__)
ERA5_NEGATIVE = "era5land_swvl1 (negative hourly values set to 0)"
ERA5_ALL_FILL = "era5land_swvl1 (all fill)"
# the stack attributes that record the gap-filling settings
GAP_FILLING_ATTRS = {
    "max_interp_days": "gap_filling_max_interp_days",
    "seasonal_window_days": "gap_filling_seasonal_window_days",
}


def missing_keys() -> tuple[str, ...]:
    """The variables whose missing days are counted while reading."""
    return (*AVHRR_VARIABLES, TARGET)


def era5land_daily_on_grid(
    path: str | Path, window: Window, day: pd.Timestamp, counts: dict[str, int] | None = None
) -> np.ndarray:
    """The UTC-day mean (all 24 hours required) of ERA5-Land swvl1, bilinear onto the window.

    Points with fewer than 24 valid hours are missing (logged); the bilinear interpolation
    then leaves them out. Negative values set to 0 by the reader are added to ``counts``.
    """
    hourly = read_era5land(path, day)
    if counts is not None and hourly.attrs.get("negative_values_set_to_zero"):
        key = ERA5_NEGATIVE
        counts[key] = counts.get(key, 0) + int(hourly.attrs["negative_values_set_to_zero"])
    # the hours last and contiguous: numpy sums a contiguous axis pairwise, the order the daily
    # means are summed in whatever the reader's memory layout
    by_hour = np.ascontiguousarray(np.moveaxis(hourly.values, 0, -1))
    missing_hour = np.isnan(by_hour)
    valid_hours = hourly.sizes["time"] - missing_hour.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (np.where(missing_hour, 0.0, by_hour).sum(axis=-1) / valid_hours).astype(
            np.float32
        )
    del by_hour, missing_hour
    land_points = valid_hours > 0
    incomplete = land_points & (valid_hours < 24)
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
    values = np.where(valid_hours == 24, values, np.nan)
    lat, lon = hourly["lat"].values, hourly["lon"].values
    step = float(np.median(np.diff(lon))) if len(lon) > 1 else 0.0
    if len(lon) > 1 and abs(lon[-1] + step - (lon[0] + 360.0)) < 1e-6:
        # a global file: its last column again before the first and its first after the last,
        # for the cells at both edges of the region's -180..180 (ERA5-Land's 0..359.9 wraps to
        # -179.9..180, which leaves the cells west of -179.9 without a western neighbour)
        lon = np.concatenate([[lon[-1] - 360.0], lon, [lon[0] + 360.0]])
        values = np.concatenate([values[:, -1:], values, values[:, :1]], axis=-1)
    n_lat_out, n_lon_out = outside_source(lat, lon, window.lat(), window.lon())
    if n_lat_out or n_lon_out:
        raise InputError(
            path,
            f"ERA5-Land covers lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}.."
            f"{lon.max():.2f}: {n_lat_out} row(s) and {n_lon_out} column(s) of the region "
            f"(lat {window.lat().min():.3f}..{window.lat().max():.3f}, lon "
            f"{window.lon().min():.3f}..{window.lon().max():.3f}) lie outside it",
            "download ERA5-Land for an area that contains the region (or the globe)",
        )
    on_grid = bilinear_to_points(values, lat, lon, window.lat(), window.lon())
    if counts is not None and np.isnan(on_grid).all():
        # a day with no value over the whole region: filled from other days, counted and logged
        counts[ERA5_ALL_FILL] = counts.get(ERA5_ALL_FILL, 0) + 1
        LOGGER.warning("%s: %s is all fill values over the region; a gap", path, day.date())
    return on_grid


class GlassDays:
    """Reads GLASS-AVHRR albedo (8-day composites) and LST (daily) HDF4 files day by day.

    Each day of albedo takes the composite that covers it (read once, kept for the following
    days of its period); a composite that covers a day is not a missing day.
    """

    def __init__(
        self, patterns: Mapping[str, str], window: Window, layouts: Mapping[str, object]
    ) -> None:
        self.window = window
        self.albedo = glass_layout("glass_albedo", layouts.get("glass_albedo"))  # type: ignore[arg-type]
        self.lst = glass_layout("glass_lst", layouts.get("glass_lst"))  # type: ignore[arg-type]
        self.modis = glass_modis_layout(layouts.get("glass_modis"))  # type: ignore[arg-type]
        self.patterns = {
            "glass_albedo": patterns["glass_albedo"],
            "glass_lst": patterns["glass_lst"],
        }
        self._composite: tuple[pd.Timestamp, dict[str, np.ndarray] | None] | None = None
        self.files_read: set[Path] = set()

    def composite_of(self, day: pd.Timestamp) -> pd.Timestamp:
        return composite_start(day, self.albedo.composite_days)

    def albedo_for(
        self, day: pd.Timestamp, missing: dict[str, int]
    ) -> dict[str, np.ndarray] | None:
        start = self.composite_of(day)
        if self._composite is None or self._composite[0] != start:
            path = find_file(self.patterns["glass_albedo"], start)
            bands = None
            if path is None:
                LOGGER.warning(
                    "no GLASS albedo composite of %s (%s)",
                    start.date(),
                    self.patterns["glass_albedo"],
                )
            else:
                bands = read_glass_bands(path, self.albedo, list(self.albedo.sds), self.window)
                self.files_read.add(path)
                _count_all_fill(bands, path, missing)
            self._composite = (start, bands)
        bands = self._composite[1]
        if bands is None:
            for name in self.albedo.sds:
                missing[name] += 1
        return bands

    def lst_for(self, day: pd.Timestamp, missing: dict[str, int]) -> np.ndarray | None:
        path = find_file(self.patterns["glass_lst"], day)
        if path is None:
            missing["lst"] += 1
            return None
        values = read_glass_sds(path, self.lst, "lst", self.window)
        self.files_read.add(path)
        _count_all_fill({"lst": values}, path, missing)
        return values


def _count_all_fill(bands: Mapping[str, np.ndarray], path: Path, missing: dict[str, int]) -> None:
    for name, values in bands.items():
        if np.isnan(values).all():
            # a file that is all fill over the region: kept as a gap, counted and logged
            key = f"{name} (all fill)"
            missing[key] = missing.get(key, 0) + 1
            LOGGER.warning("%s: %s is all fill values over the region; a gap", path, name)


def read_inputs_block(
    patterns: Mapping[str, str],
    window: Window,
    days: pd.DatetimeIndex,
    modis_min_valid_fraction: float,
    missing: dict[str, int],
    glass: GlassDays | None = None,
) -> dict[str, np.ndarray]:
    """AVHRR inputs and the GLASS-MODIS target for a block of days (missing days counted)."""
    glass = glass or GlassDays(patterns, window, {})
    out = {
        name: np.full((len(days), *window.shape), np.nan, dtype=np.float32)
        for name in (*AVHRR_VARIABLES, TARGET)
    }
    for k, day in enumerate(days):
        albedo = glass.albedo_for(day, missing)
        if albedo is not None:
            for name, values in albedo.items():
                out[name][k] = values
        lst = glass.lst_for(day, missing)
        if lst is not None:
            out["lst"][k] = lst
        if day.year in GLASS_MODIS_YEARS:
            files = glass_modis_files(patterns["glass_modis"], day)
            if not files:
                missing[TARGET] += 1
                continue
            out[TARGET][k], _ = glass_modis_on_grid(
                files, window, modis_min_valid_fraction, glass.modis
            )
    return out


def observed_around(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every day of a series (time first), the index of the last observed day up to it (-1
    where none) and of the first observed day from it on (the series length where none)."""
    n_days = observed.shape[0]
    index = np.arange(n_days).reshape((n_days,) + (1,) * (observed.ndim - 1))
    previous = np.maximum.accumulate(np.where(observed, index, -1), axis=0)
    following = np.minimum.accumulate(np.where(observed, index, n_days)[::-1], axis=0)[::-1]
    return previous, following


def fill_gaps(
    values: np.ndarray,
    land: np.ndarray,
    max_interp_days: int,
    seasonal_window_days: int,
    spatial: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the gaps of a (time, y, x) series on land; returns (filled, flag). See module doc.

    ``spatial=False`` applies the temporal steps only (interpolation, seasonal mean, annual
    mean), for columns that are not neighbouring pixels (the sample sets' simulated gaps);
    what they cannot fill stays NaN."""
    n_days = values.shape[0]
    filled = values.astype(np.float32).copy()
    flag = np.full(values.shape, FLAG_OBSERVED, dtype=np.int8)
    observed = np.isfinite(values)
    flag[~observed] = FLAG_NEAREST  # provisional: refined below
    # 1. linear interpolation in time over short gaps (vectorised over pixels)
    index = np.arange(n_days)[:, None, None]
    previous, following = observed_around(observed)
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
    for t in np.flatnonzero((~np.isfinite(filled) & land).any(axis=(1, 2)) if spatial else []):
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
            if spatial and (~np.isfinite(filled[t]) & land).any():
                _fill_from_nearest(filled[t], flag[t], land, FLAG_NEAREST)
    filled[:, ~land] = np.nan
    flag[:, ~land] = FLAG_WATER
    return filled, flag


def read_block_days(window: Window, chunk_days: int, memory_budget_mb: float) -> int:
    """Days read at once in pass 1: a chunk's worth, fewer when the region is large.

    One day of the whole region costs (inputs + target) float32 arrays, twice over for
    temporaries; a global day is about 1.2 GB, so a global year is read a day at a time. The
    block is the longest that fits and divides ``chunk_days``.
    """
    per_day = window.shape[0] * window.shape[1] * 4 * (len(INPUTS) + 1) * 2
    fit = int(max(1, min(chunk_days, memory_budget_mb * 2**20 // per_day)))
    # a divisor of the chunk, so that blocks never straddle chunks
    return max(days for days in range(1, fit + 1) if chunk_days % days == 0)


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
    layouts: Mapping[str, Mapping[str, object]] | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Write the stack of ``year``; returns the counts of missing input days per variable.

    ``day_count`` limits the stack to the first days of the year (benchmarks, quick checks);
    ``layouts`` overrides the GLASS products' layouts (config ``layouts:``); ``workers``
    processes read the time chunks and fill the tiles (the bytes do not depend on it).
    """
    window = region_window(region)
    days = year_days(year, day_count)
    land = read_static_layers(static_path, window)["land_mask"]
    chunk_days = int(settings["chunk_days"])
    tile_px = int(round(tile_deg / STEP_DEG))
    variables = _stack_variables()
    time = xr.DataArray(
        days.values, dims="time", attrs={"standard_name": "time", "long_name": "time (UTC day)"}
    )
    glass = GlassDays(patterns, window, layouts or {})
    dims = dict.fromkeys(variables, ("time", "lat", "lon"))
    block_days = read_block_days(window, chunk_days, float(settings["memory_budget_mb"]))
    with atomic_path(out_path) as tmp, scratch_path(out_path, "pass1") as scratch:
        create_store(
            tmp,
            window,
            variables,
            {"time": chunk_days, "lat": tile_px, "lon": tile_px},
            _stack_attrs(year, settings, glass, global_attrs),
            extra_coords={"time": time, "albedo_composite": _composite_coord(glass, days)},
        )
        # pass 1 writes whole chunks: the stack's where a block is a chunk, else a scratch
        # store's chunked by the block (the observed inputs and the target only)
        raw_store = tmp
        if block_days < min(chunk_days, len(days)):
            raw_store = scratch
            create_store(
                scratch,
                window,
                {name: variables[name] for name in (*INPUTS, TARGET)},
                {"time": block_days, "lat": tile_px, "lon": tile_px},
                {"title": f"first pass of {Path(out_path).name}, removed when it is done"},
                extra_coords={"time": time},
            )
        reading = functools.partial(
            _read_chunk_into_store,
            store=raw_store,
            days=days,
            patterns=dict(patterns),
            window=window,
            settings=dict(settings),
            layouts=dict(layouts or {}),
            dims=dims,
            block_days=block_days,
        )
        missing, coverage = _read_pass(reading, land, range(0, len(days), chunk_days), workers)
        LOGGER.info("stack %d: %d day(s) read", year, len(days))
        missing.update(
            _record_coverage(tmp, year, days, coverage, float(settings["min_day_coverage"]))
        )
        filling = functools.partial(
            _fill_tiles_into_store,
            store=tmp,
            raw_store=raw_store,
            year=year,
            window=window,
            patterns=dict(patterns),
            settings=dict(settings),
            dims=dims,
        )
        filled = _fill_pass(filling, land, window, tile_deg, tile_px, workers)
        LOGGER.info("stack %d: %d tile(s) gap-filled", year, filled)
    _log_missing(year, missing)
    LOGGER.info("stack %d written to %s", year, out_path)
    return missing


def _stack_variables() -> dict[str, tuple[tuple[str, ...], Any, Mapping[str, Any]]]:
    """The stack's variables: every input and the target (float32), a fill flag per input."""
    variables: dict[str, tuple[tuple[str, ...], Any, Mapping[str, Any]]] = {
        name: (("time", "lat", "lon"), np.float32, STACK_ATTRS[name]) for name in (*INPUTS, TARGET)
    }
    variables.update(
        {
            f"{name}_fill_flag": (
                ("time", "lat", "lon"),
                np.int8,
                {**FILL_FLAG_ATTRS, "long_name": f"gap filling of {name}"},
            )
            for name in INPUTS
        }
    )
    return variables


def _composite_coord(glass: GlassDays, days: pd.DatetimeIndex) -> xr.DataArray:
    """Per day, the first day of the GLASS albedo composite that gives its albedo."""
    return xr.DataArray(
        np.array([glass.composite_of(day) for day in days], dtype="datetime64[ns]"),
        dims="time",
        attrs={
            "long_name": "first day of the GLASS albedo composite that gives the day's albedo",
            "comment": f"{glass.albedo.composite_days}-day composites; every day of a period takes its composite",
        },
    )


def _stack_attrs(
    year: int, settings: Mapping[str, float], glass: GlassDays, global_attrs: Mapping[str, str]
) -> dict[str, str]:
    """The stack's global attributes: what it holds and how each input came onto the grid."""
    return {
        "title": f"avhrrsm input stack {year} on the global 0.05 degree grid",
        "year": str(year),
        "target_available": str(year in GLASS_MODIS_YEARS).lower(),
        "gap_filling": f"linear in time up to {settings['max_interp_days']} days, then mean within "
        f"+-{int(settings['seasonal_window_days']) // 2} days, then nearest land pixel",
        # the settings themselves, so that the sample sets simulate gaps by the same method
        GAP_FILLING_ATTRS["max_interp_days"]: str(int(settings["max_interp_days"])),
        GAP_FILLING_ATTRS["seasonal_window_days"]: str(int(settings["seasonal_window_days"])),
        "era5land_regridding": "daily mean of 24 UTC hours, NaN-aware bilinear 0.1 -> 0.05 degree",
        "glass_modis_aggregation": "1 km sinusoidal -> 0.05 degree area-weighted average of the valid "
        f"pixels (GDAL warper), valid where they cover >= {settings['modis_min_valid_fraction']} of the cell",
        "albedo_temporal_sampling": f"GLASS albedo {glass.albedo.composite_days}-day composites: each day "
        "takes the composite that covers it (coordinate albedo_composite)",
        **global_attrs,
    }


def _read_pass(
    reading: Any, land: np.ndarray, starts: range, workers: int
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Pass 1: the inputs as observed, one time chunk of the store per piece (pieces write
    disjoint chunks, so they may run in parallel); the missing-day counts and each
    variable's per-day land coverage."""
    missing = dict.fromkeys(missing_keys(), 0)
    shares: dict[str, list[np.ndarray]] = {name: [] for name in (*INPUTS, TARGET)}
    for counts, chunk_shares in map_shared(reading, land, starts, workers):
        for name, count in counts.items():
            missing[name] = missing.get(name, 0) + count
        for name, share in chunk_shares.items():
            shares[name].append(share)
    return missing, {name: np.concatenate(parts) for name, parts in shares.items()}


def _fill_pass(
    filling: Any, land: np.ndarray, window: Window, tile_deg: float, tile_px: int, workers: int
) -> int:
    """Pass 2: gap filling, tile by tile; a piece is the tiles that share chunks (one tile
    where the region lies on the tiling), so that parallel pieces write disjoint chunks. The
    number of tiles filled."""
    pieces = [
        [(tile_id, tile, land[tile.within(window)]) for tile_id, tile in group]
        for group in chunk_groups(window, tiles(window, tile_deg), tile_px)
    ]
    map_pieces(filling, pieces, workers)
    return sum(len(piece) for piece in pieces)


def _log_missing(year: int, missing: Mapping[str, int]) -> None:
    for name, count in missing.items():
        if count and name == ERA5_NEGATIVE:
            LOGGER.info("stack %d: %d negative ERA5-Land swvl1 values set to 0", year, count)
        elif count:
            LOGGER.warning(
                "stack %d: %s on %d day(s); filled (inputs) or left missing (target)",
                year,
                name,
                count,
            )


def land_coverage(values: np.ndarray, land: np.ndarray) -> np.ndarray:
    """Per day of a (time, y, x) block: the share of ``land`` pixels with a finite value."""
    n_land = int(land.sum())
    if n_land == 0:
        return np.zeros(values.shape[0], dtype=np.float32)
    valid = np.isfinite(values) & land
    return (valid.sum(axis=(1, 2)) / n_land).astype(np.float32)


def _record_coverage(
    store: Path,
    year: int,
    days: pd.DatetimeIndex,
    coverage: Mapping[str, np.ndarray],
    min_share: float,
) -> dict[str, int]:
    """Write each variable's daily land coverage into the store (``{name}_land_coverage``),
    log the days below ``min_share`` per variable and return their counts (the target only in
    the years it exists)."""
    import zarr

    group = zarr.open_group(str(store), mode="r+")
    attrs = dict(group.attrs)  # xarray's append replaces the group's attributes: kept here
    dataset = xr.Dataset(
        {
            f"{name}{COVERAGE_SUFFIX}": xr.DataArray(share, dims="time", attrs=coverage_attrs(name))
            for name, share in coverage.items()
        }
    )
    dataset.to_zarr(
        store, mode="a", consolidated=False, encoding=checksummed({}, dataset.data_vars)
    )
    below: dict[str, int] = {}
    for name, share in coverage.items():
        if name == TARGET and year not in GLASS_MODIS_YEARS:
            continue
        thin = np.flatnonzero(share < min_share)
        if thin.size:
            key = f"{name} (below {min_share:g} of the land)"
            below[key] = int(thin.size)
            named = ", ".join(f"{days[k].date()} ({share[k]:.0%})" for k in thin[:5]) + (
                f" and {thin.size - 5} more" if thin.size > 5 else ""
            )
            LOGGER.warning(
                "stack %d: %s covers less than %g of the region's land on %d day(s): %s",
                year,
                name,
                min_share,
                thin.size,
                named,
            )
    group = zarr.open_group(str(store), mode="r+")
    group.attrs.update(
        {
            **attrs,
            "days_below_min_coverage": json.dumps(below, sort_keys=True),
            "min_day_coverage": str(min_share),
        }
    )
    zarr.consolidate_metadata(str(store))
    return below


def _read_chunk_into_store(
    land: np.ndarray,
    start: int,
    store: Path,
    days: pd.DatetimeIndex,
    patterns: Mapping[str, str],
    window: Window,
    settings: Mapping[str, float],
    layouts: Mapping[str, Mapping[str, object]],
    dims: Mapping[str, tuple[str, ...]],
    block_days: int,
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Pass 1 for the time chunk of ``days`` from ``start``: read every input day and write it
    into ``store``, in blocks of ``block_days`` (:func:`read_block_days`); the missing-day
    counts and every variable's daily share of the ``land`` pixels with a valid value."""
    chunk = days[start : start + int(settings["chunk_days"])]
    missing = dict.fromkeys(missing_keys(), 0)
    shares: dict[str, list[np.ndarray]] = {name: [] for name in (*INPUTS, TARGET)}
    glass = GlassDays(patterns, window, layouts)
    for offset in range(0, len(chunk), block_days):
        block = chunk[offset : offset + block_days]
        arrays = read_inputs_block(
            patterns, window, block, float(settings["modis_min_valid_fraction"]), missing, glass
        )
        era = np.empty((len(block), *window.shape), dtype=np.float32)
        for k, day in enumerate(block):
            path = Path(patterns["era5land"].format(year=day.year, month=day.month))
            era[k] = era5land_daily_on_grid(path, window, day, missing)
        arrays["era5land_swvl1"] = era
        for name in shares:
            shares[name].append(land_coverage(arrays[name], land))
        write_region(store, window, window, arrays, dims, starts={"time": start + offset})
    return missing, {name: np.concatenate(parts) for name, parts in shares.items()}


def _fill_tiles_into_store(group: list[tuple[str, Window, np.ndarray]], **job: Any) -> None:
    """Pass 2 for tiles that share chunks of the store, one after the other."""
    for piece in group:
        _fill_tile_into_store(piece, **job)


def _fill_tile_into_store(
    piece: tuple[str, Window, np.ndarray],
    store: Path,
    raw_store: Path,
    year: int,
    window: Window,
    patterns: Mapping[str, str],
    settings: Mapping[str, float],
    dims: Mapping[str, tuple[str, ...]],
) -> None:
    """Pass 2 for one tile (id, window, land mask): fill the gaps of every input over the year
    from the observed values of pass 1 (in ``raw_store``) and write values and flags into
    ``store`` (with the target where pass 1 wrote a scratch store); an error naming the input
    where a tile has no value."""
    import zarr

    tile_id, tile, land = piece
    rows, cols = tile.within(window)
    moved = (*INPUTS, TARGET) if raw_store != store else INPUTS
    group = zarr.open_group(str(raw_store), mode="r")
    raw = {name: np.asarray(group[name][:, rows, cols]) for name in moved}
    out = {name: raw[name] for name in moved if name not in INPUTS}
    for name in INPUTS:
        out[name], out[f"{name}_fill_flag"] = fill_gaps(
            raw[name],
            land,
            int(settings["max_interp_days"]),
            int(settings["seasonal_window_days"]),
        )
        if np.isnan(out[name][:, land]).any():
            source = patterns[
                {"era5land_swvl1": "era5land", "lst": "glass_lst"}.get(name, "glass_albedo")
            ]
            raise InputError(
                source,
                f"{name} has no valid value in {year} over tile {tile_id}",
                "the stack cannot be filled; check that year's input files",
            )
    write_region(store, window, tile, out, dims)


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


def gap_filling_settings(stack: xr.Dataset, path: str | Path) -> dict[str, int]:
    """The gap-filling settings a stack was filled with (its attributes), to fill by the same
    method elsewhere; an error naming the stack where they are not recorded."""
    try:
        return {key: int(stack.attrs[attr]) for key, attr in GAP_FILLING_ATTRS.items()}
    except (KeyError, ValueError) as err:
        raise InputError(
            path,
            f"does not record its gap-filling settings (attribute {err})",
            "rebuild the stack with this version of avhrrsm",
        ) from err
