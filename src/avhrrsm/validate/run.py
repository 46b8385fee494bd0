"""The validation stage as map and reduce (:mod:`~avhrrsm.validate.parts`): the in-situ sites
read once (``sites.nc``, rule ``validation_sites``), each year's part of the product read by a
job of its own (``{year}.nc``, rule ``validation_year``), and the merge (rule ``validation``),
which writes the sites' files (``results.nc`` and ``network_summary.csv``,
:mod:`~avhrrsm.validate.at_sites`), the region's (``modis_consistency.nc`` and
``intercomparison.json``, :mod:`~avhrrsm.validate.gridded`), and the report with its figures,
drawn from those files only (:mod:`~avhrrsm.validate.report`). :func:`run_validation` does all
of it in one process."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avhrrsm import __version__
from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.days import years_days
from avhrrsm.grid import Window, region_window
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS
from avhrrsm.static import read_static_layers
from avhrrsm.validate import parts
from avhrrsm.validate.at_sites import (
    SOURCES,
    collect_sites,
    network_summary,
    score_sites,
    site_status,
    source_of,
    with_site_series,
    write_site_results,
)
from avhrrsm.validate.gridded import RegionStats, consistency_dataset, regional_means
from avhrrsm.validate.homogeneity import homogeneity_by_period
from avhrrsm.validate.sites import Site, SkipLog

LOGGER = logging.getLogger(__name__)


def validation_sites(
    output: str | Path,
    insitu: Mapping[str, str],
    static_path: str | Path,
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    provenance: Mapping[str, str],
    nsidc0712: Mapping[str, Any] | None = None,
) -> list[Site]:
    """Rule ``validation_sites``: read every in-situ input once and write ``sites.nc``."""
    window = region_window(region)
    skips = SkipLog()
    sites = collect_sites(insitu, window, settings, skips, nsidc0712)
    LOGGER.info(
        "%d sites: %s", len(sites), pd.Series([s.network for s in sites]).value_counts().to_dict()
    )
    parts.write_sites(output, sites, skips, provenance)
    return sites


def validation_year(
    output: str | Path,
    year: int,
    product_dir: str | Path,
    stack_path: str | Path,
    static_path: str | Path,
    sites_path: str | Path,
    patterns: Mapping[str, str],
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    provenance: Mapping[str, str],
    cci_invalid_flag_bits: int = CCI_INVALID_FLAG_BITS,
    truth_folder: str | Path | None = None,
    workers: int = 1,
) -> None:
    """Rule ``validation_year``: one year's part of the validation (``{year}.nc``)."""
    window = region_window(region)
    land = read_static_layers(static_path, window)["land_mask"]
    sites, _ = parts.read_sites(sites_path)
    part = parts.year_part(
        [year],
        {year: product_dir},
        {year: stack_path},
        window,
        land,
        sites,
        patterns,
        settings,
        int(cci_invalid_flag_bits),
        truth_folder,
        workers,
    )
    parts.write_year_part(output, part, window, {**provenance, "year": str(year)})


def merge_validation(
    outputs: Mapping[str, str | Path],
    sites_path: str | Path,
    year_parts: Mapping[int, str | Path],
    static_path: str | Path,
    insitu: Mapping[str, str],
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    comparison: Mapping[str, str | Path],
    provenance: Mapping[str, str],
) -> dict[str, Any]:
    """Rule ``validation``: the years' parts merged; every file of ``outputs`` written."""
    window = region_window(region)
    land = read_static_layers(static_path, window)["land_mask"]
    sites, skips = parts.read_sites(sites_path)
    coarse_deg = float(settings["coarse_cell_deg"])
    part = parts.merge_parts(
        [parts.read_year_part(year_parts[y], window, land, coarse_deg) for y in sorted(year_parts)],
        window,
        land,
        coarse_deg,
    )
    return finish_validation(
        outputs, sites, skips, part, sorted(year_parts), window, land, insitu, settings,
        comparison, provenance,
    )  # fmt: skip


def run_validation(
    outputs: Mapping[str, str | Path],
    product_dirs: Mapping[int, str | Path],
    stack_paths: Mapping[int, str | Path],
    static_path: str | Path,
    insitu: Mapping[str, str],
    patterns: Mapping[str, str],
    years: Sequence[int],
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    comparison: Mapping[str, str | Path],
    provenance: Mapping[str, str],
    cci_invalid_flag_bits: int = CCI_INVALID_FLAG_BITS,
    nsidc0712: Mapping[str, Any] | None = None,
    truth_folder: str | Path | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """The whole validation in one process (all years as one part): what the rules
    ``validation_sites``, ``validation_year`` and ``validation`` give together."""
    window = region_window(region)
    land = read_static_layers(static_path, window)["land_mask"]
    skips = SkipLog()
    sites = collect_sites(insitu, window, settings, skips, nsidc0712)
    part = parts.year_part(
        years, product_dirs, stack_paths, window, land, sites, patterns, settings,
        int(cci_invalid_flag_bits), truth_folder, workers,
    )  # fmt: skip
    return finish_validation(
        outputs, sites, skips, part, years, window, land, insitu, settings, comparison, provenance
    )


def finish_validation(
    outputs: Mapping[str, str | Path],
    sites: Sequence[Site],
    skips: SkipLog,
    part: parts.YearPart,
    years: Sequence[int],
    window: Window,
    land: np.ndarray,
    insitu: Mapping[str, str],
    settings: Mapping[str, Any],
    comparison: Mapping[str, str | Path],
    provenance: Mapping[str, str],
) -> dict[str, Any]:
    """Score the sites and the region from the validation's part of every year, write every
    file of ``outputs`` (the report last) and return the intercomparison."""
    from avhrrsm.validate import report

    days = years_days(years)
    status, unscored_networks, empty_sources, skip_counts = validate_sites(
        outputs, sites, part.series, days, insitu, settings, skips, part.file_counts, provenance
    )
    truth = part.truth.scores() if part.truth is not None else None
    intercomparison = validate_region(
        outputs, part.stats, window, land, settings, provenance, truth
    )
    intercomparison["coverage_fraction_of_land_pixel_days"]["esa_cci"] = (
        part.cci_valid / part.cci_total if part.cci_total else float("nan")
    )
    intercomparison.update(
        {
            "sites": len(sites),
            "skipped": skip_counts,
            "skipped_sites": skips.sites,
            "skipped_sensors": skips.sensors,
            "skipped_site_periods": skips.site_periods,
            "site_status": status,
            "networks_without_scored_sites": unscored_networks,
            "sources_without_sites": empty_sources,
        }
    )
    write_text_atomic(
        outputs["intercomparison"],
        json.dumps(intercomparison, indent=2, sort_keys=True, default=_json_default) + "\n",
    )
    report.write_report(outputs, comparison)
    LOGGER.info("validation: %d sites, skipped %s", len(sites), skip_counts)
    for network in unscored_networks:
        LOGGER.warning(
            "validation: network %s has no scored site (see site_status in %s)",
            network,
            outputs["intercomparison"],
        )
    for source in empty_sources:
        LOGGER.warning("validation: no usable site from %s", source)
    return intercomparison


def validate_sites(
    outputs: Mapping[str, str | Path],
    sites: Sequence[Site],
    series: Mapping[str, Sequence[pd.Series]],
    days: pd.DatetimeIndex,
    insitu: Mapping[str, str],
    settings: Mapping[str, Any],
    skips: SkipLog,
    file_counts: Mapping[str, int],
    provenance: Mapping[str, str],
) -> tuple[list[dict[str, str]], list[str], list[str], dict[str, int]]:
    """Score every site, write ``results.nc`` and ``network_summary.csv``; the sites' status,
    the networks and sources without a scored site, and the skip counts."""
    results = score_sites(
        sites,
        series,
        settings["periods"],
        int(settings["min_days"]),
        float(settings["alpha"]),
        skips,
    )
    skip_counts = {**dict(skips.counts), **file_counts}
    status, unscored_networks = site_status(sites, results, skips)
    found = {source_of(row["network"]) for row in status}
    empty_sources = [
        f"{label} ({insitu[key]})" for key, label in SOURCES.items() if key not in found
    ]
    results.attrs = {
        "Conventions": "CF-1.8",
        "title": "avhrrsm validation: per-site metrics against in-situ soil moisture",
        "featureType": "point",
        "products": json.dumps(
            {
                "avhrrsm": f"avhrrsm {__version__} daily product ({provenance.get('model', '')})",
                "era5land": "ERA5-Land swvl1 (0-7 cm), nearest 0.1 degree cell, daily mean of 24 UTC hours",
                "esa_cci": "ESA CCI SM COMBINED, nearest 0.25 degree cell, flagged values left out",
            }
        ),
        "reference_data": "ISMN (point, 0-0.05 m), COSMOS (field scale), SMAP core validation sites (9 km)",
        "metric_convention": "x = product, y = in situ; bias = mean(x) - mean(y); ubRMSE with divisor n",
        "filters": json.dumps(
            {
                k: settings[k]
                for k in (
                    "quality_flags",
                    "ismn_max_depth_m",
                    "cosmos_max_depth_m",
                    "cosmos_networks",
                    "min_obs_per_day",
                    "min_days",
                )
            }
        ),
        "periods": json.dumps(settings["periods"]),
        "temporal_matching": "UTC days; only days on which the site and every product have a value",
        "confidence_level": 1 - float(settings["alpha"]),
        "skipped": json.dumps(skip_counts, sort_keys=True),
        "skipped_sites": json.dumps(skips.sites),
        **provenance,
    }
    write_site_results(outputs["results"], with_site_series(results, sites, series, days))
    with atomic_path(outputs["network_summary"]) as tmp:
        network_summary(results).to_csv(tmp, index=False, float_format="%.6g")
    return status, unscored_networks, empty_sources, skip_counts


def validate_region(
    outputs: Mapping[str, str | Path],
    stats: RegionStats,
    window: Window,
    land: np.ndarray,
    settings: Mapping[str, Any],
    provenance: Mapping[str, str],
    truth: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write ``modis_consistency.nc``; the region's part of the intercomparison: coverage,
    spatial detail, consistency with GLASS-MODIS, homogeneity, and (synthetic runs) the scores
    against the hidden truth on every land pixel-day (``truth``, :meth:`TruthPart.scores`)."""
    maps = stats.modis_maps(int(settings["min_days"]))
    r_map, ub_map, _ = maps  # float64: the medians below come from these, not the stored float32
    regional = regional_means(stats)
    consistency = consistency_dataset(maps, regional, window, provenance)
    with atomic_path(outputs["modis_consistency"]) as tmp:
        consistency.to_netcdf(tmp, engine="netcdf4")
    homogeneity = {
        "test": "Pettitt on monthly anomalies of product - ERA5-Land (regional land mean), "
        "per run of consecutive years",
        "platform_changes": list(settings["platform_changes"]),
        "periods": homogeneity_by_period(
            regional["avhrrsm"],
            regional["era5land"],
            settings["platform_changes"],
            int(settings["platform_window_days"]),
            float(settings["alpha"]),
        ),
    }
    intercomparison: dict[str, Any] = {
        "coverage_fraction_of_land_pixel_days": {
            "avhrrsm": stats.covered / stats.land_days if stats.land_days else np.nan,
            "era5land": 1.0,
        },
        "spatial_detail_std_within_coarse_cell_m3m3": {
            "coarse_cell_deg": float(settings["coarse_cell_deg"]),
            "avhrrsm": float(np.nanmean(stats.detail["avhrrsm"])),
            "era5land_bilinear_on_0.05deg": float(np.nanmean(stats.detail["era5land"])),
            "esa_cci": 0.0,
        },
        "modis_consistency_median": {
            "r": float(np.nanmedian(r_map)) if np.isfinite(r_map).any() else None,
            "ubrmse_m3m3": float(np.nanmedian(ub_map)) if np.isfinite(ub_map).any() else None,
            "pixels": int(np.isfinite(r_map).sum()),
        },
        "homogeneity": homogeneity,
    }
    if truth is not None:
        # a synthetic run: the product against the hidden truth on every land pixel-day
        intercomparison["truth_scores"] = truth.to_dict(orient="records")
        for row in intercomparison["truth_scores"]:
            if row["group"] == "class" and row["n_pixel_days"]:
                LOGGER.info(
                    "against the truth, %s: RMSE %.4f, bias %+.4f m3/m3 (%.1f%% of pixel-days)",
                    row["subset"],
                    row["rmse"],
                    row["bias"],
                    100 * row["share"],
                )
    return intercomparison


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
