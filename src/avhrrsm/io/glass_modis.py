"""Reader of the GLASS-MODIS soil-moisture target: daily 1 km GeoTIFFs in the MODIS sinusoidal
projection (nodata -9999, possibly several tiles a day), put on the 0.05 degree grid.

Not a lat/lon grid, so not a block mean: each 0.05 degree cell gets the area-weighted average of
the valid 1 km pixels it overlaps (GDAL's warper, ``average``), and the fraction of its area
that valid pixels cover (the same warp of a 0/1 validity mask). Only the source window under
the requested 0.05 degree window is read, stripe by stripe, so memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, transform_bounds
from rasterio.windows import Window as RasterWindow
from rasterio.windows import from_bounds

from avhrrsm.grid import STEP_DEG, Window
from avhrrsm.io.errors import InputError, require_file
from avhrrsm.io.glass import matching_files
from avhrrsm.io.layouts import GLASS_MODIS, GeoTiffLayout
from avhrrsm.regrid import warp_average

PRODUCT = GLASS_MODIS.product
STRIPE_ROWS = 100  # 5 degrees of 0.05 degree rows at a time
SPHERE_RADIUS_M = 6371007.181  # the MODIS sinusoidal grid's sphere


def glass_modis_files(pattern: str, day: pd.Timestamp) -> list[Path]:
    """The GLASS-MODIS GeoTIFF(s) of one day: one file, or several tiles where the pattern
    holds a ``*``."""
    return matching_files(pattern, day)


def _is_sinusoidal(crs: rasterio.crs.CRS | None) -> bool:
    if crs is None:
        return False
    proj4 = crs.to_proj4() or ""
    return "+proj=sinu" in proj4


def open_tile(path: str | Path) -> rasterio.DatasetReader:
    """Open one GLASS-MODIS GeoTIFF, checked to be in the MODIS sinusoidal projection."""
    path = require_file(path, PRODUCT)
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as err:
        raise InputError(path, f"not a readable {PRODUCT} GeoTIFF ({err})") from err
    if not _is_sinusoidal(dataset.crs):
        crs = dataset.crs
        dataset.close()
        raise InputError(
            path,
            f"{PRODUCT} is in {crs.to_string() if crs else 'no CRS'}, not the MODIS sinusoidal projection",
            "give the GeoTIFFs as distributed (1 km, sinusoidal)",
        )
    return dataset


def _source_window(
    dataset: rasterio.DatasetReader, bounds: tuple[float, float, float, float]
) -> RasterWindow | None:
    """The window of the source raster under geographic ``bounds``, or None outside it."""
    projected = transform_bounds("EPSG:4326", dataset.crs, *bounds, densify_pts=51)
    window = from_bounds(*projected, transform=dataset.transform)
    col0 = max(0, math.floor(window.col_off) - 1)
    row0 = max(0, math.floor(window.row_off) - 1)
    col1 = min(dataset.width, math.ceil(window.col_off + window.width) + 1)
    row1 = min(dataset.height, math.ceil(window.row_off + window.height) + 1)
    if col1 <= col0 or row1 <= row0:
        return None
    return RasterWindow(col0, row0, col1 - col0, row1 - row0)


def _read_values(
    dataset: rasterio.DatasetReader, window: RasterWindow, path: Path, layout: GeoTiffLayout
) -> np.ndarray:
    """The window's pixels as float32 m3 m-3, nodata and out-of-range as NaN (in place, in
    float32: reading and decompressing is most of the work, so nothing is copied twice).
    Nodata, scale and offset come from the file's tags, else (or where the config sets them)
    from the layout."""
    try:
        values = dataset.read(1, window=window, out_dtype="float32")
    except RasterioIOError as err:
        raise InputError(path, f"{PRODUCT} GeoTIFF cannot be read ({err})") from err

    def pick(key: str, tag: float | None) -> float:
        if key in layout.overrides or tag is None:
            return float(getattr(layout, key))
        return float(tag)

    nodata = pick("nodata", dataset.nodata)
    if not np.isnan(nodata):
        values[values == np.float32(nodata)] = np.nan
    scale = pick("scale_factor", dataset.scales[0] if dataset.scales else None)
    offset = pick("add_offset", dataset.offsets[0] if dataset.offsets else None)
    if scale != 1.0 or offset != 0.0:
        values *= np.float32(scale)
        values += np.float32(offset)
    with np.errstate(invalid="ignore"):
        outside = (values < layout.valid_min) | (values > layout.valid_max)
    if outside.sum() > 0.5 * np.isfinite(values).sum():  # not a stray pixel: the packing
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        raise InputError(
            path,
            f"{PRODUCT} values {low:.4g}..{high:.4g} are mostly outside "
            f"{layout.valid_min:g}..{layout.valid_max:g} {layout.units}",
            "percent or unscaled integers? set layouts.glass_modis (scale_factor, nodata)",
        )
    values[outside] = np.nan
    return values


def cell_area_m2(window: Window) -> np.ndarray:
    """(rows, 1) area (m2) of the window's 0.05 degree cells on the sinusoidal grid's sphere:
    the projection is equal-area, so a pixel's projected area is its area there too."""
    north = np.deg2rad(90.0 - STEP_DEG * np.arange(window.row_start, window.row_stop))
    south = np.deg2rad(90.0 - STEP_DEG * np.arange(window.row_start + 1, window.row_stop + 1))
    area = SPHERE_RADIUS_M**2 * np.deg2rad(STEP_DEG) * (np.sin(north) - np.sin(south))
    return area[:, None]


def glass_modis_on_grid(
    paths: Sequence[str | Path],
    window: Window,
    min_valid_fraction: float,
    layout: GeoTiffLayout = GLASS_MODIS,
) -> tuple[np.ndarray, np.ndarray]:
    """One day of GLASS-MODIS (one or several sinusoidal tiles) on a 0.05 degree window.

    Returns (area-weighted mean of the valid 1 km pixels, fraction of the cell's area that
    valid pixels cover); the mean is NaN where that fraction is below ``min_valid_fraction``
    or zero. Each file is warped with GDAL's ``average``: the values (nodata left out: exactly
    ``gdalwarp -r average``) and the 0/1 validity (its valid fraction). Where
    a day comes as several tiles, cells on a seam combine the tiles' means weighted by their
    valid areas (GDAL's overlap-weighted ``sum`` of the validity, over the cell's area on the
    sinusoidal sphere, which the projection keeps).
    """
    paths = [Path(p) for p in paths]
    tiles = len(paths) > 1
    mean_area = np.zeros(window.shape, dtype=np.float64)
    valid_area = np.zeros(window.shape, dtype=np.float64)
    single_mean = np.full(window.shape, np.nan, dtype=np.float32)
    single_fraction = np.zeros(window.shape, dtype=np.float32)
    met = False  # whether any file's footprint meets the window
    for path in paths:
        with open_tile(path) as dataset:
            for start in range(0, window.shape[0], STRIPE_ROWS):
                stripe = Window(
                    window.row_start + start,
                    min(window.row_stop, window.row_start + start + STRIPE_ROWS),
                    window.col_start,
                    window.col_stop,
                )
                source_window = _source_window(dataset, stripe.bounds())
                if source_window is None:
                    continue
                met = True
                values = _read_values(dataset, source_window, path, layout)
                transform = dataset.window_transform(source_window)
                valid = np.isfinite(values)
                # two single-band warps: GDAL's multi-band warp masks a pixel of every band where
                # one band is nodata, which would drop the validity band's zeros
                mean = warp_average(values, transform, dataset.crs, stripe)
                fraction = warp_average(valid.astype(np.float32), transform, dataset.crs, stripe)
                rows = slice(start, start + stripe.shape[0])
                if not tiles:
                    single_mean[rows], single_fraction[rows] = mean, np.nan_to_num(fraction)
                    continue
                area = warp_average(
                    valid.astype(np.float32), transform, dataset.crs, stripe, -1.0, Resampling.sum
                )
                area = np.nan_to_num(area) * abs(transform.a * transform.e)
                mean_area[rows] += np.where(np.isfinite(mean), mean * area, 0.0)
                valid_area[rows] += np.where(np.isfinite(mean), area, 0.0)
    if paths and not met:
        west, south, east, north = window.bounds()
        raise InputError(
            paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more tiles)",
            f"{PRODUCT} lies off the region ({west:g}..{east:g} E, {south:g}..{north:g} N): "
            "no pixel of the day's file(s) falls in it",
            "check the files' georeferencing (GeoTIFF transform and CRS) and the input pattern",
        )
    if tiles:
        with np.errstate(invalid="ignore", divide="ignore"):
            single_mean = (mean_area / valid_area).astype(np.float32)
        single_fraction = np.clip(valid_area / cell_area_m2(window), 0.0, 1.0).astype(np.float32)
    keep = np.isfinite(single_mean) & (single_fraction > 0)
    keep &= single_fraction >= min_valid_fraction - 1e-6
    return np.where(keep, single_mean, np.nan).astype(np.float32), single_fraction
