"""Figures and the HTML report of the validation, drawn from the results written to disk."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from avhrrsm.atomic import write_text_atomic  # noqa: E402
from avhrrsm.plotting import save_png  # noqa: E402
from avhrrsm.validate.at_sites import site_series  # noqa: E402
from avhrrsm.validate.gridded import read_regional_means  # noqa: E402

COLOURS = {"avhrrsm": "tab:blue", "era5land": "tab:orange", "esa_cci": "tab:green"}
FIGURES = {  # output key -> (title, caption)
    "boxplots": (
        "Metrics per product and period",
        "Per-site metrics per product and period (boxes: interquartile range, line: median).",
    ),
    "site_map": (
        "Map of site R",
        "Pearson R of the product at every scored site (first period with data).",
    ),
    "scatter": (
        "Scatter density",
        "Daily product against in-situ soil moisture, all sites pooled, on the compared days.",
    ),
    "timeseries": (
        "Time series at example sites",
        "In situ and the three products at one site per scale.",
    ),
    "modis_map": (
        "Consistency with GLASS-MODIS",
        "R and ubRMSE per pixel against the GLASS-MODIS target in the overlap years.",
    ),
    "homogeneity": (
        "Temporal homogeneity",
        "Monthly anomalies of product - ERA5-Land (regional mean), the Pettitt break and the "
        "AVHRR platform changes.",
    ),
}


def write_report(
    outputs: Mapping[str, str | Path],
    comparison: Mapping[str, str | Path],
    platform_changes: Sequence[str],
) -> None:
    """Every figure and the HTML page, from the files the validation wrote: ``results``,
    ``network_summary``, ``modis_consistency`` and ``intercomparison`` of ``outputs``."""
    with (
        xr.open_dataset(outputs["results"]) as results,
        xr.open_dataset(outputs["modis_consistency"]) as consistency,
    ):
        results.load()
        consistency.load()
    summary = pd.read_csv(outputs["network_summary"])
    intercomparison = json.loads(Path(outputs["intercomparison"]).read_text())
    write_figures(outputs, results, consistency, intercomparison["homogeneity"], platform_changes)
    provenance = {
        k: v for k, v in results.attrs.items() if k.startswith("avhrrsm_") or k == "model"
    }
    write_html(outputs, results, summary, intercomparison, comparison, provenance)


def write_figures(
    outputs: Mapping[str, str | Path],
    results: xr.Dataset,
    consistency: xr.Dataset,
    homogeneity: Mapping[str, Any],
    platform_changes: Sequence[str],
) -> None:
    n_sites = int(results.sizes["site"])
    frames = [site_series(results, k) for k in range(n_sites)]
    lat, lon = consistency["lat"].values, consistency["lon"].values
    half = 0.5 * abs(float(lat[1] - lat[0])) if lat.size > 1 else 0.025
    west, east = float(lon.min()) - half, float(lon.max()) + half
    south, north = float(lat.min()) - half, float(lat.max()) + half
    periods = list(results["period"].values)
    products = list(results["product"].values)
    # boxplots per metric per product per period
    figure, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for ax, metric in zip(axes, ("r", "ubrmse", "bias", "rmse"), strict=True):
        data, labels, colours = [], [], []
        for period in periods:
            for product in products:
                v = results[metric].sel(product=product, period=period).values
                data.append(v[np.isfinite(v)])
                labels.append(f"{product}\n{period}")
                colours.append(COLOURS[product])
        box = ax.boxplot(data, patch_artist=True, tick_labels=labels, showfliers=True)
        for patch, colour in zip(box["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        ax.set_title(metric + (" (m3 m-3)" if metric != "r" else ""))
        ax.tick_params(axis="x", labelsize=6, rotation=90)
    figure.tight_layout()
    save_png(figure, outputs["boxplots"])

    # map of site R
    figure, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(
        [west, east, east, west, west], [south, south, north, north, south], color="grey", lw=0.8
    )
    r_all = results["r"].sel(product="avhrrsm").values
    first = np.array(
        [row[np.isfinite(row)][0] if np.isfinite(row).any() else np.nan for row in r_all]
    )
    markers = {"point": "o", "field": "s", "3km": "v", "9km": "D", "36km": "^"}
    for scale, marker in markers.items():
        chosen = results["scale"].values == scale
        if chosen.any():
            points = ax.scatter(
                results["longitude"].values[chosen], results["latitude"].values[chosen],
                c=first[chosen], cmap="RdYlBu", vmin=0, vmax=1, marker=marker,
                edgecolor="k", label=scale,
            )  # fmt: skip
            figure.colorbar(points, ax=ax, label="R (avhrrsm)") if scale == "point" else None
    ax.legend(fontsize=7)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("Pearson R of the product per site")
    figure.tight_layout()
    save_png(figure, outputs["site_map"])

    # scatter density per product
    figure, axes = plt.subplots(1, len(products), figsize=(4.2 * len(products), 3.8), squeeze=False)
    edges = np.linspace(0, 0.6, 49)
    for ax, product in zip(axes[0], products, strict=True):
        x, y = [], []
        for site_frame in frames:
            frame = site_frame.dropna()
            x.append(frame["insitu"].to_numpy())
            y.append(frame[product].to_numpy())
        xs, ys = (np.concatenate(x), np.concatenate(y)) if x else (np.empty(0), np.empty(0))
        counts, _, _ = np.histogram2d(xs, np.clip(ys, 0, 0.6), bins=[edges, edges])
        mesh = ax.pcolormesh(
            edges, edges, np.ma.log10(np.ma.masked_equal(counts.T, 0)), cmap="viridis"
        )
        figure.colorbar(mesh, ax=ax, label="log10 count")
        ax.plot([0, 0.6], [0, 0.6], color="k", lw=0.8)
        ax.set_title(product)
        ax.set_xlabel("in situ (m3 m-3)")
        ax.set_ylabel("product (m3 m-3)")
    figure.tight_layout()
    save_png(figure, outputs["scatter"])

    # time series at example sites (the longest in-situ records, one per scale if any)
    scales = results["scale"].values
    counts = [int(frame["insitu"].notna().sum()) for frame in frames]
    order = sorted(range(n_sites), key=lambda k: (-counts[k], str(results["station"].values[k])))
    examples = []
    for scale in ("point", "field", "3km", "9km", "36km"):
        examples += [k for k in order if scales[k] == scale][:1]
    examples = examples or order[:3]
    figure, axes = plt.subplots(len(examples), 1, figsize=(10, 2.6 * len(examples)), squeeze=False)
    for ax, k in zip(axes[:, 0], examples, strict=True):
        frame = frames[k]
        insitu = frame["insitu"].dropna()
        ax.plot(insitu.index, insitu.to_numpy(), ".", ms=2, color="k", label="in situ")
        for product in products:  # daily axis: days without data show as gaps
            ax.plot(frame.index, frame[product].to_numpy(), lw=0.8, color=COLOURS[product],
                    label=product)  # fmt: skip
        depth = (
            f"{float(results['depth_from'].values[k]):g}-{float(results['depth_to'].values[k]):g} m"
        )
        ax.set_title(
            f"{results['network'].values[k]} / {results['station'].values[k]} ({scales[k]}, {depth})",
            fontsize=9,
        )
        ax.set_ylabel("m3 m-3")
        ax.legend(fontsize=7, ncol=4)
    figure.tight_layout()
    save_png(figure, outputs["timeseries"])

    # consistency maps
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    extent = (west, east, south, north)
    for ax, name, cmap, vmax in (
        (axes[0], "r", "RdYlBu", 1.0),
        (axes[1], "ubrmse", "magma_r", 0.08),
    ):
        image = ax.imshow(consistency[name].values, extent=extent, cmap=cmap, vmin=0, vmax=vmax)
        figure.colorbar(image, ax=ax, label=consistency[name].attrs["units"])
        ax.set_title(f"{name} against GLASS-MODIS")
    figure.tight_layout()
    save_png(figure, outputs["modis_map"])

    # homogeneity
    from avhrrsm.validate.homogeneity import monthly_anomalies

    regional = read_regional_means(consistency)
    anomalies = monthly_anomalies((regional["avhrrsm"] - regional["era5land"]).dropna())
    figure, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(anomalies.index, anomalies.to_numpy(), marker=".", lw=0.8)
    for date in platform_changes:
        ax.axvline(pd.Timestamp(date), color="grey", ls=":", lw=0.8)
    if homogeneity.get("break_month"):
        ax.axvline(pd.Timestamp(homogeneity["break_month"]), color="red", lw=1.2,
                   label=f"Pettitt break, p = {homogeneity['p_value']:.3g}")  # fmt: skip
        ax.legend(fontsize=8)
    ax.set_ylabel("anomaly (m3 m-3)")
    ax.set_title("product - ERA5-Land, monthly anomalies (dotted: AVHRR platform changes)")
    figure.tight_layout()
    save_png(figure, outputs["homogeneity"])


def _img(path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img src='data:image/png;base64,{data}' style='max-width:100%'>"


def write_html(
    outputs: Mapping[str, str | Path],
    results: xr.Dataset,
    summary: pd.DataFrame,
    intercomparison: Mapping[str, Any],
    comparison: Mapping[str, str | Path],
    provenance: Mapping[str, str],
) -> None:
    """One self-contained HTML page, drawn from the files the stage wrote."""
    statement = json.loads(Path(comparison["summary_json"]).read_text())["statement"]
    all_rows = summary[summary["network"] == "all"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>avhrrsm validation</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 6px}</style>",
        "</head><body><h1>avhrrsm validation report</h1>",
        f"<p>{int(results.sizes['site'])} sites ({html.escape(', '.join(f'{k}: {v}' for k, v in pd.Series(results['network'].values).value_counts().items()))}). "
        "Metrics compare each product with the in-situ series on the days all products share; "
        "x = product, y = in situ, bias = mean(x) - mean(y).</p>",
        "<h2>Overall (medians and interquartile ranges over sites)</h2>",
        all_rows.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"),
        "<h2>Per network</h2>",
        summary[summary["network"] != "all"].to_html(
            index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"
        ),
    ]
    for key, (title, caption) in FIGURES.items():
        parts += [
            f"<h2>{html.escape(title)}</h2>",
            f"<p>{html.escape(caption)}</p>",
            _img(outputs[key]),
        ]
    truth_rows = intercomparison.get("truth_scores")
    if truth_rows:
        parts += _truth_section(pd.DataFrame(truth_rows))
    listed = ("skipped_sites", "site_status", "truth_scores")
    inter = {k: v for k, v in intercomparison.items() if k not in listed}
    warnings = [
        f"<p><strong>Warning:</strong> network {html.escape(n)} has no scored site.</p>"
        for n in intercomparison.get("networks_without_scored_sites", [])
    ] + [
        f"<p><strong>Warning:</strong> no usable site from {html.escape(s)}.</p>"
        for s in intercomparison.get("sources_without_sites", [])
    ]
    parts += [
        "<h2>Intercomparison, homogeneity and what was skipped</h2>",
        f"<pre>{html.escape(json.dumps(inter, indent=2, sort_keys=True, default=str))}</pre>",
        "<h3>Every site and its status</h3>",
        *warnings,
        pd.DataFrame(
            intercomparison.get("site_status", []),
            columns=["network", "station", "scale", "status", "detail"],
        ).to_html(index=False),
        "<h2>Model comparison (training stage)</h2>",
        f"<p>{html.escape(statement)}</p>",
        _img(comparison["scatter"]),
        "<h2>Provenance</h2>",
        f"<pre>{html.escape(json.dumps(dict(provenance), indent=2, sort_keys=True))}</pre>",
        "</body></html>\n",
    ]
    write_text_atomic(Path(outputs["report"]), "\n".join(parts))


# Below this spread of the reference, a correlation (or R²) says little about skill.
NARROW_RANGE_M3M3 = 0.1


def _truth_section(scores: pd.DataFrame) -> list[str]:
    """The product against the synthetic truth on every land pixel-day, by quality class,
    wetness and year: RMSE and bias with 95 % bootstrap intervals over days."""
    table = scores[scores["n_pixel_days"] > 0].copy()
    spans = table["truth_range"].str.split("..", regex=False, expand=True).astype(float)
    narrow = (spans[1] - spans[0]) < NARROW_RANGE_M3M3
    table["RMSE (m³/m³) [95 % interval]"] = [
        f"{r:.4f} [{lo:.4f}, {hi:.4f}]"
        for r, lo, hi in zip(table["rmse"], table["rmse_low"], table["rmse_high"], strict=True)
    ]
    table["bias (m³/m³) [95 % interval]"] = [
        f"{b:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        for b, lo, hi in zip(table["bias"], table["bias_low"], table["bias_high"], strict=True)
    ]
    table["r"] = [
        "n/a: truth spans < 0.1 m³/m³" if flat else f"{r:.3f}"
        for r, flat in zip(table["r"], narrow, strict=True)
    ]
    table["share of pixel-days"] = [f"{100 * v:.1f} %" for v in table["share"]]
    shown = table.rename(columns={"subset": "pixel-days", "truth_range": "truth range (m³/m³)"})[
        [
            "pixel-days",
            "share of pixel-days",
            "RMSE (m³/m³) [95 % interval]",
            "bias (m³/m³) [95 % interval]",
            "r",
            "truth range (m³/m³)",
        ]
    ]
    return [
        "<h2>The product against the synthetic truth (every land pixel-day)</h2>",
        "<p>A synthetic run knows the truth everywhere: the product as users get it is scored on "
        "every land pixel-day, not only on clear-sky days (the test split) or at sites. Classes "
        "by the product's quality flag and the stack's LST fill flag; intervals from 500 "
        "bootstrap resamples of days. The model comparison's test-split metrics are clear-sky "
        "metrics (the target exists on clear days only).</p>",
        shown.to_html(index=False, na_rep="-"),
    ]
