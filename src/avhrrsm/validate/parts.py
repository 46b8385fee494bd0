"""The validation as map and reduce: what one year of the product contributes, in a file of
its own, and the sites those years are read at.

- ``sites.nc`` (:func:`write_sites`): every usable in-situ site (metadata, daily series,
  pixels, notes) and what was skipped while reading them. Read once by every year job and by
  the merge.
- ``{year}.nc`` (:func:`year_part`, :func:`write_year_part`): for one year, the sums behind
  the GLASS-MODIS consistency maps, coverage counts, the daily regional means and spatial
  detail, the product, ERA5-Land and ESA CCI series at every site, the ESA CCI coverage
  counts and missing-file counts, and (synthetic runs) the per-day error sums and co-moments
  against the hidden truth.
- :func:`merge_parts`: the years added up in order, exactly what one pass over all years
  gives (sums regrouped by year: the same numbers to rounding, far below 1e-12).

A year job's work grows with its grid pixel-days and spreads over blocks of days
(:mod:`avhrrsm.parallel`); the merge's grows with sites x days.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm.atomic import atomic_path
from avhrrsm.days import year_days, years_days
from avhrrsm.grid import STEP_DEG, Window
from avhrrsm.io.errors import InputError
from avhrrsm.parallel import map_pieces
from avhrrsm.validate import extract
from avhrrsm.validate.gridded import RegionStats, region_block, year_has_target
from avhrrsm.validate.sites import Site, SkipLog
from avhrrsm.validate.truth import TruthPart, truth_part

SUM_NAMES = ("n", "x", "y", "xx", "yy", "xy")
SERIES_SOURCES = ("avhrrsm", "era5land", "esa_cci")
BLOCK_DAYS = 32  # a year job's pieces (avhrrsm.requests.VALIDATION_BLOCK_DAYS)


# --- sites.nc -------------------------------------------------------------------------------


def _flat_series(series: Sequence[pd.Series]) -> dict[str, np.ndarray]:
    """Per-site daily series as three flat arrays: site index, date, value."""
    index = np.concatenate([np.full(len(s), k, np.int32) for k, s in enumerate(series)] or [[]])
    dates = np.concatenate([s.index.values.astype("datetime64[ns]") for s in series] or [[]])
    values = np.concatenate([s.to_numpy(np.float64) for s in series] or [[]])
    return {
        "site": index.astype(np.int32),
        "date": dates.astype("datetime64[ns]"),
        "value": values.astype(np.float64),
    }


def _unflat_series(
    site: np.ndarray, dates: np.ndarray, values: np.ndarray, n: int, name: str | None
):
    out = []
    for k in range(n):
        chosen = site == k
        index = pd.DatetimeIndex(dates[chosen], name=name)
        out.append(pd.Series(values[chosen], index=index, dtype=np.float64))
    return out


def sites_dataset(sites: Sequence[Site], skips: SkipLog) -> xr.Dataset:
    """``sites.nc``: the sites, their daily in-situ series (flat: one row per site-day) and
    pixels (flat: one row per site-pixel), and the skip log as JSON attributes."""
    text = {
        name: np.array([str(getattr(s, name)) for s in sites], dtype=object)
        for name in ("network", "station", "sensor", "scale", "source")
    }
    numbers = {
        name: np.array([float(getattr(s, name)) for s in sites], np.float64)
        for name in ("latitude", "longitude", "depth_from", "depth_to")
    }
    flat = _flat_series([s.series for s in sites])
    pixels = np.concatenate([s.pixels.astype(np.int64) for s in sites] or [np.zeros((0, 2))])
    pixel_site = np.concatenate(
        [np.full(len(s.pixels), k, np.int32) for k, s in enumerate(sites)] or [[]]
    )
    units = {"latitude": "degrees_north", "longitude": "degrees_east"}
    dataset = xr.Dataset(
        {
            **{
                name: ("site", values, {"long_name": f"site {name}"})
                for name, values in text.items()
            },
            **{
                name: ("site", values, {"long_name": f"site {name}", "units": units.get(name, "m")})
                for name, values in numbers.items()
            },
            "notes": (
                "site",
                np.array([json.dumps(s.notes) for s in sites], dtype=object),
                {"long_name": "what was read differently or not at all (JSON list)"},
            ),
            "obs_site": ("obs", flat["site"], {"long_name": "site index of the observation"}),
            "obs_date": ("obs", flat["date"], {"long_name": "UTC day"}),
            "obs_soil_moisture": (
                "obs",
                flat["value"],
                {"long_name": "daily in-situ soil moisture", "units": "m3 m-3"},
            ),
            "pixel_site": ("pixel", pixel_site.astype(np.int32), {"long_name": "site index"}),
            "pixel_row": (
                "pixel",
                pixels[:, 0].astype(np.int32),
                {"long_name": "row in the region"},
            ),
            "pixel_col": (
                "pixel",
                pixels[:, 1].astype(np.int32),
                {"long_name": "column in the region"},
            ),
        },
        attrs={
            "title": "avhrrsm validation: the in-situ sites (read once for every year job)",
            "skipped_counts": json.dumps(dict(skips.counts)),
            "skipped_sites": json.dumps(skips.sites),
            "skipped_sensors": json.dumps(skips.sensors),
            "skipped_site_periods": json.dumps(skips.site_periods),
            "series_index_name": json.dumps([s.series.index.name for s in sites][:1]),
        },
    )
    return dataset


def write_sites(
    path: str | Path, sites: Sequence[Site], skips: SkipLog, attrs: Mapping[str, str]
) -> None:
    dataset = sites_dataset(sites, skips)
    dataset.attrs.update(attrs)
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="netcdf4")


def read_sites(path: str | Path) -> tuple[list[Site], SkipLog]:
    """The sites and the skip log of ``sites.nc``, as :func:`write_sites` was given them."""
    with xr.open_dataset(path, engine="netcdf4") as opened:
        d = opened.load()
    n = d.sizes.get("site", 0)
    names = json.loads(d.attrs.get("series_index_name", "[null]")) or [None]
    series = _unflat_series(
        d["obs_site"].values, d["obs_date"].values, d["obs_soil_moisture"].values, n, names[0]
    )
    pixel_site = d["pixel_site"].values
    pixels = np.stack([d["pixel_row"].values, d["pixel_col"].values], axis=1).astype(np.int64)
    sites = [
        Site(
            network=str(d["network"].values[k]),
            station=str(d["station"].values[k]),
            sensor=str(d["sensor"].values[k]),
            scale=str(d["scale"].values[k]),
            latitude=float(d["latitude"].values[k]),
            longitude=float(d["longitude"].values[k]),
            depth_from=float(d["depth_from"].values[k]),
            depth_to=float(d["depth_to"].values[k]),
            source=str(d["source"].values[k]),
            series=series[k],
            pixels=pixels[pixel_site == k],
            notes=list(json.loads(str(d["notes"].values[k]))),
        )
        for k in range(n)
    ]
    skips = SkipLog()
    skips.counts.update(json.loads(d.attrs["skipped_counts"]))
    skips.sites.extend(json.loads(d.attrs["skipped_sites"]))
    skips.sensors.extend(json.loads(d.attrs["skipped_sensors"]))
    skips.site_periods.extend(json.loads(d.attrs["skipped_site_periods"]))
    return sites, skips


# --- one year -------------------------------------------------------------------------------


@dataclass
class YearPart:
    """What one or more years contribute to the validation (see the module docstring)."""

    stats: RegionStats
    series: dict[str, list[pd.Series]]
    cci_valid: int = 0
    cci_total: int = 0
    file_counts: dict[str, int] = field(default_factory=dict)
    truth: TruthPart | None = None


def _region_block(piece: tuple) -> tuple[RegionStats, list[pd.Series]]:
    return region_block(*piece)


def year_part(
    years: Sequence[int],
    product_dirs: Mapping[int, str | Path],
    stack_paths: Mapping[int, str | Path],
    window: Window,
    land: np.ndarray,
    sites: Sequence[Site],
    patterns: Mapping[str, str],
    settings: Mapping[str, Any],
    cci_invalid_flag_bits: int,
    truth_folder: str | Path | None = None,
    workers: int = 1,
    day_count: int | None = None,
) -> YearPart:
    """The validation's part of ``years`` (one year in a year job): the product read in blocks
    of ``BLOCK_DAYS`` days on ``workers`` processes. ``day_count``: only the first days of
    each year (a product made with the same ``day_count``; the benchmarks)."""
    coarse_deg = float(settings["coarse_cell_deg"])
    coarse_px = max(2, int(round(coarse_deg / STEP_DEG)))
    pieces = []
    for year in sorted(years):
        files = sorted(Path(product_dirs[year]).glob("*.nc"))
        n_days = len(year_days(year, day_count))
        if len(files) != n_days:
            raise InputError(
                product_dirs[year],
                f"holds {len(files)} daily files, the year has {n_days} days",
                "rerun rule product_year for this year",
            )
        has_target = year_has_target(stack_paths[year], window)
        pieces += [
            (
                files,
                stack_paths[year],
                start,
                min(n_days, start + BLOCK_DAYS),
                has_target,
                window,
                land,
                coarse_deg,
                sites,
            )
            for start in range(0, n_days, BLOCK_DAYS)
        ]
    blocks = map_pieces(_region_block, pieces, workers)
    stats = RegionStats(window, land, coarse_px)
    for block_stats, _ in blocks:
        stats.add(block_stats)
    product_series = [_joined([series[k] for _, series in blocks]) for k in range(len(sites))]
    days = years_days(sorted(years), day_count)
    file_counts: dict[str, int] = {}
    era5_files = extract.existing_files(
        patterns["era5land"], days, file_counts, "era5land_missing_files"
    )
    cci_files = extract.existing_files(
        patterns["esa_cci"], days, file_counts, "esa_cci_missing_files"
    )
    cci_series, cci_valid, cci_total = extract.esa_cci_at_sites(
        cci_files, sites, window, land, int(cci_invalid_flag_bits)
    )
    truth = None
    if truth_folder is not None:
        truth = TruthPart()
        for year in sorted(years):
            files = sorted(Path(product_dirs[year]).glob("*.nc"))
            truth.add(truth_part(year, files, stack_paths[year], truth_folder, window, land))
    return YearPart(
        stats=stats,
        series={
            "avhrrsm": product_series,
            "era5land": extract.era5land_at_sites(era5_files, sites),
            "esa_cci": cci_series,
        },
        cci_valid=cci_valid,
        cci_total=cci_total,
        file_counts=file_counts,
        truth=truth,
    )


def year_part_dataset(part: YearPart, window: Window, attrs: Mapping[str, str]) -> xr.Dataset:
    """A :class:`YearPart` as a self-describing NetCDF dataset (``{year}.nc``)."""
    stats = part.stats
    days = pd.DatetimeIndex(sorted(stats.regional["avhrrsm"]))
    variables: dict[str, Any] = {
        f"sum_{name}": (
            ("lat", "lon"),
            stats.sums[name],
            {"long_name": f"sum of {name} over the days compared with GLASS-MODIS"},
        )
        for name in SUM_NAMES
    }
    for name in ("avhrrsm", "era5land"):
        variables[f"regional_mean_{name}"] = (
            "time",
            np.array([stats.regional[name][d] for d in days], np.float64),
            {"long_name": f"daily mean over the region's land pixels, {name}", "units": "m3 m-3"},
        )
        variables[f"detail_{name}"] = (
            "time",
            np.array(stats.detail[name], np.float64),
            {"long_name": f"spatial std within coarse cells, {name}", "units": "m3 m-3"},
        )
    for source in SERIES_SOURCES:
        flat = _flat_series(part.series[source])
        variables[f"{source}_obs_site"] = (f"{source}_obs", flat["site"])
        variables[f"{source}_obs_date"] = (f"{source}_obs", flat["date"])
        variables[f"{source}_obs_soil_moisture"] = (
            f"{source}_obs",
            flat["value"],
            {"long_name": f"{source} at the site", "units": "m3 m-3"},
        )
    if part.truth is not None:
        variables.update(part.truth.variables())
    dataset = xr.Dataset(
        variables,
        coords={
            "lat": ("lat", window.lat(), {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", window.lon(), {"units": "degrees_east", "standard_name": "longitude"}),
            "time": ("time", days.values, {"standard_name": "time"}),
        },
        attrs={
            "title": "avhrrsm validation: one year's part (merged by rule validation)",
            "covered": int(stats.covered),
            "land_days": int(stats.land_days),
            "cci_valid": int(part.cci_valid),
            "cci_total": int(part.cci_total),
            "file_counts": json.dumps(part.file_counts),
            "sites": len(part.series["avhrrsm"]),
            **attrs,
        },
    )
    return dataset


def write_year_part(
    path: str | Path, part: YearPart, window: Window, attrs: Mapping[str, str]
) -> None:
    dataset = year_part_dataset(part, window, attrs)
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="netcdf4")


def read_year_part(
    path: str | Path, window: Window, land: np.ndarray, coarse_deg: float
) -> YearPart:
    """The :class:`YearPart` of ``{year}.nc``."""
    with xr.open_dataset(path, engine="netcdf4") as opened:
        d = opened.load()
    if d["sum_n"].shape != window.shape:
        raise InputError(
            path,
            f"covers {d['sum_n'].shape}, the region {window.shape}",
            "rerun rule validation_year",
        )
    stats = RegionStats(window, land, max(2, int(round(coarse_deg / STEP_DEG))))
    stats.sums = {name: d[f"sum_{name}"].values.astype(np.float64) for name in SUM_NAMES}
    stats.covered = int(d.attrs["covered"])
    stats.land_days = int(d.attrs["land_days"])
    days = pd.DatetimeIndex(d["time"].values)
    for name in ("avhrrsm", "era5land"):
        stats.regional[name] = dict(
            zip(days, d[f"regional_mean_{name}"].values.tolist(), strict=True)
        )
        stats.detail[name] = d[f"detail_{name}"].values.tolist()
    n_sites = int(d.attrs["sites"])
    series = {
        source: _unflat_series(
            d[f"{source}_obs_site"].values,
            d[f"{source}_obs_date"].values,
            d[f"{source}_obs_soil_moisture"].values,
            n_sites,
            "date",
        )
        for source in SERIES_SOURCES
    }
    return YearPart(
        stats=stats,
        series=series,
        cci_valid=int(d.attrs["cci_valid"]),
        cci_total=int(d.attrs["cci_total"]),
        file_counts=json.loads(d.attrs["file_counts"]),
        truth=TruthPart.from_dataset(d)
        if "truth_key" in d.coords or "truth_key" in d.dims
        else None,
    )


def merge_parts(
    parts: Sequence[YearPart], window: Window, land: np.ndarray, coarse_deg: float
) -> YearPart:
    """The years' parts (in year order) added up: what :func:`year_part` of all years gives."""
    stats = RegionStats(window, land, max(2, int(round(coarse_deg / STEP_DEG))))
    merged = YearPart(stats=stats, series={s: [] for s in SERIES_SOURCES})
    truths = [p.truth for p in parts if p.truth is not None]
    if truths:
        merged.truth = TruthPart()
    n_sites = len(parts[0].series["avhrrsm"]) if parts else 0
    for part in parts:
        stats.add(part.stats)
        merged.cci_valid += part.cci_valid
        merged.cci_total += part.cci_total
        for key, count in part.file_counts.items():
            merged.file_counts[key] = merged.file_counts.get(key, 0) + count
        if part.truth is not None and merged.truth is not None:
            merged.truth.add(part.truth)
    for source in SERIES_SOURCES:
        merged.series[source] = [
            _joined([p.series[source][k] for p in parts], by_date=source == "era5land")
            for k in range(n_sites)
        ]
    return merged


def _joined(pieces: Sequence[pd.Series], by_date: bool = False) -> pd.Series:
    """Consecutive pieces of a site's series as one; ``by_date``: sorted and each date once, as
    :func:`~avhrrsm.validate.extract.era5land_at_sites` gives its series."""
    series = pd.concat(pieces) if pieces else pd.Series(dtype=np.float64)
    if by_date:
        series = series.sort_index()
    series.index = pd.DatetimeIndex(series.index, name="date")
    if by_date:
        series = series[~series.index.duplicated()]
    return series.astype(np.float64)
