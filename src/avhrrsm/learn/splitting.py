"""The leak-free split map of the training samples, by space.

The region is cut into square blocks of ``block_deg`` degrees on the global grid; whole blocks
go to train, validation or test (ranked by a seeded hash, stratified by their fraction of wet
target days, so each split gets its share of blocks and of wet land); pixels within
``guard_pixels`` of a block of another split are left out, so that no two splits hold
neighbouring, correlated pixels. A pixel's series therefore never appears in two splits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from avhrrsm.atomic import atomic_path
from avhrrsm.grid import STEP_DEG, Window, region_window
from avhrrsm.io.chunks import checksummed
from avhrrsm.io.errors import InputError, reading
from avhrrsm.parallel import iter_pieces
from avhrrsm.stacks import open_stack
from avhrrsm.static import read_static_layers
from avhrrsm.variables import (
    EXCLUDED,
    SPLITS,
    TARGET,
    TEST,
    TRAIN,
    VALIDATION,
)

LOGGER = logging.getLogger(__name__)


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
    stack_paths: Sequence[str | Path],
    land: np.ndarray,
    wet_threshold: float,
    window: Window,
    workers: int = 1,
) -> np.ndarray:
    """Per pixel: the fraction of days with a target whose target exceeds ``wet_threshold``
    (the years' counts on ``workers`` processes, added up in year order: exact integers)."""
    wet = np.zeros(window.shape, np.int64)
    valid = np.zeros(window.shape, np.int64)
    pieces = [(path, window, wet_threshold) for path in stack_paths]
    for year_wet, year_valid in iter_pieces(_year_wet_counts, pieces, workers):
        wet += year_wet
        valid += year_valid
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where((valid > 0) & land, wet / np.maximum(valid, 1), np.nan)
    return fraction.astype(np.float32)


def _year_wet_counts(piece: tuple[str | Path, Window, float]) -> tuple[np.ndarray, np.ndarray]:
    """One year's days above the threshold and days with a target, per pixel (int16: <= 366)."""
    path, window, wet_threshold = piece
    wet = np.zeros(window.shape, np.int16)
    valid = np.zeros(window.shape, np.int16)
    stack = open_stack(path, window, (TARGET,))
    try:
        for start in range(0, stack.sizes["time"], 32):
            target = stack[TARGET][start : start + 32].values
            wet += (target > wet_threshold).sum(axis=0, dtype=np.int16)
            valid += np.isfinite(target).sum(axis=0, dtype=np.int16)
    finally:
        stack.close()
    return wet, valid


def build_split_map(
    out_path: str | Path,
    stack_paths: Sequence[str | Path],
    static_path: str | Path,
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    seed: int,
    global_attrs: Mapping[str, str],
    workers: int = 1,
) -> dict[str, int]:
    """Write the split map (and the wet-day fraction it is stratified on) as a CF raster; the
    target years are read on ``workers`` processes."""
    from avhrrsm.store import crs_variable, lat_lon_coords

    window = region_window(region)
    land = read_static_layers(static_path, window)["land_mask"]
    wetness = wet_day_fraction(stack_paths, land, float(settings["wet_threshold"]), window, workers)
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
        dataset.to_zarr(
            tmp, mode="w", consolidated=True, encoding=checksummed({}, dataset.data_vars)
        )
    counts = {name: int((split == i).sum()) for i, name in enumerate(SPLITS)}
    counts["excluded"] = int(((split == EXCLUDED) & land).sum())
    LOGGER.info("split map: land pixels per split %s", counts)
    return counts


def read_split_map(path: str | Path, window: Window) -> np.ndarray:
    with reading(path, what="split map"), xr.open_zarr(path) as stored:
        split = stored["split"].values
    if split.shape != window.shape:
        raise InputError(
            path, f"split map has shape {split.shape}, not {window.shape}", "rebuild it"
        )
    return split


def split_description(settings: Mapping[str, Any]) -> str:
    """How the split map was made (its ``split_method`` attribute)."""
    fractions = settings["split_fractions"]
    return (
        f"spatial blocks of {settings['block_deg']} degrees on the global grid, ranked by a "
        f"seeded hash, train/validation/test = {fractions['train']}/{fractions['validation']}/"
        f"{fractions['test']} of the blocks; {settings['guard_pixels']} guard pixel(s) left out "
        "along edges between splits"
    )
