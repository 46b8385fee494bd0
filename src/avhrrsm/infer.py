"""Inference: one trained model over every land pixel-day of one (year, tile).

The job reads the year's stack for the tile in blocks of days (each block with the L-1 days
before it, from the previous year's stack across 1 January), predicts every land pixel-day in
batches, and writes the tile's daily soil moisture and quality flags into a Zarr store.

The host does only I/O: the next block is read (the variables by a pool of reader threads)
while the current one is predicted, and a block travels to the device once, as stored (float32
values, int8 fill flags), through buffers reused block after block (pinned host memory and
asynchronous copies on a GPU; the arrays themselves on the CPU). On the device, tensor
operations normalise, make the fill indicators, test the training range, build the sequence
windows (``unfold``) and broadcast the static layers; the batches run back to back (bf16/fp16
autocast on a GPU) and the block's values and flags come back once. Memory is bounded by
``memory_budget_mb`` whatever the tile size: a block holds at most that much input.

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
from collections.abc import Mapping, Sequence
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
from avhrrsm.io.chunks import check_range
from avhrrsm.io.errors import reading
from avhrrsm.learn.predictor import DeepPredictor, Predictor, block_batches, load_predictor
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
CPU = torch.device("cpu")  # where the trees' inputs and flags are prepared


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


def reader_threads(requested: int, threads: int, device: torch.device) -> int:
    """Reader threads of a tile job: ``requested``, or (0) the job's threads on a GPU, where the
    host only reads, and one on the CPU, where the job's threads run the model."""
    if requested > 0:
        return requested
    return max(1, threads) if device.type == "cuda" else 1


@dataclass
class RawBlock:
    """A block's inputs as the stack stores them, at the tile's land pixels: ``series``
    ``(L-1 + days, pixels, F)`` float32 values, ``fill_flags`` the same shape int8, and
    ``short``: whether the history of the first days had to be padded (no previous year)."""

    series: np.ndarray
    fill_flags: np.ndarray
    short: bool


class DeviceInputs:
    """Carries raw blocks to a device through buffers reused block after block: on a GPU one
    pinned host buffer and one device buffer per input (sized by the largest block), filled and
    copied asynchronously; on the CPU the arrays themselves, without a copy."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned: dict[str, torch.Tensor] = {}
        self._on_device: dict[str, torch.Tensor] = {}

    def put(self, name: str, values: np.ndarray) -> torch.Tensor:
        """``values`` on the device (valid until the next ``put`` of ``name``)."""
        host = torch.from_numpy(np.ascontiguousarray(values))
        if self.device.type != "cuda":
            return host
        size = host.numel()
        if name not in self._pinned or self._pinned[name].numel() < size:
            self._pinned[name] = torch.empty(size, dtype=host.dtype, pin_memory=True)
            self._on_device[name] = torch.empty(size, dtype=host.dtype, device=self.device)
        # the previous block's copy from this buffer is complete: its results came back
        pinned = self._pinned[name][:size].view(host.shape)
        pinned.copy_(host)
        on_device = self._on_device[name][:size].view(host.shape)
        on_device.copy_(pinned, non_blocking=True)
        return on_device


@dataclass
class StaticInputs:
    """The tile's static layers at its land pixels as the model takes them (on the device
    for a deep model, on the host for the trees), and whether each pixel's layers lie outside
    the training range (None where the model has no range)."""

    prepared: torch.Tensor | np.ndarray
    outside: torch.Tensor | None


def prepare_static_inputs(predictor: Predictor, static_land: np.ndarray) -> StaticInputs:
    """The static layers ``(pixels, S)`` of a tile, prepared once for all its blocks."""
    if isinstance(predictor, DeepPredictor):
        values = torch.from_numpy(static_land).to(predictor.device)
        return StaticInputs(
            predictor.scaler.static_tensor(values),
            predictor.scaler.outside_tensor(values, "static"),
        )
    return StaticInputs(predictor.prepare_static(static_land), None)


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
    predictor: Predictor | None = None,
) -> TileResult:
    """Predict every land pixel-day of ``tile_id`` in ``year`` and write the tile store.

    ``predictor``: one already loaded, used instead of ``model_path``'s (the benchmarks' null
    model, which measures what the job costs around the model)."""
    from avhrrsm.grid import tiles

    started = time.perf_counter()
    window = region_window(region)
    tile = dict(tiles(window, tile_deg)).get(tile_id)
    if tile is None:
        raise ValueError(f"tile {tile_id} does not meet the region {dict(region)}")
    if predictor is None:
        predictor = load_predictor(model_path, str(settings["device"]), threads)
    readers = reader_threads(int(settings.get("readers", 0)), threads, predictor.device)
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
    static_inputs = prepare_static_inputs(predictor, static_all[land_rows, land_cols])
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
        "tile %s %d: %d land pixels x %d days, L=%d, blocks of %d days, %d reader threads, %s",
        tile_id,
        year,
        land_rows.size,
        n_days,
        length,
        per_block,
        readers,
        describe_device(predictor.device),
    )
    time_coord = xr.DataArray(stack["time"].values, dims="time", attrs={"standard_name": "time"})
    variables = {
        "soil_moisture": (("time", "lat", "lon"), np.float32, SM_ATTRS),
        "quality_flag": (("time", "lat", "lon"), np.int8, QUALITY_ATTRS),
    }
    dims = dict.fromkeys(variables, ("time", "lat", "lon"))
    batch = auto_batch_size(int(settings["batch_size"]), predictor.device)
    lo, hi = float(valid_range[0]), float(valid_range[1])
    inputs = DeviceInputs(predictor.device if isinstance(predictor, DeepPredictor) else CPU)
    with (
        atomic_path(out_path) as tmp,
        ThreadPoolExecutor(max_workers=readers) as variable_readers,
        ThreadPoolExecutor(max_workers=1) as block_reader,
    ):
        create_store(
            tmp,
            tile,
            variables,
            {"time": chunk_days, "lat": tile.shape[0], "lon": tile.shape[1]},
            {"title": f"avhrrsm inference tile {tile_id} {year}", "tile": tile_id, **global_attrs},
            extra_coords={"time": time_coord},
        )

        def read(block: tuple[int, int]) -> RawBlock:
            """Read a block as stored (in the background while the previous one is predicted)."""
            t0 = time.perf_counter()
            with reading(stack_path, previous_stack_path, what="input stack"):
                raw = _read_block(
                    (stack, stack_path), (previous, previous_stack_path), block, length, rows,
                    cols, land_rows, land_cols, variable_readers,
                )  # fmt: skip
            result.read_seconds += time.perf_counter() - t0
            return raw

        pending = block_reader.submit(read, blocks[0]) if blocks else None
        for index, block in enumerate(blocks):
            raw = pending.result()
            if index + 1 < len(blocks):
                pending = block_reader.submit(read, blocks[index + 1])
            n_block = block[1] - block[0]
            sm = np.full((n_block, *tile.shape), np.nan, np.float32)
            quality = np.zeros((n_block, *tile.shape), np.int8)
            if land_rows.size:
                t0 = time.perf_counter()
                values, flags = _predict_block(
                    predictor, inputs, raw, static_inputs, length, batch, lo, hi
                )
                result.forward_seconds += time.perf_counter() - t0
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


def read_inference_tile(path: str | Path, days: slice) -> tuple[np.ndarray, np.ndarray]:
    """Soil moisture and quality flags ``(days, rows, cols)`` of a tile store written by
    :func:`predict_tile`; errors name the store."""
    with reading(path, what="inference tile"), xr.open_zarr(path, chunks=None) as stored:
        soil_moisture = stored["soil_moisture"][days].values
        quality = stored["quality_flag"][days].values
    check_range(soil_moisture, "soil_moisture", path)
    return soil_moisture, quality


def _read_block(
    stack: tuple[xr.Dataset, str | Path],
    previous: tuple[xr.Dataset | None, str | Path | None],
    block: tuple[int, int],
    length: int,
    rows: slice,
    cols: slice,
    land_rows: np.ndarray,
    land_cols: np.ndarray,
    readers: ThreadPoolExecutor,
) -> RawBlock:
    """The inputs and their fill flags of a block with its history, at the land pixels, each
    variable read by one of the ``readers``; the history is padded with the first day where
    there is no previous year. ``stack`` and ``previous``: the stores with their paths; every
    value read is checked against its variable's valid range (a damaged chunk, named)."""
    start, stop = block
    history_start = start - (length - 1)

    def read(name: str) -> np.ndarray:
        """``(L-1 + days, land pixels)`` of one variable."""

        def land_days(source: tuple[Any, Any], days: slice) -> np.ndarray:
            values = _at_land(source[0][name][days, rows, cols].values, land_rows, land_cols)
            check_range(values, name, source[1])
            return values

        parts = []
        if history_start < 0:
            before = -history_start
            if previous[0] is not None:
                parts.append(land_days(previous, slice(-before, None)))
            else:
                parts.append(np.repeat(land_days(stack, slice(0, 1)), before, axis=0))
        parts.append(land_days(stack, slice(max(history_start, 0), stop)))
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    value_names = DYNAMIC_FEATURES
    flag_names = tuple(f"{name}_fill_flag" for name in DYNAMIC_FEATURES)
    read_values = list(readers.map(read, (*value_names, *flag_names)))
    series = np.stack(read_values[: len(value_names)], axis=-1).astype(np.float32, copy=False)
    fill_flags = np.stack(read_values[len(value_names) :], axis=-1).astype(np.int8, copy=False)
    return RawBlock(series, fill_flags, short=history_start < 0 and previous[0] is None)


def _at_land(values: np.ndarray, land_rows: np.ndarray, land_cols: np.ndarray) -> np.ndarray:
    """``(time, land pixels)`` of a ``(time, rows, cols)`` block (a view where all is land)."""
    if land_rows.size == values.shape[1] * values.shape[2]:  # np.nonzero order is row-major
        return values.reshape(values.shape[0], -1)
    return values[:, land_rows, land_cols]


def input_flags(
    fill_flags: torch.Tensor,
    short: bool,
    outside_day: torch.Tensor | None,
    static_outside: torch.Tensor | None,
    length: int,
) -> torch.Tensor:
    """Quality bits known from the inputs alone, ``(days, pixels)`` int8 on the inputs'
    device, from a block's fill flags ``(L-1 + days, pixels, F)``: gap-filled inputs on the
    day; an input of the sequence (``outside_day``, ``(L-1 + days, pixels)``) or a static layer
    (``static_outside``, ``(pixels,)``) outside the training range (None: the model has no
    range); the short history of the first L-1 days."""
    gap_filled = (fill_flags[length - 1 :] > 0).any(dim=-1)
    flags = gap_filled.to(torch.int8) * FLAG_GAP_FILLED
    if outside_day is not None and static_outside is not None:
        window_outside = outside_day.unfold(0, length, 1).any(dim=-1) | static_outside[None, :]
        flags |= window_outside.to(torch.int8) * FLAG_OUTSIDE_TRAINING
    if short:
        flags[: length - 1] |= FLAG_SHORT_HISTORY
    return flags


@torch.inference_mode()
def _predict_block(
    predictor: Predictor,
    inputs: DeviceInputs,
    raw: RawBlock,
    static: StaticInputs,
    length: int,
    batch: int,
    lo: float,
    hi: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Soil moisture and quality flags ``(days, land pixels)`` of one raw block: a deep model
    prepares and predicts it on its device; the trees take host windows batch by batch."""
    n_pixels = raw.series.shape[1]
    # batches of whole days (or of pixels of one day where a day exceeds the batch)
    days_per_batch = max(1, batch // max(n_pixels, 1))
    pixels_per_batch = max(1, min(n_pixels, batch))
    fill_flags = inputs.put("fill_flags", raw.fill_flags)
    if isinstance(predictor, DeepPredictor):
        series = inputs.put("series", raw.series)
        scaler = predictor.scaler
        flags = input_flags(
            fill_flags, raw.short, scaler.outside_tensor(series, "dynamic"), static.outside, length
        )
        values = predictor.predict_windows(
            scaler.dynamic_channels(series, fill_flags),
            static.prepared,
            days_per_batch,
            pixels_per_batch,
        )
    else:
        flags = input_flags(fill_flags, raw.short, None, None, length)
        prepared = predictor.prepare_dynamic(raw.series, raw.fill_flags)
        values = torch.from_numpy(
            _predict_batches(
                predictor, prepared, np.asarray(static.prepared), length, days_per_batch,
                pixels_per_batch,
            )
        )  # fmt: skip
    clipped = (values < lo) | (values > hi)
    flags |= clipped.to(torch.int8) * FLAG_CLIPPED
    return values.clamp(lo, hi).cpu().numpy(), flags.cpu().numpy()


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
    for days, pixels in block_batches(n_days, n_pixels, days_per_batch, pixels_per_batch):
        sequences = day_windows(prepared, length, days)  # (days, pixels, L, F)
        chosen = np.ascontiguousarray(sequences[:, pixels]).reshape(-1, length, prepared.shape[2])
        static_batch = np.tile(prepared_static[pixels], (days.stop - days.start, 1))
        values[days, pixels] = predictor(chosen, static_batch).reshape(
            -1, pixels.stop - pixels.start
        )
    return values
