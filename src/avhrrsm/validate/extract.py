"""Daily series of the gridded products at the validation sites.

- avhrrsm: the daily product files (what users download), the mean over each site's pixels;
- ERA5-Land: hourly ``swvl1`` at the 0.1 degree cell nearest each site, daily means of UTC days
  with all 24 hours (read point by point, so a global file is never loaded whole);
- ESA CCI SM: the 0.25 degree cell nearest each site, flagged values left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from avhrrsm.grid import Window
from avhrrsm.io.gridded import open_era5land, pick_variable, read_esa_cci
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS
from avhrrsm.validate.sites import Site

LOGGER = logging.getLogger(__name__)


def _nearest(axis: np.ndarray, value: float, periodic: bool = False) -> int:
    distance = np.abs(axis - value)
    if periodic:
        distance = np.minimum(distance, 360.0 - distance)
    return int(np.argmin(distance))


ERA5_READ_HOURS = 24  # hours of a file's whole grid read at once (a global day: 0.6 GB)


def era5land_at_sites(paths: Sequence[str | Path], sites: Sequence[Site]) -> list[pd.Series]:
    """Daily ERA5-Land swvl1 at the 0.1 degree cell nearest each site (24 valid hours needed).

    Each file is read once, ``ERA5_READ_HOURS`` whole grids at a time, and every site taken
    from them: reading site by site would decompress each stored chunk once per site (a
    global month for thousands of sites would take hours)."""
    parts: list[list[pd.Series]] = [[] for _ in sites]
    for path in paths if sites else []:
        with open_era5land(path) as dataset:
            array = pick_variable(dataset, ["swvl1"], path, "ERA5-Land")
            lat_name = "latitude" if "latitude" in array.dims else "lat"
            lon_name = "longitude" if "longitude" in array.dims else "lon"
            time_name = "valid_time" if "valid_time" in array.dims else "time"
            for extra in [d for d in array.dims if d not in (lat_name, lon_name, time_name)]:
                array = array.isel({extra: 0})
            array = array.transpose(time_name, lat_name, lon_name)
            lats = array[lat_name].values
            lons = array[lon_name].values % 360.0
            rows = np.array([_nearest(lats, site.latitude) for site in sites], np.int64)
            cols = np.array(
                [_nearest(lons, site.longitude % 360.0, periodic=True) for site in sites],
                np.int64,
            )
            times = pd.DatetimeIndex(array[time_name].values).floor("h")
            n_hours = times.size
            hourly = np.empty((n_hours, len(sites)), dtype=array.dtype)
            for start in range(0, n_hours, ERA5_READ_HOURS):
                block = slice(start, min(n_hours, start + ERA5_READ_HOURS))
                hourly[block] = array.isel({time_name: block}).values[:, rows, cols]
            # small negative values of the land-surface model count as 0, as in the stacks
            hourly = np.clip(hourly, 0.0, None)
            grouped = pd.DataFrame(hourly, index=times).groupby(times.floor("D"))
            means, counts = grouped.mean(), grouped.count()  # every site at once
            for k in range(len(sites)):
                parts[k].append(means[k][counts[k] == 24].rename(None))
    out = []
    for pieces in parts:
        series = pd.concat(pieces).sort_index() if pieces else pd.Series(dtype=np.float64)
        series.index = pd.DatetimeIndex(series.index, name="date")
        out.append(series[~series.index.duplicated()].astype(np.float64))
    return out


def esa_cci_at_sites(
    paths: Sequence[str | Path],
    sites: Sequence[Site],
    window: Window,
    land: np.ndarray,
    invalid_flag_bits: int = CCI_INVALID_FLAG_BITS,
) -> tuple[list[pd.Series], int, int]:
    """Daily ESA CCI SM at the 0.25 degree cell nearest each site (NaN where a flag bit of
    ``invalid_flag_bits`` is set), and the counts behind the coverage: (0.25 degree cells
    holding land of the region)-days with a value, and all of them. Each file is read once."""
    values: list[list[float]] = [[] for _ in sites]
    days = []
    valid = total = 0
    cells = None
    for path in paths:
        sm = read_esa_cci(path, invalid_flag_bits)
        days.append(pd.Timestamp(sm["time"].values[0]).normalize())
        lats, lons = sm["lat"].values, sm["lon"].values
        if cells is None:
            i = np.abs(lats[:, None] - window.lat()[None, :]).argmin(axis=0)
            j = np.abs(lons[:, None] - window.lon()[None, :]).argmin(axis=0)
            rows, cols = np.nonzero(land)
            cells = np.unique(np.stack([i[rows], j[cols]]), axis=1)
            nearest = [
                (_nearest(lats, site.latitude), _nearest(lons, site.longitude, periodic=True))
                for site in sites
            ]
        grid = sm.values[0]
        covered = grid[cells[0], cells[1]]
        valid += int(np.isfinite(covered).sum())
        total += covered.size
        for k, (i_site, j_site) in enumerate(nearest):
            values[k].append(float(grid[i_site, j_site]))
    index = pd.DatetimeIndex(days, name="date")
    return [pd.Series(v, index=index, dtype=np.float64) for v in values], valid, total


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
