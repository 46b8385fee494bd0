"""Simulated gaps on sample days (``samples.gap_simulation``), refilled by the stack's own
temporal gap filling, with gap lengths drawn from the input's real gaps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from avhrrsm.stacks import fill_gaps, observed_around
from avhrrsm.variables import ALBEDO_VARIABLES, FLAG_OBSERVED, INPUTS


@dataclass(frozen=True)
class GapSimulation:
    """Simulated gaps on sample days (``samples.gap_simulation``), filled by the stack's method."""

    fraction: float
    groups: tuple[tuple[str, ...], ...]  # inputs that gap together (the albedo bands)
    max_interp_days: int
    seasonal_window_days: int

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], filling: Mapping[str, int]
    ) -> GapSimulation:
        inputs = settings["inputs"]
        albedo = tuple(n for n in ALBEDO_VARIABLES if n in inputs)
        others = tuple((n,) for n in INPUTS if n in inputs and n not in ALBEDO_VARIABLES)
        return cls(
            fraction=float(settings["fraction"]),
            groups=((albedo,) if albedo else ()) + others,
            max_interp_days=int(filling["max_interp_days"]),
            seasonal_window_days=int(filling["seasonal_window_days"]),
        )


def gap_run_lengths(flags: np.ndarray) -> np.ndarray:
    """Lengths (days) of the runs of gap-filled days (flag > 0) in a ``(time, y, x)`` flag
    series, every pixel's runs together."""
    gap = (flags > 0).reshape(flags.shape[0], -1).T  # (pixels, time)
    padded = np.zeros((gap.shape[0], gap.shape[1] + 2), np.int8)
    padded[:, 1:-1] = gap
    change = np.diff(padded, axis=1)
    # np.nonzero runs pixel by pixel, in time order: the k-th start pairs with the k-th end
    return (np.nonzero(change == -1)[1] - np.nonzero(change == 1)[1]).astype(np.int64)


def draw_gaps(
    run_lengths: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Gap lengths and the day's offset into its gap for ``n`` simulated gaps.

    A gap-filled day lies in a gap of g days with a chance in proportion to g times the number
    of such gaps, and anywhere in it: drawn so, the simulated days are distributed over gap
    lengths and positions as the real gap-filled days are."""
    lengths, counts = np.unique(run_lengths, return_counts=True)
    weights = (lengths * counts).astype(np.float64)
    drawn = rng.choice(lengths, size=n, p=weights / weights.sum())
    return drawn, rng.integers(0, drawn)


def simulate_gap(
    values: np.ndarray,
    flags: np.ndarray,
    day: np.ndarray,
    lengths: np.ndarray,
    offsets: np.ndarray,
    max_interp_days: int,
    seasonal_window_days: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel series ``(time, n)`` with the observed values of ``lengths`` days, starting
    ``offsets`` days before ``day``, removed and refilled by the stack's temporal gap filling.

    Returns the values, the fill flags and whether each series could be refilled; only the run
    of missing days that holds the simulated gap changes (the rest keeps the stack's values),
    and a series the temporal steps cannot refill is returned unchanged."""
    n_days, n = values.shape
    days = np.arange(n_days)[:, None]
    start = day - offsets
    observed = (flags == FLAG_OBSERVED) & ~((days >= start) & (days < start + lengths))
    refilled, refilled_flags = fill_gaps(
        np.where(observed, values, np.nan)[:, None, :],
        np.ones((1, n), bool),
        max_interp_days,
        seasonal_window_days,
        spatial=False,
    )
    refilled, refilled_flags = refilled[:, 0, :], refilled_flags[:, 0, :]
    previous, following = observed_around(observed)
    columns = np.arange(n)
    run = (days > previous[day, columns]) & (days < following[day, columns])
    filled = np.isfinite(np.where(run, refilled, 0.0)).all(axis=0)
    replace = run & filled[None]
    return (
        np.where(replace, refilled, values).astype(values.dtype),
        np.where(replace, refilled_flags, flags).astype(flags.dtype),
        filled,
    )
