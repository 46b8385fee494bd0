"""The training target: GLASS-MODIS soil moisture as daily 1 km sinusoidal GeoTIFFs (read back by
:mod:`avhrrsm.io.glass_modis`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

import numpy as np
from pyproj import Transformer

from avhrrsm.grid import STEP_DEG
from avhrrsm.io.rasters import write_geotiff
from avhrrsm.logs import progress
from avhrrsm.synth.base import TIFF_CREATION, World, real_file_name
from avhrrsm.synth.fields import gaussian_field
from avhrrsm.synth.world import StaticWorld
from avhrrsm.variables import GLASS_MODIS_YEARS

LOGGER = logging.getLogger(__name__)


MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"


MODIS_PIXEL_M = 926.625433055833  # the MODIS 1 km grid: 1200 pixels per 10 degree tile


MODIS_GRID_WEST_M = -20015109.354


MODIS_GRID_NORTH_M = 10007554.677


def _sinusoidal_grid(static: StaticWorld, margin_deg: float) -> tuple[float, float, int, int]:
    """(west, north, width, height) of the MODIS 1 km sinusoidal pixels that cover the region
    (plus a margin), aligned to the global MODIS grid."""
    west, south, east, north = static.region.bounds()
    to_sinu = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL, always_xy=True)
    lons = np.concatenate(
        [np.linspace(west, east, 40)] * 2 + [np.full(40, west), np.full(40, east)]
    )
    lats = np.concatenate(
        [np.full(40, south), np.full(40, north)] + [np.linspace(south, north, 40)] * 2
    )
    lons = lons + np.sign(lons - (west + east) / 2) * margin_deg
    lats = lats + np.sign(lats - (south + north) / 2) * margin_deg
    xs, ys = to_sinu.transform(lons, lats)
    col0 = math.floor((min(xs) - MODIS_GRID_WEST_M) / MODIS_PIXEL_M)
    col1 = math.ceil((max(xs) - MODIS_GRID_WEST_M) / MODIS_PIXEL_M)
    row0 = math.floor((MODIS_GRID_NORTH_M - max(ys)) / MODIS_PIXEL_M)
    row1 = math.ceil((MODIS_GRID_NORTH_M - min(ys)) / MODIS_PIXEL_M)
    x0 = MODIS_GRID_WEST_M + col0 * MODIS_PIXEL_M
    y0 = MODIS_GRID_NORTH_M - row0 * MODIS_PIXEL_M
    return x0, y0, col1 - col0, row1 - row0


# GLASS-MODIS SM is spatiotemporally continuous (Zhang et al. 2023, ESSD 15, 2055: an XGBoost
# model on gap-filled GLASS albedo, LST and LAI and on ERA5-Land): cloudy days have values too,
# made from gap-filled inputs and therefore noisier. Its error about the truth (m3 m-3):
GLASS_MODIS_NOISE = 0.012


GLASS_MODIS_CLOUDY_NOISE = 0.020


def write_glass_modis(world: World, years: Collection[int] | None = None) -> int:
    """Daily 1 km GeoTIFFs in the MODIS sinusoidal projection for 2000-2020 (float32 m3 m-3,
    nodata -9999): the truth plus the product's own noise (larger on the AVHRR cloudy days,
    where the real product's inputs are gap-filled), sub-pixel heterogeneity and scattered
    missing pixels (``synthetic.modis_gap_fraction``); continuous through clouds, as the real
    product is."""
    static, truth = world.static, world.truth
    rows, cols = static.region_slice()
    x0, y0, width, height = _sinusoidal_grid(static, 0.02)
    xc = x0 + MODIS_PIXEL_M * (np.arange(width) + 0.5)
    yc = y0 - MODIS_PIXEL_M * (np.arange(height) + 0.5)
    to_geo = Transformer.from_crs(MODIS_SINUSOIDAL, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(*np.meshgrid(xc, yc))
    # the 0.05 degree pixel of the region under each 1 km pixel; outside the region: no data
    west, south, east, north = static.region.bounds()
    r = np.floor((north - lat) / STEP_DEG).astype(int)
    c = np.floor((lon - west) / STEP_DEG).astype(int)
    inside = (r >= 0) & (r < static.region.shape[0]) & (c >= 0) & (c < static.region.shape[1])
    r, c = np.clip(r, 0, static.region.shape[0] - 1), np.clip(c, 0, static.region.shape[1] - 1)
    heterogeneity = 0.02 * gaussian_field((height, width), 2.0, world.rng("modis", 0))
    clouds = world.clouds[:, rows, cols]
    gap_fraction = float(world.settings["modis_gap_fraction"])
    sat = static.theta_sat[rows, cols][r, c]
    theta = truth.surface[:, rows, cols]
    pattern = world.patterns["glass_modis"]
    days = world.day_indices(years, GLASS_MODIS_YEARS[0], GLASS_MODIS_YEARS[-1])
    n_files = 0
    for t, day in progress(days, len(days), "GLASS-MODIS days", LOGGER):
        rng = world.rng("modis", day.toordinal())
        fine = theta[t][r, c]
        noise = np.where(clouds[t][r, c], GLASS_MODIS_CLOUDY_NOISE, GLASS_MODIS_NOISE)
        values = fine + heterogeneity * (fine / 0.3) + noise * rng.standard_normal(fine.shape)
        values = np.clip(values, 0.005, sat)
        random_gap = rng.random(fine.shape) < gap_fraction
        values = np.where(random_gap | np.isnan(fine) | ~inside, np.nan, values)
        data = np.where(np.isnan(values), -9999.0, np.round(values, 4)).astype(np.float32)
        path = real_file_name(pattern, "", day)
        write_geotiff(
            path,
            data,
            x0,
            y0,
            MODIS_PIXEL_M,
            -9999.0,
            crs=MODIS_SINUSOIDAL,
            tags={
                "units": "m3 m-3",
                "long_name": "GLASS-MODIS surface (0-5 cm) volumetric soil moisture",
                "source": "avhrrsm synthetic world (GLASS-MODIS SM layout)",
            },
            **TIFF_CREATION,
            predictor=3,
        )
        n_files += 1
    return n_files
