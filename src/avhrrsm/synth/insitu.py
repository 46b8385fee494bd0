"""Field and footprint references: COSMOS-UK daily site files and the SMAP core validation sites
(NSIDC-0712 matchup CSVs), read back by :mod:`avhrrsm.io.insitu`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from avhrrsm.grid import ease2_cell
from avhrrsm.synth.base import World
from avhrrsm.synth.sites import (
    COSMOS_FIRST_YEAR,
    cosmos_effective_depth_cm,
    cosmos_field_scale,
    cosmos_sites,
    hash_name,
    place_sites,
)


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
    for site in cosmos_sites(world)[0::2]:
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


SMAP_FIRST_YEAR = 2015


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
