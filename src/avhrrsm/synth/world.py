"""The synthetic world's physics: terrain, soil, weather and a daily bucket water balance.

Everything is deterministic from one seed. The simulation domain is the config region widened
by a margin (so that coarse products such as ERA5-Land have neighbours at the region's edge) on
the global 0.05 degree grid; the MERIT-like DEM is generated on whole 5 x 5 degree tiles at its
own, finer resolution, and every 0.05 degree static layer is aggregated from it, as the real
chain does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.special import ndtr

from avhrrsm.grid import STEP_DEG, Window, region_window
from avhrrsm.io.rasters import merit_tile_name
from avhrrsm.regrid import block_reduce_mean
from avhrrsm.static import slope_aspect
from avhrrsm.synth.fields import fractal_field, gaussian_field

LOGGER = logging.getLogger(__name__)

SURFACE_LAYER_MM = 50.0  # 0-5 cm
ROOT_LAYER_MM = 300.0  # 5-35 cm, feeds the surface by capillary rise
DEM_TILE_DEG = 5


@dataclass
class DemTiles:
    """The fine DEM over a block of whole 5 x 5 degree tiles (NaN = sea)."""

    lon_west: float
    lat_north: float
    step_deg: float
    elevation: np.ndarray  # (rows north->south, cols west->east), metres, NaN over sea

    def tile_names(self) -> list[tuple[str, int, int]]:
        """(MERIT-style name, south edge, west edge) of every tile in the block."""
        tile_px = int(round(DEM_TILE_DEG / self.step_deg))
        n_rows, n_cols = self.elevation.shape[0] // tile_px, self.elevation.shape[1] // tile_px
        names = []
        for i in range(n_rows):
            for j in range(n_cols):
                south = int(round(self.lat_north - (i + 1) * DEM_TILE_DEG))
                west = int(round(self.lon_west + j * DEM_TILE_DEG))
                names.append((merit_tile_name(south, west), south, west))
        return names

    def tile_array(self, south: int, west: int) -> np.ndarray:
        tile_px = int(round(DEM_TILE_DEG / self.step_deg))
        row = int(round((self.lat_north - (south + DEM_TILE_DEG)) / self.step_deg))
        col = int(round((west - self.lon_west) / self.step_deg))
        return self.elevation[row : row + tile_px, col : col + tile_px]


@dataclass
class StaticWorld:
    """Static layers of the simulation domain on the 0.05 degree grid."""

    window: Window  # simulation domain (region + margin)
    region: Window
    dem: DemTiles
    elevation_m: np.ndarray
    slope_deg: np.ndarray
    land_fraction: np.ndarray
    land: np.ndarray
    sand: np.ndarray  # mass fractions, 0-5 cm
    silt: np.ndarray
    clay: np.ndarray
    theta_sat: np.ndarray  # m3/m3
    theta_fc: np.ndarray
    theta_wp: np.ndarray
    theta_res: np.ndarray
    vegetation: np.ndarray  # mean green-vegetation fraction
    rain_patterns: np.ndarray = field(repr=False)  # (K, ny, nx) unit-variance fields

    def region_slice(self) -> tuple[slice, slice]:
        """Index of the config region inside the simulation domain."""
        r0 = self.region.row_start - self.window.row_start
        c0 = self.region.col_start - self.window.col_start
        ny, nx = self.region.shape
        return slice(r0, r0 + ny), slice(c0, c0 + nx)


@dataclass
class Weather:
    """Daily weather of the output days (regionally uniform parts and fields)."""

    dates: pd.DatetimeIndex
    rain_mm: np.ndarray  # (t, y, x) float32
    air_temperature_k: np.ndarray  # (t, y, x) float32
    pet_mm: np.ndarray  # (t, y, x) float32
    rain_day: np.ndarray  # (t,) bool: a storm crossed the domain


@dataclass
class Truth:
    """The hidden daily soil moisture of the output days on the simulation domain."""

    dates: pd.DatetimeIndex
    surface: np.ndarray  # (t, y, x) float32, m3/m3, NaN over sea (0-5 cm)
    root_zone: np.ndarray  # (t, y, x) float32, m3/m3 (5-35 cm)
    weather: Weather


def _coast_coordinate(lat: np.ndarray, lon: np.ndarray, region: Mapping[str, float]) -> np.ndarray:
    """0 at the region's north-west corner, 2 at its south-east corner: the sea lies in the NW."""
    width = region["lon_max"] - region["lon_min"]
    height = region["lat_max"] - region["lat_min"]
    return (lon - region["lon_min"]) / width + (region["lat_max"] - lat) / height


def build_dem(
    region: Mapping[str, float], margin_deg: float, dem_arcsec: float, rng: np.random.Generator
) -> DemTiles:
    """Terrain on the whole MERIT tiles that cover the simulation domain.

    A coast in the north-west of the region (sea = NaN), a mountain ridge across its south,
    rolling hills and fine-scale roughness that decides the slope.
    """
    step = dem_arcsec / 3600.0
    west = DEM_TILE_DEG * math.floor((region["lon_min"] - margin_deg) / DEM_TILE_DEG)
    east = DEM_TILE_DEG * math.ceil((region["lon_max"] + margin_deg) / DEM_TILE_DEG)
    south = DEM_TILE_DEG * math.floor((region["lat_min"] - margin_deg) / DEM_TILE_DEG)
    north = DEM_TILE_DEG * math.ceil((region["lat_max"] + margin_deg) / DEM_TILE_DEG)
    n_rows = int(round((north - south) / step))
    n_cols = int(round((east - west) / step))
    # Large-scale relief on a 0.01 degree grid, refined to the DEM resolution.
    coarse_step = 0.01
    coarse_shape = (
        int(round((north - south) / coarse_step)),
        int(round((east - west) / coarse_step)),
    )
    hills = fractal_field(coarse_shape, largest_px=40, rng=rng, octaves=5)
    hills = ndimage.zoom(hills, (n_rows / coarse_shape[0], n_cols / coarse_shape[1]), order=1)
    roughness = gaussian_field((n_rows, n_cols), correlation_px=1.5, rng=rng)
    lat = north - step * (np.arange(n_rows) + 0.5)
    lon = west + step * (np.arange(n_cols) + 0.5)
    coast = _coast_coordinate(lat[:, None], lon[None, :], region)
    height = region["lat_max"] - region["lat_min"]
    ridge_lat = region["lat_min"] + 0.22 * height
    ridge = 1500.0 * np.exp(-(((lat[:, None] - ridge_lat) / (0.12 * height)) ** 2))
    inland = np.clip(coast - 0.45, 0.0, None)
    elevation = 15.0 + 700.0 * inland**1.3 + ridge * (0.7 + 0.3 * hills) + 180.0 * hills
    elevation += (25.0 + 0.04 * elevation) * roughness
    sea = coast + 0.12 * hills < 0.45
    elevation = np.where(sea, np.nan, np.maximum(elevation, 1.0))
    return DemTiles(
        lon_west=float(west),
        lat_north=float(north),
        step_deg=step,
        elevation=elevation.astype(np.float32),
    )


def build_static(
    region: Mapping[str, float], settings: Mapping[str, float], rng: np.random.Generator
) -> StaticWorld:
    """Static layers of the simulation domain."""
    margin = float(settings["margin_deg"]) + 0.1
    window = region_window(region, margin_deg=margin)
    dem = build_dem(region, margin, float(settings["dem_arcsec"]), rng)
    factor = int(round(STEP_DEG / dem.step_deg))
    row0 = int(round((dem.lat_north - window.bounds()[3]) / dem.step_deg))
    col0 = int(round((window.bounds()[0] - dem.lon_west) / dem.step_deg))
    ny, nx = window.shape
    fine = dem.elevation[row0 : row0 + ny * factor, col0 : col0 + nx * factor].astype(np.float64)
    fine_lat = dem.lat_north - dem.step_deg * (row0 + np.arange(ny * factor) + 0.5)
    # The same aggregation and slope as the static-layers stage: what it computes is the truth.
    elevation, land_fraction = block_reduce_mean(fine, factor)
    slope, _, _ = slope_aspect(fine, fine_lat, dem.step_deg)
    slope, _ = block_reduce_mean(slope, factor)
    land = land_fraction >= 0.5
    elevation = np.where(land, np.nan_to_num(elevation, nan=1.0), np.nan)
    slope = np.where(land, np.nan_to_num(slope, nan=0.0), np.nan)

    texture_a = ndtr(gaussian_field((ny, nx), 6.0, rng))
    texture_b = ndtr(gaussian_field((ny, nx), 6.0, rng))
    sand = 0.12 + 0.66 * texture_a
    clay = (1.0 - sand) * (0.12 + 0.62 * texture_b)
    silt = 1.0 - sand - clay
    elev_km = np.minimum(np.nan_to_num(elevation, nan=0.0) / 1000.0, 1.5)
    theta_fc = 0.08 + 0.44 * clay + 0.12 * silt + 0.04 * elev_km
    theta_sat = np.minimum(theta_fc + 0.08 + 0.06 * sand + 0.01 * elev_km, 0.55)
    theta_wp = 0.02 + 0.28 * clay + 0.03 * silt
    theta_res = 0.008 + 0.10 * clay
    vegetation = np.clip(
        0.45 + 0.15 * gaussian_field((ny, nx), 5.0, rng) - 0.12 * elev_km, 0.08, 0.9
    )
    patterns = np.stack([gaussian_field((ny, nx), 7.0, rng) for _ in range(48)])
    return StaticWorld(
        window=window,
        region=region_window(region),
        dem=dem,
        elevation_m=elevation,
        slope_deg=slope,
        land_fraction=land_fraction,
        land=land,
        sand=sand,
        silt=silt,
        clay=clay,
        theta_sat=theta_sat,
        theta_fc=theta_fc,
        theta_wp=theta_wp,
        theta_res=theta_res,
        vegetation=vegetation,
        rain_patterns=patterns.astype(np.float32),
    )


def simulate(
    static: StaticWorld, years: Sequence[int], spinup_years: int, rng: np.random.Generator
) -> Truth:
    """Run the daily two-layer bucket model continuously from the spin-up to the last year.

    Storms (Markov occurrence, exponential depths with a heavy tail, partial spatial coverage,
    orographic enhancement), seasonal evaporative demand falling with elevation, infiltration
    limited by pore space with slope- and saturation-dependent runoff, drainage above field
    capacity that is faster in sand, and capillary rise from the root zone. Only the days of
    ``years`` are kept.
    """
    years = sorted(years)
    start = pd.Timestamp(year=years[0] - spinup_years, month=1, day=1)
    end = pd.Timestamp(year=years[-1], month=12, day=31)
    all_days = pd.date_range(start, end, freq="D")
    keep = np.isin(all_days.year, years)
    out_dates = all_days[keep]
    ny, nx = static.window.shape
    n_out = int(keep.sum())
    surface_out = np.empty((n_out, ny, nx), dtype=np.float32)
    root_out = np.empty_like(surface_out)
    rain_out = np.empty_like(surface_out)
    tair_out = np.empty_like(surface_out)
    pet_out = np.empty_like(surface_out)
    rain_day_out = np.zeros(n_out, dtype=bool)

    elev = np.nan_to_num(static.elevation_m, nan=0.0)
    slope_rad = np.deg2rad(np.nan_to_num(static.slope_deg, nan=0.0))
    theta_s, theta_fc = static.theta_sat, static.theta_fc
    theta_wp, theta_r = static.theta_wp, static.theta_res
    drain_rate = 0.25 + 0.45 * static.sand
    orographic = 1.0 + elev / 1200.0
    pet_elev = np.clip(1.0 - elev / 3500.0, 0.2, 1.0)
    tair_elev = -0.0065 * elev
    theta1 = 0.5 * (theta_fc + theta_wp)
    theta2 = theta1.copy()
    wet_yesterday = False
    temp_anomaly = 0.0
    n_patterns = static.rain_patterns.shape[0]
    k_out = 0
    for day_index, day in enumerate(all_days):
        season = math.cos(2.0 * math.pi * (day.day_of_year - 15) / 365.25)
        p_wet = 0.28 + 0.12 * season + (0.25 if wet_yesterday else 0.0)
        wet = bool(rng.random() < p_wet)
        temp_anomaly = 0.8 * temp_anomaly + rng.normal(0.0, 1.6)
        if wet:
            depth = rng.exponential(6.5) * (4.0 if rng.random() < 0.07 else 1.0)
            pattern = static.rain_patterns[rng.integers(n_patterns)]
            threshold = rng.uniform(-1.5, 0.8)
            rain = depth * np.exp(0.45 * pattern) * orographic * (pattern > threshold)
        else:
            rain = np.zeros((ny, nx))
        wet_yesterday = wet
        t_air = 285.5 - 8.5 * season + tair_elev + temp_anomaly
        pet = (2.6 - 2.0 * season) * pet_elev * (0.45 if wet else 1.0) * (1.0 + 0.04 * temp_anomaly)
        pet = np.maximum(pet, 0.1)

        runoff_fraction = np.clip(
            0.03 + 0.8 * np.sin(slope_rad) + 0.35 * (theta1 / theta_s) ** 4, 0, 0.9
        )
        infiltration = rain * (1.0 - runoff_fraction)
        room = (theta_s - theta1) * SURFACE_LAYER_MM
        into_surface = np.minimum(infiltration, room)
        theta1 = theta1 + into_surface / SURFACE_LAYER_MM
        bypass = 0.5 * (infiltration - into_surface)
        drainage = drain_rate * np.maximum(theta1 - theta_fc, 0.0)
        theta1 = theta1 - drainage
        theta2 = theta2 + (drainage * SURFACE_LAYER_MM + bypass) / ROOT_LAYER_MM
        beta1 = np.clip((theta1 - theta_r) / (theta_fc - theta_r), 0.0, 1.0)
        theta1 = theta1 - pet * (0.55 + 0.15 * static.vegetation) * beta1 / SURFACE_LAYER_MM
        capillary = 0.06 * np.maximum(theta2 - theta1, 0.0)
        theta1 = theta1 + capillary
        theta2 = theta2 - capillary * SURFACE_LAYER_MM / ROOT_LAYER_MM
        beta2 = np.clip((theta2 - theta_wp) / (theta_fc - theta_wp), 0.0, 1.0)
        theta2 = theta2 - pet * 0.6 * static.vegetation * beta2 / ROOT_LAYER_MM
        theta2 = theta2 - 0.04 * np.maximum(theta2 - theta_fc, 0.0)
        theta1 = np.clip(theta1, 0.8 * theta_r, theta_s)
        theta2 = np.clip(theta2, 0.8 * theta_wp, theta_s)

        if keep[day_index]:
            surface_out[k_out] = theta1
            root_out[k_out] = theta2
            rain_out[k_out] = rain
            tair_out[k_out] = t_air
            pet_out[k_out] = pet
            rain_day_out[k_out] = wet
            k_out += 1
    sea = ~static.land
    surface_out[:, sea] = np.nan
    root_out[:, sea] = np.nan
    weather = Weather(out_dates, rain_out, tair_out, pet_out, rain_day_out)
    LOGGER.info(
        "truth: %d days, surface soil moisture %.3f..%.3f m3/m3, %.1f%% of land pixel-days > 0.4",
        n_out,
        np.nanmin(surface_out),
        np.nanmax(surface_out),
        100.0 * np.nanmean(surface_out[:, static.land] > 0.4),
    )
    return Truth(out_dates, surface_out, root_out, weather)
