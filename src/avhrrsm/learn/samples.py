"""Training sample sets drawn from the per-year stacks.

A sample is one land pixel-day with a GLASS-MODIS target: the ``stored_lags`` days of dynamic
inputs up to and including that day (crossing into the previous year's stack where the day is
early in January), the static layers of the pixel, and the target.

Leak-free split, by space and optionally by time: the region is cut into square blocks of
``block_deg`` degrees on the global grid; whole blocks go to train, validation or test (ranked
by a seeded hash, so each split gets its share of blocks); pixels within ``guard_pixels`` of a
block of another split are left out, so that no two splits hold neighbouring, correlated
pixels. ``holdout_years`` put every sample of those years in the test split. A pixel's series
therefore never appears in two splits within a year.

Stratified drawing: in the train and validation splits the wet regime (target above
``wet_threshold``) is drawn at least at ``wet_min_fraction`` of the samples where enough wet
pixel-days exist (the rest from the dry regime); the test split is a simple random sample, so
that test metrics describe the real distribution. Counts are allocated to tiles in proportion
to their candidates (largest remainders) and drawn per tile with a generator seeded by
(seed, year, tile, stratum), so the set is the same whatever the machine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.grid import STEP_DEG, Window, region_window, tiles
from avhrrsm.io.errors import InputError, reading
from avhrrsm.logs import progress
from avhrrsm.stacks import fill_gaps, gap_filling_settings, open_stack, open_year_stacks
from avhrrsm.static import read_static_layers
from avhrrsm.variables import (
    DYNAMIC_FEATURES,
    DYNAMIC_UNITS,
    EXCLUDED,
    FILL_INDICATORS,
    FLAG_OBSERVED,
    INPUTS,
    REGIMES,
    SAMPLE_ATTRS,
    SPLITS,
    STATIC_FEATURES,
    STATIC_UNITS,
    TARGET,
    TEST,
    TRAIN,
    VALIDATION,
)

LOGGER = logging.getLogger(__name__)
# what sampling reads of a stack: the inputs, their fill flags and the target
STACK_VARIABLES = (*INPUTS, *(f"{name}_fill_flag" for name in INPUTS), TARGET)


def _hash_uniform(keys: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per integer key, from a SplitMix64 mix of (key, seed)."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def block_split_map(
    window: Window,
    block_deg: float,
    fractions: Mapping[str, float],
    seed: int,
    guard_pixels: int,
    wetness: np.ndarray | None = None,
) -> np.ndarray:
    """Split of every pixel of ``window`` (int8: 0 train, 1 validation, 2 test, -1 guard).

    Blocks are squares of the global grid (a block is the same block in every run). With
    ``wetness`` (per pixel, e.g. the fraction of wet target days; NaN over water) the blocks
    are stratified: ranked by their mean wetness, cut into consecutive groups, shuffled within
    each group by the seed, and handed out so that each split's share of blocks keeps up with
    its fraction. So every split sees wet and dry blocks; without ``wetness`` the ranking is the
    seeded hash alone. Each split gets at least one block.
    """
    block_px = max(1, int(round(block_deg / STEP_DEG)))
    rows = np.arange(window.row_start, window.row_stop) // block_px
    cols = np.arange(window.col_start, window.col_stop) // block_px
    block_rows, block_cols = np.unique(rows), np.unique(cols)
    row_index = np.searchsorted(block_rows, rows)
    col_index = np.searchsorted(block_cols, cols)
    n_blocks = block_rows.size * block_cols.size
    if n_blocks < len(SPLITS):
        raise ValueError(
            f"the region holds {n_blocks} block(s) of {block_deg} degrees; at least 3 are needed "
            "for train, validation and test; lower samples.block_deg"
        )
    keys = (block_rows[:, None] * 10_000 + block_cols[None, :]).ravel()
    noise = _hash_uniform(keys, seed)
    if wetness is None:
        order = np.argsort(noise, kind="stable")
    else:
        flat_block = (row_index[:, None] * block_cols.size + col_index[None, :]).ravel()
        values = wetness.ravel()
        finite = np.isfinite(values)
        sums = np.bincount(flat_block[finite], values[finite], minlength=n_blocks)
        counts = np.bincount(flat_block[finite], minlength=n_blocks)
        block_wetness = np.where(counts > 0, sums / np.maximum(counts, 1), -1.0)
        group_size = int(np.ceil(1.0 / min(fractions.values())))
        ranked = np.lexsort((noise, block_wetness))
        group = np.empty(n_blocks, np.int64)
        group[ranked] = np.arange(n_blocks) // group_size
        order = np.lexsort((noise, group))  # groups in wetness order, shuffled within
    targets = np.array([fractions[name] for name in SPLITS], np.float64)
    assigned = np.zeros(len(SPLITS), np.int64)
    block_split = np.empty(n_blocks, np.int8)
    for position, block in enumerate(order):
        missing = [s for s in range(len(SPLITS)) if assigned[s] == 0]
        if len(missing) >= n_blocks - position:  # the last blocks go to empty splits
            choice = missing[0]
        else:
            choice = int(np.argmax(targets * (position + 1) - assigned))
        block_split[block] = choice
        assigned[choice] += 1
    split = block_split.reshape(block_rows.size, block_cols.size)[
        row_index[:, None], col_index[None, :]
    ]
    if guard_pixels > 0:
        structure = np.ones((2 * guard_pixels + 1,) * 2, bool)
        guarded = np.zeros(split.shape, bool)
        for value in (TRAIN, VALIDATION, TEST):
            others = ndimage.binary_dilation(split != value, structure, border_value=0)
            guarded |= (split == value) & others
        split = np.where(guarded, EXCLUDED, split).astype(np.int8)
    return split


def wet_day_fraction(
    stack_paths: Sequence[str | Path], land: np.ndarray, wet_threshold: float, window: Window
) -> np.ndarray:
    """Per pixel: the fraction of days with a target whose target exceeds ``wet_threshold``."""
    wet = np.zeros(window.shape, np.int64)
    valid = np.zeros(window.shape, np.int64)
    for path in stack_paths:
        stack = open_stack(path, window, (TARGET,))
        for start in range(0, stack.sizes["time"], 32):
            target = stack[TARGET][start : start + 32].values
            wet += (target > wet_threshold).sum(axis=0)
            valid += np.isfinite(target).sum(axis=0)
        stack.close()
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where((valid > 0) & land, wet / np.maximum(valid, 1), np.nan)
    return fraction.astype(np.float32)


def build_split_map(
    out_path: str | Path,
    stack_paths: Sequence[str | Path],
    static_path: str | Path,
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    seed: int,
    global_attrs: Mapping[str, str],
) -> dict[str, int]:
    """Write the split map (and the wet-day fraction it is stratified on) as a CF raster."""
    from avhrrsm.store import crs_variable, lat_lon_coords

    window = region_window(region)
    land = read_static_layers(static_path, window)["land_mask"]
    wetness = wet_day_fraction(stack_paths, land, float(settings["wet_threshold"]), window)
    split = block_split_map(
        window,
        float(settings["block_deg"]),
        settings["split_fractions"],
        seed,
        int(settings["guard_pixels"]),
        wetness,
    )
    split = np.where(land, split, EXCLUDED).astype(np.int8)
    dataset = xr.Dataset(
        {
            "split": (
                ("lat", "lon"),
                split,
                {
                    "long_name": "train / validation / test split of the pixel",
                    "flag_values": np.array([-1, 0, 1, 2], np.int8),
                    "flag_meanings": "excluded_water_or_guard train validation test",
                    "grid_mapping": "crs",
                },
            ),
            "wet_day_fraction": (
                ("lat", "lon"),
                wetness,
                {
                    "long_name": f"fraction of target days above {settings['wet_threshold']} m3 m-3",
                    "units": "1",
                    "grid_mapping": "crs",
                },
            ),
        },
        coords=lat_lon_coords(window),
    )
    dataset["crs"] = crs_variable()
    dataset.attrs = {
        "Conventions": "CF-1.8",
        "title": "avhrrsm train / validation / test split",
        "split_method": split_description(settings),
        **global_attrs,
    }
    with atomic_path(out_path) as tmp:
        dataset.to_zarr(tmp, mode="w", consolidated=True)
    counts = {name: int((split == i).sum()) for i, name in enumerate(SPLITS)}
    counts["excluded"] = int(((split == EXCLUDED) & land).sum())
    LOGGER.info("split map: land pixels per split %s", counts)
    return counts


def read_split_map(path: str | Path, window: Window) -> np.ndarray:
    with xr.open_zarr(path) as stored:
        split = stored["split"].values
    if split.shape != window.shape:
        raise InputError(
            path, f"split map has shape {split.shape}, not {window.shape}", "rebuild it"
        )
    return split


def allocate(total: int, weights: Sequence[int]) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainders, capped)."""
    weights = np.asarray(weights, dtype=np.int64)
    total = int(min(total, weights.sum()))
    if total == 0:
        return np.zeros(weights.size, np.int64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return np.minimum(counts, weights)


def stratum_targets(
    available: Mapping[tuple[int, int], int], per_year: int, wet_min_fraction: float
) -> dict[tuple[int, int], int]:
    """How many samples to draw per (split, regime) from the counts of candidates.

    Splits get ``per_year`` in proportion to their candidates. Train and validation draw at
    least ``wet_min_fraction`` of their share from the wet regime (if that many exist);
    test draws both regimes in their natural proportion (a simple random sample).
    """
    split_totals = [sum(available[(s, r)] for r in (0, 1)) for s in range(len(SPLITS))]
    split_counts = allocate(per_year, split_totals)
    out: dict[tuple[int, int], int] = {}
    for split, n_split in enumerate(split_counts):
        dry, wet = available[(split, 0)], available[(split, 1)]
        if split == TEST or dry + wet == 0:
            out[(split, 0)], out[(split, 1)] = (int(c) for c in allocate(n_split, [dry, wet]))
            continue
        natural = int(round(n_split * wet / (dry + wet)))
        n_wet = min(wet, max(natural, int(round(n_split * wet_min_fraction))))
        n_dry = min(dry, n_split - n_wet)
        out[(split, 0)], out[(split, 1)] = int(n_dry), int(n_wet)
    return out


@dataclass
class _TileCandidates:
    tile_id: str
    tile: Window
    # flat indices into (day, row, col) of the tile's candidates, per (split, regime)
    indices: dict[tuple[int, int], np.ndarray]


# The keys of the config's `samples` section each stage reads: its rule passes only these, so
# that a key reruns only the jobs whose outputs depend on it (`sequence_length` is read by the
# training, the comparison and the inference, which choose how many stored lags a model uses).
SPLIT_SETTINGS = ("wet_threshold", "block_deg", "split_fractions", "guard_pixels")
YEAR_SETTINGS = (
    "stored_lags",
    "holdout_years",
    "wet_threshold",
    "per_year",
    "wet_min_fraction",
    "gap_simulation",
)
# random streams of a tile: (split, regime) draw the samples, (GAP_STREAM, group) the gaps
GAP_STREAM = len(SPLITS)


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
        albedo = tuple(n for n in INPUTS if n.startswith("albedo_") and n in inputs)
        others = tuple((n,) for n in INPUTS if n in inputs and not n.startswith("albedo_"))
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
    columns = np.arange(n)
    last_observed = np.maximum.accumulate(np.where(observed, days, -1), axis=0)[day, columns]
    next_observed = np.minimum.accumulate(np.where(observed, days, n_days)[::-1], axis=0)[::-1][
        day, columns
    ]
    run = (days > last_observed) & (days < next_observed)
    filled = np.isfinite(np.where(run, refilled, 0.0)).all(axis=0)
    replace = run & filled[None]
    return (
        np.where(replace, refilled, values).astype(values.dtype),
        np.where(replace, refilled_flags, flags).astype(flags.dtype),
        filled,
    )


def draw_year_samples(
    out_path: str | Path,
    year: int,
    stack_path: str | Path,
    previous_stack_path: str | Path | None,
    static_path: str | Path,
    split_path: str | Path,
    region: Mapping[str, float],
    tile_deg: float,
    settings: Mapping[str, Any],
    seed: int,
    global_attrs: Mapping[str, str],
) -> dict[str, Any]:
    """Draw the samples of ``year`` and write them as a Zarr store; returns the counts."""
    window = region_window(region)
    lags = int(settings["stored_lags"])
    holdout = year in settings["holdout_years"]
    split_map = read_split_map(split_path, window)
    with xr.open_zarr(split_path) as stored:
        split_method = str(stored.attrs.get("split_method", ""))
    static_values = read_static_layers(static_path, window, ("land_mask", *STATIC_FEATURES))
    land = static_values.pop("land_mask")
    if holdout:  # every land pixel of the year is test, guard pixels included
        split_map = np.where(land, TEST, EXCLUDED).astype(np.int8)
    stack, previous = open_year_stacks(
        year, stack_path, previous_stack_path, window, STACK_VARIABLES
    )
    gaps = GapSimulation.from_settings(
        settings["gap_simulation"], gap_filling_settings(stack, stack_path)
    )
    n_days = stack.sizes["time"]
    head = lags - 1 if previous is not None else 0  # days of the previous year prepended
    first_day = 0 if previous is not None else lags - 1  # first day with a full sequence
    wet_threshold = float(settings["wet_threshold"])

    counts: dict[str, int] = {
        "land_pixel_days": 0,
        "target_missing": 0,
        "guard_pixel_days": 0,
        "no_full_sequence": 0,
    }
    candidates: list[_TileCandidates] = []
    tile_list = tiles(window, tile_deg)
    for tile_id, tile in progress(tile_list, len(tile_list), f"samples {year}: scan", LOGGER):
        rows, cols = tile.within(window)
        tile_land = land[rows, cols]
        if not tile_land.any():
            continue
        with reading(stack_path, what="input stack"):
            target = stack[TARGET][:, rows, cols].values
        valid = np.isfinite(target) & tile_land[None]
        counts["land_pixel_days"] += int(tile_land.sum()) * n_days
        counts["target_missing"] += int(tile_land.sum()) * n_days - int(valid.sum())
        guard = split_map[rows, cols] == EXCLUDED
        counts["guard_pixel_days"] += int((valid & guard[None]).sum())
        valid &= ~guard[None]
        counts["no_full_sequence"] += int(valid[:first_day].sum())
        valid[:first_day] = False
        tile_split = np.broadcast_to(split_map[rows, cols][None], valid.shape)
        wet = target > wet_threshold
        indices = {
            (split, regime): np.flatnonzero(valid & (tile_split == split) & (wet == bool(regime)))
            for split in range(len(SPLITS))
            for regime in (0, 1)
        }
        candidates.append(_TileCandidates(tile_id, tile, indices))

    available = {
        key: sum(c.indices[key].size for c in candidates)
        for key in [(s, r) for s in range(len(SPLITS)) for r in (0, 1)]
    }
    wanted = stratum_targets(
        available, int(settings["per_year"]), float(settings["wet_min_fraction"])
    )
    chosen: dict[str, dict[tuple[int, int], np.ndarray]] = {c.tile_id: {} for c in candidates}
    for key, n_key in wanted.items():
        per_tile = allocate(n_key, [c.indices[key].size for c in candidates])
        for tile_index, (cand, n_tile) in enumerate(zip(candidates, per_tile, strict=True)):
            rng = np.random.default_rng([seed, year, tile_index, key[0], key[1]])
            pick = rng.choice(cand.indices[key].size, size=int(n_tile), replace=False)
            chosen[cand.tile_id][key] = np.sort(cand.indices[key][pick])

    parts = []
    gap_counts = {"gap_simulation_unfillable": 0, "gap_simulation_no_gaps_in_tile": 0}
    for tile_index, cand in enumerate(
        progress(candidates, len(candidates), f"samples {year}: gather", LOGGER)
    ):
        flat = np.sort(np.concatenate([chosen[cand.tile_id][k] for k in sorted(wanted)]))
        if flat.size == 0:
            continue
        rng = np.random.default_rng([seed, year, tile_index, GAP_STREAM])
        with reading(stack_path, previous_stack_path, what="input stack"):
            part, skipped = _gather(
                stack,
                previous,
                head,
                window,
                cand.tile,
                flat,
                lags,
                static_values,
                split_map,
                gaps,
                rng,
            )
        for key, value in skipped.items():
            gap_counts[key] += value
        parts.append(part)
    samples = _assemble(parts, lags)
    regime_counts = {
        f"{SPLITS[s]}_{REGIMES[r]}": int(wanted[(s, r)]) for s in range(len(SPLITS)) for r in (0, 1)
    }
    available_counts = {
        f"{SPLITS[s]}_{REGIMES[r]}": int(available[(s, r)])
        for s in range(len(SPLITS))
        for r in (0, 1)
    }
    summary = {
        "year": year,
        "samples": int(samples.sizes["sample"]),
        "drawn": regime_counts,
        "candidates": available_counts,
        "skipped": counts,
        "holdout_year": holdout,
        "previous_year_stack": bool(previous is not None),
        "gap_simulation": _gap_summary(samples, gaps, gap_counts),
    }
    samples.attrs = {
        "title": f"avhrrsm training samples {year}",
        "year": str(year),
        "sampling": json.dumps(summary, sort_keys=True),
        "split_method": _holdout_description(split_method, settings["holdout_years"]),
        **global_attrs,
    }
    with atomic_path(out_path) as tmp:
        samples.to_zarr(tmp, mode="w", consolidated=True)
    stack.close()
    if previous is not None:
        previous.close()
    LOGGER.info(
        "samples %d: %d drawn (%s); skipped pixel-days: %s",
        year,
        summary["samples"],
        regime_counts,
        counts,
    )
    LOGGER.info("samples %d: simulated gaps %s", year, summary["gap_simulation"])
    if gap_counts["gap_simulation_unfillable"] or gap_counts["gap_simulation_no_gaps_in_tile"]:
        LOGGER.warning(
            "samples %d: gaps not simulated where drawn: %s (the samples keep their observed "
            "inputs)",
            year,
            gap_counts,
        )
    if counts["no_full_sequence"]:
        LOGGER.warning(
            "samples %d: %d pixel-days of the first %d days have no previous-year stack "
            "(add %d to years to use them)",
            year,
            counts["no_full_sequence"],
            lags - 1,
            year - 1,
        )
    return summary


def _tile_series(
    stack: xr.Dataset, previous: xr.Dataset | None, head: int, name: str, rows: slice, cols: slice
) -> np.ndarray:
    """``name`` over one tile for the year, after the last ``head`` days of the previous year."""
    values = stack[name][:, rows, cols].values
    if previous is None or head == 0:
        return values
    tail = previous[name][-head:, rows, cols].values
    return np.concatenate([tail, values], axis=0)


def _gather(
    stack: xr.Dataset,
    previous: xr.Dataset | None,
    head: int,
    window: Window,
    tile: Window,
    flat: np.ndarray,
    lags: int,
    static_values: Mapping[str, np.ndarray],
    split_map: np.ndarray,
    gaps: GapSimulation,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The samples at ``flat`` (indices into the tile's day x row x column) as arrays, with
    their simulated gaps; and the counts of gaps drawn but not simulated."""
    rows, cols = tile.within(window)
    day, row, col = np.unravel_index(flat, (stack.sizes["time"], *tile.shape))
    series_index = day + head  # the day in the series that starts ``head`` days before 1 January
    values = {
        name: _tile_series(stack, previous, head, name, rows, cols)[:, row, col]
        for name in DYNAMIC_FEATURES
    }
    flag_values = {
        name: _tile_series(stack, previous, head, f"{name}_fill_flag", rows, cols)
        for name in DYNAMIC_FEATURES
    }
    runs = {name: gap_run_lengths(flag_values[name]) for name in DYNAMIC_FEATURES}
    flag_values = {name: flags[:, row, col] for name, flags in flag_values.items()}
    simulated = np.zeros((flat.size, len(DYNAMIC_FEATURES)), np.int8)
    skipped = {"gap_simulation_unfillable": 0, "gap_simulation_no_gaps_in_tile": 0}
    for group in gaps.groups if gaps.fraction > 0 else ():
        day_observed = np.logical_and.reduce(
            [
                flag_values[name][series_index, np.arange(flat.size)] == FLAG_OBSERVED
                for name in group
            ]
        )
        drawn = np.flatnonzero((rng.random(flat.size) < gaps.fraction) & day_observed)
        if drawn.size == 0:
            continue
        group_runs = runs[group[0]]
        if group_runs.size == 0:
            skipped["gap_simulation_no_gaps_in_tile"] += int(drawn.size)
            continue
        lengths, offsets = draw_gaps(group_runs, drawn.size, rng)
        results = {
            name: simulate_gap(
                values[name][:, drawn],
                flag_values[name][:, drawn],
                series_index[drawn],
                lengths,
                offsets,
                gaps.max_interp_days,
                gaps.seasonal_window_days,
            )
            for name in group
        }
        filled = np.logical_and.reduce([result[2] for result in results.values()])
        skipped["gap_simulation_unfillable"] += int((~filled).sum())
        for name, (new_values, new_flags, _) in results.items():
            values[name][:, drawn[filled]] = new_values[:, filled]
            flag_values[name][:, drawn[filled]] = new_flags[:, filled]
            simulated[drawn[filled], DYNAMIC_FEATURES.index(name)] = 1
    # each sample's lags: the L days of its series up to and including the day
    lag_index = series_index[:, None] - (lags - 1) + np.arange(lags)[None, :]
    columns = np.arange(flat.size)[:, None]
    dynamic = np.stack([values[name][lag_index, columns] for name in DYNAMIC_FEATURES], axis=-1)
    flags = np.stack([flag_values[name][lag_index, columns] for name in DYNAMIC_FEATURES], axis=-1)
    target = stack[TARGET][:, rows, cols].values[day, row, col]
    local_rows, local_cols = row + rows.start, col + cols.start
    static = np.stack(
        [static_values[name][local_rows, local_cols] for name in STATIC_FEATURES], axis=1
    ).astype(np.float32)
    part = {
        "dynamic": dynamic.astype(np.float32),
        "dynamic_fill_flag": flags.astype(np.int8),
        "gap_simulated": simulated,
        "static": static,
        "target": target.astype(np.float32),
        "time": stack["time"].values[day],
        "row": (local_rows + window.row_start).astype(np.int32),
        "col": (local_cols + window.col_start).astype(np.int32),
        "split": split_map[local_rows, local_cols].astype(np.int8),
    }
    return part, skipped


def _gap_summary(
    samples: xr.Dataset, gaps: GapSimulation, skipped: Mapping[str, int]
) -> dict[str, Any]:
    """What the gap simulation did: settings, simulated samples per split and input, skips."""
    simulated = samples["gap_simulated"].values.astype(bool)
    split = samples["split"].values
    per_split = {
        name: {
            feature: int(simulated[split == index, k].sum())
            for k, feature in enumerate(DYNAMIC_FEATURES)
            if any(feature in group for group in gaps.groups)
        }
        for index, name in enumerate(SPLITS)
    }
    return {
        "fraction": gaps.fraction,
        "inputs": [name for group in gaps.groups for name in group],
        "refilled_by": f"the stack's temporal gap filling (interpolation up to "
        f"{gaps.max_interp_days} days, then the mean within +-{gaps.seasonal_window_days // 2} days)",
        "simulated": per_split,
        "skipped": dict(skipped),
    }


def _assemble(parts: list[dict[str, np.ndarray]], lags: int) -> xr.Dataset:
    """One dataset of samples, ordered by day, then row, then column of the global grid."""
    names = (
        "dynamic",
        "dynamic_fill_flag",
        "gap_simulated",
        "static",
        "target",
        "time",
        "row",
        "col",
        "split",
    )
    if parts:
        joined = {name: np.concatenate([p[name] for p in parts]) for name in names}
    else:
        joined = {
            "dynamic": np.empty((0, lags, len(DYNAMIC_FEATURES)), np.float32),
            "dynamic_fill_flag": np.empty((0, lags, len(DYNAMIC_FEATURES)), np.int8),
            "gap_simulated": np.empty((0, len(DYNAMIC_FEATURES)), np.int8),
            "static": np.empty((0, len(STATIC_FEATURES)), np.float32),
            "target": np.empty(0, np.float32),
            "time": np.empty(0, "datetime64[ns]"),
            "row": np.empty(0, np.int32),
            "col": np.empty(0, np.int32),
            "split": np.empty(0, np.int8),
        }
    order = np.lexsort((joined["col"], joined["row"], joined["time"]))
    joined = {name: values[order] for name, values in joined.items()}
    lat = np.round(90.0 - STEP_DEG * (joined["row"] + 0.5), 6)
    lon = np.round(-180.0 + STEP_DEG * (joined["col"] + 0.5), 6)
    dims = {
        "dynamic": ("sample", "lag", "dynamic_feature"),
        "dynamic_fill_flag": ("sample", "lag", "dynamic_feature"),
        "gap_simulated": ("sample", "dynamic_feature"),
        "static": ("sample", "static_feature"),
    }
    data_vars = {
        name: xr.DataArray(joined[name], dims=dims.get(name, ("sample",)), attrs=SAMPLE_ATTRS[name])
        for name in names
        if name != "time"
    }
    coords = {
        "time": ("sample", joined["time"], {"standard_name": "time", "long_name": "sample day"}),
        "lat": ("sample", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("sample", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        "days_before": (
            "lag",
            np.arange(lags - 1, -1, -1, dtype=np.int16),
            {"long_name": "days before the sample day", "units": "day"},
        ),
    }
    dataset = xr.Dataset(data_vars, coords=coords)
    # feature names as attributes (string arrays have no stable Zarr v3 encoding yet)
    dataset["dynamic"].attrs["features"] = json.dumps(DYNAMIC_FEATURES)
    dataset["dynamic_fill_flag"].attrs["features"] = json.dumps(DYNAMIC_FEATURES)
    dataset["gap_simulated"].attrs["features"] = json.dumps(DYNAMIC_FEATURES)
    dataset["static"].attrs["features"] = json.dumps(STATIC_FEATURES)
    dataset["dynamic"].attrs["dynamic_units"] = json.dumps(DYNAMIC_UNITS)
    dataset["static"].attrs["static_units"] = json.dumps(STATIC_UNITS)
    return dataset


def split_description(settings: Mapping[str, Any]) -> str:
    """How the split map was made (its ``split_method`` attribute)."""
    fractions = settings["split_fractions"]
    return (
        f"spatial blocks of {settings['block_deg']} degrees on the global grid, ranked by a "
        f"seeded hash, train/validation/test = {fractions['train']}/{fractions['validation']}/"
        f"{fractions['test']} of the blocks; {settings['guard_pixels']} guard pixel(s) left out "
        "along edges between splits"
    )


def _holdout_description(split_method: str, holdout_years: Sequence[int]) -> str:
    if not holdout_years:
        return split_method
    return f"{split_method}; every sample of {list(holdout_years)} in the test split"


@dataclass(frozen=True)
class Scaler:
    """Normalisation statistics of the inputs and the target (from the training split only)."""

    dynamic_features: tuple[str, ...]
    static_features: tuple[str, ...]
    dynamic_mean: np.ndarray
    dynamic_std: np.ndarray
    static_mean: np.ndarray
    static_std: np.ndarray
    target_mean: float
    target_std: float
    # the training range of every input (inference flags values outside it)
    dynamic_min: np.ndarray
    dynamic_max: np.ndarray
    static_min: np.ndarray
    static_max: np.ndarray
    # inputs whose "gap-filled" indicator (fill flag > 0, as 0/1) follows the normalised dynamic
    # inputs as a model input channel; empty for models trained before the indicators existed
    fill_indicators: tuple[str, ...] = ()

    @property
    def n_model_dynamic(self) -> int:
        """Dynamic channels a model reads: the inputs, then their fill indicators."""
        return len(self.dynamic_features) + len(self.fill_indicators)

    @classmethod
    def fit(cls, dynamic: np.ndarray, static: np.ndarray, target: np.ndarray) -> Scaler:
        """Means and standard deviations (float64 sums; a constant feature gets std 1)."""
        if target.size == 0:
            raise ValueError("the training split is empty: no normalisation can be fitted")

        def std(values: np.ndarray, axis: tuple[int, ...] | int | None) -> np.ndarray:
            out = values.astype(np.float64).std(axis=axis)
            return np.where(out > 0, out, 1.0)

        return cls(
            dynamic_features=DYNAMIC_FEATURES,
            static_features=STATIC_FEATURES,
            dynamic_mean=dynamic.astype(np.float64).mean(axis=(0, 1)),
            dynamic_std=std(dynamic, (0, 1)),
            static_mean=static.astype(np.float64).mean(axis=0),
            static_std=std(static, 0),
            target_mean=float(target.astype(np.float64).mean()),
            target_std=float(std(target, None)),
            dynamic_min=dynamic.min(axis=(0, 1)).astype(np.float64),
            dynamic_max=dynamic.max(axis=(0, 1)).astype(np.float64),
            static_min=static.min(axis=0).astype(np.float64),
            static_max=static.max(axis=0).astype(np.float64),
            fill_indicators=FILL_INDICATORS,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dynamic_features": list(self.dynamic_features),
            "static_features": list(self.static_features),
            "dynamic_mean": [float(v) for v in self.dynamic_mean],
            "dynamic_std": [float(v) for v in self.dynamic_std],
            "static_mean": [float(v) for v in self.static_mean],
            "static_std": [float(v) for v in self.static_std],
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            **{
                name: [float(v) for v in getattr(self, name)]
                for name in ("dynamic_min", "dynamic_max", "static_min", "static_max")
            },
            "fill_indicators": list(self.fill_indicators),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Scaler:
        return cls(
            dynamic_features=tuple(values["dynamic_features"]),
            static_features=tuple(values["static_features"]),
            dynamic_mean=np.asarray(values["dynamic_mean"], np.float64),
            dynamic_std=np.asarray(values["dynamic_std"], np.float64),
            static_mean=np.asarray(values["static_mean"], np.float64),
            static_std=np.asarray(values["static_std"], np.float64),
            target_mean=float(values["target_mean"]),
            target_std=float(values["target_std"]),
            **{
                name: np.asarray(values[name], np.float64)
                for name in ("dynamic_min", "dynamic_max", "static_min", "static_max")
            },
            fill_indicators=tuple(values.get("fill_indicators", ())),
        )

    def dynamic(self, values: np.ndarray, fill_flags: np.ndarray | None = None) -> np.ndarray:
        """The model's dynamic inputs ``(..., n_model_dynamic)``: normalised inputs (float32
        arithmetic, in one new array: inference calls this on a block of a whole tile), then
        the fill indicators from ``fill_flags`` (same shape as ``values``)."""
        if not self.fill_indicators:
            return _normalise(values, self.dynamic_mean, self.dynamic_std)
        if fill_flags is None or fill_flags.shape != values.shape:
            raise ValueError(
                f"the model reads fill indicators of {list(self.fill_indicators)}: fill flags "
                f"of the inputs' shape {values.shape} are needed"
            )
        out = np.empty((*values.shape[:-1], self.n_model_dynamic), np.float32)
        n_inputs = len(self.dynamic_features)
        out[..., :n_inputs] = values
        out[..., :n_inputs] -= self.dynamic_mean.astype(np.float32)
        out[..., :n_inputs] *= (1.0 / self.dynamic_std).astype(np.float32)
        out[..., n_inputs:] = fill_indicator_channels(
            fill_flags, self.dynamic_features, self.fill_indicators
        )
        return out

    def static(self, values: np.ndarray) -> np.ndarray:
        return _normalise(values, self.static_mean, self.static_std)

    def target(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.target_mean) / self.target_std).astype(np.float32)

    def target_back(self, values: np.ndarray) -> np.ndarray:
        """From the normalised scale back to m3 m-3."""
        return (values * self.target_std + self.target_mean).astype(np.float32)


def fill_indicator_channels(
    fill_flags: np.ndarray, features: Sequence[str], indicators: Sequence[str]
) -> np.ndarray:
    """``(..., len(indicators))`` float32: 1 where the indicator's input was gap-filled."""
    index = [list(features).index(name) for name in indicators]
    return (fill_flags[..., index] > 0).astype(np.float32)


def _normalise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float32, copy=True)
    out -= mean.astype(np.float32)
    out *= (1.0 / std).astype(np.float32)
    return out


@dataclass(frozen=True)
class SampleArrays:
    """The samples of one split, in physical units, with the last ``L`` lags only."""

    dynamic: np.ndarray  # (n, L, dynamic features)
    static: np.ndarray  # (n, static features)
    target: np.ndarray  # (n,) m3 m-3; NaN where missing (masked in the loss)
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    fill_flag: np.ndarray  # (n, L, dynamic features) int8 stack fill flags
    gap_simulated: np.ndarray  # (n,) bool: a gap was simulated on the sample's day

    def __len__(self) -> int:
        return int(self.target.size)


def load_split(path: str | Path, split: str, sequence_length: int) -> SampleArrays:
    """The samples of ``split`` ('train', 'validation', 'test') with the last L lags."""
    with xr.open_zarr(path) as samples:
        lags = samples.sizes["lag"]
        if sequence_length > lags:
            raise InputError(
                path,
                f"holds {lags} lags, the model needs sequence_length {sequence_length}",
                "raise samples.stored_lags and rebuild the sample sets",
            )
        chosen = np.flatnonzero(samples["split"].values == SPLITS.index(split))
        subset = samples.isel(sample=chosen)
        last = slice(lags - sequence_length, None)
        return SampleArrays(
            dynamic=np.ascontiguousarray(subset["dynamic"].values[:, last]),
            static=subset["static"].values,
            target=subset["target"].values,
            time=subset["time"].values,
            lat=subset["lat"].values,
            lon=subset["lon"].values,
            fill_flag=np.ascontiguousarray(subset["dynamic_fill_flag"].values[:, last]),
            gap_simulated=subset["gap_simulated"].values.astype(bool).any(axis=1),
        )


def load_training_splits(
    path: str | Path, sequence_length: int
) -> tuple[SampleArrays, SampleArrays]:
    """The train and validation splits; an error naming the set when either is empty."""
    train = load_split(path, "train", sequence_length)
    validation = load_split(path, "validation", sequence_length)
    if len(train) == 0 or len(validation) == 0:
        raise InputError(
            path,
            f"has {len(train)} training and {len(validation)} validation samples",
            "both splits need samples: check samples.split_fractions and samples.per_year",
        )
    return train, validation


def load_scaler(path: str | Path) -> Scaler:
    """The scaler stored with a merged sample set."""
    with xr.open_zarr(path) as samples:
        if "scaler" not in samples.attrs:
            raise InputError(path, "has no normalisation statistics", "use the merged sample set")
        return Scaler.from_dict(json.loads(samples.attrs["scaler"]))


def merge_sample_sets(
    year_paths: Sequence[str | Path],
    out_path: str | Path,
    manifest_path: str | Path,
    global_attrs: Mapping[str, str],
) -> dict[str, Any]:
    """Concatenate the per-year sets, fit the scaler on the training split, write the manifest."""
    parts = [xr.open_zarr(p) for p in year_paths]
    per_year = [json.loads(p.attrs["sampling"]) for p in parts]
    merged = xr.concat(parts, dim="sample", data_vars="all", coords="minimal", compat="override")
    merged = merged.load()
    for part in parts:
        part.close()
    split = merged["split"].values
    train = split == TRAIN
    if not train.any():
        raise InputError(
            year_paths[0],
            "no training samples in any year",
            "check samples.holdout_years, samples.split_fractions and the target years",
        )
    scaler = Scaler.fit(
        merged["dynamic"].values[train],
        merged["static"].values[train],
        merged["target"].values[train],
    )
    totals: dict[str, dict[str, int]] = {}
    for name, index in zip(SPLITS, range(len(SPLITS)), strict=True):
        in_split = split == index
        totals[name] = {
            "samples": int(in_split.sum()),
            **{regime: sum(y["drawn"][f"{name}_{regime}"] for y in per_year) for regime in REGIMES},
        }
    manifest = {
        "samples": int(split.size),
        "splits": totals,
        "years": per_year,
        "stored_lags": int(merged.sizes["lag"]),
        "dynamic_features": list(DYNAMIC_FEATURES),
        "static_features": list(STATIC_FEATURES),
        "scaler": scaler.to_dict(),
        "split_method": parts[0].attrs.get("split_method", ""),
        "inputs": [str(p) for p in year_paths],
    }
    merged.attrs = {
        "title": "avhrrsm training samples, all years",
        "scaler": json.dumps(scaler.to_dict(), sort_keys=True),
        "scaler_fitted_on": "train split only",
        "split_method": manifest["split_method"],
        "manifest": json.dumps(
            {k: v for k, v in manifest.items() if k != "scaler"}, sort_keys=True
        ),
        **global_attrs,
    }
    for name in merged.variables:
        merged[name].encoding = {}
    with atomic_path(out_path) as tmp:
        merged.to_zarr(tmp, mode="w", consolidated=True)
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    LOGGER.info("merged %d samples: %s", manifest["samples"], totals)
    return manifest
