"""`avhrrsm inputs check`: scan every configured input for the configured years and region
before a run, and say per product what is there, what is missing and what cannot be read.

Each file is opened and its structure checked (SDS, grid size, CRS, variables), but no whole
global field is read, so 40 years are checked in minutes. A product "blocks" the run where
the workflow would stop on it: an ERA5-Land month missing or unreadable (the stack jobs need
all of them), any unreadable file, a year without a single GLASS file, missing static inputs.
Missing GLASS or GLASS-MODIS days do not block: the stacks fill (inputs) or skip (target)
them and count them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avhrrsm.days import year_days, years_days
from avhrrsm.grid import Window, region_window
from avhrrsm.io.errors import InputError
from avhrrsm.io.glass import composite_start, find_file, read_glass_bands
from avhrrsm.io.glass_modis import glass_modis_files, open_tile
from avhrrsm.io.gridded import open_era5land, pick_variable
from avhrrsm.io.layouts import glass_layout
from avhrrsm.variables import GLASS_MODIS_YEARS

MAX_REASONS = 5
PROBE_POINTS = 60  # per side of the grid of points a GLASS-MODIS day's footprint is probed on


@dataclass
class ProductCheck:
    """What was found for one product."""

    product: str
    expected: int = 0
    found: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what a run would leave out, counted
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocking and not self.unreadable

    def line(self) -> str:
        status = "OK" if self.ok else "BLOCKS THE RUN"
        text = (
            f"{self.product:<13} {self.found:>6} of {self.expected:<6} found, "
            f"{len(self.missing):>5} missing, {len(self.unreadable):>3} unreadable  {status}"
        )
        details = [f"    unreadable: {reason}" for reason in self.unreadable[:MAX_REASONS]]
        if len(self.unreadable) > MAX_REASONS:
            details.append(f"    ... and {len(self.unreadable) - MAX_REASONS} more unreadable")
        details += [f"    missing: {name}" for name in self.missing[:MAX_REASONS]]
        if len(self.missing) > MAX_REASONS:
            details.append(f"    ... and {len(self.missing) - MAX_REASONS} more missing")
        details += [f"    blocks: {reason}" for reason in self.blocking]
        details += [f"    skipped: {reason}" for reason in self.skipped]
        details += [f"    {note}" for note in self.notes]
        return "\n".join([text, *details])


def _probe_window(window: Window) -> Window:
    """One pixel of the region: enough to read through a file's structure."""
    return Window(window.row_start, window.row_start + 1, window.col_start, window.col_start + 1)


def check_glass(
    name: str,
    pattern: str,
    years: Sequence[int],
    window: Window,
    overrides: Mapping[str, Any] | None,
) -> ProductCheck:
    layout = glass_layout(name, overrides)
    check = ProductCheck(name)
    probe = _probe_window(window)
    for year in years:
        starts = sorted({composite_start(day, layout.composite_days) for day in year_days(year)})
        found_year = 0
        for day in starts:
            check.expected += 1
            path = find_file(pattern, day)
            if path is None:
                check.missing.append(
                    f"{day.date()} ({pattern.format(year=day.year, doy=day.day_of_year, month=day.month, day=day.day)})"
                )
                continue
            try:
                read_glass_bands(path, layout, list(layout.sds), probe)
            except InputError as err:
                check.unreadable.append(str(err))
                continue
            check.found += 1
            found_year += 1
        if found_year == 0:
            check.blocking.append(f"no readable file in {year}: the stack of {year} cannot be made")
    return check


def check_era5land(pattern: str, years: Sequence[int], window: Window) -> ProductCheck:
    check = ProductCheck("era5land")
    west, south, east, north = window.bounds()
    for year in years:
        for month in range(1, 13):
            check.expected += 1
            path = Path(pattern.format(year=year, month=month))
            if not path.is_file():
                check.missing.append(str(path))
                check.blocking.append(f"{path} is missing (every month is a stack input)")
                continue
            try:
                with open_era5land(path) as dataset:
                    swvl1 = pick_variable(dataset, ["swvl1"], path, "ERA5-Land")
                    lat_name = next(n for n in ("latitude", "lat") if n in swvl1.dims)
                    lon_name = next(n for n in ("longitude", "lon") if n in swvl1.dims)
                    lat = swvl1[lat_name].values
                    lon = (swvl1[lon_name].values + 180.0) % 360.0 - 180.0
                    time_name = next(n for n in ("valid_time", "time") if n in swvl1.dims)
                    hours = swvl1.sizes[time_name]
                days = pd.Period(f"{year}-{month:02d}").days_in_month
                problems = []
                if hours < 24 * days:
                    problems.append(f"{hours} hours of the month's {24 * days}")
                global_lon = len(lon) > 1 and lon.max() - lon.min() > 359.0
                if (
                    lat.min() > south
                    or lat.max() < north
                    or (not global_lon and (lon.min() > west or lon.max() < east))
                ):
                    problems.append(
                        f"covers lat {lat.min():g}..{lat.max():g}, lon {lon.min():g}..{lon.max():g}, "
                        f"not the region {west:g}..{east:g} E, {south:g}..{north:g} N"
                    )
                if problems:
                    raise InputError(path, "; ".join(problems))
            except InputError as err:
                check.unreadable.append(str(err))
                continue
            check.found += 1
    return check


def _footprint_share(
    paths: Sequence[Path],
    probe: tuple[np.ndarray, np.ndarray],
    projected: dict[str, tuple[np.ndarray, np.ndarray]],
) -> float:
    """The share of the probe points (lat, lon grids) inside any file's bounds; ``projected``
    keeps the points in each CRS met (a day's tiles share one)."""
    from pyproj import Transformer

    lat_grid, lon_grid = probe
    inside = np.zeros(lat_grid.shape, dtype=bool)
    for path in paths:
        with open_tile(path) as dataset:
            key = dataset.crs.to_wkt()
            if key not in projected:
                projected[key] = Transformer.from_crs(
                    "EPSG:4326", dataset.crs, always_xy=True
                ).transform(lon_grid, lat_grid)
            left, bottom, right, top = dataset.bounds
        x, y = projected[key]
        inside |= (x >= left) & (x <= right) & (y >= bottom) & (y <= top)
    return float(inside.mean())


def check_glass_modis(
    pattern: str, years: Sequence[int], window: Window, min_day_coverage: float = 0.5
) -> ProductCheck:
    """Every target day's files open as sinusoidal GeoTIFFs, and their footprints cover the
    region (from the files' bounds on a grid of probe points, no pixel read): a day off the
    region blocks the run (the stack job stops on it); a day whose files cover less than
    ``min_day_coverage`` of what a typical day of the check covers thins the training target,
    and is named (the stack job counts the valid cells of every day)."""
    check = ProductCheck("glass_modis")
    lat, lon = window.lat(), window.lon()
    lat = lat[np.linspace(0, lat.size - 1, min(lat.size, PROBE_POINTS)).astype(int)]
    lon = lon[np.linspace(0, lon.size - 1, min(lon.size, PROBE_POINTS)).astype(int)]
    lon_grid, lat_grid = np.meshgrid(lon, lat)
    projected: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shares: dict[str, float] = {}
    for day in years_days(y for y in years if y in GLASS_MODIS_YEARS):
        check.expected += 1
        files = glass_modis_files(pattern, day)
        if not files:
            check.missing.append(str(day.date()))
            continue
        try:
            share = _footprint_share(files, (lat_grid, lon_grid), projected)
        except InputError as err:
            check.unreadable.append(str(err))
            continue
        if share == 0.0:
            check.unreadable.append(
                f"{files[0]}: the day's {len(files)} file(s) lie off the region (georeferencing?)"
            )
            continue
        check.found += 1
        shares[str(day.date())] = share
    if shares:
        typical = float(np.median(list(shares.values())))
        thin = [(d, share) for d, share in shares.items() if share < min_day_coverage * typical]
        check.skipped += [
            f"{d}: its files cover {share:.0%} of the region (a typical day {typical:.0%}): "
            "a thin training target"
            for d, share in thin[:MAX_REASONS]
        ]
        if len(thin) > MAX_REASONS:
            check.skipped.append(f"... and {len(thin) - MAX_REASONS} more thin days")
    return check


def check_static(patterns: Mapping[str, str], window: Window) -> list[ProductCheck]:
    import rasterio

    from avhrrsm.io.rasters import merit_tiles_for_bounds

    merit = ProductCheck("merit_dem")
    try:
        present, absent = merit_tiles_for_bounds(patterns["merit_dem"], window.bounds())
        merit.expected = len(present) + len(absent)
        merit.found = len(present)
        merit.missing = [f"{name} (all sea in MERIT, or not downloaded)" for name in absent]
        if not present:
            merit.blocking.append("no MERIT tile covers the region")
    except InputError as err:
        merit.blocking.append(str(err))
    soil = ProductCheck("soilgrids")
    for fraction in ("sand", "silt", "clay"):
        soil.expected += 1
        path = Path(patterns["soilgrids"].format(fraction=fraction))
        if not path.is_file():
            soil.missing.append(str(path))
            soil.blocking.append(f"{path} is missing")
            continue
        try:
            with rasterio.open(path) as dataset:
                if dataset.crs is None:
                    raise InputError(path, "SoilGrids raster has no CRS")
        except rasterio.errors.RasterioIOError as err:
            soil.unreadable.append(f"{path}: {err}")
            continue
        except InputError as err:
            soil.unreadable.append(str(err))
            continue
        soil.found += 1
    return [merit, soil]


def check_daily_files(name: str, pattern: str, years: Sequence[int]) -> ProductCheck:
    """Products the validation reads where present (missing days are left out and counted)."""
    check = ProductCheck(name)
    for day in years_days(years):
        check.expected += 1
        path = Path(
            pattern.format(year=day.year, month=day.month, day=day.day, doy=day.day_of_year)
        )
        if path.is_file():
            check.found += 1
        else:
            check.missing.append(str(path))
    return check


def check_inputs(
    patterns: Mapping[str, str],
    years: Sequence[int],
    region: Mapping[str, float],
    layouts: Mapping[str, Any] | None = None,
    min_day_coverage: float = 0.5,
) -> list[ProductCheck]:
    """Every gridded product's check, in the order of the workflow's stages (the in-situ
    inputs: :func:`avhrrsm.validate.check.check_insitu`)."""
    window = region_window(region)
    layouts = layouts or {}
    return [
        *check_static(patterns, window),
        check_glass(
            "glass_albedo", patterns["glass_albedo"], years, window, layouts.get("glass_albedo")
        ),
        check_glass("glass_lst", patterns["glass_lst"], years, window, layouts.get("glass_lst")),
        check_era5land(patterns["era5land"], years, window),
        check_glass_modis(patterns["glass_modis"], years, window, min_day_coverage),
        check_daily_files("esa_cci", patterns["esa_cci"], years),
    ]
