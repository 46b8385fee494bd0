"""Readers of the GeoTIFF inputs: MERIT DEM tiles and SoilGrids 2.0 texture.

Both return ``xarray.DataArray`` objects in the raster's own CRS (rioxarray), nodata as NaN;
regridding to the 0.05 degree grid is the stacks stage's business.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import RasterioIOError
from rasterio.transform import from_origin

from avhrrsm.io.errors import InputError, require_file
from avhrrsm.io.paths import walk_files

MERIT_TILE = re.compile(r"^(?P<ns>[ns])(?P<lat>\d{2})(?P<ew>[ew])(?P<lon>\d{3})_dem\.tif$")
MERIT_TILE_DEG = 5
SOIL_FRACTIONS = ("sand", "silt", "clay")


def _open_raster(path: str | Path, product: str) -> xr.DataArray:
    path = require_file(path, product)
    try:
        array = xr.open_dataarray(path, engine="rasterio", mask_and_scale=True)
        return array.load().squeeze("band", drop=True)
    except (RasterioIOError, OSError, ValueError) as err:
        raise InputError(path, f"not a readable {product} GeoTIFF ({err})") from err


def merit_tile_name(south: int, west: int) -> str:
    """MERIT tile name from its south-west corner: (40, -5) -> 'n40w005'."""
    return f"{'n' if south >= 0 else 's'}{abs(south):02d}{'e' if west >= 0 else 'w'}{abs(west):03d}"


def merit_tile_index(folder: str | Path) -> dict[str, Path]:
    """Tile name -> file for every MERIT tile under ``folder``, sub-folders included: the
    30 degree tars unpack into folders such as ``dem_tif_n30e000/n40e005_dem.tif``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            folder, "MERIT DEM folder not found", "check inputs.merit_dem in config.yaml"
        )
    index: dict[str, Path] = {}
    for path in walk_files(folder):
        if not path.name.endswith("_dem.tif"):
            continue
        match = MERIT_TILE.match(path.name)
        if not match:
            continue
        name = path.name[: -len("_dem.tif")]
        if name in index:
            raise InputError(
                path, f"MERIT tile {name} is present twice", f"the other copy is {index[name]}"
            )
        index[name] = path
    return index


def merit_tiles_for_bounds(
    folder: str | Path, bounds: Sequence[float]
) -> tuple[list[Path], list[str]]:
    """(tile files present, tile names absent) covering (lon_min, lat_min, lon_max, lat_max).

    MERIT has no file for a tile that is all sea, so absent tiles are returned, not raised;
    the caller treats them as sea and logs them.
    """
    index = merit_tile_index(folder)
    lon_min, lat_min, lon_max, lat_max = bounds
    present, absent = [], []
    for south in range(
        MERIT_TILE_DEG * math.floor(lat_min / MERIT_TILE_DEG), math.ceil(lat_max), MERIT_TILE_DEG
    ):
        for west in range(
            MERIT_TILE_DEG * math.floor(lon_min / MERIT_TILE_DEG),
            math.ceil(lon_max),
            MERIT_TILE_DEG,
        ):
            name = merit_tile_name(south, west)
            if name in index:
                present.append(index[name])
            else:
                absent.append(name)
    return present, absent


def merit_package_name(south: int, west: int) -> str:
    """The 30 degree package (tar and folder) a tile belongs to: (40, -5) -> 'dem_tif_n30w030'."""
    return "dem_tif_" + merit_tile_name(30 * math.floor(south / 30), 30 * math.floor(west / 30))


def check_merit_name(path: Path) -> None:
    if not MERIT_TILE.match(path.name):
        raise InputError(path, "not a MERIT DEM tile name", "expected e.g. n45e005_dem.tif")


def check_merit_crs(path: Path, crs: rasterio.crs.CRS | None) -> None:
    """MERIT tiles are geographic (EPSG:4326): no CRS or a projected one is an error."""
    if crs is None:
        raise InputError(path, "MERIT DEM tile has no CRS", "expected geographic EPSG:4326")
    if not crs.is_geographic:
        raise InputError(
            path, f"MERIT DEM tile is in a projected CRS ({crs})", "expected geographic EPSG:4326"
        )


def check_soilgrids_grams(values: np.ndarray, path: Path, fraction: str) -> None:
    """SoilGrids stores g/kg: values outside 0..1000, or all <= 100 (percent), are errors."""
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return
    if valid.min() < 0 or valid.max() > 1000:
        raise InputError(
            path,
            f"SoilGrids {fraction} values {valid.min():.4g}..{valid.max():.4g} outside 0..1000 g/kg",
        )
    if valid.max() <= 100 and valid.size > 100:
        raise InputError(
            path,
            f"SoilGrids {fraction} values are all <= 100: they look like percent, not g/kg",
            "SoilGrids 2.0 stores g/kg; convert the file or use the original download",
        )


def read_merit_tile(path: str | Path) -> xr.DataArray:
    """One MERIT DEM tile: elevation (m) on (y, x) in EPSG:4326, sea (nodata) as NaN."""
    path = Path(path)
    check_merit_name(path)
    array = _open_raster(path, "MERIT DEM")
    check_merit_crs(path, array.rio.crs)
    array = array.where(array > -1000.0)  # -9999 sea if the nodata tag was lost
    array.name = "elevation"
    array.attrs.update({"units": "m", "long_name": "MERIT DEM elevation", "source_file": str(path)})
    return array


def read_soilgrids(path: str | Path, fraction: str) -> xr.DataArray:
    """SoilGrids 2.0 ``{fraction}_0-5cm_mean`` as a mass fraction (0..1), in its own CRS.

    SoilGrids stores g/kg as integers; a file whose values look like percent is rejected.
    """
    if fraction not in SOIL_FRACTIONS:
        raise ValueError(f"unknown SoilGrids fraction {fraction!r}; one of {SOIL_FRACTIONS}")
    path = Path(path)
    array = _open_raster(path, "SoilGrids")
    if array.rio.crs is None:
        raise InputError(
            path,
            "SoilGrids raster has no CRS",
            "expected Interrupted Goode Homolosine (ESRI:54052)",
        )
    if not np.isfinite(array.values).any():
        raise InputError(path, "SoilGrids raster has no valid pixel")
    check_soilgrids_grams(array.values, path, fraction)
    fraction_array = (array / 1000.0).astype(np.float32)
    fraction_array.name = f"{fraction}_fraction"
    fraction_array.attrs = {
        "units": "1",
        "long_name": f"{fraction} mass fraction, 0-5 cm",
        "source_file": str(path),
    }
    fraction_array.rio.write_crs(array.rio.crs, inplace=True)
    return fraction_array


def write_geotiff(
    path: str | Path,
    data: np.ndarray,
    west: float,
    north: float,
    step: float,
    nodata: float,
    crs: str | None = "EPSG:4326",
    tags: dict[str, str] | None = None,
    **creation: object,
) -> Path:
    """Write one north-up band (pixel size ``step`` in the CRS's units) with its nodata value."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": data.shape[0],
        "width": data.shape[1],
        "count": 1,
        "dtype": str(data.dtype),
        "crs": rasterio.crs.CRS.from_string(crs) if crs else None,
        "transform": from_origin(west, north, step, step),
        "nodata": nodata,
        **creation,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if tags:
            dst.update_tags(**tags)
    return path
