"""Validation metrics on two aligned 1-D series, with analytical confidence intervals.

Argument order follows pytesmo: ``x`` is the dataset under test (the product), ``y`` the
reference (in situ), so ``bias(x, y) = mean(x) - mean(y)`` is positive where the product is
wetter. Each function takes two aligned 1-D arrays of equal length without NaN (use
:func:`aligned` first) and returns a float; the values equal pytesmo's ``pearson_r``,
``ubrmsd``, ``bias`` and ``rmsd`` (and their ``*_ci``) to 1e-10, which a test checks.
"""

from __future__ import annotations

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
