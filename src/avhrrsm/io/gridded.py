"""Readers of the gridded NetCDF products: ERA5-Land, GLASS-AVHRR, GLASS-MODIS, ESA CCI SM.

Every reader returns an ``xarray.DataArray`` on CF coordinates ``lat`` (degrees north,
descending, as on the 0.05 degree target grid) and ``lon`` (degrees east, -180..180,
ascending), plus ``time`` where the file has one; values are floats in SI-style units
(m3 m-3, K, albedo as a fraction) with scaling applied and fill values as NaN. Anything that
is not what the product should be raises :class:`InputError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm.io.errors import InputError, require_file

LAT_NAMES = ("lat", "latitude", "y")
LON_NAMES = ("lon", "longitude", "x")
TIME_NAMES = ("time", "valid_time")
SOIL_MOISTURE_UNITS = {"m3 m-3", "m**3 m**-3", "m3/m3", "m^3 m^-3", "m3.m-3", "1"}
AVHRR_VARIABLES = ("albedo_bsa_vis", "albedo_bsa_nir", "albedo_bsa_shortwave", "lst")
GLASS_MODIS_YEARS = range(2000, 2021)  # the training target exists for these years only


def open_netcdf(path: str | Path, product: str) -> xr.Dataset:
    """Open a NetCDF file (decoded, lazily) or raise an InputError naming it."""
    path = require_file(path, product)
    try:
        return xr.open_dataset(path, engine="netcdf4", mask_and_scale=True, decode_times=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise InputError(
            path, f"not a readable {product} NetCDF file ({type(err).__name__}: {err})"
        ) from err


def pick_variable(
    dataset: xr.Dataset, names: Iterable[str], path: str | Path, product: str
) -> xr.DataArray:
    names = list(names)
    for name in names:
        if name in dataset.data_vars:
            return dataset[name]
    raise InputError(
        path,
        f"{product}: variable {' or '.join(repr(n) for n in names)} not found",
        f"variables in the file: {', '.join(sorted(map(str, dataset.data_vars))) or 'none'}",
    )


def _exact_degrees(values: np.ndarray) -> np.ndarray:
    """float64 coordinates; float32 ones (legacy ERA5) by their shortest decimal form,
    so that 359.9f becomes 359.9 and not 359.899993896."""
    if values.dtype == np.float32:
        return np.array([float(str(v)) for v in values], dtype=np.float64)
    return values.astype(np.float64)


def standardise_coords(array: xr.DataArray, path: str | Path) -> xr.DataArray:
    """Rename to lat/lon/time, wrap longitudes to -180..180, sort lon ascending, lat descending."""
    renames = {}
    for wanted, options in (("lat", LAT_NAMES), ("lon", LON_NAMES), ("time", TIME_NAMES)):
        for name in options:
            if name in array.dims or name in array.coords:
                if name != wanted:
                    renames[name] = wanted
                break
    array = array.rename(renames)
    for coord in ("lat", "lon"):
        if coord not in array.coords:
            raise InputError(path, f"no {coord} coordinate", f"dimensions are {list(array.dims)}")
    lat, lon = _exact_degrees(array["lat"].values), _exact_degrees(array["lon"].values)
    lon = np.round(np.where(lon > 180.0, lon - 360.0, lon), 10)
    array = array.assign_coords(lat=lat, lon=lon)
    if array.indexes["lon"].has_duplicates or array.indexes["lat"].has_duplicates:
        raise InputError(path, "duplicated latitude or longitude values")
    array = array.sortby("lon").sortby("lat", ascending=False)
    if "time" in array.dims:
        times = array.indexes["time"]
        if times.has_duplicates:
            raise InputError(path, "duplicated time stamps")
        if not times.is_monotonic_increasing:
            array = array.sortby("time")
    extra = [c for c in array.coords if c not in ("lat", "lon", "time") and c not in array.dims]
    array = array.drop_vars(extra)
    return array.assign_coords(
        lat=array["lat"]
        .astype(np.float64)
        .assign_attrs(standard_name="latitude", units="degrees_north"),
        lon=array["lon"]
        .astype(np.float64)
        .assign_attrs(standard_name="longitude", units="degrees_east"),
    )


def _lazy_subset(array: xr.DataArray, bounds: tuple[float, float, float, float]) -> xr.DataArray:
    """The pixels of a not-yet-loaded (lat, lon) array whose centres lie inside ``bounds``."""
    west, south, east, north = bounds
    selection = {}
    for names, low, high in ((LAT_NAMES, south, north), (LON_NAMES, west, east)):
        name = next((n for n in names if n in array.dims), None)
        if name is None:
            return array
        coord = array[name].values
        if name in LON_NAMES and np.nanmax(coord) > 180.0:
            return array  # 0..360 longitudes: read whole, standardise_coords wraps them
        inside = np.flatnonzero((coord > low) & (coord < high))
        if inside.size == 0:
            return array.isel({name: slice(0, 0)})
        selection[name] = slice(int(inside.min()), int(inside.max()) + 1)
    return array.isel(selection)


def check_range(
    array: xr.DataArray, low: float, high: float, path: str | Path, what: str, hint: str
) -> None:
    """InputError when valid values fall outside [low, high] (e.g. wrong units)."""
    values = array.values
    if not np.isfinite(values).any():
        return
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    if vmin < low or vmax > high:
        raise InputError(path, f"{what} values {vmin:.4g}..{vmax:.4g} outside {low}..{high}", hint)


def _as_soil_moisture(
    array: xr.DataArray, path: str | Path, product: str, name: str, long_name: str
) -> xr.DataArray:
    """Check volumetric units and range, then name and describe a soil-moisture array."""
    units = str(array.attrs.get("units", "m3 m-3"))
    if units not in SOIL_MOISTURE_UNITS:
        raise InputError(path, f"{product} has units {units!r}", "expected volumetric m3 m-3")
    check_range(array, 0.0, 1.0, path, product, "expected volumetric m3 m-3")
    array = array.astype(np.float32)
    array.name = name
    array.attrs = {"long_name": long_name, "units": "m3 m-3", "source_file": str(path)}
    return array


# --------------------------------------------------------------------------------------------


def read_era5land(path: str | Path, day: pd.Timestamp | None = None) -> xr.DataArray:
    """Hourly ERA5-Land ``swvl1`` (m3 m-3) from one CDS NetCDF file (new or legacy layout).

    Handles ``valid_time`` or ``time``, ``latitude``/``longitude``, longitudes 0-360, packed
    (legacy int16) or float storage; drops ``number``/``expver``. With ``day``, only that UTC
    day's hours are read (a global month does not fit in memory; a global day does).
    """
    with open_netcdf(path, "ERA5-Land") as dataset:
        array = pick_variable(dataset, ["swvl1"], path, "ERA5-Land")
        if "time" not in array.dims and "valid_time" not in array.dims:
            raise InputError(
                path, "ERA5-Land swvl1 has no time dimension", f"dimensions are {list(array.dims)}"
            )
        if day is not None:
            time_name = "time" if "time" in array.dims else "valid_time"
            start = pd.Timestamp(day).normalize()
            array = array.sel({time_name: slice(start, start + pd.Timedelta(hours=23, minutes=59))})
        array = array.load()
    array = standardise_coords(array, path)
    array = _as_soil_moisture(
        array,
        path,
        "ERA5-Land swvl1",
        "era5land_swvl1",
        "ERA5-Land volumetric soil water layer 1 (0-7 cm)",
    )
    return array.transpose("time", "lat", "lon")


def read_glass_avhrr(path: str | Path, variable: str) -> xr.DataArray:
    """One GLASS-AVHRR daily file: albedo (fraction) or LST (K) on (lat, lon)."""
    if variable not in AVHRR_VARIABLES:
        raise ValueError(f"unknown GLASS-AVHRR variable {variable!r}; one of {AVHRR_VARIABLES}")
    with open_netcdf(path, "GLASS-AVHRR") as dataset:
        array = pick_variable(dataset, [variable], path, "GLASS-AVHRR").load()
        platform = str(dataset.attrs.get("platform", ""))
    array = standardise_coords(array, path)
    if variable == "lst":
        units = str(array.attrs.get("units", "K"))
        if units not in ("K", "kelvin", "Kelvin"):
            raise InputError(path, f"GLASS-AVHRR lst has units {units!r}", "expected kelvin (K)")
        check_range(
            array,
            150.0,
            360.0,
            path,
            "GLASS-AVHRR lst",
            "expected kelvin; values look like degrees Celsius",
        )
        attrs = {
            "long_name": "AVHRR land surface temperature",
            "units": "K",
            "standard_name": "surface_temperature",
        }
    else:
        check_range(
            array, 0.0, 1.0, path, f"GLASS-AVHRR {variable}", "albedo must be a fraction 0..1"
        )
        band = variable.rsplit("_", 1)[1]
        attrs = {"long_name": f"AVHRR black-sky albedo ({band})", "units": "1"}
    array = array.astype(np.float32)
    array.name = f"avhrr_{variable}"
    array.attrs = {**attrs, "source_file": str(path), "platform": platform}
    return array.transpose("lat", "lon")


def read_glass_modis(
    path: str | Path, bounds: tuple[float, float, float, float] | None = None
) -> xr.DataArray:
    """One GLASS-MODIS daily 0.01 degree soil-moisture file (m3 m-3) on (lat, lon).

    With ``bounds`` (west, south, east, north) only the pixels inside are read: a global
    0.01 degree day is 648 million pixels.
    """
    with open_netcdf(path, "GLASS-MODIS") as dataset:
        array = pick_variable(dataset, ["soil_moisture", "SM", "sm"], path, "GLASS-MODIS")
        if bounds is not None:
            array = _lazy_subset(array, bounds)
        array = array.load()
    array = standardise_coords(array, path)
    array = _as_soil_moisture(
        array,
        path,
        "GLASS-MODIS soil moisture",
        "glass_modis_sm",
        "GLASS-MODIS surface soil moisture",
    )
    return array.transpose("lat", "lon")


def read_esa_cci(path: str | Path) -> xr.DataArray:
    """One ESA CCI SM daily file: ``sm`` (m3 m-3) on (time, lat, lon), NaN where flagged."""
    with open_netcdf(path, "ESA CCI SM") as dataset:
        sm = pick_variable(dataset, ["sm"], path, "ESA CCI SM").load()
        flag = dataset["flag"].load() if "flag" in dataset.data_vars else None
    if "time" not in sm.dims:
        raise InputError(
            path, "ESA CCI sm has no time dimension", f"dimensions are {list(sm.dims)}"
        )
    if flag is not None:
        sm = sm.where(flag.fillna(1) == 0).assign_attrs(sm.attrs)
    sm = standardise_coords(sm, path)
    sm = _as_soil_moisture(
        sm, path, "ESA CCI sm", "esa_cci_sm", "ESA CCI SM COMBINED surface soil moisture"
    )
    return sm.transpose("time", "lat", "lon")
