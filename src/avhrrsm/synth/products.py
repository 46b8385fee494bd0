"""The synthetic world's products: which writer makes each (one module per product family,
mirroring :mod:`avhrrsm.io`), and the hidden truth kept beside them for scoring.

Every product is derived from the hidden truth (:mod:`avhrrsm.synth.world`) with the errors
that make the real one imperfect. Per-day random numbers come from generators seeded with
(seed, product, day), so the bytes do not depend on the order in which days are written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from avhrrsm.io.netcdf import NcVar, write_netcdf
from avhrrsm.synth.base import World, crs_var, latlon_vars
from avhrrsm.synth.glass import write_glass_albedo, write_glass_lst
from avhrrsm.synth.glass_modis import write_glass_modis
from avhrrsm.synth.gridded import write_era5land, write_esa_cci
from avhrrsm.synth.insitu import write_cosmos_uk, write_smap_cvs
from avhrrsm.synth.ismn import write_ismn
from avhrrsm.synth.rasters import write_merit_dem, write_soilgrids


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
                **latlon_vars(lat, lon),
                "crs": crs_var(),
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
            **latlon_vars(lat, lon),
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
