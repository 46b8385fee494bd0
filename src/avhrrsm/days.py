"""The product's time axis: UTC calendar days, a year at a time."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def year_days(year: int, day_count: int | None = None) -> pd.DatetimeIndex:
    """The days of ``year`` (only its first ``day_count`` where given: the benchmarks)."""
    return pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")[:day_count]


def years_days(years: Iterable[int], day_count: int | None = None) -> pd.DatetimeIndex:
    """The days of ``years``, in the order given."""
    return pd.DatetimeIndex([day for year in years for day in year_days(year, day_count)])
