"""Readers of the gridded NetCDF/GRIB products: ERA5-Land and ESA CCI SM.

GLASS-AVHRR (HDF4) is read by :mod:`avhrrsm.io.glass`, GLASS-MODIS (sinusoidal GeoTIFF) by
:mod:`avhrrsm.io.glass_modis`.

Every reader returns an ``xarray.DataArray`` on CF coordinates ``lat`` (degrees north,
descending, as on the 0.05 degree target grid) and ``lon`` (degrees east, -180..180,
ascending), plus ``time`` where the file has one; values are floats in SI-style units
(m3 m-3, K, albedo as a fraction) with scaling applied and fill values as NaN. Anything that
is not what the product should be raises :class:`InputError` naming the file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm.io.errors import InputError, require_file
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS, ERA5LAND_MIN_SWVL1

LOGGER = logging.getLogger(__name__)

LAT_NAMES = ("lat", "latitude", "y")
LON_NAMES = ("lon", "longitude", "x")
TIME_NAMES = ("time", "valid_time")
SOIL_MOISTURE_UNITS = {"m3 m-3", "m**3 m**-3", "m3/m3", "m^3 m^-3", "m3.m-3", "1"}


def open_netcdf(path: str | Path, product: str) -> xr.Dataset:
    """Open a NetCDF file (decoded, lazily) or raise an InputError naming it."""
    path = require_file(path, product)
    try:
        dataset = xr.open_dataset(path, engine="netcdf4", mask_and_scale=True, decode_times=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise InputError(
            path, f"not a readable {product} NetCDF file ({type(err).__name__}: {err})"
        ) from err
    for name in TIME_NAMES:
        if name in dataset.variables and dataset[name].dtype.kind != "M":
            time = dataset[name]
            calendar = time.encoding.get("calendar", time.attrs.get("calendar", "?"))
            units = time.encoding.get("units", time.attrs.get("units", "?"))
            dataset.close()
            raise InputError(
                path,
                f"{product} time axis '{name}' ({units}, calendar {calendar}) does not decode "
                "to dates of the standard calendar",
                f"{product} uses the proleptic Gregorian calendar; was the file converted?",
            )
    return dataset


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
    array = _ordered(_ordered(array, "lon", ascending=True), "lat", ascending=False)
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


def _ordered(array: xr.DataArray, coord: str, ascending: bool) -> xr.DataArray:
    """``array`` with ``coord`` (unique values) in order, as ``sortby`` would give it, without
    its gather where the order is already there (nothing to do), reversed (a view) or rotated
    (ERA5's 0..360 longitudes wrapped to -180..180: two contiguous copies): a global ERA5-Land
    day is 155 M values, and a gather over them costs seconds."""
    values = array[coord].values
    step = np.diff(values) if ascending else -np.diff(values)
    if values.size < 2 or (step > 0).all():
        return array
    if (step < 0).all():
        return array.isel({coord: slice(None, None, -1)})
    breaks = np.flatnonzero(step < 0)
    first, last = values[0], values[-1]
    if breaks.size == 1 and (last < first if ascending else last > first):
        return array.roll({coord: -(int(breaks[0]) + 1)}, roll_coords=True)
    return array.sortby(coord, ascending=ascending)


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
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    else:  # a new array's attributes below, not the caller's
        array = array.copy(deep=False)
    array.name = name
    array.attrs = {"long_name": long_name, "units": "m3 m-3", "source_file": str(path)}
    return array


# --------------------------------------------------------------------------------------------


ZIP_MAGIC = b"PK\x03\x04"
GRIB_MAGIC = b"GRIB"


def _era5land_format(path: Path) -> str:
    """'zip', 'grib' or 'netcdf', from the file's first bytes (CDS names do not say)."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic == ZIP_MAGIC or zipfile.is_zipfile(path):
        return "zip"
    if magic == GRIB_MAGIC:
        return "grib"
    return "netcdf"


def _netcdf_from_zip(path: Path, folder: Path) -> Path:
    """The NetCDF member of a CDS zip that holds ``swvl1``, extracted into ``folder``.

    The new CDS zips several NetCDF files (one per data stream and step type, e.g.
    ``data_stream-oper_stepType-instant.nc``) when a request spans more than one.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith((".nc", ".nc4"))]
            if not members:
                raise InputError(
                    path,
                    "ERA5-Land zip holds no NetCDF file",
                    f"members: {', '.join(archive.namelist()) or 'none'}",
                )
            for member in members:
                target = folder / Path(member).name
                with archive.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
                with netCDF4.Dataset(target) as dataset:
                    if "swvl1" in dataset.variables:
                        return target
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise InputError(path, f"ERA5-Land zip is damaged ({type(err).__name__}: {err})") from err
    raise InputError(
        path, "no NetCDF member of the ERA5-Land zip holds swvl1", f"members: {members}"
    )


def _open_era5land_grib(path: Path) -> xr.Dataset:
    """swvl1 messages of a GRIB file through cfgrib/ecCodes (no index file written)."""
    try:
        dataset = xr.open_dataset(
            path,
            engine="cfgrib",
            backend_kwargs={"indexpath": "", "filter_by_keys": {"shortName": "swvl1"}},
        )
    except Exception as err:  # cfgrib raises many kinds for a broken or foreign GRIB
        raise InputError(
            path, f"not a readable ERA5-Land GRIB file ({type(err).__name__}: {err})"
        ) from err
    if "swvl1" not in dataset.data_vars:
        dataset.close()
        raise InputError(
            path,
            "ERA5-Land GRIB file has no swvl1 message",
            "request variable 'volumetric_soil_water_layer_1'",
        )
    swvl1 = dataset["swvl1"]
    if "latitude" not in swvl1.dims or "longitude" not in swvl1.dims:
        dataset.close()
        raise InputError(
            path,
            "ERA5-Land GRIB swvl1 is not on a regular lat/lon grid",
            f"dimensions are {list(swvl1.dims)}",
        )
    if "step" in swvl1.dims:  # forecast-type messages: valid time = base time + step
        swvl1 = (
            swvl1.stack(hour=("time", "step"))
            .swap_dims(hour="valid_time")
            .drop_vars(["hour", "time", "step"], errors="ignore")
        )
        swvl1 = swvl1.rename(valid_time="time")
    elif "time" not in swvl1.dims:
        swvl1 = swvl1.drop_vars("time", errors="ignore").expand_dims(
            time=[swvl1["valid_time"].values]
        )
    else:
        swvl1 = swvl1.drop_vars("valid_time", errors="ignore")
    return swvl1.to_dataset(name="swvl1")


@contextmanager
def open_era5land(path: str | Path) -> Iterator[xr.Dataset]:
    """An ERA5-Land file as the CDS delivers it: NetCDF4 (new CDS), NetCDF3 packed int16
    (legacy), a zip of NetCDF files, or GRIB; recognised by content, not by name."""
    path = require_file(path, "ERA5-Land")
    kind = _era5land_format(path)
    if kind == "grib":
        dataset = _open_era5land_grib(path)
        try:
            yield dataset
        finally:
            dataset.close()
        return
    with tempfile.TemporaryDirectory(prefix="era5land-zip-") as folder:
        source = _netcdf_from_zip(path, Path(folder)) if kind == "zip" else path
        dataset = open_netcdf(source, "ERA5-Land")
        try:
            yield dataset
        finally:
            dataset.close()


def read_era5land(path: str | Path, day: pd.Timestamp | None = None) -> xr.DataArray:
    """Hourly ERA5-Land ``swvl1`` (m3 m-3) from one CDS file (see :func:`open_era5land`).

    Handles ``valid_time`` or ``time``, ``latitude``/``longitude``, longitudes 0-360, packed
    (legacy int16) or float storage; drops ``number``/``expver``. With ``day``, only that UTC
    day's hours are read (a global month does not fit in memory; a global day does).
    Small negative values (the land-surface model's, over dry land) are set to 0; their count
    is in ``attrs["negative_values_set_to_zero"]`` and logged.
    """
    with open_era5land(path) as dataset:
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
    negative = int((array < 0).sum())
    if negative:
        lowest = float(array.min())
        if lowest < ERA5LAND_MIN_SWVL1:
            raise InputError(
                path,
                f"ERA5-Land swvl1 reaches {lowest:.4g} m3 m-3",
                "small negative values are the model's and are set to 0; this is not one",
            )
        LOGGER.info("%s: %d negative swvl1 value(s) (>= %.4g) set to 0", path, negative, lowest)
        array = array.clip(min=0.0).assign_attrs(array.attrs)
    array = _as_soil_moisture(
        array,
        path,
        "ERA5-Land swvl1",
        "era5land_swvl1",
        "ERA5-Land volumetric soil water layer 1 (0-7 cm)",
    )
    array.attrs["negative_values_set_to_zero"] = negative
    return array.transpose("time", "lat", "lon")


def read_esa_cci(path: str | Path, invalid_flag_bits: int = CCI_INVALID_FLAG_BITS) -> xr.DataArray:
    """One ESA CCI SM daily file: ``sm`` (m3 m-3) on (time, lat, lon), NaN where ``flag``
    has any of ``invalid_flag_bits`` set (advisory bits such as barren ground are kept)."""
    with open_netcdf(path, "ESA CCI SM") as dataset:
        sm = pick_variable(dataset, ["sm"], path, "ESA CCI SM").load()
        flag = dataset["flag"].load() if "flag" in dataset.data_vars else None
    if "time" not in sm.dims:
        raise InputError(
            path, "ESA CCI sm has no time dimension", f"dimensions are {list(sm.dims)}"
        )
    if flag is not None:
        bits = flag.fillna(255).astype(np.int64).values & int(invalid_flag_bits)
        sm = sm.where(bits == 0).assign_attrs(sm.attrs)
    sm = standardise_coords(sm, path)
    sm = _as_soil_moisture(
        sm, path, "ESA CCI sm", "esa_cci_sm", "ESA CCI SM COMBINED surface soil moisture"
    )
    return sm.transpose("time", "lat", "lon")
