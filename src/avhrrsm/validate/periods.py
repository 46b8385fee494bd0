"""Validation periods as the years actually present: runs of consecutive years and their labels
(a run of 1999 and 2000-2002 plus 2015-2016 is two contiguous periods, not one 18-year series)."""

from __future__ import annotations

from collections.abc import Iterable


def year_runs(years: Iterable[int]) -> list[list[int]]:
    """The years grouped into runs of consecutive years, in order."""
    runs: list[list[int]] = []
    for year in sorted({int(y) for y in years}):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return runs


def years_label(years: Iterable[int]) -> str:
    """[1999] -> '1999'; [2000, 2001, 2002, 2015] -> '2000-2002, 2015'."""
    return ", ".join(
        str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in year_runs(years)
    )
