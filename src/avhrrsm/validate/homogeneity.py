"""Temporal homogeneity: the Pettitt change-point test on monthly anomalies of
product-minus-reference, with breaks attributed to AVHRR platform changes.

The AVHRR record changed satellites many times; a jump in (product - ERA5-Land) at a platform
change is the signature of an inhomogeneity inherited from the inputs. The test runs on
monthly means (daily values are autocorrelated, which would overstate significance) of the
difference minus its mean seasonal cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from avhrrsm.validate.periods import year_runs, years_label


def pettitt(values: np.ndarray) -> tuple[int, float, float]:
    """Pettitt's test: (index of the last value before the change, statistic K, p-value).

    U_t = 2 sum_{i<=t} rank_i - t (n + 1); K = max |U_t|; p ~ 2 exp(-6 K^2 / (n^3 + n^2)).
    """
    values = np.asarray(values, np.float64)
    n = values.size
    if n < 3:
        return -1, 0.0, 1.0
    ranks = stats.rankdata(values)
    t = np.arange(1, n)
    u = 2.0 * np.cumsum(ranks)[:-1] - t * (n + 1)
    index = int(np.argmax(np.abs(u)))
    k = float(np.abs(u[index]))
    p = float(min(1.0, 2.0 * np.exp(-6.0 * k**2 / (n**3 + n**2))))
    return index, k, p


def monthly_anomalies(difference: pd.Series) -> pd.Series:
    """Monthly means of a daily series minus the mean of each calendar month (over all years)."""
    monthly = difference.resample("MS").mean().dropna()
    climatology = monthly.groupby(monthly.index.month).transform("mean")
    return monthly - climatology


def homogeneity_test(
    product: pd.Series,
    reference: pd.Series,
    platform_changes: Sequence[str],
    window_days: int,
    alpha: float,
) -> dict[str, Any]:
    """Pettitt on monthly anomalies of product - reference; the break, its size, and whether it
    lies within ``window_days`` of a platform change."""
    difference = (product - reference).dropna()
    anomalies = monthly_anomalies(difference)
    index, k, p = pettitt(anomalies.to_numpy())
    result: dict[str, Any] = {
        "months": int(anomalies.size),
        "statistic_k": k,
        "p_value": p,
        "significant": bool(p < alpha),
        "break_month": None,
        "shift_m3m3": None,
        "nearest_platform_change": None,
        "days_to_platform_change": None,
        "attributed_to_platform_change": False,
    }
    if index < 0:
        return result
    before, after = anomalies.iloc[: index + 1], anomalies.iloc[index + 1 :]
    break_day = anomalies.index[index + 1] if index + 1 < anomalies.size else anomalies.index[index]
    result["break_month"] = f"{break_day:%Y-%m}"
    result["shift_m3m3"] = float(after.mean() - before.mean()) if after.size else 0.0
    if platform_changes:
        changes = pd.to_datetime(list(platform_changes))
        distance = np.abs((changes - break_day).days)
        nearest = int(np.argmin(distance))
        result["nearest_platform_change"] = f"{changes[nearest]:%Y-%m-%d}"
        result["days_to_platform_change"] = int(distance[nearest])
        result["attributed_to_platform_change"] = bool(
            result["significant"] and distance[nearest] <= window_days
        )
    return result


def homogeneity_by_period(
    product: pd.Series,
    reference: pd.Series,
    platform_changes: Sequence[str],
    window_days: int,
    alpha: float,
) -> list[dict[str, Any]]:
    """:func:`homogeneity_test` on each run of consecutive years of the daily series, never
    across a gap of years (a run of 1999 and one of 2015-2016 are two series, not one): one
    result per run, with its ``years`` label."""
    difference = (product - reference).dropna()
    results = []
    for run in year_runs(difference.index.year):
        result = homogeneity_test(
            product[product.index.year.isin(run)],
            reference[reference.index.year.isin(run)],
            [d for d in platform_changes if run[0] <= pd.Timestamp(d).year <= run[-1]],
            window_days,
            alpha,
        )
        results.append(
            {"years": years_label(run), "first_year": run[0], "last_year": run[-1], **result}
        )
    return results
