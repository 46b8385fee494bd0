"""In-situ sites of the synthetic world: placing them, their point and field-scale (COSMOS)
series, shared by the ISMN, COSMOS-UK and SMAP core-site writers.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from avhrrsm.synth.base import World
from avhrrsm.synth.fields import exponential_filter

COSMOS_FIRST_YEAR = 2008  # cosmic-ray probes were not deployed before


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


def cosmos_sites(world: World) -> list[Site]:
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
