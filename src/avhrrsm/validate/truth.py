"""The product against the synthetic world's hidden truth, on every land pixel-day.

In-situ sites and the test split see few pixels and (the test split) only clear-sky days, where
the GLASS-MODIS target exists. On a synthetic run the truth is known everywhere, so the product
as users get it is scored on every land pixel-day, split by quality class: every input observed,
the day's LST gap-filled by each of the stack's methods, only albedo or ERA5-Land filled, a
short history; by wetness (truth > 0.4 m3/m3) and by year. RMSE and bias come with bootstrap
intervals over days (pixel-days of one day are not independent).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm.grid import Window
from avhrrsm.io.errors import InputError
from avhrrsm.metrics import rmse_bias_intervals
from avhrrsm.stacks import open_stack
from avhrrsm.variables import FLAG_GAP_FILLED, FLAG_SHORT_HISTORY

TRUTH_FILE = "surface_soil_moisture_truth_{year}.nc"
WET_M3M3 = 0.4
# the stack's fill methods (its *_fill_flag values), as the classes name them
FILL_METHODS = {1: "temporal interpolation", 2: "seasonal window mean", 3: "nearest land pixel",
                4: "annual mean"}  # fmt: skip
OTHER_INPUTS = ("albedo_bsa_vis", "albedo_bsa_nir", "albedo_bsa_shortwave", "era5land_swvl1")


def _classes(
    quality: np.ndarray, lst_fill: np.ndarray, other_filled: np.ndarray, truth: np.ndarray
) -> Iterator[tuple[str, np.ndarray]]:
    """(class name, mask) for one day's pixels."""
    observed = (quality & FLAG_GAP_FILLED) == 0
    yield "every input observed", observed
    for value, method in FILL_METHODS.items():
        yield f"LST gap-filled: {method}", lst_fill == value
    yield "LST observed, albedo or ERA5-Land gap-filled", (lst_fill == 0) & other_filled
    yield "short history (first days of the record)", (quality & FLAG_SHORT_HISTORY) != 0
    yield f"wet (truth > {WET_M3M3} m3/m3)", truth > WET_M3M3
    yield "wet and LST gap-filled", (truth > WET_M3M3) & (lst_fill > 0)


def truth_scores(
    product_files: Mapping[int, Sequence[str | Path]],
    stack_paths: Mapping[int, str | Path],
    truth_folder: str | Path,
    window: Window,
    land: np.ndarray,
    reps: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """RMSE, bias (with bootstrap intervals over days) and r of the product against the truth,
    per class (see the module docstring), over all years and per year. Rows: ``group`` (class,
    or ``year``), ``subset``, ``n_pixel_days``, ``share``, ``rmse``, ``rmse_low``,
    ``rmse_high``, ``bias``, ``bias_low``, ``bias_high``, ``r``, ``truth_range``."""
    from avhrrsm.product import read_product_day

    per_day: dict[tuple[str, str], list[np.ndarray]] = {}
    pairs: dict[tuple[str, str], list[np.ndarray]] = {}
    total = 0
    for year in sorted(product_files):
        truth_path = Path(truth_folder) / TRUTH_FILE.format(year=year)
        if not truth_path.is_file():
            raise InputError(truth_path, "no synthetic truth for this year")
        with xr.open_dataset(truth_path) as opened:
            truth_year = opened["soil_moisture_true"].values
        names = ("lst_fill_flag", *(f"{name}_fill_flag" for name in OTHER_INPUTS))
        with open_stack(stack_paths[year], window, names) as stack:
            lst_fill = stack["lst_fill_flag"].values
            other = np.zeros(lst_fill.shape, bool)
            for name in OTHER_INPUTS:
                other |= stack[f"{name}_fill_flag"].values > 0
        files = sorted(product_files[year])
        if truth_year.shape != (len(files), *window.shape):
            raise InputError(
                truth_path,
                f"truth is {truth_year.shape}, the product {len(files)} x {window.shape}",
            )
        for k, path in enumerate(files):
            _, values, quality = read_product_day(path)
            truth = truth_year[k]
            valid = land & np.isfinite(values) & np.isfinite(truth)
            error = values - truth
            total += int(valid.sum())
            masks = [("all", "all land pixel-days", valid), ("year", str(year), valid)]
            masks += [
                ("class", name, valid & mask)
                for name, mask in _classes(quality, lst_fill[k], other[k], truth)
            ]
            for group, subset, mask in masks:
                e = error[mask]
                key = (group, subset)
                per_day.setdefault(key, []).append(
                    np.array([e.size, e.sum(), (e**2).sum()], np.float64)
                )
                if e.size:
                    pairs.setdefault(key, []).append(np.stack([values[mask], truth[mask]]))
    rows = []
    for (group, subset), days in per_day.items():
        days_array = np.stack(days)
        days_array = days_array[days_array[:, 0] > 0]
        n = int(days_array[:, 0].sum()) if len(days_array) else 0
        row: dict[str, object] = {"group": group, "subset": subset, "n_pixel_days": n}
        row["share"] = n / total if total else np.nan
        if n:
            sums = days_array.sum(axis=0)
            row["rmse"] = float(np.sqrt(sums[2] / sums[0]))
            row["bias"] = float(sums[1] / sums[0])
            (row["rmse_low"], row["rmse_high"], row["bias_low"], row["bias_high"]) = (
                rmse_bias_intervals(days_array, reps, seed)
            )
            both = np.concatenate(pairs[(group, subset)], axis=1)
            row["r"] = float(np.corrcoef(both[0], both[1])[0, 1]) if n > 2 else np.nan
            row["truth_range"] = f"{both[1].min():.3f}..{both[1].max():.3f}"
        rows.append(row)
    order = {"all": 0, "class": 1, "year": 2}
    frame = pd.DataFrame(rows)
    return frame.sort_values("group", key=lambda g: g.map(order), kind="stable").reset_index(
        drop=True
    )
