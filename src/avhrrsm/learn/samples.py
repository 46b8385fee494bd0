"""Training sample sets drawn from the per-year stacks.

A sample is one land pixel-day with a GLASS-MODIS target: the ``stored_lags`` days of dynamic
inputs up to and including that day (crossing into the previous year's stack where the day is
early in January), the static layers of the pixel, and the target.

The split map (:mod:`avhrrsm.learn.splitting`) decides each pixel's split; ``holdout_years``
put every sample of those years in the test split.

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

from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.grid import STEP_DEG, Window, region_window, tiles
from avhrrsm.io.chunks import check_range, checksummed
from avhrrsm.io.errors import InputError, reading
from avhrrsm.learn.features import Scaler
from avhrrsm.learn.gaps import GapSimulation, draw_gaps, gap_run_lengths, simulate_gap
from avhrrsm.learn.splitting import read_split_map
from avhrrsm.parallel import map_shared
from avhrrsm.stacks import gap_filling_settings, open_year_stacks
from avhrrsm.static import read_static_layers
from avhrrsm.variables import (
    DYNAMIC_FEATURES,
    DYNAMIC_UNITS,
    EXCLUDED,
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
)

LOGGER = logging.getLogger(__name__)


# what sampling reads of a stack: the inputs, their fill flags and the target
STACK_VARIABLES = (*INPUTS, *(f"{name}_fill_flag" for name in INPUTS), TARGET)


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


# random streams of a tile: (split, regime) draw the samples, (GAP_STREAM, group) the gaps
GAP_STREAM = len(SPLITS)


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
    workers: int = 1,
) -> dict[str, Any]:
    """Draw the samples of ``year`` and write them as a Zarr store; returns the counts. The
    tiles are scanned and gathered on ``workers`` processes (the same samples on any number:
    each tile's draws come from its own seeded stream)."""
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
    scan = {
        "stack": stack, "stack_path": stack_path, "land": land, "split_map": split_map,
        "window": window, "n_days": stack.sizes["time"],
        "first_day": 0 if previous is not None else lags - 1,  # first day with a full sequence
        "wet_threshold": float(settings["wet_threshold"]),
    }  # fmt: skip
    counts, candidates = _scan_tiles(scan, tiles(window, tile_deg), year, workers)
    available, wanted, chosen = _choose_samples(candidates, settings, seed, year)
    gather = {
        "stack": stack, "previous": previous, "window": window, "lags": lags,
        "head": lags - 1 if previous is not None else 0,  # days of the previous year prepended
        "static_values": static_values, "split_map": split_map, "gaps": gaps, "seed": seed,
        "year": year, "stack_path": stack_path, "previous_stack_path": previous_stack_path,
    }  # fmt: skip
    samples, gap_counts = _gather_samples(gather, candidates, chosen, wanted, workers)
    summary = {
        "year": year,
        "samples": int(samples.sizes["sample"]),
        "drawn": _by_stratum(wanted),
        "candidates": _by_stratum(available),
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
        samples.to_zarr(
            tmp, mode="w", consolidated=True, encoding=checksummed({}, samples.data_vars)
        )
    stack.close()
    if previous is not None:
        previous.close()
    _log_year(year, summary, gap_counts, lags)
    return summary


def _scan_tiles(
    scan: Mapping[str, Any], tile_list: list[tuple[str, Window]], year: int, workers: int
) -> tuple[dict[str, int], list[_TileCandidates]]:
    """Every tile's candidates per (split, regime), and the skipped pixel-days counted."""
    counts: dict[str, int] = {
        "land_pixel_days": 0,
        "target_missing": 0,
        "guard_pixel_days": 0,
        "no_full_sequence": 0,
    }
    candidates: list[_TileCandidates] = []
    LOGGER.info("samples %d: scan %d tiles on %d worker(s)", year, len(tile_list), workers)
    for tile_counts, candidate in map_shared(_scan_tile, scan, tile_list, workers):
        for key, value in tile_counts.items():
            counts[key] += value
        if candidate is not None:
            candidates.append(candidate)
    return counts, candidates


Stratum = tuple[int, int]  # (split, regime)


def _choose_samples(
    candidates: list[_TileCandidates], settings: Mapping[str, Any], seed: int, year: int
) -> tuple[dict[Stratum, int], dict[Stratum, int], dict[str, dict[Stratum, np.ndarray]]]:
    """The candidates available and the samples wanted per stratum, and the candidates
    chosen per tile and stratum (each tile's draw from its own seeded stream)."""
    available = {
        key: sum(c.indices[key].size for c in candidates)
        for key in [(s, r) for s in range(len(SPLITS)) for r in (0, 1)]
    }
    wanted = stratum_targets(
        available, int(settings["per_year"]), float(settings["wet_min_fraction"])
    )
    chosen: dict[str, dict[Stratum, np.ndarray]] = {c.tile_id: {} for c in candidates}
    for key, n_key in wanted.items():
        per_tile = allocate(n_key, [c.indices[key].size for c in candidates])
        for tile_index, (cand, n_tile) in enumerate(zip(candidates, per_tile, strict=True)):
            rng = np.random.default_rng([seed, year, tile_index, key[0], key[1]])
            pick = rng.choice(cand.indices[key].size, size=int(n_tile), replace=False)
            chosen[cand.tile_id][key] = np.sort(cand.indices[key][pick])
    return available, wanted, chosen


def _gather_samples(
    gather: Mapping[str, Any],
    candidates: list[_TileCandidates],
    chosen: Mapping[str, Mapping[Stratum, np.ndarray]],
    wanted: Mapping[Stratum, int],
    workers: int,
) -> tuple[xr.Dataset, dict[str, int]]:
    """The chosen samples' sequences gathered tile by tile, gaps simulated, assembled; and
    the counts of draws where no gap could be simulated."""
    pieces = [
        (
            tile_index,
            cand.tile,
            np.sort(np.concatenate([chosen[cand.tile_id][k] for k in sorted(wanted)])),
        )
        for tile_index, cand in enumerate(candidates)
    ]
    parts = []
    gap_counts = {"gap_simulation_unfillable": 0, "gap_simulation_no_gaps_in_tile": 0}
    LOGGER.info(
        "samples %d: gather from %d tiles on %d worker(s)", gather["year"], len(pieces), workers
    )
    for gathered in map_shared(_gather_tile, gather, pieces, workers):
        if gathered is None:
            continue
        part, skipped = gathered
        for key, value in skipped.items():
            gap_counts[key] += value
        parts.append(part)
    return _assemble(parts, int(gather["lags"])), gap_counts


def _by_stratum(counts: Mapping[Stratum, int]) -> dict[str, int]:
    return {
        f"{SPLITS[s]}_{REGIMES[r]}": int(counts[(s, r)]) for s in range(len(SPLITS)) for r in (0, 1)
    }


def _log_year(
    year: int, summary: Mapping[str, Any], gap_counts: Mapping[str, int], lags: int
) -> None:
    counts = summary["skipped"]
    LOGGER.info(
        "samples %d: %d drawn (%s); skipped pixel-days: %s",
        year,
        summary["samples"],
        summary["drawn"],
        counts,
    )
    LOGGER.info("samples %d: simulated gaps %s", year, summary["gap_simulation"])
    if gap_counts["gap_simulation_unfillable"] or gap_counts["gap_simulation_no_gaps_in_tile"]:
        LOGGER.warning(
            "samples %d: gaps not simulated where drawn: %s (the samples keep their observed "
            "inputs)",
            year,
            dict(gap_counts),
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


def _scan_tile(
    scan: Mapping[str, Any], piece: tuple[str, Window]
) -> tuple[dict[str, int], _TileCandidates | None]:
    """One tile's skipped pixel-day counts and its candidates per (split, regime)."""
    tile_id, tile = piece
    window = scan["window"]
    rows, cols = tile.within(window)
    tile_land = scan["land"][rows, cols]
    counts = {"land_pixel_days": 0, "target_missing": 0, "guard_pixel_days": 0,
              "no_full_sequence": 0}  # fmt: skip
    if not tile_land.any():
        return counts, None
    n_days, first_day = scan["n_days"], scan["first_day"]
    with reading(scan["stack_path"], what="input stack"):
        target = scan["stack"][TARGET][:, rows, cols].values
    check_range(target, TARGET, scan["stack_path"])
    valid = np.isfinite(target) & tile_land[None]
    counts["land_pixel_days"] += int(tile_land.sum()) * n_days
    counts["target_missing"] += int(tile_land.sum()) * n_days - int(valid.sum())
    split_map = scan["split_map"]
    guard = split_map[rows, cols] == EXCLUDED
    counts["guard_pixel_days"] += int((valid & guard[None]).sum())
    valid &= ~guard[None]
    counts["no_full_sequence"] += int(valid[:first_day].sum())
    valid[:first_day] = False
    tile_split = np.broadcast_to(split_map[rows, cols][None], valid.shape)
    wet = target > scan["wet_threshold"]
    indices = {
        (split, regime): np.flatnonzero(valid & (tile_split == split) & (wet == bool(regime)))
        for split in range(len(SPLITS))
        for regime in (0, 1)
    }
    return counts, _TileCandidates(tile_id, tile, indices)


def _gather_tile(
    gather: Mapping[str, Any], piece: tuple[int, Window, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, int]] | None:
    """The samples drawn in one tile (``piece``: its index, window and flat indices)."""
    tile_index, tile, flat = piece
    if flat.size == 0:
        return None
    rng = np.random.default_rng([gather["seed"], gather["year"], tile_index, GAP_STREAM])
    with reading(gather["stack_path"], gather["previous_stack_path"], what="input stack"):
        return _gather(
            (gather["stack"], gather["stack_path"]),
            (gather["previous"], gather["previous_stack_path"]),
            gather["head"],
            gather["window"],
            tile,
            flat,
            gather["lags"],
            gather["static_values"],
            gather["split_map"],
            gather["gaps"],
            rng,
        )


def _tile_series(
    stack: tuple[xr.Dataset, str | Path],
    previous: tuple[xr.Dataset | None, str | Path | None],
    head: int,
    name: str,
    rows: slice,
    cols: slice,
) -> np.ndarray:
    """``name`` over one tile for the year, after the last ``head`` days of the previous year;
    each store's values checked against the variable's valid range (a damaged chunk, named)."""
    values = stack[0][name][:, rows, cols].values
    check_range(values, name, stack[1])
    if previous[0] is None or head == 0:
        return values
    tail = previous[0][name][-head:, rows, cols].values
    check_range(tail, name, previous[1])
    return np.concatenate([tail, values], axis=0)


def _gather(
    stack: tuple[xr.Dataset, str | Path],
    previous: tuple[xr.Dataset | None, str | Path | None],
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
    their simulated gaps; and the counts of gaps drawn but not simulated. ``stack`` and
    ``previous``: the year's and the previous year's stack (or None), with their paths."""
    rows, cols = tile.within(window)
    day, row, col = np.unravel_index(flat, (stack[0].sizes["time"], *tile.shape))
    series_index = day + head  # the day in the series that starts ``head`` days before 1 January
    values = {
        name: _tile_series(stack, previous, head, name, rows, cols)[:, row, col]
        for name in DYNAMIC_FEATURES
    }
    flag_values = {
        name: _tile_series(stack, previous, head, f"{name}_fill_flag", rows, cols)
        for name in DYNAMIC_FEATURES
    }
    # the real gaps of each simulated group's input in the tile (only when gaps are simulated)
    runs = {
        group[0]: gap_run_lengths(flag_values[group[0]])
        for group in (gaps.groups if gaps.fraction > 0 else ())
    }
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
    target = stack[0][TARGET][:, rows, cols].values[day, row, col]
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
        "time": stack[0]["time"].values[day],
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


def _holdout_description(split_method: str, holdout_years: Sequence[int]) -> str:
    if not holdout_years:
        return split_method
    return f"{split_method}; every sample of {list(holdout_years)} in the test split"


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
        merged.to_zarr(tmp, mode="w", consolidated=True, encoding=checksummed({}, merged.data_vars))
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    LOGGER.info("merged %d samples: %s", manifest["samples"], totals)
    return manifest
