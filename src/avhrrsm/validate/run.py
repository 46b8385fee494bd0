"""The validation stage: per-site metrics at three scales, per-network summaries, the
intercomparison with ERA5-Land and ESA CCI, consistency with GLASS-MODIS, temporal homogeneity,
and the report.

Fair comparison: at each site and period only the days on which the in-situ series and every
product (avhrrsm, ERA5-Land, ESA CCI) have a value are scored, so the products are compared on
the same days; a site with fewer than ``min_days`` such days is not scored in that period
(counted). Metrics are those of :mod:`avhrrsm.metrics` with x = product, y = in situ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm import __version__, metrics
from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.grid import STEP_DEG, Window, region_window
from avhrrsm.io.errors import InputError
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS, nsidc0712_layout
from avhrrsm.product import read_product_day
from avhrrsm.stacks import open_stack
from avhrrsm.static import read_static_layers
from avhrrsm.store import crs_variable, lat_lon_coords
from avhrrsm.validate import extract
from avhrrsm.validate.homogeneity import homogeneity_test
from avhrrsm.validate.sites import Site, SkipLog, cosmos_uk_sites, ismn_sites, smap_sites
from avhrrsm.validate.truth import truth_scores

LOGGER = logging.getLogger(__name__)
PRODUCTS = ("avhrrsm", "era5land", "esa_cci")
METRICS = (
    "n", "r", "r_p_value", "r_ci_lower", "r_ci_upper", "ubrmse", "ubrmse_ci_lower",
    "ubrmse_ci_upper", "bias", "rmse",
)  # fmt: skip
METRIC_ATTRS = {
    "n": {"long_name": "number of days compared", "units": "1"},
    "r": {"long_name": "Pearson correlation, product vs in situ", "units": "1"},
    "r_p_value": {"long_name": "two-sided p-value of r", "units": "1"},
    "r_ci_lower": {
        "long_name": "lower bound of the Fisher-z confidence interval of r",
        "units": "1",
    },
    "r_ci_upper": {
        "long_name": "upper bound of the Fisher-z confidence interval of r",
        "units": "1",
    },
    "ubrmse": {"long_name": "unbiased RMSE, product vs in situ", "units": "m3 m-3"},
    "ubrmse_ci_lower": {
        "long_name": "lower bound of the chi-square interval of ubRMSE",
        "units": "m3 m-3",
    },
    "ubrmse_ci_upper": {
        "long_name": "upper bound of the chi-square interval of ubRMSE",
        "units": "m3 m-3",
    },
    "bias": {"long_name": "bias, mean(product) - mean(in situ)", "units": "m3 m-3"},
    "rmse": {"long_name": "RMSE, product vs in situ", "units": "m3 m-3"},
}


def collect_sites(
    inputs: Mapping[str, str],
    window: Window,
    settings: Mapping[str, Any],
    skips: SkipLog,
    nsidc0712: Mapping[str, Any] | None = None,
) -> list[Site]:
    """Every usable site of the ISMN archive, the COSMOS-UK release and the NSIDC-0712 files
    (placed by the site table ``inputs['smap_cvs_sites']``; ``nsidc0712``: layout overrides)."""
    sites = []
    if Path(inputs["ismn"]).exists():
        sites += ismn_sites(inputs["ismn"], window, settings, skips)
    else:
        LOGGER.warning("no ISMN archive at %s: no point sites", inputs["ismn"])
        skips.counts["missing_ismn_archive"] += 1
    sites += cosmos_uk_sites(inputs["cosmos"], window, skips)
    sites += smap_sites(
        inputs["smap_cvs"],
        inputs.get("smap_cvs_sites"),
        window,
        skips,
        tuple(settings.get("smap_grid_km", (9,))),
        nsidc0712_layout(nsidc0712),
    )
    if not sites:
        raise InputError(
            inputs["ismn"],
            "no in-situ site lies in the region with valid data",
            "check the ISMN/COSMOS/SMAP inputs and the region (skipped sites are logged)",
        )
    return sites


SOURCES = {"ismn": "ISMN", "cosmos": "COSMOS-UK", "smap_cvs": "SMAP core sites"}


def _source_of(network: str) -> str:
    """Which input a site came from: COSMOS-UK and SMAP-CVS are networks of their own."""
    return {"COSMOS-UK": "cosmos", "SMAP-CVS": "smap_cvs"}.get(network, "ismn")


def site_status(
    sites: Sequence[Site], results: xr.Dataset, skips: SkipLog
) -> tuple[list[dict[str, str]], list[str]]:
    """Every site of every network with its status, and the networks with no scored site.

    A site is ``scored`` where it has avhrrsm metrics in at least one period; a site that was
    read but shares too few days with the products in every period is listed as such; the
    skipped ones carry the reason they were skipped for (depth, flags, region, metadata...).
    """
    scored = np.isfinite(results["rmse"].sel(product="avhrrsm").values).any(axis=-1)
    rows = [
        {
            "network": site.network,
            "station": site.station,
            "scale": site.scale,
            "status": "scored" if ok else "not_scored",
            "detail": "; ".join(
                [
                    f"{int(np.isfinite(results['rmse'].sel(product='avhrrsm').values[k]).sum())} "
                    "period(s)"
                    if ok
                    else "too few days shared with the products in every period",
                    *site.notes,
                ]
            ),
        }
        for k, (site, ok) in enumerate(zip(sites, scored, strict=True))
    ]
    rows += [
        {
            "network": entry["network"],
            "station": entry["station"],
            "scale": "",
            "status": f"skipped: {entry['reason']}",
            "detail": entry["detail"],
        }
        for entry in skips.sites
    ]
    networks = sorted({row["network"] for row in rows})
    without = [
        n for n in networks if not any(r["status"] == "scored" and r["network"] == n for r in rows)
    ]
    return rows, without


def score_sites(
    sites: Sequence[Site],
    series: Mapping[str, Sequence[pd.Series]],
    periods: Mapping[str, Sequence[int]],
    min_days: int,
    alpha: float,
    skips: SkipLog,
) -> xr.Dataset:
    """Metrics per (site, product, period) on the days all products and the site share."""
    values = np.full((len(sites), len(PRODUCTS), len(periods)), np.nan)
    table = {m: values.copy() for m in METRICS}
    for s, site in enumerate(sites):
        frame = pd.concat(
            {"insitu": site.series, **{p: series[p][s] for p in PRODUCTS}}, axis=1, join="inner"
        ).dropna()
        for q, (first, last) in enumerate(periods.values()):
            chosen = frame[(frame.index.year >= first) & (frame.index.year <= last)]
            if len(chosen) < min_days:
                skips.counts[f"site_periods_fewer_than_{min_days}_common_days"] += 1
                continue
            for p, product in enumerate(PRODUCTS):
                result = metrics.site_metrics(
                    chosen[product].to_numpy(), chosen["insitu"].to_numpy(), alpha
                )
                for key in METRICS:
                    table[key][s, p, q] = result[key]
    data_vars = {
        key: (("site", "product", "period"), table[key], METRIC_ATTRS[key]) for key in METRICS
    }
    coords = {
        "site": np.arange(len(sites)),
        "product": np.array(PRODUCTS, dtype=object),
        "period": np.array(list(periods), dtype=object),
        "network": ("site", np.array([s.network for s in sites], dtype=object)),
        "station": ("site", np.array([s.station for s in sites], dtype=object)),
        "sensor": ("site", np.array([s.sensor for s in sites], dtype=object)),
        "scale": ("site", np.array([s.scale for s in sites], dtype=object)),
        "latitude": (
            "site",
            np.array([s.latitude for s in sites]),
            {"units": "degrees_north", "standard_name": "latitude"},
        ),
        "longitude": (
            "site",
            np.array([s.longitude for s in sites]),
            {"units": "degrees_east", "standard_name": "longitude"},
        ),
        "depth_from": ("site", np.array([s.depth_from for s in sites]), {"units": "m"}),
        "depth_to": (
            "site",
            np.array([s.depth_to for s in sites]),
            {"units": "m", "long_name": "sensor depth (effective depth for cosmic-ray probes)"},
        ),
        "n_pixels": (
            "site",
            np.array([len(s.pixels) for s in sites]),
            {"long_name": "0.05 degree pixels averaged"},
        ),
        "period_first_year": ("period", np.array([v[0] for v in periods.values()])),
        "period_last_year": ("period", np.array([v[1] for v in periods.values()])),
    }
    return xr.Dataset(data_vars, coords=coords)


def network_summary(results: xr.Dataset) -> pd.DataFrame:
    """Median and interquartile range of each metric per network (and 'all') x product x period."""
    rows = []
    networks = ["all", *sorted(set(results["network"].values))]
    for network in networks:
        chosen = (
            results if network == "all" else results.where(results["network"] == network, drop=True)
        )
        for product in results["product"].values:
            for period in results["period"].values:
                block = chosen.sel(product=product, period=period)
                scored = np.isfinite(block["ubrmse"].values)
                row: dict[str, Any] = {
                    "network": network,
                    "product": product,
                    "period": period,
                    "n_sites": int(scored.sum()),
                }
                for key in ("r", "ubrmse", "bias", "rmse"):
                    v = block[key].values[scored]
                    v = v[np.isfinite(v)]
                    row[f"{key}_median"] = float(np.median(v)) if v.size else np.nan
                    row[f"{key}_q25"] = float(np.percentile(v, 25)) if v.size else np.nan
                    row[f"{key}_q75"] = float(np.percentile(v, 75)) if v.size else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


class RegionStats:
    """Streaming per-pixel sums for R and ubRMSE against GLASS-MODIS, plus coverage, spatial
    detail and the regional mean series, from one pass over the daily product."""

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


def region_pass(
    product_dirs: Mapping[int, str | Path],
    stack_paths: Mapping[int, str | Path],
    window: Window,
    land: np.ndarray,
    coarse_deg: float,
    sites: Sequence[Site],
) -> tuple[RegionStats, list[pd.Series]]:
    """One pass over every daily product file, with the year's stack (ERA5-Land on the grid and
    the GLASS-MODIS target) read in blocks of days: the region statistics, and the product's
    series at every site (mean over the site's pixels)."""
    stats = RegionStats(window, land, max(2, int(round(coarse_deg / STEP_DEG))))
    site_values: list[list[float]] = [[] for _ in sites]
    days: list[pd.Timestamp] = []
    for year in sorted(product_dirs):
        files = sorted(Path(product_dirs[year]).glob("*.nc"))
        with open_stack(stack_paths[year], window, ("era5land_swvl1", "glass_modis_sm")) as stack:
            n_days = stack.sizes["time"]
            if len(files) != n_days:
                raise InputError(
                    product_dirs[year],
                    f"holds {len(files)} daily files, the year has {n_days} days",
                    "rerun rule product_year for this year",
                )
            has_target = bool(np.isfinite(stack["glass_modis_sm"][::30].values).any())
            for start in range(0, n_days, 32):
                stop = min(n_days, start + 32)
                era5 = stack["era5land_swvl1"][start:stop].values
                modis = stack["glass_modis_sm"][start:stop].values if has_target else None
                for k, path in enumerate(files[start:stop]):
                    day, product, _ = read_product_day(path)
                    if product.shape != window.shape:
                        raise InputError(
                            path,
                            f"covers {product.shape}, the region {window.shape}",
                            "rerun the product",
                        )
                    days.append(day)
                    for values, site in zip(site_values, sites, strict=True):
                        chosen = product[site.pixels[:, 0], site.pixels[:, 1]]
                        values.append(
                            float(np.nanmean(chosen)) if np.isfinite(chosen).any() else np.nan
                        )
                    stats.add_day(day, product, era5[k], None if modis is None else modis[k])
    index = pd.DatetimeIndex(days, name="date")
    return stats, [pd.Series(v, index=index, dtype=np.float64) for v in site_values]


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
) -> dict[str, Any]:
    """Run the whole validation and write every file of ``outputs``."""
    from avhrrsm.validate import report

    window = region_window(region)
    land = read_static_layers(static_path, window)["land_mask"]
    skips = SkipLog()
    sites = collect_sites(insitu, window, settings, skips, nsidc0712)
    LOGGER.info(
        "%d sites: %s", len(sites), pd.Series([s.network for s in sites]).value_counts().to_dict()
    )
    days = pd.DatetimeIndex([d for y in years for d in pd.date_range(f"{y}-01-01", f"{y}-12-31")])
    file_counts: dict[str, int] = {}
    era5_files = extract.existing_files(
        patterns["era5land"], days, file_counts, "era5land_missing_files"
    )
    cci_files = extract.existing_files(
        patterns["esa_cci"], days, file_counts, "esa_cci_missing_files"
    )
    stats, product_series = region_pass(
        product_dirs, stack_paths, window, land, float(settings["coarse_cell_deg"]), sites
    )
    series = {
        "avhrrsm": product_series,
        "era5land": extract.era5land_at_sites(era5_files, sites),
    }
    series["esa_cci"], cci_coverage = extract.esa_cci_at_sites(
        cci_files, sites, window, land, int(cci_invalid_flag_bits)
    )
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
    found = {_source_of(row["network"]) for row in status}
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
    with atomic_path(outputs["results"]) as tmp:
        results.to_netcdf(tmp, engine="netcdf4")
    summary = network_summary(results)
    with atomic_path(outputs["network_summary"]) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.6g")

    r_map, ub_map, n_map = stats.modis_maps(int(settings["min_days"]))
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
    consistency.attrs = {
        "Conventions": "CF-1.8",
        "title": "avhrrsm consistency with GLASS-MODIS (overlap years)",
        **provenance,
    }
    with atomic_path(outputs["modis_consistency"]) as tmp:
        consistency.to_netcdf(tmp, engine="netcdf4")
    product_regional = pd.Series(stats.regional["avhrrsm"]).sort_index()
    era5_regional = pd.Series(stats.regional["era5land"]).sort_index()
    homogeneity = homogeneity_test(
        product_regional,
        era5_regional,
        settings["platform_changes"],
        int(settings["platform_window_days"]),
        float(settings["alpha"]),
    )
    intercomparison = {
        "coverage_fraction_of_land_pixel_days": {
            "avhrrsm": stats.covered / stats.land_days if stats.land_days else np.nan,
            "era5land": 1.0,
            "esa_cci": cci_coverage,
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
        "sites": len(sites),
        "skipped": skip_counts,
        "skipped_sites": skips.sites,
        "site_status": status,
        "networks_without_scored_sites": unscored_networks,
        "sources_without_sites": empty_sources,
    }
    if truth_folder is not None:
        # a synthetic run: the product against the hidden truth on every land pixel-day
        scores = truth_scores(
            {y: sorted(Path(product_dirs[y]).glob("*.nc")) for y in product_dirs},
            stack_paths,
            truth_folder,
            window,
            land,
        )
        intercomparison["truth_scores"] = scores.to_dict(orient="records")
        for row in intercomparison["truth_scores"]:
            if row["group"] == "class" and row["n_pixel_days"]:
                LOGGER.info(
                    "against the truth, %s: RMSE %.4f, bias %+.4f m3/m3 (%.1f%% of pixel-days)",
                    row["subset"],
                    row["rmse"],
                    row["bias"],
                    100 * row["share"],
                )
    write_text_atomic(
        outputs["intercomparison"],
        json.dumps(intercomparison, indent=2, sort_keys=True, default=_json_default) + "\n",
    )
    report.write_figures(
        outputs,
        results,
        sites,
        series,
        window,
        consistency,
        product_regional,
        era5_regional,
        homogeneity,
        settings,
    )
    report.write_html(outputs, results, summary, intercomparison, comparison, provenance)
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


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
