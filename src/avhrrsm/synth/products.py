"""Writers of the synthetic world's products, each in the layout of the real product.

Every product is derived from the hidden truth (:mod:`avhrrsm.synth.world`) with the errors
that make the real one imperfect. Per-day random numbers come from generators seeded with
(seed, product, day), so the bytes do not depend on the order in which days are written.
"""

from __future__ import annotations

import logging
import math
import shutil
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from scipy import ndimage
from scipy.interpolate import RegularGridInterpolator

from avhrrsm.grid import STEP_DEG, ease2_cell
from avhrrsm.io.glass import composite_start
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS, GLASS_ALBEDO
from avhrrsm.io.netcdf import NcVar, pack, write_netcdf
from avhrrsm.io.rasters import merit_package_name, write_geotiff
from avhrrsm.logs import progress
from avhrrsm.regrid import block_reduce_mean
from avhrrsm.synth.fields import exponential_filter, gaussian_field
from avhrrsm.synth.hdf4 import Sds, write_glass_hdf4
from avhrrsm.synth.world import StaticWorld, Truth
from avhrrsm.variables import GLASS_MODIS_YEARS

LOGGER = logging.getLogger(__name__)

COSMOS_FIRST_YEAR = 2008  # cosmic-ray probes were not deployed before
SMAP_FIRST_YEAR = 2015
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
PRODUCT_CODES = {"avhrr": 1, "era5land": 2, "modis": 3, "cci": 4, "ismn": 5, "cosmos": 6, "smap": 7}
TIFF_CREATION = {"compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256}
SOILGRIDS_CRS = "+proj=igh +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


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


def _format(pattern: str, **fields: object) -> Path:
    return Path(pattern.format(**fields))


def _latlon_vars(lat: np.ndarray, lon: np.ndarray) -> dict[str, NcVar]:
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


def _crs_var() -> NcVar:
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


# --------------------------------------------------------------------------------------------
# Daily fields shared by the optical products
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# GLASS-AVHRR albedo and LST
# --------------------------------------------------------------------------------------------


ALBEDO_PRODUCTION_DATE = "2019353"  # the name's production-date part of the synthetic files
LST_PRODUCTION_DATE = "2021047"


def _real_name(pattern: str, production_date: str, day: pd.Timestamp) -> Path:
    """The path of ``day`` for ``pattern``, its ``*`` (the production date in real names, a
    tile in GLASS-MODIS names) filled with ``production_date``."""
    return _format(
        pattern.replace("*", production_date, 1),
        year=day.year,
        doy=day.day_of_year,
        month=day.month,
        day=day.day,
    )


class _AvhrrDays:
    """The daily AVHRR-like fields of the region: albedo (vis, nir, shortwave) and LST."""

    def __init__(self, world: World) -> None:
        static, truth = world.static, world.truth
        rows, cols = static.region_slice()
        self.world = world
        self.clouds = world.clouds[:, rows, cols]
        self.veg = world.vegetation[:, rows, cols]
        self.theta = truth.surface[:, rows, cols]
        self.tair = truth.weather.air_temperature_k[:, rows, cols]
        self.sat = static.theta_sat[rows, cols]
        self.fc, self.res = static.theta_fc[rows, cols], static.theta_res[rows, cols]
        self.sand = static.sand[rows, cols]
        self.sea = ~static.land[rows, cols]

    def fields(self, t: int, day: pd.Timestamp) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(albedo_bsa_vis/nir/shortwave and lst of day ``t``, cloud-or-sea gap mask)."""
        rng = self.world.rng("avhrr", day.toordinal())
        _, lst_bias = avhrr_platform(day)
        theta, veg = self.theta[t], self.veg[t]
        wetness = np.nan_to_num(theta / self.sat, nan=0.0)
        soil_vis = (0.10 + 0.14 * self.sand) * (1.0 - 0.55 * wetness)
        soil_nir = (0.18 + 0.16 * self.sand) * (1.0 - 0.45 * wetness)
        shape = theta.shape
        vis = veg * 0.045 + (1.0 - veg) * soil_vis + rng.normal(0, 0.004, shape)
        nir = veg * 0.32 + (1.0 - veg) * soil_nir + rng.normal(0, 0.006, shape)
        shortwave = 0.47 * vis + 0.53 * nir + rng.normal(0, 0.003, shape)
        doy = day.day_of_year
        radiation = 0.55 + 0.45 * math.sin(2.0 * math.pi * (doy - 80) / 365.25)
        stress = 1.0 - np.clip(
            np.nan_to_num((theta - self.res) / (self.fc - self.res), nan=1.0), 0.0, 1.0
        )
        lst = (
            self.tair[t]
            + 3.0
            + 15.0 * stress * radiation * (1.0 - 0.5 * veg)
            - 2.5 * veg
            + lst_bias
            + rng.normal(0, 1.0, shape)
        )
        fields = {"albedo_bsa_vis": vis, "albedo_bsa_nir": nir, "albedo_bsa_shortwave": shortwave}
        fields["lst"] = lst
        return fields, self.clouds[t] | self.sea


def _glass_global_attrs(product: str, day: pd.Timestamp, platform: str) -> dict[str, str]:
    return {
        "ShortName": product,
        "RangeBeginningDate": day.strftime("%Y-%m-%d"),
        "Platform": platform,
        "Sensor": "AVHRR",
        "Source": "avhrrsm synthetic world in the layout of the GLASS HDF4 product",
    }


def write_glass_albedo(world: World, years: Collection[int] | None = None) -> int:
    """GLASS02B05-style 8-day albedo composites: one global HDF4 file per period with the
    black- and white-sky VIS/NIR/shortwave SDS (int16, scale 1e-4, fill -1).

    A composite is the mean of the period's clear days, so it has a gap only where every day
    of the period was cloudy, as in the real composites.
    """
    avhrr = _AvhrrDays(world)
    layout = GLASS_ALBEDO
    days = world.day_indices(years)
    periods: dict[pd.Timestamp, list[tuple[int, pd.Timestamp]]] = {}
    for t, day in days:
        periods.setdefault(composite_start(day, layout.composite_days), []).append((t, day))
    n_files = 0
    for start, members in progress(
        list(periods.items()), len(periods), "GLASS albedo composites", LOGGER
    ):
        sums: dict[str, np.ndarray] = {}
        count = np.zeros(avhrr.sea.shape)
        for t, day in members:
            fields, gap = avhrr.fields(t, day)
            clear = ~gap
            count += clear
            for name in layout.sds:
                sums[name] = sums.get(name, 0.0) + np.where(clear, fields[name], 0.0)
        datasets = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, sds_name in layout.sds.items():
                mean = np.where(count > 0, sums[name] / count, np.nan)
                black = pack(np.clip(mean, 0.0, 1.0), 1e-4, 0.0, -1, np.int16)
                white = pack(np.clip(mean * 1.03, 0.0, 1.0), 1e-4, 0.0, -1, np.int16)
                band = name.rsplit("_", 1)[1]
                for kind, data in (("BSA", black), ("WSA", white)):
                    datasets[sds_name.replace("BSA", kind)] = Sds(
                        data,
                        -1,
                        {
                            "long_name": f"{'black' if kind == 'BSA' else 'white'}-sky albedo, {band}",
                            "units": "1",
                            "scale_factor": 1e-4,
                            "add_offset": 0.0,
                            "valid_range": [0, 10000],
                        },
                    )
        platform, _ = avhrr_platform(start)
        path = _real_name(world.patterns["glass_albedo"], ALBEDO_PRODUCTION_DATE, start)
        attrs = _glass_global_attrs("GLASS02B05", start, platform)
        write_glass_hdf4(path, world.static.region, datasets, attrs, grid="GLASS02B05")
        n_files += 1
    return n_files


def write_glass_lst(world: World, years: Collection[int] | None = None) -> int:
    """GLASS08B31-style daily LST: one global HDF4 file per day with SDS ``LST`` (uint16,
    scale 0.01 K, fill 0), cloudy pixels as fill."""
    avhrr = _AvhrrDays(world)
    n_files = 0
    days = world.day_indices(years)
    for t, day in progress(days, len(days), "GLASS LST days", LOGGER):
        fields, gap = avhrr.fields(t, day)
        data = pack(np.where(gap, np.nan, fields["lst"]), 0.01, 0.0, 0, np.uint16)
        platform, _ = avhrr_platform(day)
        path = _real_name(world.patterns["glass_lst"], LST_PRODUCTION_DATE, day)
        datasets = {
            "LST": Sds(
                data,
                0,
                {
                    "long_name": "land surface temperature",
                    "units": "K",
                    "scale_factor": 0.01,
                    "add_offset": 0.0,
                    "valid_range": [1, 65534],
                },
            )
        }
        attrs = _glass_global_attrs("GLASS08B31", day, platform)
        write_glass_hdf4(path, world.static.region, datasets, attrs, grid="GLASS08B31")
        n_files += 1
    return n_files


# --------------------------------------------------------------------------------------------
# ERA5-Land
# --------------------------------------------------------------------------------------------


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


CDS_ZIP_MEMBER = "data_stream-oper_stepType-instant.nc"


def _zip_like_cds(path: Path) -> None:
    """Replace the NetCDF file at ``path`` by a zip holding it, as the new CDS delivers a
    request of several files (member name as the CDS writes it; fixed time stamps)."""
    netcdf = path.read_bytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(CDS_ZIP_MEMBER, date_time=(2024, 9, 26, 0, 0, 0))
        archive.writestr(info, netcdf)


def write_era5land(world: World, years: Collection[int] | None = None) -> int:
    """Hourly swvl1, one file per month, longitudes 0-360, latitudes descending (new CDS
    layout: valid_time, scalar number, expver). The first year of the world comes as CDS zips
    (whatever the file's name), and a few dry pixels carry the small negative values real
    ERA5-Land has."""
    daily, lat, lon = world.era5land
    dates = world.truth.dates
    lon360 = np.mod(lon, 360.0)
    order = np.argsort(lon360, kind="stable")
    lon360, daily = lon360[order], daily[:, :, order]
    pattern = world.patterns["era5land"]
    n_files = 0
    months = sorted({(d.year, d.month) for d in dates if years is None or d.year in years})
    for year, month in progress(months, len(months), "ERA5-Land months", LOGGER):
        in_month = np.flatnonzero((dates.year == year) & (dates.month == month))
        hours = pd.date_range(
            pd.Timestamp(year=year, month=month, day=1), periods=24 * len(in_month), freq="h"
        )
        # Linear in time between daily values placed at 12 UTC, plus a small diurnal drying.
        day_pos = in_month[0] + (np.arange(len(hours)) - 12) / 24.0
        lower = np.clip(np.floor(day_pos).astype(int), in_month[0] - 1, len(dates) - 1)
        lower = np.clip(lower, 0, len(dates) - 1)
        upper = np.clip(lower + 1, 0, len(dates) - 1)
        frac = np.clip(day_pos - np.floor(day_pos), 0.0, 1.0)[:, None, None]
        hourly = (1.0 - frac) * daily[lower] + frac * daily[upper]
        diurnal = -0.003 * np.sin(2.0 * np.pi * (hours.hour.to_numpy() - 9) / 24.0)
        hourly = np.round(hourly + diurnal[:, None, None], 4).astype(np.float32)
        # the land-surface model's small negative values: the driest 0.1 % of land point-hours
        driest = hourly <= np.nanquantile(hourly, 0.001)
        hourly = np.where(driest, np.float32(-0.0004), hourly).astype(np.float32)
        seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy(np.int64)
        path = _format(pattern, year=year, month=month)
        write_netcdf(
            path,
            {"valid_time": len(hours), "latitude": len(lat), "longitude": len(lon360)},
            {
                "number": NcVar(
                    (),
                    np.int64(0),
                    np.int64,
                    {
                        "long_name": "ensemble member numerical id",
                        "units": "1",
                        "standard_name": "realization",
                    },
                    compress=False,
                ),
                "valid_time": NcVar(
                    ("valid_time",),
                    seconds,
                    np.int64,
                    {
                        "long_name": "time",
                        "standard_name": "time",
                        "units": "seconds since 1970-01-01",
                        "calendar": "proleptic_gregorian",
                    },
                ),
                "latitude": NcVar(
                    ("latitude",),
                    lat,
                    np.float64,
                    {
                        "units": "degrees_north",
                        "standard_name": "latitude",
                        "long_name": "latitude",
                        "stored_direction": "decreasing",
                    },
                ),
                "longitude": NcVar(
                    ("longitude",),
                    lon360,
                    np.float64,
                    {
                        "units": "degrees_east",
                        "standard_name": "longitude",
                        "long_name": "longitude",
                    },
                ),
                "expver": NcVar(
                    ("valid_time",),
                    np.array(["0001"] * len(hours), dtype=object),
                    str,
                    {"long_name": "Experiment version"},
                ),
                "swvl1": NcVar(
                    ("valid_time", "latitude", "longitude"),
                    hourly,
                    np.float32,
                    {
                        "GRIB_paramId": 39,
                        "GRIB_shortName": "swvl1",
                        "GRIB_units": "m**3 m**-3",
                        "GRIB_name": "Volumetric soil water layer 1",
                        "long_name": "Volumetric soil water layer 1",
                        "units": "m**3 m**-3",
                        "standard_name": "unknown",
                        "GRIB_missingValue": 3.4028234663852886e38,
                    },
                    np.float32(np.nan),
                ),
            },
            {
                "GRIB_centre": "ecmf",
                "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
                "GRIB_subCentre": 0,
                "Conventions": "CF-1.7",
                "institution": "European Centre for Medium-Range Weather Forecasts",
                "history": "avhrrsm synthetic world in the layout of a CDS ERA5-Land download",
            },
        )
        if year == dates[0].year:
            _zip_like_cds(path)
        n_files += 1
    return n_files


# --------------------------------------------------------------------------------------------
# MERIT DEM and SoilGrids
# --------------------------------------------------------------------------------------------


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
        path = _format(folder_pattern, fraction=name)
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


# --------------------------------------------------------------------------------------------
# GLASS-MODIS target
# --------------------------------------------------------------------------------------------


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
        path = _real_name(pattern, "", day)
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


# --------------------------------------------------------------------------------------------
# ESA CCI SM COMBINED
# --------------------------------------------------------------------------------------------

CCI_FLAG_MEANINGS = (
    "no_data_inconsistency_detected snow_coverage_or_temperature_below_zero dense_vegetation "
    "others_no_convergence_in_the_model_thus_no_valid_sm_estimates "
    "soil_moisture_value_exceeds_physical_boundary weight_of_measurement_below_threshold "
    "all_datasets_deemed_unreliable barren_ground_advisory_flag"
)


def write_esa_cci(world: World, years: Collection[int] | None = None) -> int:
    """Daily 0.25 degree COMBINED files with `sm` and `flag`; sm is missing where flagged."""
    static, truth = world.static, world.truth
    rows, cols = static.region_slice()
    factor = 5
    theta = truth.surface[:, rows, cols]
    ny, nx = static.region.shape
    west, _, _, north = static.region.bounds()
    # The CCI cells are those of the global 0.25 degree grid that lie wholly inside the region.
    west_c, north_c = math.ceil(west / 0.25 - 1e-9) * 0.25, math.floor(north / 0.25 + 1e-9) * 0.25
    r_off = int(round((north - north_c) / STEP_DEG))
    c_off = int(round((west_c - west) / STEP_DEG))
    ny_c, nx_c = (ny - r_off) // factor, (nx - c_off) // factor
    lat = np.round(north_c - 0.25 * (np.arange(ny_c) + 0.5), 6)
    lon = np.round(west_c + 0.25 * (np.arange(nx_c) + 0.5), 6)
    crop = (slice(None), slice(r_off, r_off + ny_c * factor), slice(c_off, c_off + nx_c * factor))
    land_fraction, _ = block_reduce_mean(
        static.land[rows, cols].astype(np.float32)[crop[1:]], factor
    )
    land = land_fraction >= 0.5
    coarse, _ = block_reduce_mean(theta[crop], factor)
    tair, _ = block_reduce_mean(truth.weather.air_temperature_k[:, rows, cols][crop], factor)
    veg, _ = block_reduce_mean(world.vegetation[:, rows, cols][crop], factor)
    cell_bias = world.rng("cci", 0).normal(0, 0.02, (ny_c, nx_c))
    pattern = world.patterns["esa_cci"]
    n_files = 0
    days = world.day_indices(years)
    for t, day in progress(days, len(days), "ESA CCI days", LOGGER):
        rng = world.rng("cci", day.toordinal())
        noise = 0.035 if day.year < 2007 else 0.025
        sm = coarse[t] + cell_bias + rng.normal(0, noise, (ny_c, nx_c))
        flag = np.zeros((ny_c, nx_c), dtype=np.int8)
        flag[tair[t] < 273.15] |= 1
        flag[veg[t] > 0.75] |= 2
        missing = 0.45 if day.year < 2002 else 0.25
        flag[rng.random((ny_c, nx_c)) < missing] |= 4
        # the barren-ground advisory bit: set on sparse vegetation, the estimate stays valid
        flag[veg[t] < 0.35] |= 64
        valid = (flag.astype(np.int16) & CCI_INVALID_FLAG_BITS) == 0
        sm = np.where(valid, np.clip(sm, 0.01, 0.6), np.nan)
        sm = np.where(land, sm, np.nan)
        flag = np.where(land, flag, 127).astype(np.int8)
        uncertainty = np.where(np.isnan(sm), np.nan, noise)
        days_since = (day - pd.Timestamp("1970-01-01")).days
        path = _format(pattern, year=day.year, month=day.month, day=day.day, doy=day.day_of_year)
        write_netcdf(
            path,
            {"time": 1, "lat": ny_c, "lon": nx_c},
            {
                "time": NcVar(
                    ("time",),
                    np.array([days_since], np.float64),
                    np.float64,
                    {
                        "standard_name": "time",
                        "units": "days since 1970-01-01 00:00:00 UTC",
                        "calendar": "standard",
                    },
                ),
                "lat": NcVar(
                    ("lat",),
                    lat,
                    np.float32,
                    {"standard_name": "latitude", "units": "degrees_north"},
                ),
                "lon": NcVar(
                    ("lon",),
                    lon,
                    np.float32,
                    {"standard_name": "longitude", "units": "degrees_east"},
                ),
                "sm": NcVar(
                    ("time", "lat", "lon"),
                    np.nan_to_num(sm, nan=-9999.0)[None],
                    np.float32,
                    {
                        "long_name": "Volumetric Soil Moisture",
                        "units": "m3 m-3",
                        "valid_range": np.array([0.0, 1.0], np.float32),
                    },
                    np.float32(-9999.0),
                ),
                "sm_uncertainty": NcVar(
                    ("time", "lat", "lon"),
                    np.nan_to_num(uncertainty, nan=-9999.0)[None],
                    np.float32,
                    {"long_name": "Volumetric Soil Moisture Uncertainty", "units": "m3 m-3"},
                    np.float32(-9999.0),
                ),
                "flag": NcVar(
                    ("time", "lat", "lon"),
                    flag[None],
                    np.int8,
                    {
                        "long_name": "Flag",
                        "flag_values": np.array([0, 1, 2, 4, 8, 16, 32, 64], np.int8),
                        "flag_meanings": CCI_FLAG_MEANINGS,
                    },
                    np.int8(127),
                ),
            },
            {
                "title": "ESA CCI Surface Soil Moisture Product (synthetic)",
                "product_version": "09.1",
                "time_coverage_start": day.strftime("%Y%m%dT000000Z"),
                "Conventions": "CF-1.7",
                "source": "avhrrsm synthetic world",
            },
        )
        n_files += 1
    return n_files


# --------------------------------------------------------------------------------------------
# In situ: ISMN, COSMOS-UK, SMAP core validation sites
# --------------------------------------------------------------------------------------------

STATION_NAMES = (
    "Aubiac",
    "Belvezet",
    "Cadours",
    "Deaux",
    "Espere",
    "Fabas",
    "Ginestous",
    "Hourtin",
    "Isle-Jourdain",
    "Jonquieres",
    "Lezignan",
    "Montaut",
    "Nerac",
    "Ourjout",
    "Pezenas",
    "Quillan",
    "Rieumes",
    "Sabres",
    "Tarbes",
    "Urgons",
    "Vauvert",
    "Wissous",
    "Xertigny",
    "Yzeure",
)


@dataclass
class Site:
    """An in-situ site placed in the synthetic world."""

    name: str
    lat: float
    lon: float
    row: int  # in the simulation domain
    col: int
    elevation: float


def place_sites(world: World, count: int, rng: np.random.Generator, prefix: str = "") -> list[Site]:
    """Random sites on land pixels of the region, at least two pixels away from the sea."""
    static = world.static
    rows, cols = static.region_slice()
    inland = ndimage.binary_erosion(static.land, iterations=2)
    candidates = np.argwhere(inland[rows, cols])
    chosen = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    sites = []
    lat_c, lon_c = static.region.lat(), static.region.lon()
    for index, pick in enumerate(chosen):
        r, c = candidates[pick]
        lat = float(lat_c[r] + rng.uniform(-0.02, 0.02))
        lon = float(lon_c[c] + rng.uniform(-0.02, 0.02))
        name = f"{prefix}{STATION_NAMES[index % len(STATION_NAMES)]}"
        if index >= len(STATION_NAMES):
            name += f"-{index // len(STATION_NAMES) + 1}"
        elev = float(static.elevation_m[rows.start + r, cols.start + c])
        sites.append(Site(name, round(lat, 5), round(lon, 5), rows.start + r, cols.start + c, elev))
    return sites


def point_series(world: World, site: Site, rng: np.random.Generator, depth_m: float) -> np.ndarray:
    """Daily soil moisture at a point: the pixel truth with representativeness error."""
    surface = world.truth.surface[:, site.row, site.col].astype(np.float64)
    root = world.truth.root_zone[:, site.row, site.col].astype(np.float64)
    weight = float(np.clip((depth_m - 0.05) / 0.3, 0.0, 1.0))
    base = (1.0 - weight) * exponential_filter(surface, 1.0 + 10 * depth_m) + weight * root
    mean = base.mean()
    scale = rng.uniform(0.75, 1.25)
    offset = rng.normal(0.0, 0.03)
    error = np.zeros_like(base)
    shocks = rng.normal(0.0, 0.012, len(base))
    for t in range(1, len(base)):
        error[t] = 0.7 * error[t - 1] + shocks[t]
    sat = float(world.static.theta_sat[site.row, site.col])
    return np.clip(mean + scale * (base - mean) + offset + error, 0.01, sat + 0.03)


def hourly_from_daily(
    dates: pd.DatetimeIndex, daily: np.ndarray, rng: np.random.Generator, amplitude: float = 0.004
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Hourly values: linear between daily values at 12 UTC, a diurnal cycle, sensor noise."""
    hours = pd.date_range(dates[0], dates[-1] + pd.Timedelta(hours=23), freq="h")
    day_index = (hours - dates[0]) / pd.Timedelta("1D") - 0.5
    # dates can jump (non-contiguous years): interpolate on day numbers, then keep real days.
    day_numbers = ((dates - dates[0]) / pd.Timedelta("1D")).to_numpy()
    values = np.interp(day_index, day_numbers, daily)
    values += amplitude * np.sin(2 * np.pi * (hours.hour.to_numpy() - 9) / 24.0)
    values += rng.normal(0.0, 0.0015, len(hours))
    keep = hours.normalize().isin(dates)
    return hours[keep], values[keep]


def _ismn_flags(
    values: np.ndarray, tair_hourly: np.ndarray, sat: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """ISMN quality flags for hourly values, with injected faults (values are changed in place)."""
    n = len(values)
    flags = np.full(n, "G", dtype=object)
    spikes = rng.random(n) < 0.002
    values[spikes] += 0.15
    negative = rng.random(n) < 0.0005
    values[negative] = -0.01
    cold = tair_hourly < 273.15
    codes = [
        (cold, "D03"),
        (cold & (tair_hourly < 271.0), "D02"),
        (spikes, "D06"),
        (values > sat, "C03"),
        (negative, "C01"),
    ]
    for mask, code in codes:
        add = mask & (flags != "G")
        flags[add] = flags[add] + "," + code
        flags[mask & (flags == "G")] = code
    return values, flags


def _ismn_header_line(
    cse: str,
    network: str,
    station: str,
    lat: float,
    lon: float,
    elevation: float,
    depth_from: float,
    depth_to: float,
    sensor: str,
) -> str:
    return (
        f"{cse:<10} {network:<15} {station:<17} {lat:9.5f} {lon:11.5f} {elevation:7.2f} "
        f"{depth_from:7.2f} {depth_to:7.2f} {sensor} "
    )


def _write_stm(
    folder: Path,
    cse: str,
    network: str,
    site: Site,
    depth_from: float,
    depth_to: float,
    sensor: str,
    times: pd.DatetimeIndex,
    values: np.ndarray,
    flags: np.ndarray,
    orig_flag: str,
) -> Path:
    start, end = times[0].strftime("%Y%m%d"), times[-1].strftime("%Y%m%d")
    name = (
        f"{cse}_{network}_{site.name}_sm_{depth_from:.6f}_{depth_to:.6f}_{sensor}_{start}_{end}.stm"
    )
    folder.mkdir(parents=True, exist_ok=True)
    stamps = times.strftime("%Y/%m/%d %H:%M")
    lines = [
        _ismn_header_line(
            cse,
            network,
            site.name,
            site.lat,
            site.lon,
            site.elevation,
            depth_from,
            depth_to,
            sensor,
        )
    ]
    lines += [
        f"{s} {v:8.4f} {f} {orig_flag}" for s, v, f in zip(stamps, values, flags, strict=True)
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _write_static_variables(folder: Path, cse: str, network: str, site: Site, world: World) -> None:
    static = world.static
    r, c = site.row, site.col
    header = (
        "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
        "quantity_source_description;quantity_source_provider;quantity_source_version;"
        "quantity_source_resolution;quantity_source_timerange;quantity_source_url;"
    )
    rows = []
    for top, bottom in ((0.0, 0.3), (0.3, 1.0)):
        rows.append(
            f"saturation;m^3*m^-3;{top:.2f};{bottom:.2f};{static.theta_sat[r, c]:.2f};;synthetic;"
            "avhrrsm synthetic world;avhrrsm;1;0.05 deg;;;"
        )
        for quantity, layer in (
            ("clay fraction", static.clay),
            ("sand fraction", static.sand),
            ("silt fraction", static.silt),
        ):
            rows.append(
                f"{quantity};% weight;{top:.2f};{bottom:.2f};{100 * layer[r, c]:.2f};;synthetic;"
                "avhrrsm synthetic world;avhrrsm;1;0.05 deg;;;"
            )
    for year, span in ((2000, "1998-2002"), (2005, "2003-2007"), (2010, "2008-2012")):
        rows.append(
            f"land cover classification;;;;130;Grassland;CCI_landcover_{year};ESA CCI Land Cover;"
            f"ESA;{year}-v1.6.1;300m;{span};;"
        )
    rows.append(
        "climate classification;;;;Csb;Temperate - Dry summer - Warm Summer;koeppen_geiger_2007;"
        "Koeppen-Geiger Climate Classification;;Peel2007;0.1°;;;"
    )
    path = folder / f"{cse}_{network}_{site.name}_static_variables.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


ISMN_METADATA_XML = """<?xml version="1.0"?>
<gmd:MD_Metadata xmlns:gco="http://www.isotc211.org/2005/gco" xmlns:gmd="http://www.isotc211.org/2005/gmd">
    <gmd:fileIdentifier><gco:CharacterString>Metadata</gco:CharacterString></gmd:fileIdentifier>
    <gmd:language><gco:CharacterString>eng</gco:CharacterString></gmd:language>
    <gmd:identificationInfo>
        <gmd:MD_DataIdentification>
            <gmd:citation><gmd:CI_Citation><gmd:title>
                <gco:CharacterString>{title}</gco:CharacterString>
            </gmd:title></gmd:CI_Citation></gmd:citation>
            <gmd:abstract><gco:CharacterString>{abstract}</gco:CharacterString></gmd:abstract>
        </gmd:MD_DataIdentification>
    </gmd:identificationInfo>
</gmd:MD_Metadata>
"""


def write_ismn(world: World, years: Collection[int] | None = None) -> int:
    """An ISMN 'Header+values' archive as the portal delivers it (a .zip where the configured
    path ends so): {network}/{station}/*.stm, static variables, Metadata.xml, Readme.txt.

    Two networks of point stations (0-5 cm and deeper sensors, hourly, flags G/Dxx/Cxx), and the
    odd COSMOS cosmic-ray probes (0.00-0.19 m) that ISMN also distributes.
    """
    archive = Path(world.patterns["ismn"])
    # a .zip as the ISMN portal delivers it: written as a folder, then zipped
    root = archive.with_name(archive.name + ".unzipped") if archive.suffix == ".zip" else archive
    root.mkdir(parents=True, exist_ok=True)
    truth = world.truth
    years = sorted(set(truth.dates.year))
    rng = world.rng("ismn", 0)
    n_stations = int(world.settings["n_ismn_stations"])
    sites = place_sites(world, n_stations, rng)
    n_files = 0
    for index, site in enumerate(sites):
        network = "AVSYN" if index % 2 == 0 else "MEDSM"
        site_rng = world.rng("ismn", index + 1)
        first = site_rng.integers(len(years))
        last = site_rng.integers(first, len(years))
        keep = truth.dates.year.isin(years[first : last + 1])
        dates = truth.dates[keep]
        sensors = [(0.05, 0.05, "ThetaProbe-ML2X"), (0.20, 0.20, "ThetaProbe-ML2X")]
        if index % 3 == 0:
            sensors.insert(0, (0.0, 0.05, "Hydraprobe-II_Sdi-12"))
        if index % 4 == 1:
            sensors.append((0.50, 0.50, "ThetaProbe-ML2X"))
        folder = root / network / site.name
        tair_daily = truth.weather.air_temperature_k[keep, site.row, site.col].astype(np.float64)
        for depth_from, depth_to, sensor in sensors:
            daily = point_series(world, site, site_rng, 0.5 * (depth_from + depth_to))[keep]
            times, values = hourly_from_daily(dates, daily, site_rng)
            tair = np.repeat(tair_daily, 24)[: len(times)]
            tair = tair + 5.0 * np.sin(2 * np.pi * (times.hour.to_numpy() - 9) / 24.0)
            sat = float(world.static.theta_sat[site.row, site.col])
            values, flags = _ismn_flags(values, tair, sat, site_rng)
            outages = site_rng.random(len(times)) < 0.003
            outage = np.convolve(outages, np.ones(24 * 5), mode="same") > 0
            present = ~outage & (site_rng.random(len(times)) > 0.002)
            _write_stm(
                folder,
                network,
                network,
                site,
                depth_from,
                depth_to,
                sensor,
                times[present],
                np.round(values[present], 4),
                flags[present],
                "M",
            )
            n_files += 1
        _write_static_variables(folder, network, network, site, world)
    # COSMOS probes that come through ISMN (odd-numbered COSMOS sites).
    cosmos_years = [y for y in years if y >= COSMOS_FIRST_YEAR]
    for site in _cosmos_sites(world)[1::2]:
        if not cosmos_years:
            break
        keep = truth.dates.year.isin(cosmos_years)
        dates = truth.dates[keep]
        site_rng = world.rng("cosmos", hash_name(site.name))
        daily = cosmos_field_scale(world, site)[keep]
        times, values = hourly_from_daily(dates, daily, site_rng, amplitude=0.002)
        flags = np.where(site_rng.random(len(times)) < 0.02, "D05", "G").astype(object)
        folder = root / "COSMOS" / site.name
        _write_stm(
            folder,
            "COSMOS",
            "COSMOS",
            site,
            0.0,
            0.19,
            "Cosmic-ray-Probe",
            times,
            np.round(values, 4),
            flags,
            "M",
        )
        _write_static_variables(folder, "COSMOS", "COSMOS", site, world)
        n_files += 1
    (root / "Metadata.xml").write_text(
        ISMN_METADATA_XML.format(
            title="ISMN archive (synthetic, avhrrsm)",
            abstract="Synthetic in situ soil moisture in the ISMN Header+values layout.",
        ),
        encoding="utf-8",
    )
    (root / "Readme.txt").write_text(
        "Variables stored in separate files (Header+values), synthetic ISMN-layout archive written by\n"
        "avhrrsm. Folder structure: Networkname/Stationname/*.stm. See ISMN documentation for the\n"
        "format and the quality flags (G good; C01-C03 plausibility; D01-D10 spectral/ancillary).\n",
        encoding="utf-8",
    )
    if root != archive:
        zip_folder(root, archive)
        shutil.rmtree(root)
    return n_files


def zip_folder(folder: Path, path: Path) -> None:
    """Zip a folder's content (folders as entries, then files, in name order) with fixed times
    and modes, so that the same content gives the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zipped:
        for item in sorted(folder.rglob("*")):
            name = item.relative_to(folder).as_posix() + ("/" if item.is_dir() else "")
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o40755 << 16 | 0x10) if item.is_dir() else (0o100644 << 16)
            info.compress_type = zipfile.ZIP_STORED if item.is_dir() else zipfile.ZIP_DEFLATED
            zipped.writestr(info, b"" if item.is_dir() else item.read_bytes(), compresslevel=6)


def hash_name(name: str) -> int:
    """A stable small integer from a name (Python's hash() is salted per process)."""
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"\0"), "little") % (2**31)


def _cosmos_sites(world: World) -> list[Site]:
    return place_sites(
        world, int(world.settings["n_cosmos_sites"]), world.rng("cosmos", 0), prefix="CRS-"
    )


def cosmos_field_scale(world: World, site: Site) -> np.ndarray:
    """Daily field-scale soil moisture sensed by a cosmic-ray probe (depth-weighted, smooth)."""
    surface = world.truth.surface[:, site.row, site.col].astype(np.float64)
    root = world.truth.root_zone[:, site.row, site.col].astype(np.float64)
    depth_cm = cosmos_effective_depth_cm(surface)
    surface_weight = np.clip(5.0 / depth_cm, 0.0, 1.0)
    rng = world.rng("cosmos", hash_name(site.name) + 1)
    value = (
        surface_weight * surface
        + (1.0 - surface_weight) * root
        + rng.normal(0, 0.008, len(surface))
    )
    return np.clip(value, 0.01, 0.6)


def cosmos_effective_depth_cm(
    theta: np.ndarray, bulk_density: float = 1.4, lattice_water: float = 0.03
) -> np.ndarray:
    """Effective sensing depth z* (cm) of a cosmic-ray probe (Franz et al. 2012)."""
    return 5.8 / (bulk_density * lattice_water + theta + 0.0829)


def write_cosmos_uk(world: World, years: Collection[int] | None = None) -> int:
    """A COSMOS-UK release in the EIDC layout (even-numbered COSMOS sites): one daily CSV per
    site (VWC in %, D86 in cm, -9999 missing) and one site metadata file for all sites."""
    folder = Path(world.patterns["cosmos"])
    folder.mkdir(parents=True, exist_ok=True)
    truth = world.truth
    years = [y for y in sorted(set(truth.dates.year)) if y >= COSMOS_FIRST_YEAR]
    n_files = 0
    if not years:
        return 0
    keep = truth.dates.year.isin(years)
    dates = truth.dates[keep]
    metadata = []
    for site in _cosmos_sites(world)[0::2]:
        rng = world.rng("cosmos", hash_name(site.name) + 2)
        vwc = cosmos_field_scale(world, site)[keep]
        depth = cosmos_effective_depth_cm(
            truth.surface[keep, site.row, site.col].astype(np.float64)
        )
        rain = truth.weather.rain_mm[keep, site.row, site.col].astype(np.float64)
        tair = truth.weather.air_temperature_k[keep, site.row, site.col].astype(np.float64) - 273.15
        missing = np.convolve(rng.random(len(dates)) < 0.01, np.ones(7), mode="same") > 0
        frame = pd.DataFrame(
            {
                "SITE_ID": site.name.replace("CRS-", "").upper()[:5],
                "DATE_TIME": dates.strftime("%Y-%m-%d"),
                "PRECIP": np.round(rain, 1),
                "TA": np.round(tair, 2),
                "COSMOS_VWC": np.where(missing, -9999, np.round(100.0 * vwc, 1)),
                "D86_75M": np.where(missing, -9999, np.round(depth, 1)),
            }
        )
        site_id = frame["SITE_ID"].iloc[0]
        path = folder / f"COSMOS-UK_{site_id}_HydroSoil_Daily_{years[0]}-{years[-1]}.csv"
        frame.to_csv(path, index=False, lineterminator="\n")
        metadata.append(
            f"{site.name},{site_id},{site.lat},{site.lon},{site.elevation:.0f},{years[0]}-01-01"
        )
        n_files += 1
    # one site metadata file for the whole release, as the EIDC distributes it
    (folder / f"COSMOS-UK_SiteMetadata_{years[0]}-{years[-1]}.csv").write_text(
        "SITE_NAME,SITE_ID,LATITUDE,LONGITUDE,ALTITUDE,START_DATE\n" + "\n".join(metadata) + "\n",
        encoding="utf-8",
    )
    return n_files + 1


# NSIDC-0712 match-up files: the SMAP products matched up per reference-pixel size (product,
# version), and the units line under the column names.
SMAP_MATCHUPS = {9: ("SMAPL2SMPE", "R18290"), 36: ("SMAPL2SMP", "R18290")}
NSIDC0712_COLUMNS = "Yr,Mo,Day,Hr,Min,SM-1,Q-FLG-1,WASM"
NSIDC0712_UNITS = "yyyy,mm,dd,hh,mm,m3/m3,N/A,m3/m3"


def _nsidc0712_rows(
    dates: pd.DatetimeIndex, insitu: np.ndarray, lon: float, rng: np.random.Generator
) -> list[str]:
    """Match-up rows at the SMAP overpasses (06:00 descending and 18:00 ascending local solar
    time, in UTC) of the days SMAP sees the pixel; the SMAP value is the in-situ one with a
    retrieval error, -9999 where either is missing."""
    rows = []
    for day, value in zip(dates, insitu, strict=True):
        for local_hour in (6.0, 18.0):
            if rng.random() > 0.45:
                continue
            stamp = day + pd.Timedelta(hours=local_hour - lon / 15.0)
            stamp = stamp.round("min")
            smap = float(np.clip(value + rng.normal(0.0, 0.03), 0.02, 0.6))
            flag = int(rng.random() < 0.2)
            missing = rng.random() < 0.03
            insitu_text = "-9999" if missing else f"{value + rng.normal(0.0, 0.003):.4f}"
            rows.append(
                f"{stamp.year},{stamp.month},{stamp.day},{stamp.hour},{stamp.minute},"
                f"{smap:.4f},{flag},{insitu_text}"
            )
    return rows


def write_smap_cvs(world: World, years: Collection[int] | None = None) -> int:
    """SMAP core validation sites as NSIDC ships them (NSIDC-0712): per reference pixel one
    comma-separated match-up file (a description line, the column names, a units line, a row per
    SMAP overpass in UTC), and the sites' table (the user guide's site list) as CSV beside the
    folder. Every site has a 9 km reference pixel; the first also a 36 km one."""
    folder = Path(world.patterns["smap_cvs"])
    folder.mkdir(parents=True, exist_ok=True)
    truth, static = world.truth, world.static
    years = [y for y in sorted(set(truth.dates.year)) if y >= SMAP_FIRST_YEAR]
    if not years:
        return 0
    keep = truth.dates.year.isin(years)
    dates = truth.dates[keep]
    sites = place_sites(
        world, int(world.settings["n_smap_sites"]), world.rng("smap", 0), prefix="CVS-"
    )
    to_ease = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
    lon_grid, lat_grid = np.meshgrid(static.window.lon(), static.window.lat())
    xs, ys = to_ease.transform(lon_grid, lat_grid)
    n_files = 0
    table = ["site_id,name,latitude,longitude"]
    for index, site in enumerate(sites):
        site_id = f"{1600 + index:04d}"
        table.append(f"{site_id},{site.name},{site.lat},{site.lon}")
        for grid_km in (9, 36) if index == 0 else (9,):
            _, _, (x0, y0, x1, y1) = ease2_cell(site.lat, site.lon, grid_km)
            inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1) & static.land
            rng = world.rng("smap", 100 * grid_km + index + 1)
            cell = np.nanmean(truth.surface[keep][:, inside], axis=1)
            insitu = cell + rng.normal(0, 0.008, len(dates))
            product, version = SMAP_MATCHUPS[grid_km]
            pixel = f"{site_id}{grid_km:02d}01"
            first, last = dates[0].strftime("%Y%m%d"), dates[-1].strftime("%Y%m%d")
            lines = [
                f"SMAP/In Situ Core Validation Site match-up, site {site_id} ({site.name}), "
                f"reference pixel {pixel} ({grid_km} km EASE-Grid 2.0), {product} {version}; "
                "synthetic, written by avhrrsm in the NSIDC-0712 layout",
                NSIDC0712_COLUMNS,
                NSIDC0712_UNITS,
                *_nsidc0712_rows(dates, insitu, site.lon, rng),
            ]
            name = f"NSIDC-0712_{pixel}_{product}_{version}_{first}_{last}.txt"
            (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
            n_files += 1
    Path(world.patterns["smap_cvs_sites"]).write_text("\n".join(table) + "\n", encoding="utf-8")
    return n_files + 1


# --------------------------------------------------------------------------------------------
# Truth (for tests of model skill; never read as an input)
# --------------------------------------------------------------------------------------------


def write_truth(world: World, folder: Path) -> int:
    static, truth = world.static, world.truth
    rows, cols = static.region_slice()
    lat, lon = static.region.lat(), static.region.lon()
    n_files = 0
    for year in sorted(set(truth.dates.year)):
        in_year = truth.dates.year == year
        days = ((truth.dates[in_year] - pd.Timestamp("1970-01-01")) / pd.Timedelta("1D")).to_numpy()
        write_netcdf(
            folder / f"surface_soil_moisture_truth_{year}.nc",
            {"time": int(in_year.sum()), "lat": len(lat), "lon": len(lon)},
            {
                "time": NcVar(
                    ("time",),
                    days,
                    np.float64,
                    {
                        "standard_name": "time",
                        "units": "days since 1970-01-01",
                        "calendar": "standard",
                    },
                ),
                **_latlon_vars(lat, lon),
                "crs": _crs_var(),
                "soil_moisture_true": NcVar(
                    ("time", "lat", "lon"),
                    truth.surface[in_year][:, rows, cols],
                    np.float32,
                    {
                        "long_name": "hidden true 0-5 cm soil moisture",
                        "standard_name": "volume_fraction_of_condensed_water_in_soil",
                        "units": "m3 m-3",
                        "grid_mapping": "crs",
                    },
                    np.float32(np.nan),
                ),
            },
            {
                "title": "avhrrsm synthetic world: the hidden truth (never an input)",
                "Conventions": "CF-1.8",
            },
        )
        n_files += 1
    static_layers = {
        "land_mask": static.land[rows, cols].astype(np.int8),
        "elevation": static.elevation_m[rows, cols],
        "slope": static.slope_deg[rows, cols],
        "sand": static.sand[rows, cols],
        "silt": static.silt[rows, cols],
        "clay": static.clay[rows, cols],
        "theta_sat": static.theta_sat[rows, cols],
        "theta_fc": static.theta_fc[rows, cols],
    }
    write_netcdf(
        folder / "static_truth.nc",
        {"lat": len(lat), "lon": len(lon)},
        {
            **_latlon_vars(lat, lon),
            **{
                name: NcVar(("lat", "lon"), values, np.asarray(values).dtype, {})
                for name, values in static_layers.items()
            },
        },
        {"title": "avhrrsm synthetic world: static truth on the region's 0.05 degree grid"},
    )
    return n_files + 1


# Products written per year (daily files) can be split into one task per year.
DAILY_PRODUCTS = frozenset({"era5land", "glass_albedo", "glass_lst", "glass_modis", "esa_cci"})
WRITERS: Mapping[str, Callable[[World, Collection[int] | None], int]] = {
    "merit_dem": write_merit_dem,
    "soilgrids": write_soilgrids,
    "era5land": write_era5land,
    "glass_albedo": write_glass_albedo,
    "glass_lst": write_glass_lst,
    "glass_modis": write_glass_modis,
    "esa_cci": write_esa_cci,
    "ismn": write_ismn,
    "cosmos": write_cosmos_uk,
    "smap_cvs": write_smap_cvs,
}


def products_to_write(patterns: Mapping[str, str]) -> Iterable[str]:
    return [name for name in WRITERS if name in patterns]
