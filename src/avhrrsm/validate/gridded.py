"""Validation over the whole region from the daily product, read in blocks of days
(:func:`region_block`, added up by :meth:`RegionStats.add`): coverage, spatial detail,
consistency with the GLASS-MODIS target, the regional mean series that the homogeneity test
reads, and the product at every site."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm.grid import STEP_DEG, Window
from avhrrsm.io.chunks import check_range
from avhrrsm.io.errors import InputError, reading
from avhrrsm.product import read_product_day
from avhrrsm.stacks import open_stack
from avhrrsm.store import crs_variable, lat_lon_coords
from avhrrsm.validate.sites import Site

LOGGER = logging.getLogger(__name__)
READ_DAYS = 8  # days of ERA5-Land and GLASS-MODIS on the grid a reader holds at once


class RegionStats:
    """Streaming per-pixel sums for R and ubRMSE against GLASS-MODIS, plus coverage, spatial
    detail and the regional mean series, day by day over the daily product."""

    def __init__(self, window: Window, land: np.ndarray, coarse_px: int) -> None:
        shape = window.shape
        self.land = land
        self.coarse_px = coarse_px
        self.sums = {k: np.zeros(shape) for k in ("n", "x", "y", "xx", "yy", "xy")}
        self.covered = 0
        self.land_days = 0
        self.detail: dict[str, list[float]] = {"avhrrsm": [], "era5land": []}
        self.regional: dict[str, dict[pd.Timestamp, float]] = {"avhrrsm": {}, "era5land": {}}

    def add_day(
        self, day: pd.Timestamp, product: np.ndarray, era5land: np.ndarray, modis: np.ndarray | None
    ) -> None:
        land = self.land
        self.covered += int(np.isfinite(product[land]).sum())
        self.land_days += int(land.sum())
        self.regional["avhrrsm"][day] = float(np.nanmean(np.where(land, product, np.nan)))
        self.regional["era5land"][day] = float(np.nanmean(np.where(land, era5land, np.nan)))
        for name, values in (("avhrrsm", product), ("era5land", era5land)):
            self.detail[name].append(
                _within_cell_std(np.where(land, values, np.nan), self.coarse_px)
            )
        if modis is not None:
            both = np.isfinite(product) & np.isfinite(modis) & land
            x, y = np.where(both, product, 0.0), np.where(both, modis, 0.0)
            self.sums["n"] += both
            self.sums["x"] += x
            self.sums["y"] += y
            self.sums["xx"] += x * x
            self.sums["yy"] += y * y
            self.sums["xy"] += x * y

    def add(self, other: RegionStats) -> None:
        """The statistics of ``other`` (later days of the same region) added to these."""
        for name, values in other.sums.items():
            self.sums[name] += values
        self.covered += other.covered
        self.land_days += other.land_days
        for name in self.detail:
            self.detail[name].extend(other.detail[name])
            self.regional[name].update(other.regional[name])

    def modis_maps(self, min_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.sums
        n = s["n"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = s["x"] / n, s["y"] / n
            vx, vy = s["xx"] / n - mx**2, s["yy"] / n - my**2
            cov = s["xy"] / n - mx * my
            r = cov / np.sqrt(vx * vy)
            ub = np.sqrt(np.maximum(vx + vy - 2 * cov, 0.0))
        enough = n >= min_days
        return np.where(enough, r, np.nan), np.where(enough, ub, np.nan), n.astype(np.int32)


def _within_cell_std(values: np.ndarray, k: int) -> float:
    """Mean over coarse cells (k x k pixels, at least 2 valid) of the spatial standard deviation."""
    rows, cols = (values.shape[0] // k) * k, (values.shape[1] // k) * k
    if rows == 0 or cols == 0:
        return np.nan
    blocks = values[:rows, :cols].reshape(rows // k, k, cols // k, k).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(rows // k, cols // k, k * k)
    counts = np.isfinite(blocks).sum(axis=-1)
    filled = np.where(np.isfinite(blocks), blocks, 0.0)
    mean = filled.sum(axis=-1) / np.maximum(counts, 1)
    square = (np.where(np.isfinite(blocks), blocks - mean[..., None], 0.0) ** 2).sum(axis=-1)
    std = np.sqrt(square / np.maximum(counts, 1))
    usable = counts >= 2
    return float(std[usable].mean()) if usable.any() else np.nan


def region_block(
    files: Sequence[str | Path],
    stack_path: str | Path,
    start: int,
    stop: int,
    has_target: bool,
    window: Window,
    land: np.ndarray,
    coarse_deg: float,
    sites: Sequence[Site],
) -> tuple[RegionStats, list[pd.Series]]:
    """Days ``start:stop`` of one year: its daily product ``files`` (the whole year's, in
    order) with the year's stack (ERA5-Land on the grid and, ``has_target``, the GLASS-MODIS
    target): the region statistics of those days, and the product's series at every site (mean
    over the site's pixels)."""
    stats = RegionStats(window, land, max(2, int(round(coarse_deg / STEP_DEG))))
    site_values: list[list[float]] = [[] for _ in sites]
    days: list[pd.Timestamp] = []
    names = ("era5land_swvl1", "glass_modis_sm") if has_target else ("era5land_swvl1",)
    with open_stack(stack_path, window, names) as stack:
        for sub in range(start, stop, READ_DAYS):  # a few days of the grid in memory at once
            sub_stop = min(stop, sub + READ_DAYS)
            with reading(stack_path, what="input stack"):
                era5 = stack["era5land_swvl1"][sub:sub_stop].values
                modis = stack["glass_modis_sm"][sub:sub_stop].values if has_target else None
            check_range(era5, "era5land_swvl1", stack_path)
            if modis is not None:
                check_range(modis, "glass_modis_sm", stack_path)
            for k, path in enumerate(files[sub:sub_stop]):
                daily_modis = None if modis is None else modis[k]
                days.append(
                    _add_product_day(stats, site_values, sites, path, window, era5[k], daily_modis)
                )
    index = pd.DatetimeIndex(days, name="date")
    return stats, [pd.Series(v, index=index, dtype=np.float64) for v in site_values]


def _add_product_day(
    stats: RegionStats,
    site_values: list[list[float]],
    sites: Sequence[Site],
    path: str | Path,
    window: Window,
    era5land: np.ndarray,
    modis: np.ndarray | None,
) -> pd.Timestamp:
    """One daily product file into the statistics and the sites' series; its day."""
    read = read_product_day(path)
    day, product = read.day, read.soil_moisture
    if product.shape != window.shape:
        raise InputError(
            path, f"covers {product.shape}, the region {window.shape}", "rerun the product"
        )
    for values, site in zip(site_values, sites, strict=True):
        chosen = product[site.pixels[:, 0], site.pixels[:, 1]]
        values.append(float(np.nanmean(chosen)) if np.isfinite(chosen).any() else np.nan)
    stats.add_day(day, product, era5land, modis)
    return day


def year_has_target(stack_path: str | Path, window: Window) -> bool:
    """Whether a year's stack holds a GLASS-MODIS target (any value on every 30th day)."""
    with (
        open_stack(stack_path, window, ("glass_modis_sm",)) as stack,
        reading(stack_path, what="input stack"),
    ):
        return bool(np.isfinite(stack["glass_modis_sm"][::30].values).any())


def consistency_dataset(
    maps: tuple[np.ndarray, np.ndarray, np.ndarray],
    regional: pd.DataFrame,
    window: Window,
    provenance: Mapping[str, str],
) -> xr.Dataset:
    """``modis_consistency.nc``: R and ubRMSE per pixel against the GLASS-MODIS target and the
    days compared (``maps``, from :meth:`RegionStats.modis_maps`), and the regional daily means
    of the product and ERA5-Land (``regional``, from :func:`regional_means`) that the
    homogeneity test and its figure read."""
    r_map, ub_map, n_map = maps
    consistency = xr.Dataset(
        {
            "r": (
                ("lat", "lon"),
                r_map.astype(np.float32),
                {
                    "long_name": "Pearson R, product vs GLASS-MODIS target",
                    "units": "1",
                    "grid_mapping": "crs",
                },
            ),
            "ubrmse": (
                ("lat", "lon"),
                ub_map.astype(np.float32),
                {
                    "long_name": "ubRMSE, product vs GLASS-MODIS target",
                    "units": "m3 m-3",
                    "grid_mapping": "crs",
                },
            ),
            "n": (
                ("lat", "lon"),
                n_map,
                {"long_name": "days compared", "units": "1", "grid_mapping": "crs"},
            ),
        },
        coords=lat_lon_coords(window),
    )
    consistency["crs"] = crs_variable()
    consistency = consistency.assign_coords(
        time=("time", regional.index.values, {"standard_name": "time"}),
        source=("source", np.array(list(regional.columns), dtype=object)),
    )
    consistency["regional_mean_soil_moisture"] = (
        ("source", "time"),
        regional.to_numpy().T,
        {
            "long_name": "daily mean over the region's land pixels",
            "units": "m3 m-3",
            "comment": "avhrrsm: the daily product; era5land: ERA5-Land swvl1 on the 0.05 degree grid",
        },
    )
    consistency.attrs = {
        "Conventions": "CF-1.8",
        "title": "avhrrsm consistency with GLASS-MODIS (overlap years)",
        **provenance,
    }
    return consistency


def regional_means(stats: RegionStats) -> pd.DataFrame:
    """Daily regional means (columns avhrrsm, era5land) of one region pass, by date."""
    return pd.DataFrame(
        {name: pd.Series(stats.regional[name]).sort_index() for name in ("avhrrsm", "era5land")}
    )


def read_regional_means(consistency: xr.Dataset) -> pd.DataFrame:
    """The regional mean series of ``modis_consistency.nc`` (columns by source), by date."""
    values = consistency["regional_mean_soil_moisture"]
    return pd.DataFrame(
        {str(s): values.sel(source=s).to_series() for s in consistency["source"].values}
    ).astype(np.float64)
