"""The daily product: one CF-1.8 NetCDF4 file per day on the 0.05 degree grid.

The (year, tile) inference stores are mosaicked block of days by block of days (memory bounded
by ``memory_budget_mb`` whatever the region), checked to be seamless (every land pixel has a
value every day), packed into int16 and written one file per day, each to a temporary name
renamed into place when complete. A per-year summary figure shows the annual mean and the
number of days whose inputs were gap-filled.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import netCDF4
import numpy as np
import pandas as pd

from avhrrsm import __version__
from avhrrsm.atomic import atomic_path
from avhrrsm.days import year_days
from avhrrsm.grid import STEP_DEG, Window, region_window, tiles
from avhrrsm.hashing import file_sha256
from avhrrsm.infer import read_inference_tile
from avhrrsm.io.errors import InputError
from avhrrsm.parallel import map_pieces
from avhrrsm.static import read_static_layers
from avhrrsm.store import crs_variable, lat_lon_coords
from avhrrsm.variables import FLAG_GAP_FILLED, QUALITY_ATTRS, SM_ATTRS, SM_UNCERTAINTY_ATTRS

LOGGER = logging.getLogger(__name__)
SM_FILL = np.int16(-32768)
FLAG_FILL = np.int8(-1)
REFERENCE = (
    "Zhang et al. (2025): a global daily 5 km surface soil moisture product from AVHRR "
    "(1982-2021) with deep learning, Earth Syst. Sci. Data, 17, 5181"
)


def product_file_name(day: pd.Timestamp, version: str) -> str:
    return f"avhrrsm_sm_{day:%Y%m%d}_v{version}.nc"


def _bounds(centres: np.ndarray) -> np.ndarray:
    half = STEP_DEG / 2
    return np.round(np.stack([centres - half, centres + half], axis=1), 6)


def write_day(
    path: Path,
    day: pd.Timestamp,
    window: Window,
    soil_moisture: np.ndarray,
    sm_uncertainty: np.ndarray,
    quality: np.ndarray,
    land: np.ndarray,
    settings: Mapping[str, Any],
    global_attrs: Mapping[str, Any],
) -> None:
    """One day's CF file: soil moisture and its standard error packed to int16 (the same
    scale), the quality flag, the grid mapping."""
    scale = float(settings["scale_factor"])
    lo, hi = (float(v) for v in settings["valid_range"])
    packed = _pack(soil_moisture, land, scale)
    packed_uncertainty = _pack(np.minimum(sm_uncertainty, hi - lo), land, scale)
    flags = np.where(land, quality, FLAG_FILL).astype(np.int8)
    chunks = (1, min(window.shape[0], 900), min(window.shape[1], 900))
    crs = crs_variable()
    with atomic_path(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.set_auto_maskandscale(False)
        _write_coordinates(nc, day, window)
        grid = nc.createVariable("crs", "i4")
        grid.setncatts(crs.attrs)
        _packed_variable(
            nc,
            "soil_moisture",
            "i2",
            SM_FILL,
            chunks,
            {
                **SM_ATTRS,
                "scale_factor": np.float32(scale),
                "add_offset": np.float32(0.0),
                "valid_range": np.array([round(lo / scale), round(hi / scale)], np.int16),
                "grid_mapping": "crs",
                "ancillary_variables": "sm_uncertainty quality_flag",
                "cell_methods": "time: mean area: mean",
                "comment": "0-5 cm; fill value over water and permanent ice",
            },
            packed,
        )
        _packed_variable(
            nc,
            "sm_uncertainty",
            "i2",
            SM_FILL,
            chunks,
            {
                **SM_UNCERTAINTY_ATTRS,
                "scale_factor": np.float32(scale),
                "add_offset": np.float32(0.0),
                "valid_range": np.array([0, round((hi - lo) / scale)], np.int16),
                "grid_mapping": "crs",
            },
            packed_uncertainty,
        )
        _packed_variable(
            nc,
            "quality_flag",
            "i1",
            FLAG_FILL,
            chunks,
            {**QUALITY_ATTRS, "grid_mapping": "crs"},
            flags,
        )
        nc.setncatts({**global_attrs, **_coverage_attrs(day, window)})


def _write_coordinates(nc: netCDF4.Dataset, day: pd.Timestamp, window: Window) -> None:
    """The time, lat and lon dimensions and coordinates, each with its CF bounds."""
    lat, lon = window.lat(), window.lon()
    nc.createDimension("time", 1)
    nc.createDimension("lat", lat.size)
    nc.createDimension("lon", lon.size)
    nc.createDimension("nv", 2)
    time = nc.createVariable("time", "f8", ("time",))
    time.setncatts(
        {
            "standard_name": "time",
            "long_name": "time (start of the UTC day)",
            "units": "days since 1970-01-01 00:00:00",
            "calendar": "standard",
            "axis": "T",
            "bounds": "time_bnds",
        }
    )
    days_since = float((day - pd.Timestamp("1970-01-01")).days)
    time[:] = [days_since]
    time_bnds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
    time_bnds[:] = [[days_since, days_since + 1.0]]
    for name, coord_values in lat_lon_coords(window).items():
        coord = nc.createVariable(name, "f8", (name,))
        coord.setncatts({**coord_values.attrs, "bounds": f"{name}_bnds"})
        coord[:] = coord_values.values
        bounds = nc.createVariable(f"{name}_bnds", "f8", (name, "nv"))
        bounds[:] = _bounds(coord_values.values)


def _coverage_attrs(day: pd.Timestamp, window: Window) -> dict[str, Any]:
    """The ACDD time and space coverage attributes of one day's file over ``window``."""
    west, south, east, north = window.bounds()
    return {
        "time_coverage_start": f"{day:%Y-%m-%d}T00:00:00Z",
        "time_coverage_end": f"{day + pd.Timedelta(days=1):%Y-%m-%d}T00:00:00Z",
        "time_coverage_duration": "P1D",
        "time_coverage_resolution": "P1D",
        "geospatial_lat_min": south,
        "geospatial_lat_max": north,
        "geospatial_lon_min": west,
        "geospatial_lon_max": east,
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_units": "degrees_east",
        "geospatial_lat_resolution": STEP_DEG,
        "geospatial_lon_resolution": STEP_DEG,
    }


def _pack(values: np.ndarray, land: np.ndarray, scale: float) -> np.ndarray:
    """``values`` (m3 m-3) as int16 of ``scale``, the fill value off land and where missing."""
    packed = np.where(land, np.round(values / scale), SM_FILL)
    return np.where(np.isfinite(packed), packed, SM_FILL).astype(np.int16)


def _packed_variable(
    nc: netCDF4.Dataset,
    name: str,
    dtype: str,
    fill: Any,
    chunks: tuple[int, ...],
    attrs: Mapping[str, Any],
    values: np.ndarray,
) -> None:
    """A compressed (time, lat, lon) variable holding ``values`` as stored (already packed)."""
    variable = nc.createVariable(
        name, dtype, ("time", "lat", "lon"), fill_value=fill, zlib=True, complevel=4,
        shuffle=True, chunksizes=chunks,
    )  # fmt: skip
    variable.setncatts(dict(attrs))
    variable.set_auto_maskandscale(False)
    variable[0] = values


def product_attrs(
    settings: Mapping[str, Any], model_name: str, model_sha256: str, provenance: Mapping[str, str]
) -> dict[str, str]:
    return {
        "Conventions": "CF-1.8",
        "title": "avhrrsm global daily 0.05 degree surface soil moisture from AVHRR",
        "summary": (
            "Surface (0-5 cm) volumetric soil moisture estimated by a deep-learning model from "
            "AVHRR albedo and land surface temperature (GLASS-AVHRR), ERA5-Land swvl1, terrain "
            "(MERIT DEM) and soil texture (SoilGrids), trained on GLASS-MODIS soil moisture."
        ),
        "institution": str(settings["institution"]),
        "source": f"avhrrsm {__version__}, model {model_name}",
        "references": REFERENCE,
        "history": f"produced by avhrrsm {__version__} (rule product_year)",
        "product_version": str(settings["version"]),
        "model": model_name,
        "model_checkpoint_sha256": model_sha256,
        "naming_authority": "avhrrsm",
        "cdm_data_type": "Grid",
        "keywords": "soil moisture, AVHRR, deep learning, LSTM",
        **provenance,
    }


def _mosaic_block(
    tile_paths: Mapping[str, str | Path],
    window: Window,
    tile_deg: float,
    start: int,
    stop: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soil moisture, its standard error and the quality flags of days ``start .. stop`` of
    the tiles on the region's grid."""
    layout = dict(tiles(window, tile_deg))
    sm = np.full((stop - start, *window.shape), np.nan, np.float32)
    uncertainty = np.full(sm.shape, np.nan, np.float32)
    quality = np.zeros(sm.shape, np.int8)
    for tile_id, path in tile_paths.items():
        rows, cols = layout[tile_id].within(window)
        sm[:, rows, cols], uncertainty[:, rows, cols], quality[:, rows, cols] = read_inference_tile(
            path, slice(start, stop)
        )
    return sm, uncertainty, quality


class BlockSums(NamedTuple):
    """What one block of days adds to the year's summary: the sum of soil moisture over the
    days (land), the days with gap-filled inputs, and the counts."""

    total: np.ndarray
    filled_days: np.ndarray
    counts: dict[str, int]


def _write_block(
    start: int,
    out_dir: Path,
    days: pd.DatetimeIndex,
    block: int,
    tile_paths: Mapping[str, str | Path],
    window: Window,
    tile_deg: float,
    land: np.ndarray,
    settings: Mapping[str, Any],
    attrs: Mapping[str, str],
) -> BlockSums:
    """Mosaic the days ``start .. start + block`` of the tiles, check them seamless, and write
    one file per day into ``out_dir``."""
    stop = min(len(days), start + block)
    sm, uncertainty, quality = _mosaic_block(tile_paths, window, tile_deg, start, stop)
    holes = land[None] & ~(np.isfinite(sm) & np.isfinite(uncertainty))
    if holes.any():
        k, r, c = (int(v[0]) for v in np.nonzero(holes))
        raise InputError(
            next(iter(tile_paths.values())),
            f"{int(holes.sum())} land pixel-days without a prediction or its uncertainty, first on "
            f"{days[start + k]:%Y-%m-%d} at lat {window.lat()[r]}, lon {window.lon()[c]}",
            "rerun the inference tiles of this year",
        )
    for k in range(stop - start):
        day = days[start + k]
        write_day(
            out_dir / product_file_name(day, str(settings["version"])),
            day,
            window,
            sm[k],
            uncertainty[k],
            quality[k],
            land,
            settings,
            attrs,
        )
    gap_filled = (quality & FLAG_GAP_FILLED) > 0
    return BlockSums(
        total=np.where(land, sm, 0.0).sum(axis=0),
        filled_days=gap_filled.sum(axis=0, dtype=np.int32),
        counts={
            "days": stop - start,
            "land_pixel_days": int(land.sum()) * (stop - start),
            "gap_filled_pixel_days": int(gap_filled[:, land].sum()),
        },
    )


def write_year_product(
    out_dir: str | Path,
    summary_png: str | Path,
    year: int,
    tile_paths: Mapping[str, str | Path],
    static_path: str | Path,
    region: Mapping[str, float],
    tile_deg: float,
    settings: Mapping[str, Any],
    model_path: str | Path,
    model_name: str,
    provenance: Mapping[str, str],
    workers: int = 1,
    day_count: int | None = None,
) -> dict[str, Any]:
    """Write every daily file of ``year`` into ``out_dir`` and the year's summary figure;
    ``workers`` processes write blocks of days (the bytes do not depend on it).
    ``day_count``: only the first days of the year (tiles of those days; the benchmarks)."""
    window = region_window(region)
    missing_tiles = sorted(set(dict(tiles(window, tile_deg))) - set(tile_paths))
    if missing_tiles:
        raise ValueError(f"inference tiles missing for {year}: {missing_tiles}")
    land = read_static_layers(static_path, window)["land_mask"]
    days = year_days(year, day_count)
    attrs = product_attrs(settings, model_name, file_sha256(model_path), provenance)
    # float32 values and uncertainty, int8 flags, their int16 / int8 packings, twice
    per_day = window.shape[0] * window.shape[1] * (4 + 4 + 1 + 2 + 2 + 1) * 2
    block = max(1, min(len(days), int(float(settings["memory_budget_mb"]) * 2**20 // per_day)))
    total = np.zeros(window.shape, np.float64)
    filled_days = np.zeros(window.shape, np.int32)
    counts = {"days": 0, "land_pixel_days": 0, "gap_filled_pixel_days": 0}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        writing = functools.partial(
            _write_block,
            out_dir=tmp,
            days=days,
            block=block,
            tile_paths=dict(tile_paths),
            window=window,
            tile_deg=tile_deg,
            land=land,
            settings=dict(settings),
            attrs=attrs,
        )
        # blocks of days on the job's cores; sums added in the blocks' order (same bytes)
        starts = range(0, len(days), block)
        for part in map_pieces(writing, starts, workers):
            total += part.total
            filled_days += part.filled_days
            for key, value in part.counts.items():
                counts[key] += value
    annual_mean = np.where(land, total / len(days), np.nan)
    _summary_figure(Path(summary_png), year, window, annual_mean, np.where(land, filled_days, -1))
    LOGGER.info("product %d: %s", year, counts)
    return counts


def _summary_figure(
    path: Path, year: int, window: Window, annual_mean: np.ndarray, filled: np.ndarray
) -> None:
    import matplotlib.pyplot as plt

    from avhrrsm.plotting import save_png

    west, south, east, north = window.bounds()
    extent = (west, east, south, north)
    figure, (ax_mean, ax_filled) = plt.subplots(1, 2, figsize=(10, 4.2))
    image = ax_mean.imshow(annual_mean, extent=extent, cmap="YlGnBu", vmin=0, vmax=0.5)
    figure.colorbar(image, ax=ax_mean, label="m3 m-3")
    ax_mean.set_title(f"{year}: annual mean soil moisture")
    shown = np.ma.masked_less(filled, 0)
    image = ax_filled.imshow(shown, extent=extent, cmap="magma_r")
    figure.colorbar(image, ax=ax_filled, label="days")
    ax_filled.set_title(f"{year}: days with gap-filled inputs")
    for ax in (ax_mean, ax_filled):
        ax.set_xlabel("longitude (degrees east)")
        ax.set_ylabel("latitude (degrees north)")
    figure.tight_layout()
    save_png(figure, path)


class ProductDay(NamedTuple):
    """One daily product file: its day, soil moisture (m3 m-3, NaN over water and where
    missing), quality flag bits (0 there) and the soil moisture's standard error (m3 m-3,
    NaN where the soil moisture is)."""

    day: pd.Timestamp
    soil_moisture: np.ndarray
    quality_flag: np.ndarray
    sm_uncertainty: np.ndarray


def read_product_day(path: str | Path) -> ProductDay:
    """A daily file written by :func:`write_year_product`; errors name the file."""
    try:
        with netCDF4.Dataset(path) as nc:
            values, uncertainty = (
                np.ma.filled(nc[name][0].astype(np.float64), np.nan)
                for name in ("soil_moisture", "sm_uncertainty")
            )
            flags = nc["quality_flag"]
            flags.set_auto_maskandscale(False)
            quality = np.asarray(flags[0]).astype(np.int64)
            time = nc["time"]
            day = pd.Timestamp(
                str(netCDF4.num2date(time[0], time.units, time.calendar))
            ).normalize()
    except (OSError, KeyError, IndexError) as err:
        raise InputError(
            path, f"not a readable avhrrsm daily product file ({err})", "rerun rule product_year"
        ) from err
    return ProductDay(day, values, quality, uncertainty)
