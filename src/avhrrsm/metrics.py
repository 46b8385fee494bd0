"""Every metric avhrrsm reports, in one place.

- Validation metrics on two aligned 1-D series, with analytical confidence intervals
  (:func:`bias`, :func:`rmse`, :func:`ubrmse`, :func:`pearson_r` and their ``*_ci``);
- the model comparison's :func:`regression_metrics` and its :func:`paired_rmse_difference`
  (paired bootstrap over test pixels and training seeds);
- :func:`rmse_bias_intervals`, bootstrap intervals from per-group error sums (the truth scores).

Argument order of the validation metrics follows pytesmo: ``x`` is the dataset under test (the product), ``y`` the
reference (in situ), so ``bias(x, y) = mean(x) - mean(y)`` is positive where the product is
wetter. Each function takes two aligned 1-D arrays of equal length without NaN (use
:func:`aligned` first) and returns a float; the values equal pytesmo's ``pearson_r``,
``ubrmsd``, ``bias`` and ``rmsd`` (and their ``*_ci``) to 1e-10, which a test checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def aligned(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs where both series are finite, as float64."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and aligned, got shapes {x.shape} and {y.shape}")
    both = np.isfinite(x) & np.isfinite(y)
    return x[both], y[both]


def bias(x: np.ndarray, y: np.ndarray) -> float:
    """mean(x) - mean(y)."""
    return float(np.mean(x) - np.mean(y))


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square difference, sqrt(mean((x - y)^2))."""
    return float(np.sqrt(np.mean((np.asarray(x) - np.asarray(y)) ** 2)))


def ubrmse(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased RMSE: the RMSE of the anomalies from each series' mean (divisor n)."""
    dx = np.asarray(x) - np.mean(x)
    dy = np.asarray(y) - np.mean(y)
    return float(np.sqrt(np.mean((dx - dy) ** 2)))


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation coefficient."""
    return float(stats.pearsonr(x, y)[0])


def pearson_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p-value of the Pearson correlation (t-test with n - 2 degrees of freedom)."""
    return float(stats.pearsonr(x, y)[1])


def pearson_r_ci(r: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Fisher-z confidence interval of Pearson's r: tanh(atanh(r) -+ z_{1-alpha/2}/sqrt(n-3))."""
    if n <= 3:
        return (np.nan, np.nan)
    with np.errstate(divide="ignore"):  # |r| = 1: the interval collapses onto r
        z = np.arctanh(r)
    half = stats.norm.ppf(1 - alpha / 2) / np.sqrt(n - 3)
    return (float(np.tanh(z - half)), float(np.tanh(z + half)))


def ubrmse_ci(ubrmse_value: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Chi-square confidence interval of the ubRMSE: n ubRMSE^2 / sigma^2 follows chi-square with
    n - 1 degrees of freedom (the anomalies lose one), so the bounds are
    ubRMSE sqrt(n / chi2_{n-1}(1 - alpha/2)) and ubRMSE sqrt(n / chi2_{n-1}(alpha/2))."""
    if n <= 1:
        return (np.nan, np.nan)
    lower = ubrmse_value * np.sqrt(n / stats.chi2.ppf(1 - alpha / 2, n - 1))
    upper = ubrmse_value * np.sqrt(n / stats.chi2.ppf(alpha / 2, n - 1))
    return (float(lower), float(upper))


def site_metrics(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Every metric of one site's aligned pairs (NaN pairs dropped): n, R (p, CI), ubRMSE (CI),
    bias, RMSE. With fewer than 3 pairs everything but n is NaN."""
    x, y = aligned(x, y)
    n = int(x.size)
    out = dict.fromkeys(
        ("r", "r_p_value", "r_ci_lower", "r_ci_upper", "ubrmse", "ubrmse_ci_lower",
         "ubrmse_ci_upper", "bias", "rmse"),
        np.nan,
    )  # fmt: skip
    out["n"] = n
    if n < 3:
        return out
    out["ubrmse"] = ubrmse(x, y)
    out["ubrmse_ci_lower"], out["ubrmse_ci_upper"] = ubrmse_ci(out["ubrmse"], n, alpha)
    out["bias"] = bias(x, y)
    out["rmse"] = rmse(x, y)
    if np.std(x) > 0 and np.std(y) > 0:
        out["r"] = pearson_r(x, y)
        out["r_p_value"] = pearson_p_value(x, y)
        out["r_ci_lower"], out["r_ci_upper"] = pearson_r_ci(out["r"], n, alpha)
    return out


def regression_metrics(predicted: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """n, R^2, RMSE, bias (predicted - observed) and Pearson R over pairs where both are finite."""
    predicted = np.asarray(predicted, np.float64)
    observed = np.asarray(observed, np.float64)
    both = np.isfinite(predicted) & np.isfinite(observed)
    p, o = predicted[both], observed[both]
    n = int(p.size)
    if n < 2:
        return {"n": n, "r2": np.nan, "rmse_m3m3": np.nan, "bias_m3m3": np.nan, "pearson_r": np.nan}
    residual = p - o
    total = ((o - o.mean()) ** 2).sum()
    spread = p.std() * o.std()
    return {
        "n": n,
        "r2": float(1.0 - (residual**2).sum() / total) if total > 0 else np.nan,
        "rmse_m3m3": float(np.sqrt((residual**2).mean())),
        "bias_m3m3": float(residual.mean()),
        "pearson_r": float(((p - p.mean()) * (o - o.mean())).mean() / spread)
        if spread > 0
        else np.nan,
    }


BOOTSTRAP_RESAMPLES = 1000


def paired_rmse_difference(
    first: Sequence[np.ndarray],
    second: Sequence[np.ndarray],
    target: np.ndarray,
    pixel: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean RMSE of the ``first`` model's seed replicates minus the ``second``'s on the same
    test samples, with a 95 % interval from a paired bootstrap: each resample draws test pixels
    with replacement (a pixel's samples, correlated in time, together) and one replicate of
    each model."""
    keep = np.isfinite(target)
    for predicted in (*first, *second):
        keep &= np.isfinite(predicted)
    _, group = np.unique(pixel[keep], return_inverse=True)
    n_groups = int(group.max()) + 1 if group.size else 0
    result: dict[str, Any] = {
        "pixels": n_groups,
        "samples": int(keep.sum()),
        "seeds": [len(first), len(second)],
        "resamples": resamples,
    }
    if n_groups < 2:
        return {**result, "difference_m3m3": np.nan, "low_m3m3": np.nan, "high_m3m3": np.nan}
    count = np.bincount(group, minlength=n_groups).astype(np.float64)

    def squared_errors(runs: Sequence[np.ndarray]) -> np.ndarray:  # (replicates, pixels)
        return np.stack([np.bincount(group, (p[keep] - target[keep]) ** 2, n_groups) for p in runs])

    sse_first, sse_second = squared_errors(first), squared_errors(second)
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for start in range(0, resamples, 100):  # 100 resamples at a time: bounded memory
        stop = min(resamples, start + 100)
        drawn = rng.integers(0, n_groups, (stop - start, n_groups))
        k_first = rng.integers(0, len(first), stop - start)[:, None]
        k_second = rng.integers(0, len(second), stop - start)[:, None]
        n = count[drawn].sum(axis=1)
        differences[start:stop] = np.sqrt(sse_first[k_first, drawn].sum(axis=1) / n) - np.sqrt(
            sse_second[k_second, drawn].sum(axis=1) / n
        )
    total = count.sum()
    point = float(
        np.sqrt(sse_first.sum(axis=1) / total).mean()
        - np.sqrt(sse_second.sum(axis=1) / total).mean()
    )
    low, high = np.quantile(differences, [0.025, 0.975])
    return {**result, "difference_m3m3": point, "low_m3m3": float(low), "high_m3m3": float(high)}


def rmse_bias_intervals(
    per_group: np.ndarray, reps: int, seed: int
) -> tuple[float, float, float, float]:
    """2.5/97.5 % intervals of RMSE and bias from per-group error sums (rows: n, sum e,
    sum e^2; e.g. one row per day), resampling the groups."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_group), size=(reps, len(per_group)))
    sums = per_group[picks].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(sums[:, 2] / sums[:, 0])
        bias = sums[:, 1] / sums[:, 0]
    low_r, high_r = np.nanpercentile(rmse, [2.5, 97.5])
    low_b, high_b = np.nanpercentile(bias, [2.5, 97.5])
    return float(low_r), float(high_r), float(low_b), float(high_b)
