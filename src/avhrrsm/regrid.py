"""Putting inputs on the 0.05 degree grid: block reductions, NaN-aware bilinear, warping.

- Aggregation by an integer factor on aligned grids (MERIT 90 m -> 5 km, GLASS-MODIS
  1 km -> 5 km) is a block reduction (reshape + nanmean), not a general warp.
- ERA5-Land 0.1 degree -> 0.05 degree is bilinear: ERA5-Land is a smooth model field, and every
  0.05 degree cell lies inside exactly one 0.1 degree cell, so a conservative remap would only
  copy each coarse value into 2 x 2 blocks. Neighbours that are sea (NaN) are left out and the
  weights of the others renormalised, so coastal land pixels keep a value.
- Anything else (SoilGrids in Homolosine) goes through GDAL's warper (rasterio.warp) with
  area-weighted averaging.
"""

from __future__ import annotations

import warnings

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject

from avhrrsm.grid import STEP_DEG, Window


def block_reduce_mean(
    values: np.ndarray, factor: int, min_valid_fraction: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over non-overlapping ``factor`` x ``factor`` blocks of the last two axes.

    NaNs are ignored; a block whose fraction of valid pixels is below ``min_valid_fraction`` (or
    that has none) is NaN. Returns (mean, valid fraction), both float32.
    """
    *lead, ny, nx = values.shape
    if ny % factor or nx % factor:
        raise ValueError(
            f"array of shape {values.shape} is not a whole number of {factor}x{factor} blocks"
        )
    # Sum the block's rows first (long contiguous runs, in the input's precision: at most
    # `factor` terms), then the columns in float64; count valid pixels in uint8/uint16. About
    # twice as fast as one float64 reduction over both small axes.
    valid = ~np.isnan(values)
    filled = np.where(valid, values, values.dtype.type(0))
    row_total = filled.reshape(*lead, ny // factor, factor, nx).sum(axis=-2)
    count_dtype = np.uint8 if factor <= 255 else np.uint16
    row_count = (
        valid.view(np.uint8)
        .reshape(*lead, ny // factor, factor, nx)
        .sum(axis=-2, dtype=count_dtype)
    )
    total = row_total.reshape(*lead, ny // factor, nx // factor, factor).sum(
        axis=-1, dtype=np.float64
    )
    count = row_count.reshape(*lead, ny // factor, nx // factor, factor).sum(
        axis=-1, dtype=np.int32
    )
    fraction = count / float(factor * factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    keep = (count > 0) & (fraction >= min_valid_fraction)
    return np.where(keep, mean, np.nan).astype(np.float32), fraction.astype(np.float32)


def outside_source(
    src_lat: np.ndarray, src_lon: np.ndarray, dst_lat: np.ndarray, dst_lon: np.ndarray
) -> tuple[int, int]:
    """How many target latitudes and longitudes lie outside a regular source grid (where
    :func:`bilinear_to_points` gives NaN whatever the data)."""
    lat_index = _fractional_index(src_lat, dst_lat)
    lon_index = _fractional_index(src_lon, dst_lon)
    tolerance = 1e-6
    lat_out = (lat_index < -tolerance) | (lat_index > len(src_lat) - 1 + tolerance)
    lon_out = (lon_index < -tolerance) | (lon_index > len(src_lon) - 1 + tolerance)
    return int(lat_out.sum()), int(lon_out.sum())


def bilinear_to_points(
    values: np.ndarray,
    src_lat: np.ndarray,
    src_lon: np.ndarray,
    dst_lat: np.ndarray,
    dst_lon: np.ndarray,
) -> np.ndarray:
    """NaN-aware bilinear interpolation of (..., lat, lon) fields onto a lat/lon grid.

    ``src_lat``/``src_lon`` must be regular and monotonic (either direction). Target points
    outside the source grid are NaN. NaN neighbours get no weight; the others are renormalised.
    """
    lat_index = _fractional_index(src_lat, dst_lat)
    lon_index = _fractional_index(src_lon, dst_lon)
    i0 = np.floor(lat_index).astype(int)
    j0 = np.floor(lon_index).astype(int)
    wi = (lat_index - i0)[:, None]
    wj = (lon_index - j0)[None, :]
    outside = ((lat_index < 0) | (lat_index > len(src_lat) - 1))[:, None] | (
        (lon_index < 0) | (lon_index > len(src_lon) - 1)
    )[None, :]
    i0 = np.clip(i0, 0, len(src_lat) - 1)
    j0 = np.clip(j0, 0, len(src_lon) - 1)
    i1 = np.clip(i0 + 1, 0, len(src_lat) - 1)
    j1 = np.clip(j0 + 1, 0, len(src_lon) - 1)
    total = np.zeros(values.shape[:-2] + (len(dst_lat), len(dst_lon)))
    weight = np.zeros_like(total)
    for rows, cols, w in (
        (i0, j0, (1 - wi) * (1 - wj)),
        (i0, j1, (1 - wi) * wj),
        (i1, j0, wi * (1 - wj)),
        (i1, j1, wi * wj),
    ):
        corner = values[..., rows[:, None], cols[None, :]]
        ok = np.isfinite(corner)
        total += np.where(ok, corner, 0.0) * w
        weight += ok * w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    out[..., outside] = np.nan
    out[weight < 1e-9] = np.nan
    return out.astype(np.float32)


def _fractional_index(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    step = (source[-1] - source[0]) / (len(source) - 1)
    return (target - source[0]) / step


def window_transform(window: Window) -> Affine:
    """The GDAL geotransform of a 0.05 degree grid window (pixel edges, north up)."""
    west, _, _, north = window.bounds()
    return Affine(STEP_DEG, 0.0, west, 0.0, -STEP_DEG, north)


def warp_average(
    source: np.ndarray,
    src_transform: Affine,
    src_crs: CRS,
    window: Window,
    nodata: float = np.nan,
    resampling: Resampling = Resampling.average,
) -> np.ndarray:
    """Area-weighted average of a raster in any CRS onto a 0.05 degree window (GDAL warper);
    ``Resampling.sum`` gives the overlap-weighted sum instead."""
    destination = np.full(window.shape, np.nan, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reproject(
            source=np.asarray(source, dtype=np.float32),
            destination=destination,
            src_transform=src_transform,
            src_crs=src_crs,
            src_nodata=nodata,
            dst_transform=window_transform(window),
            dst_crs=CRS.from_epsg(4326),
            dst_nodata=np.nan,
            resampling=resampling,
        )
    return destination
