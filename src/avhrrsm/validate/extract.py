"""Daily series of the gridded products at the validation sites.

- avhrrsm: the daily product files (what users download), the mean over each site's pixels;
- ERA5-Land: hourly ``swvl1`` at the 0.1 degree cell nearest each site, daily means of UTC days
  with all 24 hours (read point by point, so a global file is never loaded whole);
- ESA CCI SM: the 0.25 degree cell nearest each site, flagged values left out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from avhrrsm.io.errors import InputError
from avhrrsm.io.gridded import open_netcdf, pick_variable, read_esa_cci
from avhrrsm.validate.sites import Site

LOGGER = logging.getLogger(__name__)


def product_at_sites(
    product_dirs: Mapping[int, str | Path], sites: Sequence[Site]
) -> list[pd.Series]:
    """The product's daily soil moisture (m3 m-3) at every site (mean over its pixels)."""
    values: list[list[float]] = [[] for _ in sites]
    days: list[pd.Timestamp] = []
    boxes = [
        (
            s.pixels[:, 0].min(),
            s.pixels[:, 0].max() + 1,
            s.pixels[:, 1].min(),
            s.pixels[:, 1].max() + 1,
        )
        for s in sites
    ]
    for year in sorted(product_dirs):
        files = sorted(Path(product_dirs[year]).glob("*.nc"))
        if not files:
            raise InputError(
                product_dirs[year], "holds no daily product file", "rerun rule product_year"
            )
        for path in files:
            with netCDF4.Dataset(path) as nc:
                variable = nc["soil_moisture"]
                variable.set_auto_maskandscale(True)
                day = pd.Timestamp(
                    netCDF4.num2date(nc["time"][0], nc["time"].units).isoformat()
                ).normalize()
                days.append(day)
                for k, (site, (r0, r1, c0, c1)) in enumerate(zip(sites, boxes, strict=True)):
                    block = np.ma.filled(variable[0, r0:r1, c0:c1].astype(np.float64), np.nan)
                    chosen = block[site.pixels[:, 0] - r0, site.pixels[:, 1] - c0]
                    values[k].append(
                        float(np.nanmean(chosen)) if np.isfinite(chosen).any() else np.nan
                    )
    index = pd.DatetimeIndex(days, name="date")
    return [pd.Series(v, index=index, dtype=np.float64) for v in values]


def _nearest(axis: np.ndarray, value: float, periodic: bool = False) -> int:
    distance = np.abs(axis - value)
    if periodic:
        distance = np.minimum(distance, 360.0 - distance)
    return int(np.argmin(distance))


def era5land_at_sites(paths: Sequence[str | Path], sites: Sequence[Site]) -> list[pd.Series]:
    """Daily ERA5-Land swvl1 at the 0.1 degree cell nearest each site (24 valid hours needed)."""
    parts: list[list[pd.Series]] = [[] for _ in sites]
    for path in paths:
        with open_netcdf(path, "ERA5-Land") as dataset:
            array = pick_variable(dataset, ["swvl1"], path, "ERA5-Land")
            lat_name = "latitude" if "latitude" in array.dims else "lat"
            lon_name = "longitude" if "longitude" in array.dims else "lon"
            time_name = "valid_time" if "valid_time" in array.dims else "time"
            for extra in [d for d in array.dims if d not in (lat_name, lon_name, time_name)]:
                array = array.isel({extra: 0})
            lats = array[lat_name].values
            lons = array[lon_name].values % 360.0
            for k, site in enumerate(sites):
                i = _nearest(lats, site.latitude)
                j = _nearest(lons, site.longitude % 360.0, periodic=True)
                hourly = array.isel({lat_name: i, lon_name: j}).load().to_series()
                hourly.index = pd.DatetimeIndex(hourly.index).floor("h")
                grouped = hourly.groupby(hourly.index.floor("D"))
                daily = grouped.mean()[grouped.count() == 24]
                parts[k].append(daily)
    out = []
    for pieces in parts:
        series = pd.concat(pieces).sort_index() if pieces else pd.Series(dtype=np.float64)
        series.index = pd.DatetimeIndex(series.index, name="date")
        out.append(series[~series.index.duplicated()].astype(np.float64))
    return out


def esa_cci_at_sites(paths: Sequence[str | Path], sites: Sequence[Site]) -> list[pd.Series]:
    """Daily ESA CCI SM at the 0.25 degree cell nearest each site (NaN where flagged)."""
    values: list[list[float]] = [[] for _ in sites]
    days = []
    for path in paths:
        sm = read_esa_cci(path)
        days.append(pd.Timestamp(sm["time"].values[0]).normalize())
        lats, lons = sm["lat"].values, sm["lon"].values
        for k, site in enumerate(sites):
            i = _nearest(lats, site.latitude)
            j = _nearest(lons, site.longitude, periodic=True)
            values[k].append(float(sm.values[0, i, j]))
    index = pd.DatetimeIndex(days, name="date")
    return [pd.Series(v, index=index, dtype=np.float64) for v in values]


def existing_files(
    pattern: str, days: pd.DatetimeIndex, counts: dict[str, int], key: str
) -> list[str]:
    """The files of ``pattern`` for ``days`` (one per day or month) that exist; missing counted."""
    names = []
    for day in days:
        name = pattern.format(year=day.year, month=day.month, day=day.day, doy=day.dayofyear)
        if name not in names:
            names.append(name)
    present = [n for n in names if Path(n).is_file()]
    counts[key] = counts.get(key, 0) + len(names) - len(present)
    if len(present) < len(names):
        LOGGER.warning(
            "%d of %d %s files missing (those days are not compared)",
            len(names) - len(present),
            len(names),
            key,
        )
    return present
