"""What every product writer of the synthetic world shares: the :class:`World` bundle (truth,
statics, path patterns, settings, per-product random streams), the daily fields computed once
and shared (clouds, vegetation, ERA5-Land-like swvl1), the AVHRR platform record, file names
and the CF coordinate and grid-mapping variables.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import CRS
from scipy import ndimage

from avhrrsm.grid import STEP_DEG
from avhrrsm.io.netcdf import NcVar
from avhrrsm.synth.fields import exponential_filter
from avhrrsm.synth.world import StaticWorld, Truth

LOGGER = logging.getLogger(__name__)


PRODUCT_CODES = {"avhrr": 1, "era5land": 2, "modis": 3, "cci": 4, "ismn": 5, "cosmos": 6, "smap": 7}


TIFF_CREATION = {"compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256}


# Approximate start dates of the afternoon NOAA platforms in the GLASS-AVHRR record, with a small
# platform-dependent LST bias (K) so that homogeneity tests have breaks to find.
AVHRR_PLATFORMS = (
    ("1981-06-24", "NOAA-7", 0.4),
    ("1985-02-01", "NOAA-9", -0.3),
    ("1988-11-08", "NOAA-11", 0.6),
    ("1995-02-01", "NOAA-14", -0.5),
    ("2001-01-01", "NOAA-16", 0.3),
    ("2005-08-30", "NOAA-18", -0.2),
    ("2009-06-02", "NOAA-19", 0.2),
)


def avhrr_platform(day: pd.Timestamp) -> tuple[str, float]:
    """(platform name, LST bias in K) of the AVHRR afternoon platform flying on ``day``."""
    name, bias = AVHRR_PLATFORMS[0][1:]
    for start, platform, platform_bias in AVHRR_PLATFORMS:
        if day >= pd.Timestamp(start):
            name, bias = platform, platform_bias
    return name, bias


@dataclass
class World:
    """Everything the writers need: the truth, the statics and where to put each product."""

    static: StaticWorld
    truth: Truth
    patterns: Mapping[str, str]
    settings: Mapping[str, object]
    seed: int

    def rng(self, product: str, key: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, PRODUCT_CODES[product], key])

    @cached_property
    def clouds(self) -> np.ndarray:
        """(t, y, x) AVHRR cloud mask of the simulation domain (computed once, shared)."""
        return cloud_mask(self)

    @cached_property
    def vegetation(self) -> np.ndarray:
        """(t, y, x) green-vegetation fraction of the simulation domain (computed once, shared)."""
        return vegetation_fraction(self)

    @cached_property
    def era5land(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Daily ERA5-Land-like swvl1 on its 0.1 degree points (computed once, shared)."""
        return era5land_daily(self)

    def day_indices(
        self, years: Collection[int] | None, first_year: int = 0, last_year: int = 9999
    ) -> list[tuple[int, pd.Timestamp]]:
        """(index, date) of the output days in ``years`` (all when None) within a product's span."""
        return [
            (t, d)
            for t, d in enumerate(self.truth.dates)
            if (years is None or d.year in years) and first_year <= d.year <= last_year
        ]


def format_path(pattern: str, **fields: object) -> Path:
    return Path(pattern.format(**fields))


def real_file_name(pattern: str, production_date: str, day: pd.Timestamp) -> Path:
    """The path of ``day`` for ``pattern``, its ``*`` (the production date in real names, a
    tile in GLASS-MODIS names) filled with ``production_date``."""
    return format_path(
        pattern.replace("*", production_date, 1),
        year=day.year,
        doy=day.day_of_year,
        month=day.month,
        day=day.day,
    )


def latlon_vars(lat: np.ndarray, lon: np.ndarray) -> dict[str, NcVar]:
    return {
        "lat": NcVar(
            ("lat",),
            lat,
            np.float64,
            {
                "standard_name": "latitude",
                "long_name": "latitude",
                "units": "degrees_north",
                "axis": "Y",
            },
        ),
        "lon": NcVar(
            ("lon",),
            lon,
            np.float64,
            {
                "standard_name": "longitude",
                "long_name": "longitude",
                "units": "degrees_east",
                "axis": "X",
            },
        ),
    }


def crs_var() -> NcVar:
    return NcVar(
        (),
        np.int32(0),
        np.int32,
        {
            "grid_mapping_name": "latitude_longitude",
            "longitude_of_prime_meridian": 0.0,
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "crs_wkt": CRS.from_epsg(4326).to_wkt(),
        },
        compress=False,
    )


def cloud_mask(world: World) -> np.ndarray:
    """(t, y, x) bool on the simulation domain: rain-day clouds plus drifting cloud fields."""
    weather = world.truth.weather
    cloud_fraction = float(world.settings["cloud_fraction"])
    threshold = float(np.quantile(world.static.rain_patterns, 1.0 - cloud_fraction))
    rng = world.rng("avhrr", 0)
    index = rng.integers(world.static.rain_patterns.shape[0], size=len(weather.dates))
    clouds = world.static.rain_patterns[index] > threshold
    return clouds | (weather.rain_mm > 0.5)


def vegetation_fraction(world: World) -> np.ndarray:
    """(t, y, x) green-vegetation fraction: spring green-up, summer die-back, moisture memory."""
    doy = world.truth.dates.day_of_year.to_numpy()[:, None, None]
    seasonal = 0.8 + 0.3 * np.sin(2.0 * np.pi * (doy - 40) / 365.25)
    memory = exponential_filter(np.nan_to_num(world.truth.surface, nan=0.2), tau_days=30.0)
    veg = world.static.vegetation[None] * seasonal + 0.6 * (memory - 0.2)
    return np.clip(veg, 0.03, 0.95).astype(np.float32)


def _smooth_nan(values: np.ndarray, sigma: float, valid: np.ndarray) -> np.ndarray:
    """Gaussian smoothing over the valid pixels only (normalised convolution), per day."""
    weights = ndimage.gaussian_filter(valid.astype(np.float64), sigma)
    out = np.empty_like(values)
    for t in range(values.shape[0]):
        filled = np.where(valid, values[t], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t] = ndimage.gaussian_filter(filled, sigma) / weights
    return out


def era5land_daily(world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily ERA5-Land-like swvl1 on its 0.1 degree points: smoother, deeper (0-7 cm), wetter.

    Returns (values (t, lat, lon) with NaN over sea, latitudes descending, longitudes -180..180).
    """
    static, truth = world.static, world.truth
    margin = float(world.settings["margin_deg"])
    west, south, east, north = static.region.bounds()
    lat_points = np.round(
        np.arange(
            math.ceil((north + margin) * 10 - 1e-6),
            math.floor((south - margin) * 10 + 1e-6) - 1,
            -1,
        )
        / 10.0,
        1,
    )
    lon_points = np.round(
        np.arange(
            math.ceil((west - margin) * 10 - 1e-6), math.floor((east + margin) * 10 + 1e-6) + 1
        )
        / 10.0,
        1,
    )
    layer = 0.7 * truth.surface + 0.3 * truth.root_zone  # 0-7 cm reaches below the surface layer
    layer = exponential_filter(np.nan_to_num(layer, nan=0.0), tau_days=1.5)
    smooth = _smooth_nan(layer, 1.5, static.land)
    biased = np.clip(0.92 * smooth + 0.055, 0.01, 0.6)
    win_west, _, _, win_north = static.window.bounds()
    # An ERA5-Land point p covers the four 0.05 degree pixels with centres p +/- 0.025.
    rows = np.round((win_north - lat_points) / STEP_DEG - 1.0).astype(int)
    cols = np.round((lon_points - win_west) / STEP_DEG - 1.0).astype(int)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    values = np.zeros((len(truth.dates), len(lat_points), len(lon_points)))
    land = np.zeros((len(lat_points), len(lon_points)))
    for dr in (0, 1):
        for dc in (0, 1):
            values += 0.25 * biased[:, rr + dr, cc + dc]
            land += 0.25 * static.land[rr + dr, cc + dc]
    values[:, land < 0.5] = np.nan
    return values, lat_points, lon_points
