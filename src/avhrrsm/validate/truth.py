"""The product against the synthetic world's hidden truth, on every land pixel-day.

In-situ sites and the test split see few pixels and (the test split) only clear-sky days, where
the GLASS-MODIS target exists. On a synthetic run the truth is known everywhere, so the product
as users get it is scored on every land pixel-day, split by quality class: every input observed,
the day's LST gap-filled by each of the stack's methods, only albedo or ERA5-Land filled, a
short history; by wetness (truth > 0.4 m3/m3) and by year. RMSE and bias come with bootstrap
intervals over days (pixel-days of one day are not independent). The product's standard error
(``sm_uncertainty``) is scored in the same classes: the share of the truth inside its nominal
68, 90 and 95 % Gaussian intervals, its mean and root-mean-square beside the class's RMSE, and
the histogram of the truth's probability integral transform (the reliability figure).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from avhrrsm.grid import Window
from avhrrsm.io.errors import InputError, reading
from avhrrsm.learn.uncertainty import CALIBRATION_SUMS, calibration_scores, calibration_sums
from avhrrsm.metrics import rmse_bias_intervals
from avhrrsm.stacks import open_stack
from avhrrsm.variables import FILL_METHOD_NAMES, FLAG_GAP_FILLED, FLAG_SHORT_HISTORY

TRUTH_FILE = "surface_soil_moisture_truth_{year}.nc"
WET_M3M3 = 0.4
OTHER_INPUTS = ("albedo_bsa_vis", "albedo_bsa_nir", "albedo_bsa_shortwave", "era5land_swvl1")


def _classes(
    quality: np.ndarray, lst_fill: np.ndarray, other_filled: np.ndarray, truth: np.ndarray
) -> Iterator[tuple[str, np.ndarray]]:
    """(class name, mask) for one day's pixels."""
    observed = (quality & FLAG_GAP_FILLED) == 0
    yield "every input observed", observed
    for value, method in FILL_METHOD_NAMES.items():
        yield f"LST gap-filled: {method}", lst_fill == value
    yield "LST observed, albedo or ERA5-Land gap-filled", (lst_fill == 0) & other_filled
    yield "short history (first days of the record)", (quality & FLAG_SHORT_HISTORY) != 0
    yield f"wet (truth > {WET_M3M3} m3/m3)", truth > WET_M3M3
    yield "wet and LST gap-filled", (truth > WET_M3M3) & (lst_fill > 0)


@dataclass
class TruthPart:
    """Sums of the product's error against the truth, per (group, subset) key in the order
    keys were met: one row [n, sum e, sum e^2] per day (the bootstrap's groups), and the
    co-moments of (product, truth) for r (n, means, M2s, co-moment; merged with Chan's
    formulas) with the truth's range; the sums of the uncertainty's calibration
    (:data:`~avhrrsm.learn.uncertainty.CALIBRATION_SUMS`); ``total``: valid land pixel-days."""

    keys: list[tuple[str, str]] = field(default_factory=list)
    per_day: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)
    moments: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    calibration: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    total: int = 0

    def _key(self, key: tuple[str, str]) -> None:
        if key not in self.per_day:
            self.keys.append(key)
            self.per_day[key] = []
            self.calibration[key] = np.zeros(len(CALIBRATION_SUMS), np.float64)

    def add(self, other: TruthPart) -> None:
        """``other`` (later days) added to this part."""
        self.total += other.total
        for key in other.keys:
            self._key(key)
            self.per_day[key].extend(other.per_day[key])
            self.calibration[key] = self.calibration[key] + other.calibration[key]
            if key in other.moments:
                self.moments[key] = _merged_moments(self.moments.get(key), other.moments[key])

    def variables(self) -> dict[str, Any]:
        """The part as NetCDF variables (dimensions truth_key, truth_day, truth_stat)."""
        rows = [(k, row) for k, key in enumerate(self.keys) for row in self.per_day[key]]
        moments = np.full((len(self.keys), 8), np.nan)
        for k, key in enumerate(self.keys):
            if key in self.moments:
                moments[k] = self.moments[key]
        return {
            "truth_key": (
                "truth_key",
                np.array([f"{g}\t{s}" for g, s in self.keys], dtype=object),
                {
                    "long_name": "group and subset of the truth scores (tab-separated)",
                    "total_valid_land_pixel_days": int(self.total),
                },
            ),
            "truth_day_key": ("truth_day", np.array([k for k, _ in rows], np.int32)),
            "truth_day_sums": (
                ("truth_day", "truth_sum"),
                np.array([row for _, row in rows], np.float64).reshape(len(rows), 3),
                {"long_name": "per day: pixel-days, sum and sum of squares of product - truth"},
            ),
            "truth_moments": (
                ("truth_key", "truth_moment"),
                moments,
                {
                    "long_name": "n, mean product, mean truth, M2 product, M2 truth, co-moment, "
                    "min truth, max truth"
                },
            ),
            "truth_calibration": (
                ("truth_key", "truth_calibration_sum"),
                np.array([self.calibration[key] for key in self.keys], np.float64).reshape(
                    len(self.keys), len(CALIBRATION_SUMS)
                ),
                {
                    "long_name": "sums of the uncertainty's calibration against the truth: "
                    + ", ".join(CALIBRATION_SUMS)
                },
            ),
        }

    @classmethod
    def from_dataset(cls, dataset: xr.Dataset) -> TruthPart:
        part = cls()
        part.total = int(dataset["truth_key"].attrs["total_valid_land_pixel_days"])
        keys = [tuple(str(k).split("\t", 1)) for k in dataset["truth_key"].values]
        for key in keys:
            part._key(key)  # type: ignore[arg-type]
        for k, row in zip(
            dataset["truth_day_key"].values, dataset["truth_day_sums"].values, strict=True
        ):
            part.per_day[keys[int(k)]].append(np.asarray(row, np.float64))  # type: ignore[index]
        for key, moments in zip(keys, dataset["truth_moments"].values, strict=True):
            if np.isfinite(moments[0]):
                part.moments[key] = np.asarray(moments, np.float64)  # type: ignore[index]
        for key, sums in zip(keys, dataset["truth_calibration"].values, strict=True):
            part.calibration[key] = np.asarray(sums, np.float64)  # type: ignore[index]
        return part

    def scores(self, reps: int = 500, seed: int = 0) -> pd.DataFrame:
        """RMSE, bias (bootstrap intervals over days) and r per key; see :func:`truth_scores`."""
        rows = []
        for key in self.keys:
            group, subset = key
            days_array = np.stack(self.per_day[key]) if self.per_day[key] else np.zeros((0, 3))
            days_array = days_array[days_array[:, 0] > 0]
            n = int(days_array[:, 0].sum()) if len(days_array) else 0
            row: dict[str, object] = {"group": group, "subset": subset, "n_pixel_days": n}
            row["share"] = n / self.total if self.total else np.nan
            if n:
                sums = days_array.sum(axis=0)
                row["rmse"] = float(np.sqrt(sums[2] / sums[0]))
                row["bias"] = float(sums[1] / sums[0])
                (row["rmse_low"], row["rmse_high"], row["bias_low"], row["bias_high"]) = (
                    rmse_bias_intervals(days_array, reps, seed)
                )
                m = self.moments[key]
                row["r"] = float(m[5] / np.sqrt(m[3] * m[4])) if n > 2 else np.nan
                row["truth_range"] = f"{m[6]:.3f}..{m[7]:.3f}"
                row.update(calibration_scores(self.calibration[key], row["rmse"]))
            rows.append(row)
        order = {"all": 0, "class": 1, "year": 2}
        frame = pd.DataFrame(rows)
        return frame.sort_values("group", key=lambda g: g.map(order), kind="stable").reset_index(
            drop=True
        )


def _moments(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    mx, my = x.mean(), y.mean()
    dx, dy = x - mx, y - my
    return np.array(
        [x.size, mx, my, (dx * dx).sum(), (dy * dy).sum(), (dx * dy).sum(), y.min(), y.max()],
        np.float64,
    )


def _merged_moments(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    """Chan et al.'s pairwise update of two sets' co-moments."""
    if a is None:
        return b.copy()
    na, nb = a[0], b[0]
    n = na + nb
    delta_x, delta_y = b[1] - a[1], b[2] - a[2]
    return np.array(
        [
            n,
            a[1] + delta_x * nb / n,
            a[2] + delta_y * nb / n,
            a[3] + b[3] + delta_x * delta_x * na * nb / n,
            a[4] + b[4] + delta_y * delta_y * na * nb / n,
            a[5] + b[5] + delta_x * delta_y * na * nb / n,
            min(a[6], b[6]),
            max(a[7], b[7]),
        ],
        np.float64,
    )


def truth_part(
    year: int,
    product_files: Sequence[str | Path],
    stack_path: str | Path,
    truth_folder: str | Path,
    window: Window,
    land: np.ndarray,
) -> TruthPart:
    """One year's :class:`TruthPart`: the product's daily files against the truth."""
    from avhrrsm.product import read_product_day

    truth_path = Path(truth_folder) / TRUTH_FILE.format(year=year)
    if not truth_path.is_file():
        raise InputError(truth_path, "no synthetic truth for this year")
    with xr.open_dataset(truth_path) as opened:
        truth_year = opened["soil_moisture_true"].values
    names = ("lst_fill_flag", *(f"{name}_fill_flag" for name in OTHER_INPUTS))
    with open_stack(stack_path, window, names) as stack, reading(stack_path, what="input stack"):
        lst_fill = stack["lst_fill_flag"].values
        other = np.zeros(lst_fill.shape, bool)
        for name in OTHER_INPUTS:
            other |= stack[f"{name}_fill_flag"].values > 0
    files = sorted(product_files)
    if truth_year.shape != (len(files), *window.shape):
        raise InputError(
            truth_path,
            f"truth is {truth_year.shape}, the product {len(files)} x {window.shape}",
        )
    part = TruthPart()
    pairs: dict[tuple[str, str], list[np.ndarray]] = {}
    for k, path in enumerate(files):
        read = read_product_day(path)
        values, quality, sigma = read.soil_moisture, read.quality_flag, read.sm_uncertainty
        truth = truth_year[k]
        valid = land & np.isfinite(values) & np.isfinite(truth)
        error = values - truth
        part.total += int(valid.sum())
        masks = [("all", "all land pixel-days", valid), ("year", str(year), valid)]
        masks += [
            ("class", name, valid & mask)
            for name, mask in _classes(quality, lst_fill[k], other[k], truth)
        ]
        for group, subset, mask in masks:
            e = error[mask]
            key = (group, subset)
            part._key(key)
            part.per_day[key].append(np.array([e.size, e.sum(), (e**2).sum()], np.float64))
            part.calibration[key] += calibration_sums(e, sigma[mask])
            if e.size:
                pairs.setdefault(key, []).append(
                    np.stack([values[mask], truth[mask]]).astype(np.float64)
                )
    for key, chunks in pairs.items():
        both = np.concatenate(chunks, axis=1)
        part.moments[key] = _moments(both[0], both[1])
    return part


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
    ``rmse_high``, ``bias``, ``bias_low``, ``bias_high``, ``r``, ``truth_range`` and the
    uncertainty's calibration (:func:`~avhrrsm.learn.uncertainty.calibration_scores`)."""
    part = TruthPart()
    for year in sorted(product_files):
        part.add(
            truth_part(year, product_files[year], stack_paths[year], truth_folder, window, land)
        )
    return part.scores(reps, seed)
