"""Validation at the sites: which sites are used, the per-site metrics on the days every
product shares, the network summaries, and ``results.nc``, the one file a report is drawn from.

Fair comparison: at each site and period only the days on which the in-situ series and every
product (avhrrsm, ERA5-Land, ESA CCI) have a value are scored, so the products are compared on
the same days; a site with fewer than ``min_days`` such days is not scored in that period
(counted). Metrics are those of :mod:`avhrrsm.metrics` with x = product, y = in situ.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm import metrics
from avhrrsm.atomic import atomic_path
from avhrrsm.grid import Window
from avhrrsm.io.errors import InputError
from avhrrsm.io.layouts import nsidc0712_layout
from avhrrsm.validate.periods import years_label
from avhrrsm.validate.sites import (
    Site,
    SkipLog,
    cosmos_uk_sites,
    ismn_sites,
    one_site_per_record,
    smap_sites,
)

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
    sites = one_site_per_record(sites, skips)
    if not sites:
        raise InputError(
            inputs["ismn"],
            "no in-situ site lies in the region with valid data",
            "check the ISMN/COSMOS/SMAP inputs and the region (skipped sites are logged)",
        )
    return sites


SOURCES = {"ismn": "ISMN", "cosmos": "COSMOS-UK", "smap_cvs": "SMAP core sites"}


def source_of(network: str) -> str:
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
    """Metrics per (site, product, period) on the days all products and the site share.

    A period is labelled by the years actually scored in it (``1999``, ``2000-2002, 2015-2016``),
    its configured name kept as the ``period_name`` coordinate; a period nobody was scored in
    keeps its configured name. Every site-period left unscored is named in ``skips``.
    """
    values = np.full((len(sites), len(PRODUCTS), len(periods)), np.nan)
    table = {m: values.copy() for m in METRICS}
    scored_years: list[set[int]] = [set() for _ in periods]
    for s, site in enumerate(sites):
        frame = pd.concat(
            {"insitu": site.series, **{p: series[p][s] for p in PRODUCTS}}, axis=1, join="inner"
        ).dropna()
        for q, (name, (first, last)) in enumerate(periods.items()):
            chosen = frame[(frame.index.year >= first) & (frame.index.year <= last)]
            if len(chosen) < min_days:
                skips.skip_site_period(
                    f"fewer_than_{min_days}_common_days",
                    site,
                    name,
                    f"{len(chosen)} day(s) shared by the site and every product",
                )
                continue
            scored_years[q] |= set(chosen.index.year)
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
        "period": np.array(
            [years_label(y) if y else name for y, name in zip(scored_years, periods, strict=True)],
            dtype=object,
        ),
        "period_name": ("period", np.array(list(periods), dtype=object)),
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


SERIES_ATTRS = {
    "in_situ_soil_moisture": {
        "long_name": "in-situ soil moisture, daily mean of UTC days (sensor, probe or site average)",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
        "units": "m3 m-3",
    },
    "soil_moisture": {
        "long_name": "product soil moisture at the site (mean over its pixels, or nearest cell)",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
        "units": "m3 m-3",
    },
}


def with_site_series(
    results: xr.Dataset,
    sites: Sequence[Site],
    series: Mapping[str, Sequence[pd.Series]],
    days: pd.DatetimeIndex,
) -> xr.Dataset:
    """``results`` with the daily series the metrics were computed from, on the validation
    days: in situ (site, time) and every product (product, site, time), float32, so that
    figures (scatter, time series) are drawn from the file alone."""
    in_situ = np.stack([s.series.reindex(days).to_numpy(np.float32) for s in sites])
    products = np.stack(
        [np.stack([x.reindex(days).to_numpy(np.float32) for x in series[p]]) for p in PRODUCTS]
    )
    return results.assign_coords(time=("time", days.values, {"standard_name": "time"})).assign(
        in_situ_soil_moisture=(("site", "time"), in_situ, SERIES_ATTRS["in_situ_soil_moisture"]),
        soil_moisture=(("product", "site", "time"), products, SERIES_ATTRS["soil_moisture"]),
    )


def site_series(results: xr.Dataset, site: int) -> pd.DataFrame:
    """The daily series of one site of ``results.nc``: columns in situ and every product."""
    frame = {"insitu": results["in_situ_soil_moisture"].isel(site=site).to_series()}
    for product in results["product"].values:
        frame[str(product)] = (
            results["soil_moisture"].sel(product=product).isel(site=site).to_series()
        )
    return pd.DataFrame(frame).astype(np.float64)


def write_site_results(path: str | Path, results: xr.Dataset) -> None:
    """``results.nc``: the series compressed, one site's days per chunk."""
    encoding = {
        name: {"zlib": True, "complevel": 4, "chunksizes": chunks}
        for name, chunks in (
            ("in_situ_soil_moisture", (1, results.sizes["time"])),
            ("soil_moisture", (1, 1, results.sizes["time"])),
        )
    }
    with atomic_path(path) as tmp:
        results.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
