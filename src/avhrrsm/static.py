"""Static layers on the 0.05 degree grid: land mask, elevation, slope, aspect, soil texture.

- Elevation: mean of the MERIT DEM pixels in each 0.05 degree cell (block reduction when the
  DEM pixel divides 0.05 degrees, GDAL area-weighted warp otherwise); the land mask is
  "at least half of the cell's DEM pixels are land".
- Slope (degrees) is computed on the fine DEM, with pixel sizes in metres that shrink with
  latitude, then averaged per cell.
- Aspect is aggregated as its **sin/cos components** (compass direction of steepest descent,
  clockwise from north; flat pixels contribute 0): ``aspect_sin`` and ``aspect_cos`` are the
  cell means, and the circular-mean aspect is ``atan2(aspect_sin, aspect_cos)``. Components
  avoid the 359/1 degree wrap and keep a measure of how consistent the aspect is.
- Sand, silt and clay (SoilGrids g/kg, Homolosine) are warped with area-weighted averaging and
  given as **fractions** rescaled so that the three sum to 1. Land cells without soil data get
  the nearest valid value and ``soil_fill_flag`` = 1.

Each tile of the region is computed separately, so memory does not grow with the region, and
the tiles spread over the job's cores (:mod:`avhrrsm.parallel`): each worker writes its own
tiles' chunks of the store, so one worker and many give the same bytes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from pyproj import Transformer
from rasterio.windows import from_bounds
from scipy import ndimage

from avhrrsm.atomic import atomic_path
from avhrrsm.grid import STEP_DEG, Window, chunk_groups, region_window, tiles
from avhrrsm.io.errors import InputError, reading
from avhrrsm.io.rasters import (
    SOIL_FRACTIONS,
    check_merit_crs,
    check_merit_name,
    check_soilgrids_grams,
    merit_tiles_for_bounds,
)
from avhrrsm.logs import progress
from avhrrsm.parallel import map_shared
from avhrrsm.regrid import block_reduce_mean, warp_average
from avhrrsm.store import create_store, write_region
from avhrrsm.variables import (
    STATIC_ATTRS,
)

LOGGER = logging.getLogger(__name__)
METRES_PER_DEGREE = 111_195.0


def read_dem_mosaic(
    folder: str | Path, window: Window, halo_pixels: int = 1
) -> tuple[np.ndarray, float, float, float]:
    """The MERIT DEM over a window widened by ``halo_pixels`` DEM pixels: (elevation, step, west, north).

    Missing tiles are sea (MERIT ships none for all-sea tiles) and are logged.
    """
    west, south, east, north = window.bounds()
    search = 0.01  # wider than any DEM pixel, so tiles touched by the halo are found
    present, absent = merit_tiles_for_bounds(
        folder, (west - search, south - search, east + search, north + search)
    )
    if not present:
        raise InputError(
            folder,
            f"no MERIT DEM tile covers lon {west:.2f}..{east:.2f}, lat {south:.2f}..{north:.2f}",
        )
    if absent:
        LOGGER.info("MERIT tiles absent (treated as sea): %d (%s)", len(absent), ", ".join(absent))
    with rasterio.open(present[0]) as first:
        step = abs(first.transform.a)
    halo = halo_pixels * step
    west, south, east, north = west - halo, south - halo, east + halo, north + halo
    n_rows = int(round((north - south) / step))
    n_cols = int(round((east - west) / step))
    mosaic = np.full((n_rows, n_cols), np.nan, dtype=np.float32)
    for path in present:
        check_merit_name(path)
        try:
            with rasterio.open(path) as src:
                check_merit_crs(path, src.crs)
                if not math.isclose(abs(src.transform.a), step, rel_tol=1e-9):
                    raise InputError(
                        path, f"pixel size {abs(src.transform.a)} differs from other tiles ({step})"
                    )
                left, bottom, right, top = src.bounds
                ix0, ix1 = max(west, left), min(east, right)
                iy0, iy1 = max(south, bottom), min(north, top)
                if ix0 >= ix1 or iy0 >= iy1:
                    continue
                read_window = (
                    from_bounds(ix0, iy0, ix1, iy1, src.transform).round_offsets().round_lengths()
                )
                data = (
                    src.read(1, window=read_window, masked=True)
                    .astype(np.float32)
                    .filled(np.nan)
                    .astype(np.float32)
                )
        except rasterio.errors.RasterioIOError as err:
            raise InputError(path, f"not a readable MERIT DEM GeoTIFF ({err})") from err
        data[data < -1000] = np.nan
        row0 = int(round((north - iy1) / step))
        col0 = int(round((ix0 - west) / step))
        mosaic[row0 : row0 + data.shape[0], col0 : col0 + data.shape[1]] = data
    return mosaic, step, west, north


def slope_aspect(
    elevation: np.ndarray, lat: np.ndarray, step_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slope degrees, sin aspect, cos aspect) of a north-up geographic DEM.

    ``lat`` is the latitude of each row. Aspect is the compass direction of steepest descent;
    flat pixels have sin = cos = 0. NaN (sea) pixels give NaN.
    """
    filled = np.where(
        np.isnan(elevation),
        np.nanmean(elevation) if np.isfinite(elevation).any() else 0.0,
        elevation,
    )
    dz_drow, dz_dcol = np.gradient(filled.astype(np.float64))
    dy = step_deg * METRES_PER_DEGREE
    dx = step_deg * METRES_PER_DEGREE * np.cos(np.deg2rad(lat))[:, None]
    gradient_east = dz_dcol / dx
    gradient_north = -dz_drow / dy  # rows run north to south
    magnitude = np.hypot(gradient_east, gradient_north)
    slope = np.degrees(np.arctan(magnitude))
    with np.errstate(invalid="ignore", divide="ignore"):
        sin_aspect = np.where(magnitude > 0, -gradient_east / magnitude, 0.0)
        cos_aspect = np.where(magnitude > 0, -gradient_north / magnitude, 0.0)
    sea = np.isnan(elevation)
    return tuple(
        np.where(sea, np.nan, a).astype(np.float32) for a in (slope, sin_aspect, cos_aspect)
    )


def terrain_layers(folder: str | Path, window: Window) -> dict[str, np.ndarray]:
    """Land fraction and mask, elevation, slope, aspect components of one window."""
    mosaic, step, west, north = read_dem_mosaic(folder, window, halo_pixels=1)
    lat = north - step * (np.arange(mosaic.shape[0]) + 0.5)
    slope, sin_a, cos_a = slope_aspect(mosaic, lat, step)
    core = (slice(1, -1), slice(1, -1))  # drop the one-pixel halo used by the gradient
    layers = {
        "elevation": mosaic[core],
        "slope": slope[core],
        "aspect_sin": sin_a[core],
        "aspect_cos": cos_a[core],
    }
    land = np.isfinite(mosaic[core]).astype(np.float32)
    factor = STEP_DEG / step
    out: dict[str, np.ndarray] = {}
    if math.isclose(factor, round(factor), rel_tol=1e-9):
        factor = int(round(factor))
        for name, values in layers.items():
            out[name], _ = block_reduce_mean(values, factor)
        out["land_fraction"], _ = block_reduce_mean(land, factor)
    else:
        from affine import Affine
        from rasterio.crs import CRS

        transform = Affine(step, 0.0, west + step, 0.0, -step, north - step)
        for name, values in {**layers, "land_fraction": land}.items():
            out[name] = warp_average(values, transform, CRS.from_epsg(4326), window)
    mask = out["land_fraction"] >= 0.5
    for name in layers:
        out[name] = np.where(mask, out[name], np.nan).astype(np.float32)
    out["land_mask"] = mask.astype(np.int8)
    return out


def soil_layers(pattern: str, window: Window, land: np.ndarray) -> dict[str, np.ndarray]:
    """Sand, silt, clay fractions (summing to 1 on land) and the soil fill flag of one window."""
    raw = {}
    for fraction in SOIL_FRACTIONS:
        path = Path(pattern.format(fraction=fraction))
        raw[fraction] = _warp_soilgrids(path, fraction, window)
    total = raw["sand"] + raw["silt"] + raw["clay"]
    valid = np.isfinite(total) & (total > 0)
    out = {}
    for fraction in SOIL_FRACTIONS:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{fraction}_fraction"] = np.where(valid, raw[fraction] / total, np.nan)
    missing = (land == 1) & ~valid
    flag = np.zeros(window.shape, dtype=np.int8)
    if missing.any():
        if not valid.any():
            raise InputError(pattern, "SoilGrids has no valid pixel over the window's land")
        _, (rows, cols) = ndimage.distance_transform_edt(~valid, return_indices=True)
        for key in out:
            out[key] = np.where(missing, out[key][rows, cols], out[key])
        flag[missing] = 1
        share = float(missing.sum()) / max(1, int((land == 1).sum()))
        (LOGGER.warning if share > 0.01 else LOGGER.info)(
            "soil texture filled from the nearest valid cell in %d land cells (%.1f%% of land)",
            int(missing.sum()),
            100 * share,
        )
    for key in out:
        out[key] = np.where(land == 1, out[key], np.nan).astype(np.float32)
    out["soil_fill_flag"] = flag
    return out


def _warp_soilgrids(path: Path, fraction: str, window: Window) -> np.ndarray:
    """Area-weighted average of one SoilGrids raster (g/kg) onto the window, as a fraction."""
    if not path.is_file():
        raise InputError(path, "SoilGrids file not found", "check inputs.soilgrids in config.yaml")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise InputError(path, f"not a readable SoilGrids GeoTIFF ({err})") from err
    with src:
        if src.crs is None:
            raise InputError(
                path, "SoilGrids raster has no CRS", "expected Homolosine (ESRI:54052)"
            )
        west, south, east, north = window.bounds()
        to_src = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
        edge = np.linspace(0.0, 1.0, 41)
        lons = np.concatenate(
            [
                west + (east - west) * edge,
                np.full(41, east),
                west + (east - west) * edge,
                np.full(41, west),
            ]
        )
        lats = np.concatenate(
            [
                np.full(41, south),
                south + (north - south) * edge,
                np.full(41, north),
                south + (north - south) * edge,
            ]
        )
        xs, ys = to_src.transform(lons, lats)
        finite = np.isfinite(xs) & np.isfinite(ys)  # Homolosine's interruptions give inf
        left, bottom, right, top = src.bounds
        tolerance = abs(src.transform.a)
        outside = finite & (
            (xs < left - tolerance)
            | (xs > right + tolerance)
            | (ys < bottom - tolerance)
            | (ys > top + tolerance)
        )
        if outside.any():
            raise InputError(
                path,
                f"SoilGrids raster covers {left:.0f}..{right:.0f} x {bottom:.0f}..{top:.0f} "
                f"(its CRS); {int(outside.sum())} of {int(finite.sum())} points on the region's "
                f"edge (lon {west:g}..{east:g}, lat {south:g}..{north:g}) lie outside it",
                "download SoilGrids for an area that contains the region (or the globe)",
            )
        pad = 2 * abs(src.transform.a)
        read_window = from_bounds(
            min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad, src.transform
        )
        read_window = read_window.round_offsets().round_lengths()
        data = (
            src.read(1, window=read_window, masked=True, boundless=True)
            .astype(np.float32)
            .filled(np.nan)
        )
        transform = src.window_transform(read_window)
        crs = src.crs
    check_soilgrids_grams(data, path, fraction)
    return warp_average(data / 1000.0, transform, crs, window)


def static_dataset(
    merit_folder: str | Path, soilgrids_pattern: str, window: Window
) -> dict[str, np.ndarray]:
    """Every static layer of one window, as plain arrays keyed by variable name."""
    terrain = terrain_layers(merit_folder, window)
    soil = soil_layers(soilgrids_pattern, window, terrain["land_mask"])
    return {**terrain, **soil}


def build_static_layers(
    out_path: str | Path,
    merit_folder: str | Path,
    soilgrids_pattern: str,
    region: Mapping[str, float],
    tile_deg: float,
    global_attrs: Mapping[str, str],
    workers: int = 1,
) -> None:
    """Write the static layers of ``region`` as a CF Zarr store, its tiles on ``workers``
    processes (each tile written into its own chunks as soon as it is computed)."""
    window = region_window(region)
    variables = {
        name: (
            ("lat", "lon"),
            np.int8 if name in ("land_mask", "soil_fill_flag") else np.float32,
            attrs,
        )
        for name, attrs in STATIC_ATTRS.items()
    }
    tile_px = int(round(tile_deg / STEP_DEG))
    tile_list = tiles(window, tile_deg)
    attrs = {
        "title": "avhrrsm static layers on the global 0.05 degree grid",
        "aspect_aggregation": "mean of sin/cos components of the fine-DEM aspect",
        "soil_texture_units": "mass fractions rescaled to sum to 1",
        **global_attrs,
    }
    with atomic_path(out_path) as tmp:
        create_store(tmp, window, variables, {"lat": tile_px, "lon": tile_px}, attrs)
        shared = _StaticJob(Path(merit_folder), soilgrids_pattern, window, Path(tmp))
        # a piece: the tiles that share chunks (one where the region lies on the tiling)
        groups = chunk_groups(window, tile_list, tile_px)
        n_land = 0
        for counts in progress(
            map_shared(_write_static_tiles, shared, groups, workers),
            len(groups),
            "static tile groups",
            LOGGER,
        ):
            for tile_id, land_cells in counts:
                n_land += land_cells
                LOGGER.info("tile %s: %d land cells", tile_id, land_cells)
    LOGGER.info(
        "static layers: %d tiles, %d land cells, written to %s", len(tile_list), n_land, out_path
    )


@dataclass(frozen=True)
class _StaticJob:
    """What every tile of a static-layers job reads and where it writes."""

    merit_folder: Path
    soilgrids_pattern: str
    window: Window
    store: Path


def _write_static_tiles(job: _StaticJob, group: list[tuple[str, Window]]) -> list[tuple[str, int]]:
    """Compute the layers of each tile of ``group`` and write them into the store; each
    tile's id and number of land cells."""
    counts = []
    for tile_id, tile in group:
        layers = static_dataset(job.merit_folder, job.soilgrids_pattern, tile)
        write_region(job.store, job.window, tile, layers, dict.fromkeys(layers, ("lat", "lon")))
        counts.append((tile_id, int(layers["land_mask"].sum())))
    return counts


def read_static_layers(
    path: str | Path,
    window: Window,
    names: Sequence[str] = ("land_mask",),
    part: tuple[slice, slice] | None = None,
) -> dict[str, np.ndarray]:
    """The static layers ``names`` of a store written by :func:`build_static_layers`, checked to
    cover the region ``window``; ``land_mask`` as bool. ``part``: only these (rows, cols) of the
    region (a tile), read from the chunks that hold them. Errors name the store."""
    unknown = [name for name in names if name not in STATIC_ATTRS]
    if unknown:
        raise ValueError(f"no static layers named {unknown}; known: {list(STATIC_ATTRS)}")
    try:
        store = xr.open_zarr(path, chunks=None)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(path, f"cannot be opened as static layers ({err})", "rebuild it") from err
    with store:
        missing = [name for name in names if name not in store]
        if missing:
            raise InputError(path, f"static layers lack {missing}", "rebuild the static layers")
        shape = (store.sizes["lat"], store.sizes["lon"])
        if shape != window.shape:
            raise InputError(
                path,
                f"static layers have shape {shape}, the region needs {window.shape}",
                "rebuild the static layers for this region",
            )
        with reading(path, what="static layers store"):
            rows, cols = part or (slice(None), slice(None))
            layers = {name: store[name][rows, cols].values for name in names}
    if "land_mask" in layers:
        layers["land_mask"] = layers["land_mask"].astype(bool)
    return layers
