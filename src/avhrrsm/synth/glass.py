"""GLASS-AVHRR albedo (8-day composites) and LST (daily) as the portal ships them: HDF4 files
in HDF-EOS2 grid layout (read back by :mod:`avhrrsm.io.glass`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

import numpy as np
import pandas as pd

from avhrrsm.io.glass import composite_start
from avhrrsm.io.layouts import GLASS_ALBEDO
from avhrrsm.io.netcdf import pack
from avhrrsm.logs import progress
from avhrrsm.synth.base import World, avhrr_platform, real_file_name
from avhrrsm.synth.hdf4 import Sds, write_glass_hdf4

LOGGER = logging.getLogger(__name__)


ALBEDO_PRODUCTION_DATE = "2019353"  # the name's production-date part of the synthetic files
LST_PRODUCTION_DATE = "2021047"


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
        path = real_file_name(world.patterns["glass_albedo"], ALBEDO_PRODUCTION_DATE, start)
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
        path = real_file_name(world.patterns["glass_lst"], LST_PRODUCTION_DATE, day)
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
