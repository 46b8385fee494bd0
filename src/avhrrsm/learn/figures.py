"""Figures of the model comparison (matplotlib, Agg; no timestamps in the files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avhrrsm.plotting import save_png  # noqa: E402


def scatter_density(
    path: Path,
    predictions: Mapping[str, np.ndarray],
    target: np.ndarray,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Predicted against GLASS-MODIS target, one 2-D histogram (log counts) per model."""
    names = list(predictions)
    columns = min(3, len(names))
    lines = int(np.ceil(len(names) / columns))
    figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.8 * lines), squeeze=False)
    edges = np.linspace(0.0, 0.6, 61)
    stats = {r["model"]: r for r in rows if r["subset"] == "all"}
    for ax, name in zip(axes.ravel(), names, strict=False):
        counts, _, _ = np.histogram2d(
            target, np.clip(predictions[name], 0, 0.6), bins=[edges, edges]
        )
        shown = np.ma.masked_equal(counts.T, 0)
        mesh = ax.pcolormesh(edges, edges, np.ma.log10(shown), cmap="viridis", shading="flat")
        ax.plot([0, 0.6], [0, 0.6], color="k", lw=0.8)
        s = stats[name]
        ax.set_title(name, fontsize=10)
        ax.text(
            0.02,
            0.97,
            f"R2 {s['r2']:.3f}\nRMSE {s['rmse_m3m3']:.4f}\nbias {s['bias_m3m3']:+.4f}\nn {s['n']}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
        ax.set_xlabel("GLASS-MODIS target (m3 m-3)")
        ax.set_ylabel("predicted (m3 m-3)")
        figure.colorbar(mesh, ax=ax, label="log10 count")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    figure.tight_layout()
    save_png(figure, path, dpi=110)


def metric_vs_length(
    path: Path,
    sweep_rows: Sequence[Mapping[str, Any]],
    sweep_model: str,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Test RMSE and R^2 of the sweep model against the sequence length, overall and wet."""
    figure, (ax_rmse, ax_r2) = plt.subplots(1, 2, figsize=(9, 3.6))
    subsets = sorted({r["subset"] for r in sweep_rows})
    for subset in subsets:
        chosen = sorted(
            (r for r in sweep_rows if r["subset"] == subset), key=lambda r: r["sequence_length"]
        )
        lengths = [r["sequence_length"] for r in chosen]
        ax_rmse.plot(lengths, [r["rmse_m3m3"] for r in chosen], marker="o", label=subset)
        ax_r2.plot(lengths, [r["r2"] for r in chosen], marker="o", label=subset)
    baseline = next(
        (r for r in rows if r["model"] == "era5land_swvl1" and r["subset"] == "all"), None
    )
    if baseline is not None:
        ax_rmse.axhline(baseline["rmse_m3m3"], color="grey", ls="--", label="ERA5-Land (all)")
    ax_rmse.set_xlabel("sequence length L (days)")
    ax_rmse.set_ylabel("test RMSE (m3 m-3)")
    ax_r2.set_xlabel("sequence length L (days)")
    ax_r2.set_ylabel("test R2")
    ax_rmse.legend(fontsize=8)
    figure.suptitle(f"{sweep_model}: metric against sequence length")
    figure.tight_layout()
    save_png(figure, path, dpi=110)


def attention_per_lag(path: Path, attention_rows: Sequence[Mapping[str, Any]]) -> None:
    """Mean attention weight against days before the sample day, one line per L."""
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    for length in sorted({r["sequence_length"] for r in attention_rows}):
        chosen = sorted(
            (r for r in attention_rows if r["sequence_length"] == length),
            key=lambda r: r["days_before"],
        )
        ax.plot(
            [r["days_before"] for r in chosen],
            [r["mean_weight"] for r in chosen],
            marker="o",
            label=f"L={length}",
        )
    if not attention_rows:
        ax.text(0.5, 0.5, "no attention model trained", ha="center", transform=ax.transAxes)
    ax.set_xlabel("days before the sample day")
    ax.set_ylabel("mean attention weight")
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    save_png(figure, path, dpi=110)
