"""Gridded reference products: ERA5-Land swvl1 as the CDS ships it (zipped NetCDF) and ESA CCI
SM COMBINED daily NetCDF (read back by :mod:`avhrrsm.io.gridded`).
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from avhrrsm.grid import STEP_DEG
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS
from avhrrsm.io.netcdf import NcVar, write_netcdf
from avhrrsm.logs import progress
from avhrrsm.regrid import block_reduce_mean
from avhrrsm.synth.base import World, format_path

LOGGER = logging.getLogger(__name__)


CDS_ZIP_MEMBER = "data_stream-oper_stepType-instant.nc"


def _zip_like_cds(path: Path) -> None:
    """Replace the NetCDF file at ``path`` by a zip holding it, as the new CDS delivers a
    request of several files (member name as the CDS writes it; fixed time stamps)."""
    netcdf = path.read_bytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(CDS_ZIP_MEMBER, date_time=(2024, 9, 26, 0, 0, 0))
        archive.writestr(info, netcdf)


def write_era5land(world: World, years: Collection[int] | None = None) -> int:
    """Hourly swvl1, one file per month, longitudes 0-360, latitudes descending (new CDS
    layout: valid_time, scalar number, expver). The first year of the world comes as CDS zips
    (whatever the file's name), and a few dry pixels carry the small negative values real
    ERA5-Land has."""
    daily, lat, lon = world.era5land
    dates = world.truth.dates
    lon360 = np.mod(lon, 360.0)
    order = np.argsort(lon360, kind="stable")
    lon360, daily = lon360[order], daily[:, :, order]
    pattern = world.patterns["era5land"]
    n_files = 0
    months = sorted({(d.year, d.month) for d in dates if years is None or d.year in years})
    for year, month in progress(months, len(months), "ERA5-Land months", LOGGER):
        in_month = np.flatnonzero((dates.year == year) & (dates.month == month))
        hours = pd.date_range(
            pd.Timestamp(year=year, month=month, day=1), periods=24 * len(in_month), freq="h"
        )
        hourly = _era5land_hourly(daily, len(dates), in_month, hours)
        seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy(np.int64)
        path = format_path(pattern, year=year, month=month)
        write_netcdf(
            path,
            {"valid_time": len(hours), "latitude": len(lat), "longitude": len(lon360)},
            _era5land_variables(seconds, lat, lon360, hourly),
            ERA5LAND_GLOBAL_ATTRS,
        )
        if year == dates[0].year:
            _zip_like_cds(path)
        n_files += 1
    return n_files


ERA5LAND_GLOBAL_ATTRS = {
    "GRIB_centre": "ecmf",
    "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
    "GRIB_subCentre": 0,
    "Conventions": "CF-1.7",
    "institution": "European Centre for Medium-Range Weather Forecasts",
    "history": "avhrrsm synthetic world in the layout of a CDS ERA5-Land download",
}


def _era5land_hourly(
    daily: np.ndarray, n_dates: int, in_month: np.ndarray, hours: pd.DatetimeIndex
) -> np.ndarray:
    """A month's hourly swvl1 from the daily fields: linear in time between daily values placed
    at 12 UTC, a small diurnal drying, and the land-surface model's small negative values."""
    day_pos = in_month[0] + (np.arange(len(hours)) - 12) / 24.0
    lower = np.clip(np.floor(day_pos).astype(int), in_month[0] - 1, n_dates - 1)
    lower = np.clip(lower, 0, n_dates - 1)
    upper = np.clip(lower + 1, 0, n_dates - 1)
    frac = np.clip(day_pos - np.floor(day_pos), 0.0, 1.0)[:, None, None]
    hourly = (1.0 - frac) * daily[lower] + frac * daily[upper]
    diurnal = -0.003 * np.sin(2.0 * np.pi * (hours.hour.to_numpy() - 9) / 24.0)
    hourly = np.round(hourly + diurnal[:, None, None], 4).astype(np.float32)
    # the land-surface model's small negative values: the driest 0.1 % of land point-hours
    driest = hourly <= np.nanquantile(hourly, 0.001)
    hourly = np.where(driest, np.float32(-0.0004), hourly).astype(np.float32)
    return hourly


def _era5land_variables(
    seconds: np.ndarray, lat: np.ndarray, lon360: np.ndarray, hourly: np.ndarray
) -> dict[str, NcVar]:
    """A month file's variables as the CDS writes them (scalar number, expver per time)."""
    n_hours = len(seconds)
    return {
        "number": NcVar(
            (),
            np.int64(0),
            np.int64,
            {
                "long_name": "ensemble member numerical id",
                "units": "1",
                "standard_name": "realization",
            },
            compress=False,
        ),
        "valid_time": NcVar(
            ("valid_time",),
            seconds,
            np.int64,
            {
                "long_name": "time",
                "standard_name": "time",
                "units": "seconds since 1970-01-01",
                "calendar": "proleptic_gregorian",
            },
        ),
        "latitude": NcVar(
            ("latitude",),
            lat,
            np.float64,
            {
                "units": "degrees_north",
                "standard_name": "latitude",
                "long_name": "latitude",
                "stored_direction": "decreasing",
            },
        ),
        "longitude": NcVar(
            ("longitude",),
            lon360,
            np.float64,
            {
                "units": "degrees_east",
                "standard_name": "longitude",
                "long_name": "longitude",
            },
        ),
        "expver": NcVar(
            ("valid_time",),
            np.array(["0001"] * n_hours, dtype=object),
            str,
            {"long_name": "Experiment version"},
        ),
        "swvl1": NcVar(
            ("valid_time", "latitude", "longitude"),
            hourly,
            np.float32,
            {
                "GRIB_paramId": 39,
                "GRIB_shortName": "swvl1",
                "GRIB_units": "m**3 m**-3",
                "GRIB_name": "Volumetric soil water layer 1",
                "long_name": "Volumetric soil water layer 1",
                "units": "m**3 m**-3",
                "standard_name": "unknown",
                "GRIB_missingValue": 3.4028234663852886e38,
            },
            np.float32(np.nan),
        ),
    }


CCI_FLAG_MEANINGS = (
    "no_data_inconsistency_detected snow_coverage_or_temperature_below_zero dense_vegetation "
    "others_no_convergence_in_the_model_thus_no_valid_sm_estimates "
    "soil_moisture_value_exceeds_physical_boundary weight_of_measurement_below_threshold "
    "all_datasets_deemed_unreliable barren_ground_advisory_flag"
)


def write_esa_cci(world: World, years: Collection[int] | None = None) -> int:
    """Daily 0.25 degree COMBINED files with `sm` and `flag`; sm is missing where flagged."""
    static, truth = world.static, world.truth
    rows, cols = static.region_slice()
    factor = 5
    theta = truth.surface[:, rows, cols]
    ny, nx = static.region.shape
    west, _, _, north = static.region.bounds()
    # The CCI cells are those of the global 0.25 degree grid that lie wholly inside the region.
    west_c, north_c = math.ceil(west / 0.25 - 1e-9) * 0.25, math.floor(north / 0.25 + 1e-9) * 0.25
    r_off = int(round((north - north_c) / STEP_DEG))
    c_off = int(round((west_c - west) / STEP_DEG))
    ny_c, nx_c = (ny - r_off) // factor, (nx - c_off) // factor
    lat = np.round(north_c - 0.25 * (np.arange(ny_c) + 0.5), 6)
    lon = np.round(west_c + 0.25 * (np.arange(nx_c) + 0.5), 6)
    crop = (slice(None), slice(r_off, r_off + ny_c * factor), slice(c_off, c_off + nx_c * factor))
    land_fraction, _ = block_reduce_mean(
        static.land[rows, cols].astype(np.float32)[crop[1:]], factor
    )
    land = land_fraction >= 0.5
    coarse, _ = block_reduce_mean(theta[crop], factor)
    tair, _ = block_reduce_mean(truth.weather.air_temperature_k[:, rows, cols][crop], factor)
    veg, _ = block_reduce_mean(world.vegetation[:, rows, cols][crop], factor)
    cell_bias = world.rng("cci", 0).normal(0, 0.02, (ny_c, nx_c))
    pattern = world.patterns["esa_cci"]
    n_files = 0
    days = world.day_indices(years)
    for t, day in progress(days, len(days), "ESA CCI days", LOGGER):
        rng = world.rng("cci", day.toordinal())
        noise = 0.035 if day.year < 2007 else 0.025
        sm = coarse[t] + cell_bias + rng.normal(0, noise, (ny_c, nx_c))
        flag = np.zeros((ny_c, nx_c), dtype=np.int8)
        flag[tair[t] < 273.15] |= 1
        flag[veg[t] > 0.75] |= 2
        missing = 0.45 if day.year < 2002 else 0.25
        flag[rng.random((ny_c, nx_c)) < missing] |= 4
        # the barren-ground advisory bit: set on sparse vegetation, the estimate stays valid
        flag[veg[t] < 0.35] |= 64
        valid = (flag.astype(np.int16) & CCI_INVALID_FLAG_BITS) == 0
        sm = np.where(valid, np.clip(sm, 0.01, 0.6), np.nan)
        sm = np.where(land, sm, np.nan)
        flag = np.where(land, flag, 127).astype(np.int8)
        uncertainty = np.where(np.isnan(sm), np.nan, noise)
        days_since = (day - pd.Timestamp("1970-01-01")).days
        path = format_path(
            pattern, year=day.year, month=day.month, day=day.day, doy=day.day_of_year
        )
        write_netcdf(
            path,
            {"time": 1, "lat": ny_c, "lon": nx_c},
            _esa_cci_variables(days_since, lat, lon, sm, uncertainty, flag),
            {
                "title": "ESA CCI Surface Soil Moisture Product (synthetic)",
                "product_version": "09.1",
                "time_coverage_start": day.strftime("%Y%m%dT000000Z"),
                "Conventions": "CF-1.7",
                "source": "avhrrsm synthetic world",
            },
        )
        n_files += 1
    return n_files


def _esa_cci_variables(
    days_since: int,
    lat: np.ndarray,
    lon: np.ndarray,
    sm: np.ndarray,
    uncertainty: np.ndarray,
    flag: np.ndarray,
) -> dict[str, NcVar]:
    """A day file's variables as ESA CCI SM COMBINED writes them (fill -9999, flag 127)."""
    return {
        "time": NcVar(
            ("time",),
            np.array([days_since], np.float64),
            np.float64,
            {
                "standard_name": "time",
                "units": "days since 1970-01-01 00:00:00 UTC",
                "calendar": "standard",
            },
        ),
        "lat": NcVar(
            ("lat",),
            lat,
            np.float32,
            {"standard_name": "latitude", "units": "degrees_north"},
        ),
        "lon": NcVar(
            ("lon",),
            lon,
            np.float32,
            {"standard_name": "longitude", "units": "degrees_east"},
        ),
        "sm": NcVar(
            ("time", "lat", "lon"),
            np.nan_to_num(sm, nan=-9999.0)[None],
            np.float32,
            {
                "long_name": "Volumetric Soil Moisture",
                "units": "m3 m-3",
                "valid_range": np.array([0.0, 1.0], np.float32),
            },
            np.float32(-9999.0),
        ),
        "sm_uncertainty": NcVar(
            ("time", "lat", "lon"),
            np.nan_to_num(uncertainty, nan=-9999.0)[None],
            np.float32,
            {"long_name": "Volumetric Soil Moisture Uncertainty", "units": "m3 m-3"},
            np.float32(-9999.0),
        ),
        "flag": NcVar(
            ("time", "lat", "lon"),
            flag[None],
            np.int8,
            {
                "long_name": "Flag",
                "flag_values": np.array([0, 1, 2, 4, 8, 16, 32, 64], np.int8),
                "flag_meanings": CCI_FLAG_MEANINGS,
            },
            np.int8(127),
        ),
    }
