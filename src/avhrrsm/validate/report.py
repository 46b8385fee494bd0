"""Figures and the HTML report of the validation, drawn from the files the stage wrote
(``results.nc``, ``network_summary.csv``, ``modis_consistency.nc``, ``intercomparison.json``)
and nothing else, so a report can be redrawn from an archived run.

The page opens with the key table (network x product x period: sites, and the median and
interquartile range of R, ubRMSE, bias and RMSE, with units), then the figures, the scores
against the synthetic truth where there is one, the intercomparison and homogeneity tables,
every site left out with its reason, the model comparison and the provenance.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from avhrrsm.atomic import write_text_atomic  # noqa: E402
from avhrrsm.pages import STYLE, cell_text, html_table  # noqa: E402
from avhrrsm.plotting import png_bytes, save_png  # noqa: E402
from avhrrsm.validate.at_sites import site_series  # noqa: E402
from avhrrsm.validate.gridded import read_regional_means  # noqa: E402
from avhrrsm.validate.homogeneity import monthly_anomalies  # noqa: E402
from avhrrsm.validate.periods import year_runs  # noqa: E402

COLOURS = {"avhrrsm": "tab:blue", "era5land": "tab:orange", "esa_cci": "tab:green"}
LABELS = {"avhrrsm": "avhrrsm", "era5land": "ERA5-Land", "esa_cci": "ESA CCI SM"}
SM_UNITS = "m³ m⁻³"
METRIC_TITLES = {
    "r": "Pearson R (dimensionless)",
    "ubrmse": f"ubRMSE ({SM_UNITS})",
    "bias": f"bias ({SM_UNITS})",
    "rmse": f"RMSE ({SM_UNITS})",
}
FIGURES = {  # output key -> (title, caption)
    "boxplots": (
        "Metrics per product and period",
        "Per-site metrics per product and period (boxes: interquartile range, line: median, "
        "whiskers: 1.5 IQR).",
    ),
    "site_map": (
        "Map of site R",
        "Pearson R of the product at every scored site (first period with data); the colour "
        "scale spans the 2nd to 98th percentile of the values shown.",
    ),
    "scatter": (
        "Scatter density",
        "Daily product against in-situ soil moisture, all sites pooled, on the compared days.",
    ),
    "timeseries": (
        "Time series at example sites",
        "In situ (dots) and the three products (lines) at the longest record of each scale, one "
        "panel per run of consecutive validation years.",
    ),
    "modis_map": (
        "Consistency with GLASS-MODIS",
        "R and ubRMSE per pixel against the GLASS-MODIS target in the overlap years; colour "
        "scales span the 2nd to 98th percentile.",
    ),
    "homogeneity": (
        "Temporal homogeneity",
        "Monthly anomalies of product - ERA5-Land (regional land mean) per run of consecutive "
        "years, the Pettitt break (red where significant) and the AVHRR platform changes "
        "(dotted).",
    ),
}


def write_report(outputs: Mapping[str, str | Path], comparison: Mapping[str, str | Path]) -> None:
    """Every figure and the HTML page, from the files the validation wrote: ``results``,
    ``network_summary``, ``modis_consistency`` and ``intercomparison`` of ``outputs``."""
    with (
        xr.open_dataset(outputs["results"]) as results,
        xr.open_dataset(outputs["modis_consistency"]) as consistency,
    ):
        results.load()
        consistency.load()
    summary = pd.read_csv(outputs["network_summary"], dtype={"period": str})
    intercomparison = json.loads(Path(outputs["intercomparison"]).read_text())
    write_figures(outputs, results, consistency, intercomparison["homogeneity"])
    write_html(outputs, results, summary, intercomparison, comparison)


def robust_limits(values: np.ndarray, low: float = 2, high: float = 98) -> tuple[float, float]:
    """Colour limits spanning the ``low``-``high`` percentiles of the finite values (so that
    R of 0.85-0.99 is not one colour on a 0-1 scale)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(v) for v in np.percentile(finite, [low, high]))
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    return vmin, vmax


def write_figures(
    outputs: Mapping[str, str | Path],
    results: xr.Dataset,
    consistency: xr.Dataset,
    homogeneity: Mapping[str, Any],
) -> None:
    frames = [site_series(results, k) for k in range(int(results.sizes["site"]))]
    _boxplots(outputs["boxplots"], results)
    _site_map(outputs["site_map"], results, consistency)
    _scatter(outputs["scatter"], results, frames)
    _timeseries(outputs["timeseries"], results, frames)
    _modis_map(outputs["modis_map"], consistency)
    _homogeneity(outputs["homogeneity"], consistency, homogeneity)


def _boxplots(path: str | Path, results: xr.Dataset) -> None:
    periods = [str(p) for p in results["period"].values]
    products = [str(p) for p in results["product"].values]
    figure, axes = plt.subplots(1, 4, figsize=(15, 4.4))
    width = len(products) + 1
    for ax, metric in zip(axes, METRIC_TITLES, strict=True):
        data, positions, colours = [], [], []
        for i, period in enumerate(periods):
            for j, product in enumerate(products):
                values = results[metric].sel(product=product, period=period).values
                data.append(values[np.isfinite(values)])
                positions.append(i * width + j)
                colours.append(COLOURS[product])
        box = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True)
        for patch, colour in zip(box["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        ax.set_xticks([i * width + (len(products) - 1) / 2 for i in range(len(periods))])
        ax.set_xticklabels([p.replace(", ", ",\n") for p in periods], fontsize=10)
        ax.set_title(METRIC_TITLES[metric], fontsize=11)
        ax.tick_params(axis="y", labelsize=9)
        if metric == "bias":
            ax.axhline(0.0, color="grey", lw=0.8)
    handles = [Patch(facecolor=COLOURS[p], alpha=0.6, label=LABELS[p]) for p in products]
    figure.legend(handles=handles, loc="lower center", ncol=len(products), fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    save_png(figure, path)


def _region_bounds(consistency: xr.Dataset) -> tuple[float, float, float, float]:
    lat, lon = consistency["lat"].values, consistency["lon"].values
    half = 0.5 * abs(float(lat[1] - lat[0])) if lat.size > 1 else 0.025
    return (
        float(lon.min()) - half,
        float(lat.min()) - half,
        float(lon.max()) + half,
        float(lat.max()) + half,
    )


def _site_map(path: str | Path, results: xr.Dataset, consistency: xr.Dataset) -> None:
    figure, ax = plt.subplots(figsize=(6.5, 5.2))
    west, south, east, north = _region_bounds(consistency)
    ax.plot(
        [west, east, east, west, west], [south, south, north, north, south], color="grey", lw=0.8
    )
    r_all = results["r"].sel(product="avhrrsm").values
    first = np.array(
        [row[np.isfinite(row)][0] if np.isfinite(row).any() else np.nan for row in r_all]
    )
    vmin, vmax = robust_limits(first)
    markers = {"point": "o", "field": "s", "3km": "v", "9km": "D", "36km": "^"}
    points = None
    for scale, marker in markers.items():
        chosen = (results["scale"].values == scale) & np.isfinite(first)
        if chosen.any():
            points = ax.scatter(
                results["longitude"].values[chosen], results["latitude"].values[chosen],
                c=first[chosen], cmap="viridis", vmin=vmin, vmax=vmax, marker=marker, s=55,
                edgecolor="k", label=f"{scale} ({int(chosen.sum())})",
            )  # fmt: skip
    if points is not None:
        figure.colorbar(points, ax=ax, label="Pearson R of avhrrsm (dimensionless)")
        ax.legend(fontsize=9, title="scale (sites)", title_fontsize=9)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.set_title("Pearson R of the product per site")
    figure.tight_layout()
    save_png(figure, path)


def _scatter(path: str | Path, results: xr.Dataset, frames: Sequence[pd.DataFrame]) -> None:
    products = [str(p) for p in results["product"].values]
    figure, axes = plt.subplots(1, len(products), figsize=(4.6 * len(products), 4.2), squeeze=False)
    edges = np.linspace(0, 0.6, 49)
    for ax, product in zip(axes[0], products, strict=True):
        pairs = [frame.dropna()[["insitu", product]].to_numpy() for frame in frames]
        both = np.concatenate(pairs) if pairs else np.empty((0, 2))
        counts, _, _ = np.histogram2d(both[:, 0], np.clip(both[:, 1], 0, 0.6), bins=[edges, edges])
        mesh = ax.pcolormesh(
            edges, edges, np.ma.log10(np.ma.masked_equal(counts.T, 0)), cmap="viridis"
        )
        figure.colorbar(mesh, ax=ax, label="log10 count of site-days")
        ax.plot([0, 0.6], [0, 0.6], color="k", lw=0.8)
        ax.set_title(f"{LABELS[product]} (n = {len(both):,})", fontsize=11)
        ax.set_xlabel(f"in situ ({SM_UNITS})")
        ax.set_ylabel(f"product ({SM_UNITS})")
    figure.tight_layout()
    save_png(figure, path)


def _timeseries(path: str | Path, results: xr.Dataset, frames: Sequence[pd.DataFrame]) -> None:
    products = [str(p) for p in results["product"].values]
    scales = results["scale"].values
    counts = [int(frame["insitu"].notna().sum()) for frame in frames]
    order = sorted(
        (k for k in range(len(frames)) if counts[k]),
        key=lambda k: (-counts[k], str(results["station"].values[k])),
    )
    examples = []
    for scale in ("point", "field", "3km", "9km", "36km"):
        examples += [k for k in order if scales[k] == scale][:1]
    examples = examples or order[:3]
    if not examples:
        figure, ax = plt.subplots(figsize=(10, 2))
        ax.text(0.5, 0.5, "no site with in-situ data in the validation years", ha="center")
        ax.axis("off")
        save_png(figure, path)
        return
    figure = plt.figure(figsize=(12, 2.9 * len(examples)))
    grid = figure.add_gridspec(len(examples), 1, hspace=0.55)
    for row, k in enumerate(examples):
        frame = frames[k]
        runs = [r for r in year_runs(frame.index[frame["insitu"].notna()].year)]
        cell = grid[row].subgridspec(1, len(runs), width_ratios=[len(r) for r in runs], wspace=0.06)
        depth = (
            f"{float(results['depth_from'].values[k]):g}-{float(results['depth_to'].values[k]):g} m"
        )
        title = f"{results['network'].values[k]} / {results['station'].values[k]} ({scales[k]}, {depth})"
        first_ax = None
        for c, run in enumerate(runs):
            ax = figure.add_subplot(cell[c], sharey=first_ax)
            first_ax = first_ax or ax
            part = frame[frame.index.year.isin(run)]
            for product in products:
                ax.plot(part.index, part[product].to_numpy(), lw=0.9, alpha=0.85,
                        color=COLOURS[product], label=LABELS[product])  # fmt: skip
            insitu = part["insitu"].dropna()
            ax.plot(insitu.index, insitu.to_numpy(), ".", ms=2.5, color="k", label="in situ")
            ax.set_xlim(pd.Timestamp(f"{run[0]}-01-01"), pd.Timestamp(f"{run[-1]}-12-31"))
            locator = mdates.AutoDateLocator(minticks=2, maxticks=max(3, 4 * len(run)))
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            ax.tick_params(labelsize=8)
            ax.set_title(title if c == 0 else "", fontsize=10, loc="left")
            if c == 0:
                ax.set_ylabel(SM_UNITS)
            else:
                ax.tick_params(labelleft=False)
        if row == 0:
            first_ax.legend(fontsize=8, ncol=len(products) + 1, loc="upper left")
    save_png(figure, path)


def _modis_map(path: str | Path, consistency: xr.Dataset) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    west, south, east, north = _region_bounds(consistency)
    for ax, name, cmap, label in (
        (axes[0], "r", "viridis", "Pearson R (dimensionless)"),
        (axes[1], "ubrmse", "magma_r", f"ubRMSE ({SM_UNITS})"),
    ):
        values = consistency[name].values
        if not np.isfinite(values).any():
            ax.text(0.5, 0.5, "no overlap with GLASS-MODIS", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        vmin, vmax = robust_limits(values)
        image = ax.imshow(
            values, extent=(west, east, south, north), cmap=cmap, vmin=vmin, vmax=vmax
        )
        figure.colorbar(image, ax=ax, label=label)
        ax.set_title(f"{label.split(' (')[0]} against GLASS-MODIS", fontsize=11)
        ax.set_xlabel("longitude (°E)")
        ax.set_ylabel("latitude (°N)")
    figure.tight_layout()
    save_png(figure, path)


def _homogeneity(path: str | Path, consistency: xr.Dataset, homogeneity: Mapping[str, Any]) -> None:
    regional = read_regional_means(consistency)
    difference = (regional["avhrrsm"] - regional["era5land"]).dropna()
    periods = [p for p in homogeneity["periods"] if p["months"] > 0]
    figure, axes = plt.subplots(
        1, max(1, len(periods)), figsize=(12, 3.6), squeeze=False,
        gridspec_kw={"width_ratios": [p["months"] for p in periods] or [1]},
    )  # fmt: skip
    for ax, period in zip(axes[0], periods, strict=False):
        years = range(period["first_year"], period["last_year"] + 1)
        anomalies = monthly_anomalies(difference[difference.index.year.isin(years)])
        ax.plot(anomalies.index, anomalies.to_numpy(), marker=".", lw=0.8)
        for date in homogeneity["platform_changes"]:
            if pd.Timestamp(date).year in years:
                ax.axvline(pd.Timestamp(date), color="grey", ls=":", lw=0.8)
        if period.get("break_month"):
            ax.axvline(
                pd.Timestamp(period["break_month"]),
                color="red" if period["significant"] else "grey",
                ls="-" if period["significant"] else "--",
                lw=1.2,
                label=f"Pettitt break, p = {period['p_value']:.3g}",
            )
            ax.legend(fontsize=8)
        ax.set_title(period["years"], fontsize=10)
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    axes[0][0].set_ylabel(f"anomaly ({SM_UNITS})")
    if not periods:
        axes[0][0].text(0.5, 0.5, "no months to test", ha="center")
    figure.suptitle("product - ERA5-Land, monthly anomalies", fontsize=11)
    figure.tight_layout()
    save_png(figure, path)


# --- the page -------------------------------------------------------------------------------


def _img(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt)}'>"


def _median_iqr(row: Mapping[str, Any], metric: str, digits: int) -> str:
    median = row[f"{metric}_median"]
    if not np.isfinite(median):
        return "–"
    sign = "+" if metric == "bias" else ""
    return (
        f"{median:{sign}.{digits}f} [{row[f'{metric}_q25']:{sign}.{digits}f}, "
        f"{row[f'{metric}_q75']:{sign}.{digits}f}]"
    )


def key_table(summary: pd.DataFrame) -> str:
    """Network x product x period: sites, median [IQR] of R, ubRMSE, bias, RMSE, with units
    (combinations without a scored site are left out; the site tables below say why)."""
    rows = [
        (
            row["network"],
            LABELS.get(row["product"], row["product"]),
            row["period"],
            int(row["n_sites"]),
            _median_iqr(row, "r", 2),
            _median_iqr(row, "ubrmse", 3),
            _median_iqr(row, "bias", 3),
            _median_iqr(row, "rmse", 3),
        )
        for row in summary.to_dict(orient="records")
        if row["n_sites"] > 0  # a network x period without a scored site has no row
    ]
    columns = [
        "network",
        "product",
        "period (years scored)",
        "sites",
        "R (–)",
        f"ubRMSE ({SM_UNITS})",
        f"bias ({SM_UNITS})",
        f"RMSE ({SM_UNITS})",
    ]
    return html_table(columns, rows, numeric=5)


def site_table(results: xr.Dataset) -> str:
    """Every site's avhrrsm metrics per period (n, R with its interval, ubRMSE, bias, RMSE)."""
    rows = []
    chosen = results.sel(product="avhrrsm")
    for k in range(int(results.sizes["site"])):
        for period in results["period"].values:
            block = chosen.isel(site=k).sel(period=period)
            n = float(block["n"])
            if not np.isfinite(n):
                continue
            rows.append(
                (
                    str(results["network"].values[k]),
                    str(results["station"].values[k]),
                    str(results["scale"].values[k]),
                    f"{float(results['depth_from'].values[k]):g}-{float(results['depth_to'].values[k]):g}",
                    str(period),
                    int(n),
                    f"{float(block['r']):.2f} [{float(block['r_ci_lower']):.2f}, "
                    f"{float(block['r_ci_upper']):.2f}]",
                    f"{float(block['ubrmse']):.3f}",
                    f"{float(block['bias']):+.3f}",
                    f"{float(block['rmse']):.3f}",
                )
            )
    columns = ["network", "station", "scale", "depth (m)", "period", "days", "R [95 %]"]
    columns += [f"ubRMSE ({SM_UNITS})", f"bias ({SM_UNITS})", f"RMSE ({SM_UNITS})"]
    return html_table(columns, rows, numeric=5)


def intercomparison_table(intercomparison: Mapping[str, Any]) -> str:
    coverage = intercomparison["coverage_fraction_of_land_pixel_days"]
    detail = intercomparison["spatial_detail_std_within_coarse_cell_m3m3"]
    consistency = intercomparison["modis_consistency_median"]

    def share(v: Any) -> str:
        return "–" if v is None else f"{100 * float(v):.1f} %"

    rows = [
        (
            "coverage of land pixel-days",
            share(coverage.get("avhrrsm")),
            share(coverage.get("era5land")),
            share(coverage.get("esa_cci")),
        ),
        (
            f"spatial detail: std within {detail['coarse_cell_deg']:g}° cells ({SM_UNITS})",
            cell_text(detail["avhrrsm"]),
            cell_text(detail["era5land_bilinear_on_0.05deg"]) + " (bilinear on 0.05°)",
            cell_text(detail["esa_cci"]) + " (one value per 0.25° cell)",
        ),
        (
            f"median R / ubRMSE ({SM_UNITS}) against GLASS-MODIS, {consistency['pixels']:,} pixels",
            f"{cell_text(consistency['r'])} / {cell_text(consistency['ubrmse_m3m3'])}",
            "–",
            "–",
        ),
    ]
    return html_table(["quantity", "avhrrsm", "ERA5-Land", "ESA CCI SM"], rows)


def homogeneity_table(homogeneity: Mapping[str, Any]) -> str:
    rows = [
        (
            p["years"],
            p["months"],
            cell_text(p["statistic_k"]),
            cell_text(p["p_value"]),
            "yes" if p["significant"] else "no",
            p["break_month"] or "–",
            "–" if p["shift_m3m3"] is None else f"{p['shift_m3m3']:+.4f}",
            p["nearest_platform_change"] or "–",
            "–" if p["days_to_platform_change"] is None else p["days_to_platform_change"],
            "yes" if p["attributed_to_platform_change"] else "no",
        )
        for p in homogeneity["periods"]
    ]
    columns = ["years", "months", "Pettitt K", "p", "significant", "break", f"shift ({SM_UNITS})"]
    columns += ["nearest platform change", "days to it", "attributed to it"]
    return html_table(columns, rows)


def skipped_section(intercomparison: Mapping[str, Any]) -> list[str]:
    """Counts by reason, then every skipped site, sensor and unscored site-period by name."""
    counts = sorted(intercomparison.get("skipped", {}).items())
    parts = [
        "<h2>What was left out</h2>",
        "<p>Counts by reason (readings, days, sensors, sites, files); every site, sensor and "
        "site-period is listed by name below.</p>",
        html_table(["reason", "count"], [(k.replace("_", " "), v) for k, v in counts], numeric=1),
    ]
    listings = (
        ("Skipped sites", "skipped_sites", ["network", "station", "reason", "detail"]),
        (
            "Skipped sensors",
            "skipped_sensors",
            ["network", "station", "sensor", "reason", "detail"],
        ),
        (
            "Site-periods not scored",
            "skipped_site_periods",
            ["network", "station", "sensor", "period", "reason", "detail"],
        ),
    )
    for title, key, columns in listings:
        entries = intercomparison.get(key, [])
        parts.append(f"<h3>{title} ({len(entries)})</h3>")
        if entries:
            rows = [
                [e.get(c, "").replace("_", " ") if c == "reason" else e.get(c, "") for c in columns]
                for e in entries
            ]
            parts.append(html_table(columns, rows))
        else:
            parts.append("<p>None.</p>")
    warnings = [
        f"<p class=warning><strong>Warning:</strong> network {html.escape(n)} has no scored "
        "site.</p>"
        for n in intercomparison.get("networks_without_scored_sites", [])
    ] + [
        f"<p class=warning><strong>Warning:</strong> no usable site from {html.escape(s)}.</p>"
        for s in intercomparison.get("sources_without_sites", [])
    ]
    status = intercomparison.get("site_status", [])
    columns = ["network", "station", "scale", "status", "detail"]
    parts += [
        "<h3>Every site and its status</h3>",
        *warnings,
        html_table(columns, [[row.get(c, "") for c in columns] for row in status]),
    ]
    return parts


def write_html(
    outputs: Mapping[str, str | Path],
    results: xr.Dataset,
    summary: pd.DataFrame,
    intercomparison: Mapping[str, Any],
    comparison: Mapping[str, str | Path],
) -> None:
    """One self-contained HTML page, drawn from the files the stage wrote."""
    statement = json.loads(Path(comparison["summary_json"]).read_text())["statement"]
    networks = pd.Series(results["network"].values).value_counts()
    periods_note = "; ".join(
        f"{label}: scored years of the configured period {name} ({first}-{last})"
        for label, name, first, last in zip(
            results["period"].values,
            results["period_name"].values,
            results["period_first_year"].values,
            results["period_last_year"].values,
            strict=True,
        )
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>avhrrsm validation</title>",
        f"<style>{STYLE}</style></head><body><h1>avhrrsm validation report</h1>",
        f"<p>{int(results.sizes['site'])} sites "
        f"({html.escape(', '.join(f'{k}: {v}' for k, v in networks.items()))}). Metrics compare "
        "each product with the in-situ series on the days all products share; x = product, "
        f"y = in situ, bias = mean(x) - mean(y). Periods: {html.escape(periods_note)}.</p>",
        "<h2>Key results: medians [interquartile range] over sites</h2>",
        key_table(summary),
    ]
    for key, (title, caption) in FIGURES.items():
        parts += [
            f"<h2>{html.escape(title)}</h2>",
            f"<p>{html.escape(caption)}</p>",
            _img(outputs[key], title),
        ]
    parts += [
        "<h2>Per-site metrics of avhrrsm</h2>",
        "<details><summary>Every scored site and period (R with its Fisher-z 95 % interval)"
        "</summary>",
        site_table(results),
        "</details>",
    ]
    truth_rows = intercomparison.get("truth_scores")
    if truth_rows:
        parts += _truth_section(pd.DataFrame(truth_rows))
    if comparison.get("uncertainty"):
        parts += _test_split_uncertainty(json.loads(Path(comparison["uncertainty"]).read_text()))
    parts += [
        "<h2>Intercomparison</h2>",
        intercomparison_table(intercomparison),
        "<h2>Temporal homogeneity</h2>",
        f"<p>{html.escape(intercomparison['homogeneity'].get('test', ''))}.</p>",
        homogeneity_table(intercomparison["homogeneity"]),
        *skipped_section(intercomparison),
        "<h2>Model comparison (training stage)</h2>",
        f"<p>{html.escape(statement)}</p>",
        _img(comparison["scatter"], "model comparison scatter"),
        "<h2>Provenance</h2>",
        html_table(
            ["attribute", "value"],
            sorted(
                (k, v)
                for k, v in results.attrs.items()
                if k.startswith("avhrrsm_") or k in ("model", "filters", "periods")
            ),
        ),
        "</body></html>\n",
    ]
    write_text_atomic(Path(outputs["report"]), "\n".join(parts))


# Below this spread of the reference, a correlation (or R²) says little about skill.
NARROW_RANGE_M3M3 = 0.1


def _truth_section(scores: pd.DataFrame) -> list[str]:
    """The product against the synthetic truth on every land pixel-day, by quality class,
    wetness and year: RMSE and bias with 95 % bootstrap intervals over days; the uncertainty's
    calibration in the same classes (table and reliability figure)."""
    table = scores[scores["n_pixel_days"] > 0].copy()
    if "coverage_68" not in table:  # written before the product had an uncertainty
        table = table.assign(rms_sigma=np.nan, **{f"coverage_{p}": np.nan for p in (68, 90, 95)})
    spans = table["truth_range"].str.split("..", regex=False, expand=True).astype(float)
    narrow = (spans[1] - spans[0]) < NARROW_RANGE_M3M3
    rows = [
        (
            row["subset"],
            f"{100 * row['share']:.1f} %",
            f"{row['rmse']:.4f} [{row['rmse_low']:.4f}, {row['rmse_high']:.4f}]",
            f"{row['bias']:+.4f} [{row['bias_low']:+.4f}, {row['bias_high']:+.4f}]",
            "n/a: truth spans < 0.1" if flat else f"{row['r']:.3f}",
            row["truth_range"],
            f"{row['rms_sigma']:.4f}",
            " / ".join(f"{100 * row[f'coverage_{p}']:.1f}" for p in (68, 90, 95)),
        )
        for row, flat in zip(table.to_dict(orient="records"), narrow, strict=True)
    ]
    columns = ["pixel-days", "share", f"RMSE ({SM_UNITS}) [95 %]", f"bias ({SM_UNITS}) [95 %]"]
    columns += ["R (–)", f"truth range ({SM_UNITS})", f"RMS uncertainty ({SM_UNITS})"]
    columns += ["truth inside the 68 / 90 / 95 % intervals (%)"]
    return [
        "<h2>The product against the synthetic truth (every land pixel-day)</h2>",
        "<p>A synthetic run knows the truth everywhere: the product as users get it is scored on "
        "every land pixel-day, not only on clear-sky days (the test split) or at sites. Classes "
        "by the product's quality flag and the stack's LST fill flag; intervals from 500 "
        "bootstrap resamples of days. The uncertainty (sm_uncertainty, the standard error "
        "of each value) is calibrated where its root-mean-square equals the class's RMSE and "
        "the truth falls inside the nominal Gaussian intervals (value ± 0.994, 1.645, "
        "1.960 sigma) 68, 90 and 95 % of the time.</p>",
        html_table(columns, rows, numeric=6),
        *_reliability_figure(table),
    ]


def _test_split_uncertainty(error_model: Mapping[str, Any]) -> list[str]:
    """The product model's uncertainty on the comparison's test split (held out of the fit,
    which used the validation split), per input state, from its error model file."""
    scores = error_model.get("test_scores") or {}
    if not scores:
        return []
    rows = [
        (
            name,
            row["n"],
            f"{row['rmse']:.4f}",
            f"{row['rms_sigma']:.4f}",
            " / ".join(f"{100 * row[f'coverage_{p}']:.1f}" for p in (68, 90, 95)),
        )
        for name, row in scores.items()
    ]
    columns = ["residuals", f"RMSE against the target ({SM_UNITS})"]
    columns += [f"RMS uncertainty ({SM_UNITS})", "target inside the 68 / 90 / 95 % intervals (%)"]
    return [
        "<h2>The uncertainty on the model comparison's test split</h2>",
        "<p>The product model's error model was fitted on the validation split; here it is "
        "scored on the test split (clear-sky days, where GLASS-MODIS exists), each sample with "
        "its history and again as a short history, against the GLASS-MODIS target (whose own "
        f"error, {error_model['target_error_m3m3']:g} m³ m⁻³ in the fit, the residuals carry)."
        "</p>",
        html_table(["input state", *columns], rows, numeric=4),
    ]


def _reliability_figure(table: pd.DataFrame) -> list[str]:
    """The PIT histogram of the truth under N(value, sigma²) per class with more than 1 % of
    the pixel-days (flat at 1 where calibrated), embedded in the page."""
    if "pit_histogram" not in table:
        return []
    chosen = table[(table["group"].isin(["all", "class"])) & (table["share"] > 0.01)]
    chosen = chosen[chosen["pit_histogram"].map(lambda h: isinstance(h, list) and len(h) > 0)]
    if chosen.empty:
        return []
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for row in chosen.to_dict(orient="records"):
        shares = np.asarray(row["pit_histogram"], float)
        edges = np.linspace(0, 1, shares.size + 1)
        density = np.append(shares, shares[-1]) * shares.size
        axis.step(
            edges, density, where="post", label=f"{row['subset']} ({100 * row['share']:.0f} %)"
        )
    axis.axhline(1.0, color="black", linestyle=":", linewidth=1)
    axis.set_xlabel("PIT of the truth under N(value, sm_uncertainty²) (–)")
    axis.set_ylabel("density (–)")
    axis.set_xlim(0, 1)
    axis.legend(fontsize=7, loc="upper center")
    figure.tight_layout()
    data = base64.b64encode(png_bytes(figure)).decode()
    return [
        "<h3>Reliability of the uncertainty</h3>",
        "<p>Histogram of the probability integral transform of the truth (the share of the "
        "predictive distribution below it), per class with more than 1 % of the pixel-days: "
        "flat at 1 where the uncertainty is calibrated, a U where it is too small, a hump where "
        "it is too large, tilted where the value is biased.</p>",
        f"<img src='data:image/png;base64,{data}' alt='reliability of the uncertainty'>",
    ]
