"""Inference: one trained model over every land pixel-day of one (year, tile).

The job reads the year's stack for the tile in blocks of days (each block with the L-1 days
before it, from the previous year's stack across 1 January), predicts every land pixel-day in
batches, and writes the tile's daily soil moisture and quality flags into a Zarr store. The
next block is read by a background thread while the current one is predicted; on a GPU the
batches go through pinned host memory, asynchronous copies and bf16/fp16 autocast. Memory is
bounded by ``memory_budget_mb`` whatever the tile size: a block holds at most that much input.

Seamless by construction: the stack inputs are gap-filled, so every land pixel gets a value
every day. Where the previous year's stack is not part of the run, the first L-1 days of the
year repeat the first day as their history, and are flagged.

Quality flag (bit mask, CF ``flag_masks``):

====  =========================  ==========================================================
bit   meaning                    set when
====  =========================  ==========================================================
1     input_gap_filled           any dynamic input of the day was gap-filled (stack fill flag > 0)
2     input_outside_training     any input of the sequence or static layer lies outside the
                                 range of the training split
4     short_history              the sequence's earlier days repeat the first day of the year
8     clipped                    the prediction was clipped into ``valid_range``
====  =========================  ==========================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from avhrrsm.atomic import atomic_path
from avhrrsm.device import describe_device
from avhrrsm.grid import region_window
from avhrrsm.io.errors import reading
from avhrrsm.learn.features import Scaler
from avhrrsm.learn.predictor import DeepPredictor, Predictor, load_predictor
from avhrrsm.stacks import open_year_stacks
from avhrrsm.static import read_static_layers
from avhrrsm.store import create_store, write_region
from avhrrsm.variables import (
    DYNAMIC_FEATURES,
    FLAG_CLIPPED,
    FLAG_GAP_FILLED,
    FLAG_OUTSIDE_TRAINING,
    FLAG_SHORT_HISTORY,
    QUALITY_ATTRS,
    SM_ATTRS,
    STATIC_FEATURES,
)

LOGGER = logging.getLogger(__name__)


def day_windows(series: np.ndarray, length: int, days: slice) -> np.ndarray:
    """The sequences of every pixel ending on the output days ``days``: ``(days, pixel, L, F)``.

    ``series`` is ``(L-1 + days, pixel, feature)``: output day ``d`` ends at series index
    ``d + L - 1``; the lags run oldest first, the day itself last. A view, no copy.
    """
    windows = np.lib.stride_tricks.sliding_window_view(series, length, axis=0)  # (d, p, F, L)
    return windows[days].transpose(0, 1, 3, 2)


@dataclass
class TileResult:
    """What one tile job did, for the log and the benchmarks."""

    pixel_days: int = 0
    seconds: float = 0.0
    forward_seconds: float = 0.0
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def pixel_days_per_second(self) -> float:
        return self.pixel_days / self.seconds if self.seconds else 0.0


def auto_batch_size(requested: int, device: torch.device) -> int:
    """``requested``, or (0) 65536 pixel-days on a GPU and 4096 on the CPU."""
    if requested > 0:
        return requested
    return 65536 if device.type == "cuda" else 4096


def block_days(
    n_pixels: int, n_days: int, length: int, memory_budget_mb: float, chunk_days: int
) -> int:
    """Days per block: the stack's chunk of days where the budget allows, fewer if not, >= 1."""
    per_day = n_pixels * len(DYNAMIC_FEATURES) * (4 + 4 + 1) * 1.5  # raw, normalised, flags
    affordable = int(memory_budget_mb * 2**20 // max(per_day, 1)) - (length - 1)
    # one chunk per block: the next block is read while this one is predicted
    return max(1, min(n_days, chunk_days, affordable))


def predict_tile(
    out_path: str | Path,
    year: int,
    tile_id: str,
    tile_deg: float,
    stack_path: str | Path,
    previous_stack_path: str | Path | None,
    static_path: str | Path,
    model_path: str | Path,
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    valid_range: Sequence[float],
    global_attrs: Mapping[str, str],
    threads: int = 0,
) -> TileResult:
    """Predict every land pixel-day of ``tile_id`` in ``year`` and write the tile store."""
    from avhrrsm.grid import tiles

    started = time.perf_counter()
    window = region_window(region)
    tile = dict(tiles(window, tile_deg)).get(tile_id)
    if tile is None:
        raise ValueError(f"tile {tile_id} does not meet the region {dict(region)}")
    predictor = load_predictor(model_path, str(settings["device"]), threads)
    length = predictor.sequence_length
    rows, cols = tile.within(window)
    stack, previous = open_year_stacks(
        year,
        stack_path,
        previous_stack_path,
        window,
        (*DYNAMIC_FEATURES, *(f"{name}_fill_flag" for name in DYNAMIC_FEATURES)),
    )
    layers = read_static_layers(static_path, window, ("land_mask", *STATIC_FEATURES))
    land = layers["land_mask"][rows, cols]
    static_all = np.stack([layers[name][rows, cols] for name in STATIC_FEATURES], axis=-1).astype(
        np.float32
    )
    land_rows, land_cols = np.nonzero(land)
    static_land = static_all[land_rows, land_cols]
    scaler = getattr(predictor, "scaler", None)  # trees have none: no range flag
    static_outside = (
        _outside(static_land, scaler, "static")
        if scaler is not None
        else np.zeros(len(static_land), bool)
    )
    n_days = stack.sizes["time"]
    chunk_days = int(stack[DYNAMIC_FEATURES[0]].encoding.get("chunks", (32,))[0])
    per_block = block_days(
        land_rows.size, n_days, length, float(settings["memory_budget_mb"]), chunk_days
    )
    blocks = [(s, min(n_days, s + per_block)) for s in range(0, n_days, per_block)]
    result = TileResult(
        flags=dict.fromkeys(
            (
                "input_gap_filled",
                "input_outside_training_range",
                "short_history",
                "clipped_to_valid_range",
            ),
            0,
        )
    )
    LOGGER.info(
        "tile %s %d: %d land pixels x %d days, L=%d, blocks of %d days, %s",
        tile_id,
        year,
        land_rows.size,
        n_days,
        length,
        per_block,
        describe_device(predictor.device),
    )
    time_coord = xr.DataArray(stack["time"].values, dims="time", attrs={"standard_name": "time"})
    variables = {
        "soil_moisture": (("time", "lat", "lon"), np.float32, SM_ATTRS),
        "quality_flag": (("time", "lat", "lon"), np.int8, QUALITY_ATTRS),
    }
    dims = dict.fromkeys(variables, ("time", "lat", "lon"))

    prepared_static = predictor.prepare_static(static_land)

    def read(block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Read and prepare a block (in the background while the previous one is predicted)."""
        t0 = time.perf_counter()
        with reading(stack_path, previous_stack_path, what="input stack"):
            series, fill_flags, short = _read_block(
                stack, previous, block, length, rows, cols, land_rows, land_cols
            )
        flags = input_flags(series, fill_flags[length - 1 :], short, scaler, static_outside, length)
        prepared = predictor.prepare_dynamic(series, fill_flags)
        result.read_seconds += time.perf_counter() - t0
        return prepared, flags

    batch = auto_batch_size(int(settings["batch_size"]), predictor.device)
    lo, hi = float(valid_range[0]), float(valid_range[1])
    with atomic_path(out_path) as tmp:
        create_store(
            tmp,
            tile,
            variables,
            {"time": chunk_days, "lat": tile.shape[0], "lon": tile.shape[1]},
            {"title": f"avhrrsm inference tile {tile_id} {year}", "tile": tile_id, **global_attrs},
            extra_coords={"time": time_coord},
        )
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(read, blocks[0]) if blocks else None
            for index, block in enumerate(blocks):
                prepared, block_flags = pending.result()
                if index + 1 < len(blocks):
                    pending = reader.submit(read, blocks[index + 1])
                n_block = block[1] - block[0]
                sm = np.full((n_block, *tile.shape), np.nan, np.float32)
                quality = np.zeros((n_block, *tile.shape), np.int8)
                if land_rows.size:
                    values, flags = _predict_block(
                        predictor, prepared, prepared_static, block_flags, length, batch, lo, hi
                    )
                    sm[:, land_rows, land_cols] = values
                    quality[:, land_rows, land_cols] = flags
                    for bit, name in zip((1, 2, 4, 8), result.flags, strict=True):
                        result.flags[name] += int((flags & bit).astype(bool).sum())
                    result.pixel_days += values.size
                t0 = time.perf_counter()
                write_region(
                    tmp,
                    tile,
                    tile,
                    {"soil_moisture": sm, "quality_flag": quality},
                    dims,
                    starts={"time": block[0]},
                )
                result.write_seconds += time.perf_counter() - t0
    stack.close()
    if previous is not None:
        previous.close()
    result.forward_seconds = predictor.forward_seconds
    result.seconds = time.perf_counter() - started
    LOGGER.info(
        "tile %s %d: %d pixel-days in %.1f s (%.0f per s; model %.1f s, read %.1f s, write %.1f s); flags %s",
        tile_id,
        year,
        result.pixel_days,
        result.seconds,
        result.pixel_days_per_second,
        result.forward_seconds,
        result.read_seconds,
        result.write_seconds,
        result.flags,
    )
    return result


def _outside(values: np.ndarray, scaler: Scaler, kind: str) -> np.ndarray:
    """True where any feature (last axis) lies outside the training range."""
    lo = getattr(scaler, f"{kind}_min")
    hi = getattr(scaler, f"{kind}_max")
    return ((values < lo) | (values > hi)).any(axis=-1)


def read_inference_tile(path: str | Path, days: slice) -> tuple[np.ndarray, np.ndarray]:
    """Soil moisture and quality flags ``(days, rows, cols)`` of a tile store written by
    :func:`predict_tile`; errors name the store."""
    with reading(path, what="inference tile"), xr.open_zarr(path, chunks=None) as stored:
        return stored["soil_moisture"][days].values, stored["quality_flag"][days].values


def _read_block(
    stack: xr.Dataset,
    previous: xr.Dataset | None,
    block: tuple[int, int],
    length: int,
    rows: slice,
    cols: slice,
    land_rows: np.ndarray,
    land_cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Inputs and their fill flags ``(L-1 + days, land pixels, F)`` of a block with its
    history, and whether the history had to be padded (no previous year)."""
    start, stop = block
    history_start = start - (length - 1)

    def read(names: tuple[str, ...]) -> np.ndarray:
        parts = []
        if history_start < 0:
            before = -history_start
            if previous is not None:
                parts.append(
                    _land_series(
                        previous, names, slice(-before, None), rows, cols, land_rows, land_cols
                    )
                )
            else:
                first = _land_series(stack, names, slice(0, 1), rows, cols, land_rows, land_cols)
                parts.append(np.repeat(first, before, axis=0))
        parts.append(
            _land_series(
                stack, names, slice(max(history_start, 0), stop), rows, cols, land_rows, land_cols
            )
        )
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    series = read(DYNAMIC_FEATURES).astype(np.float32, copy=False)
    fill_flags = read(tuple(f"{name}_fill_flag" for name in DYNAMIC_FEATURES))
    short = history_start < 0 and previous is None
    return series, fill_flags, short


def _at_land(values: np.ndarray, land_rows: np.ndarray, land_cols: np.ndarray) -> np.ndarray:
    """``(time, land pixels)`` of a ``(time, rows, cols)`` block (a view where all is land)."""
    if land_rows.size == values.shape[1] * values.shape[2]:  # np.nonzero order is row-major
        return values.reshape(values.shape[0], -1)
    return values[:, land_rows, land_cols]


def _land_series(
    stack: xr.Dataset,
    names: tuple[str, ...],
    days: slice,
    rows: slice,
    cols: slice,
    land_rows: np.ndarray,
    land_cols: np.ndarray,
) -> np.ndarray:
    """``(days, land pixels, len(names))`` of the variables ``names``."""
    return np.stack(
        [_at_land(stack[name][days, rows, cols].values, land_rows, land_cols) for name in names],
        axis=-1,
    )


def _batches(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


def input_flags(
    series: np.ndarray,
    day_fill_flags: np.ndarray,
    short: bool,
    scaler: Scaler | None,
    static_outside: np.ndarray,
    length: int,
) -> np.ndarray:
    """Quality bits known from the inputs alone, ``(days, pixels)``: gap-filled inputs on the
    day, inputs of the sequence (or static layers) outside the training range, short history."""
    n_days = series.shape[0] - (length - 1)
    flags = np.where((day_fill_flags > 0).any(axis=-1), FLAG_GAP_FILLED, 0).astype(np.int8)
    if scaler is not None:
        outside_day = _outside(series, scaler, "dynamic")  # (time, pixels)
        window_outside = static_outside[None, :] | outside_day[length - 1 :]
        for k in range(length - 1):
            window_outside |= outside_day[k : k + n_days]
        flags |= np.where(window_outside, FLAG_OUTSIDE_TRAINING, 0).astype(np.int8)
    if short:
        flags[: length - 1] |= FLAG_SHORT_HISTORY
    return flags


def _predict_block(
    predictor: Predictor,
    prepared: np.ndarray,
    prepared_static: np.ndarray,
    flags: np.ndarray,
    length: int,
    batch: int,
    lo: float,
    hi: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Soil moisture and quality flags ``(days, land pixels)`` of one prepared block."""
    n_pixels = prepared.shape[1]
    # batches of whole days (or of pixels of one day where a day exceeds the batch)
    days_per_batch = max(1, batch // max(n_pixels, 1))
    pixels_per_batch = max(1, min(n_pixels, batch))
    if isinstance(predictor, DeepPredictor):  # the block on the device once, no host windows
        values = predictor.predict_block(
            prepared, prepared_static, days_per_batch, pixels_per_batch
        )
    else:
        values = _predict_batches(
            predictor, prepared, prepared_static, length, days_per_batch, pixels_per_batch
        )
    clipped = (values < lo) | (values > hi)
    flags = flags | np.where(clipped, FLAG_CLIPPED, 0).astype(np.int8)
    return np.clip(values, lo, hi), flags


def _predict_batches(
    predictor: Predictor,
    prepared: np.ndarray,
    prepared_static: np.ndarray,
    length: int,
    days_per_batch: int,
    pixels_per_batch: int,
) -> np.ndarray:
    """``(days, land pixels)`` batch by batch from host windows (the trees' path)."""
    n_days = prepared.shape[0] - (length - 1)
    n_pixels = prepared.shape[1]
    values = np.empty((n_days, n_pixels), np.float32)
    for days in _batches(n_days, days_per_batch):
        sequences = day_windows(prepared, length, days)  # (days, pixels, L, F)
        for pixels in _batches(n_pixels, pixels_per_batch):
            chosen = np.ascontiguousarray(sequences[:, pixels]).reshape(
                -1, length, prepared.shape[2]
            )
            static_batch = np.tile(prepared_static[pixels], (days.stop - days.start, 1))
            values[days, pixels] = predictor(chosen, static_batch).reshape(
                -1, pixels.stop - pixels.start
            )
    return values
