"""Static rasters: MERIT DEM tiles and SoilGrids sand/silt/clay (Homolosine GeoTIFF tiles under a
VRT), read back by :mod:`avhrrsm.io.rasters`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import numpy as np
from pyproj import CRS, Transformer
from scipy.interpolate import RegularGridInterpolator

from avhrrsm.io.rasters import merit_package_name, write_geotiff
from avhrrsm.synth.base import TIFF_CREATION, World, format_path

SOILGRIDS_CRS = "+proj=igh +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


def write_merit_dem(world: World, years: Collection[int] | None = None) -> int:
    """5 x 5 degree GeoTIFF tiles named like MERIT's (n40w005_dem.tif), sea as -9999, in the
    folders its 30 degree tars unpack into (dem_tif_n30w030/)."""
    folder = Path(world.patterns["merit_dem"])
    folder.mkdir(parents=True, exist_ok=True)
    dem = world.static.dem
    n_files = 0
    for name, south, west in dem.tile_names():
        tile = dem.tile_array(south, west)
        data = np.where(np.isnan(tile), -9999.0, tile).astype(np.float32)
        write_geotiff(
            folder / merit_package_name(south, west) / f"{name}_dem.tif",
            data,
            west,
            south + 5,
            dem.step_deg,
            -9999.0,
            tags={"AREA_OR_POINT": "Area", "source": "avhrrsm synthetic world (MERIT DEM layout)"},
            **TIFF_CREATION,
            predictor=3,
        )
        n_files += 1
    return n_files


SOILGRIDS_TAGS = {
    "units": "g/kg",
    "depth": "0-5cm",
    "statistic": "mean",
    "source": "avhrrsm synthetic world (SoilGrids 2.0 layout)",
}


SOILGRIDS_TILES = (2, 2)  # the synthetic region's raster is cut into 2 x 2 tiles under the VRT


def write_soilgrids_vrt(
    path: Path, data: np.ndarray, west: float, north: float, step: float
) -> int:
    """SoilGrids as ISRIC serves it: a VRT over GeoTIFF tiles in a folder named like the layer
    (``sand_0-5cm_mean/tileSG-001-001/tileSG-001-001_1-1.tif``). Returns the files written."""
    layer = path.stem
    height, width = data.shape
    row_edges = np.linspace(0, height, SOILGRIDS_TILES[0] + 1).astype(int)
    col_edges = np.linspace(0, width, SOILGRIDS_TILES[1] + 1).astype(int)
    sources = []
    for i in range(SOILGRIDS_TILES[0]):
        for j in range(SOILGRIDS_TILES[1]):
            r0, r1, c0, c1 = row_edges[i], row_edges[i + 1], col_edges[j], col_edges[j + 1]
            tile = f"tileSG-001-001/tileSG-001-001_{i + 1}-{j + 1}.tif"
            write_geotiff(
                path.parent / layer / tile,
                np.ascontiguousarray(data[r0:r1, c0:c1]),
                west + c0 * step,
                north - r0 * step,
                step,
                -32768,
                crs=SOILGRIDS_CRS,
                tags=SOILGRIDS_TAGS,
                **TIFF_CREATION,
            )
            sources.append(
                f"""    <ComplexSource>
      <SourceFilename relativeToVRT="1">{layer}/{tile}</SourceFilename>
      <SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{c1 - c0}" ySize="{r1 - r0}" />
      <DstRect xOff="{c0}" yOff="{r0}" xSize="{c1 - c0}" ySize="{r1 - r0}" />
      <NODATA>-32768</NODATA>
    </ComplexSource>"""
            )
    wkt = CRS.from_proj4(SOILGRIDS_CRS).to_wkt()
    vrt = f"""<VRTDataset rasterXSize="{width}" rasterYSize="{height}">
  <SRS dataAxisToSRSAxisMapping="1,2">{xml_escape(wkt)}</SRS>
  <GeoTransform>{west!r}, {step!r}, 0.0, {north!r}, 0.0, {-step!r}</GeoTransform>
  <VRTRasterBand dataType="Int16" band="1">
    <NoDataValue>-32768</NoDataValue>
{chr(10).join(sources)}
  </VRTRasterBand>
</VRTDataset>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vrt)
    return len(sources) + 1


def write_soilgrids(world: World, years: Collection[int] | None = None) -> int:
    """sand/silt/clay 0-5 cm mean in g/kg (int16, nodata -32768) on the Homolosine projection."""
    static = world.static
    resolution = float(world.settings["soilgrids_resolution_m"])
    west, south, east, north = static.region.bounds()
    pad = 0.25
    to_igh = Transformer.from_crs("EPSG:4326", SOILGRIDS_CRS, always_xy=True)
    edge_lon = np.concatenate(
        [
            np.linspace(west - pad, east + pad, 50),
            np.full(50, east + pad),
            np.linspace(west - pad, east + pad, 50),
            np.full(50, west - pad),
        ]
    )
    edge_lat = np.concatenate(
        [
            np.full(50, south - pad),
            np.linspace(south - pad, north + pad, 50),
            np.full(50, north + pad),
            np.linspace(south - pad, north + pad, 50),
        ]
    )
    xs, ys = to_igh.transform(edge_lon, edge_lat)
    x0 = math.floor(min(xs) / resolution) * resolution
    x1 = math.ceil(max(xs) / resolution) * resolution
    y0 = math.floor(min(ys) / resolution) * resolution
    y1 = math.ceil(max(ys) / resolution) * resolution
    width, height = int(round((x1 - x0) / resolution)), int(round((y1 - y0) / resolution))
    xc = x0 + resolution * (np.arange(width) + 0.5)
    yc = y1 - resolution * (np.arange(height) + 0.5)
    xx, yy = np.meshgrid(xc, yc)
    to_geo = Transformer.from_crs(SOILGRIDS_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(xx, yy)
    # Land or sea from the fine DEM (nearest pixel), texture by bilinear interpolation.
    dem = static.dem
    drow = np.clip(
        ((dem.lat_north - lat) / dem.step_deg).astype(int), 0, dem.elevation.shape[0] - 1
    )
    dcol = np.clip(((lon - dem.lon_west) / dem.step_deg).astype(int), 0, dem.elevation.shape[1] - 1)
    sea = np.isnan(dem.elevation[drow, dcol])
    grid_lat = static.window.lat()[::-1]
    grid_lon = static.window.lon()
    points = np.column_stack([lat.ravel(), lon.ravel()])
    rng = world.rng("avhrr", 999)
    folder_pattern = world.patterns["soilgrids"]
    n_files = 0
    for name in ("sand", "silt", "clay"):
        layer = getattr(static, name)[::-1]
        interp = RegularGridInterpolator(
            (grid_lat, grid_lon), layer, bounds_error=False, fill_value=None
        )
        grams = interp(points).reshape(lat.shape) * 1000.0 + rng.normal(0, 8.0, lat.shape)
        data = np.where(sea, -32768, np.clip(np.round(grams), 0, 1000)).astype(np.int16)
        path = format_path(folder_pattern, fraction=name)
        if path.suffix.lower() == ".vrt":
            n_files += write_soilgrids_vrt(path, data, x0, y1, resolution)
            continue
        write_geotiff(
            path,
            data,
            x0,
            y1,
            resolution,
            -32768,
            crs=SOILGRIDS_CRS,
            tags=SOILGRIDS_TAGS,
            **TIFF_CREATION,
        )
        n_files += 1
    return n_files
