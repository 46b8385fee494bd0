"""Inference: one trained model over every land pixel-day of one (year, tile).

The job reads the year's stack for the tile in blocks of days (each block with the L-1 days
before it, from the previous year's stack across 1 January), predicts every land pixel-day in
batches, and writes the tile's daily soil moisture and quality flags into a Zarr store.

The job's threads are workers over the year's blocks of days: each worker takes a contiguous
run of blocks and, block after block, reads it (the history carried over from the block before,
so no chunk is read twice), prepares and predicts it, and writes it into its own chunks of the
tile store; on the CPU each worker's tensor operations run in one thread, so the job uses as many
cores as it has threads, and reading, preparing and the model spread over all of them. The host
does only I/O: a block travels to the device once, as stored (float32 values, int8 fill flags),
through buffers reused block after block (pinned host memory and asynchronous copies on a GPU;
the arrays themselves on the CPU). On the device, tensor operations normalise, make the fill
indicators, test the training range, build the sequence windows (``unfold``) and broadcast the
static layers; the batches run back to back (bf16/fp16 autocast on a GPU) and the block's
values and flags come back once. Memory is bounded by ``memory_budget_mb`` whatever the tile
size: a block holds at most that much input, and there are no more workers than the budget
holds blocks.

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
import multiprocessing
import multiprocessing.synchronize
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import xarray as xr

from avhrrsm.atomic import atomic_path
from avhrrsm.device import autocast_dtype, describe_device
from avhrrsm.grid import Window, region_window
from avhrrsm.hashing import file_sha256
from avhrrsm.io.chunks import check_range
from avhrrsm.io.errors import InputError, reading
from avhrrsm.learn.predictor import DeepPredictor, Predictor, block_batches, load_predictor
from avhrrsm.learn.uncertainty import ErrorModel, input_states, read_error_model
from avhrrsm.parallel import map_shared
from avhrrsm.stacks import open_year_stacks
from avhrrsm.static import read_static_layers
from avhrrsm.store import create_store, store_arrays
from avhrrsm.variables import (
    DYNAMIC_FEATURES,
    FLAG_CLIPPED,
    FLAG_GAP_FILLED,
    FLAG_OUTSIDE_TRAINING,
    FLAG_SHORT_HISTORY,
    QUALITY_ATTRS,
    SM_ATTRS,
    SM_UNCERTAINTY_ATTRS,
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
    setup_seconds: float = 0.0  # before the workers start: model, inputs opened, store made
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def pixel_days_per_second(self) -> float:
        return self.pixel_days / self.seconds if self.seconds else 0.0

    def count_flags(self, flags: np.ndarray) -> None:
        """Add the pixel-days of ``flags`` (quality bit masks) that carry each bit."""
        per_value = np.bincount(flags.ravel().view(np.uint8), minlength=256)
        values = np.arange(256)
        for bit, name in zip((1, 2, 4, 8), FLAG_NAMES, strict=True):
            self.flags[name] = self.flags.get(name, 0) + int(per_value[(values & bit) > 0].sum())

    def add(self, other: TileResult) -> None:
        """Add another worker's counts and seconds (the wall time stays this one's)."""
        self.pixel_days += other.pixel_days
        self.forward_seconds += other.forward_seconds
        self.read_seconds += other.read_seconds
        self.write_seconds += other.write_seconds
        for name, count in other.flags.items():
            self.flags[name] = self.flags.get(name, 0) + count


def auto_batch_size(requested: int, device: torch.device) -> int:
    """``requested``, or (0) 65536 pixel-days on a GPU and 4096 on the CPU."""
    if requested > 0:
        return requested
    return 65536 if device.type == "cuda" else 4096


def block_days(
    n_pixels: int, n_days: int, length: int, memory_budget_mb: float, chunk_days: int
) -> int:
    """Days per block: the stack's chunk of days where the budget allows, else the largest
    divisor of it that the budget holds (at least 1), so that no two blocks share a chunk of
    the tile store (workers write their blocks at the same time)."""
    affordable = int(memory_budget_mb * 2**20 // max(block_bytes(n_pixels, 1, 0), 1)) - (length - 1)
    if n_days <= min(chunk_days, affordable):
        return max(1, n_days)
    return max(
        d for d in range(1, chunk_days + 1) if chunk_days % d == 0 and d <= max(affordable, 1)
    )


def block_bytes(n_pixels: int, days: int, length: int) -> float:
    """Memory a block of ``days`` (with its L-1 days of history) holds while it is predicted:
    the raw values and fill flags, their prepared copies on the device, with a margin."""
    return n_pixels * (days + max(length - 1, 0)) * len(DYNAMIC_FEATURES) * (4 + 4 + 1) * 1.5


def tile_workers(
    requested: int, threads: int, n_blocks: int, one_block_mb: float, memory_budget_mb: float
) -> int:
    """Workers of a tile job, each reading, preparing, predicting and writing its own run of
    blocks: ``requested``, or (0) the job's ``threads``; never more than there are blocks, nor
    than the memory budget holds blocks of ``one_block_mb``."""
    wanted = requested if requested > 0 else max(1, threads)
    affordable = max(1, int(memory_budget_mb // max(one_block_mb, 1e-6)))
    return max(1, min(wanted, n_blocks, affordable))


def worker_segments(
    blocks: Sequence[tuple[int, int]], workers: int, chunk_days: int
) -> list[list[tuple[int, int]]]:
    """``blocks`` (in order) in at most ``workers`` contiguous runs, as even as whole chunks of
    ``chunk_days`` allow (no chunk of the tile store is written by two workers): a run reads
    the history of its first block once and carries it from block to block."""
    chunks: list[list[tuple[int, int]]] = []
    for block in blocks:
        if chunks and chunks[-1][0][0] // chunk_days == block[0] // chunk_days:
            chunks[-1].append(block)
        else:
            chunks.append([block])
    n, runs = len(chunks), max(1, min(workers, len(chunks)))
    bounds = [round(k * n / runs) for k in range(runs + 1)]
    return [
        [block for chunk in chunks[a:b] for block in chunk]
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]


@dataclass
class RawBlock:
    """A block's inputs as the stack stores them, at the tile's land pixels: ``series``
    ``(L-1 + days, pixels, F)`` float32 values, ``fill_flags`` the same shape int8, and
    ``short``: whether the history of the first days had to be padded (no previous year)."""

    series: np.ndarray
    fill_flags: np.ndarray
    short: bool


@dataclass
class TileStacks:
    """The year's stack (and the previous year's, or None) seen through one tile: its rows and
    columns of the region and its land pixels. Values are read as stored, through the stores'
    Zarr arrays, straight into the caller's buffer where the tile is all land."""

    stack: xr.Dataset
    stack_path: str | Path
    previous: xr.Dataset | None
    previous_path: str | Path | None
    rows: slice
    cols: slice
    land_rows: np.ndarray
    land_cols: np.ndarray
    _arrays: dict[bool, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import zarr

        for previous_year, path in ((False, self.stack_path), (True, self.previous_path)):
            if path is None:
                continue
            with reading(path, what="input stack"):
                group = zarr.open_group(str(path), mode="r")
                names = (*DYNAMIC_FEATURES, *(f"{name}_fill_flag" for name in DYNAMIC_FEATURES))
                self._arrays[previous_year] = {name: group[name] for name in names}
            packed = [
                name
                for name, array in self._arrays[previous_year].items()
                if {"scale_factor", "add_offset"} & set(array.attrs)
            ]
            if packed:
                raise InputError(path, f"stack variables {packed} are packed", "rebuild the stack")

    @property
    def n_land(self) -> int:
        return int(self.land_rows.size)

    def read_into(
        self, previous_year: bool, days: slice, series: np.ndarray, flags: np.ndarray
    ) -> None:
        """The values and fill flags of ``days`` of this year's (or the previous year's) stack
        at the land pixels, into ``series`` and ``flags`` ``(days, pixels, F)``; every value
        read is checked against its variable's valid range (a damaged chunk, named)."""
        arrays = self._arrays[previous_year]
        path = self.previous_path if previous_year else self.stack_path
        assert path is not None
        days = slice(*days.indices(arrays[DYNAMIC_FEATURES[0]].shape[0]))
        with reading(path, what="input stack"):
            for index, name in enumerate(DYNAMIC_FEATURES):
                self._read(arrays[name], days, series[..., index])
                check_range(series[..., index], name, path)
                self._read(arrays[f"{name}_fill_flag"], days, flags[..., index])

    def _read(self, array: Any, days: slice, into: np.ndarray) -> None:
        """``days`` of a ``(time, lat, lon)`` array at the land pixels into ``into``
        ``(days, pixels)``: decoded straight into it where the tile is all land and ``into``
        is contiguous (the buffers of :class:`BlockReader` are, variable by variable)."""
        from zarr.core.buffer import default_buffer_prototype

        selection = (days, self.rows, self.cols)
        height, width = self.rows.stop - self.rows.start, self.cols.stop - self.cols.start
        if self.n_land == height * width and into.flags.c_contiguous:
            target = into.reshape(into.shape[0], height, width)  # a view
            array.get_basic_selection(
                selection, out=default_buffer_prototype().nd_buffer.from_numpy_array(target)
            )
            return
        into[...] = array.get_basic_selection(selection)[:, self.land_rows, self.land_cols]

    def close(self) -> None:
        self.stack.close()
        if self.previous is not None:
            self.previous.close()


class BlockReader:
    """Reads one worker's blocks, in order, into two buffers reused block after block (one
    contiguous plane per variable, seen as ``(days, pixels, F)``). A block's L-1 days of
    history are the last days of the block read just before where it precedes it (no chunk
    is read twice), else read from the stack, from the previous year's stack across
    1 January, or, without a previous year, the year's first day repeated (the block is then
    ``short``)."""

    def __init__(self, stacks: TileStacks, length: int, max_days: int) -> None:
        self.stacks = stacks
        self.history = length - 1
        shape = (len(DYNAMIC_FEATURES), self.history + max_days, stacks.n_land)
        self._series = np.empty(shape, np.float32).transpose(1, 2, 0)
        self._flags = np.empty(shape, np.int8).transpose(1, 2, 0)
        self._last: tuple[int, int] | None = None  # (stop, days) of the block in the buffers

    def read(self, block: tuple[int, int]) -> RawBlock:
        start, stop = block
        h, n = self.history, stop - start
        series, flags = self._series[: h + n], self._flags[: h + n]
        short = False
        if h and self._last is not None and self._last[0] == start:
            carried = slice(self._last[1], self._last[1] + h)  # numpy copies overlaps right
            series[:h], flags[:h] = self._series[carried], self._flags[carried]
        elif h:
            short = self._read_history(start, series[:h], flags[:h])
        self.stacks.read_into(False, slice(start, stop), series[h:], flags[h:])
        self._last = (stop, n)
        return RawBlock(series, flags, short)

    def _read_history(self, start: int, series: np.ndarray, flags: np.ndarray) -> bool:
        """The L-1 days before ``start`` into ``series``/``flags``; True where they had to be
        padded with the first day (no previous year)."""
        before = self.history - start  # days of the history before 1 January
        if before <= 0:
            self.stacks.read_into(False, slice(start - self.history, start), series, flags)
            return False
        if start:
            self.stacks.read_into(False, slice(0, start), series[before:], flags[before:])
        if self.stacks.previous is not None:
            self.stacks.read_into(True, slice(-before, None), series[:before], flags[:before])
            return False
        self.stacks.read_into(False, slice(0, 1), series[:1], flags[:1])
        series[1:before], flags[1:before] = series[:1], flags[:1]
        return True


class DeviceInputs:
    """Carries raw blocks to a device through buffers reused block after block: on a GPU one
    pinned host buffer and one device buffer per input (sized by the largest block), filled and
    copied asynchronously; on the CPU the arrays themselves, without a copy."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned: dict[str, torch.Tensor] = {}
        self._on_device: dict[str, torch.Tensor] = {}

    def put(self, name: str, values: np.ndarray) -> torch.Tensor:
        """``values`` on the device (valid until the next ``put`` of ``name``), with their
        strides on the CPU, contiguous on a GPU."""
        host = torch.from_numpy(values)
        if self.device.type != "cuda":
            return host
        # copied in the order of the array's memory (a plane per variable stays one), so
        # that the host does a plain copy; the device tensor has the array's strides
        order = sorted(range(host.dim()), key=lambda axis: -host.stride(axis))
        dense = host.permute(order).contiguous()  # a view where the array is dense
        size = dense.numel()
        if name not in self._pinned or self._pinned[name].numel() < size:
            self._pinned[name] = torch.empty(size, dtype=host.dtype, pin_memory=True)
            self._on_device[name] = torch.empty(size, dtype=host.dtype, device=self.device)
        # the previous block's copy from this buffer is complete: its results came back
        pinned = self._pinned[name][:size].view(dense.shape)
        pinned.copy_(dense)
        on_device = self._on_device[name][:size].view(dense.shape)
        on_device.copy_(pinned, non_blocking=True)
        inverse = sorted(range(host.dim()), key=lambda axis: order[axis])
        return on_device.permute(inverse)

    def buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A tensor of ``shape`` on the device for work of a block, reused block after block
        (valid until the next ``buffer`` of ``name``)."""
        size = int(np.prod(shape))
        held = self._on_device.get(name)
        if held is None or held.numel() < size or held.dtype != dtype:
            held = self._on_device[name] = torch.empty(size, dtype=dtype, device=self.device)
        return held[:size].view(shape)


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


FLAG_NAMES = (
    "input_gap_filled",
    "input_outside_training_range",
    "short_history",
    "clipped_to_valid_range",
)


@dataclass
class TileJob:
    """What every block of a tile job needs, opened once: the model, the tile's stacks and
    static inputs, the blocks of days and how they are predicted and written."""

    tile_id: str
    tile: Window
    predictor: Predictor
    stacks: TileStacks
    static: StaticInputs
    blocks: list[tuple[int, int]]
    batch: int
    valid_range: tuple[float, float]
    chunk_days: int
    error_model: ErrorModel | None = None

    @property
    def length(self) -> int:
        return self.predictor.sequence_length


def open_tile_job(
    year: int,
    tile_id: str,
    tile_deg: float,
    stack_paths: tuple[str | Path, str | Path | None],
    static_path: str | Path,
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    valid_range: Sequence[float],
    predictor: Predictor,
) -> TileJob:
    """Open a tile job's inputs: the tile within the region, its land pixels and static
    layers (read for the tile only), the year's stacks, and the blocks of days."""
    from avhrrsm.grid import tiles

    window = region_window(region)
    tile = dict(tiles(window, tile_deg)).get(tile_id)
    if tile is None:
        raise ValueError(f"tile {tile_id} does not meet the region {dict(region)}")
    rows, cols = tile.within(window)
    stack, previous = open_year_stacks(
        year,
        stack_paths[0],
        stack_paths[1],
        window,
        (*DYNAMIC_FEATURES, *(f"{name}_fill_flag" for name in DYNAMIC_FEATURES)),
    )
    layers = read_static_layers(static_path, window, ("land_mask", *STATIC_FEATURES), (rows, cols))
    land_rows, land_cols = np.nonzero(layers["land_mask"])
    static_land = np.stack(
        [layers[name][land_rows, land_cols] for name in STATIC_FEATURES], axis=-1
    ).astype(np.float32)
    stacks = TileStacks(
        stack, stack_paths[0], previous, stack_paths[1], rows, cols, land_rows, land_cols
    )
    n_days = stack.sizes["time"]
    chunk_days = int(stack[DYNAMIC_FEATURES[0]].encoding.get("chunks", (32,))[0])
    length = predictor.sequence_length
    per_block = block_days(
        land_rows.size, n_days, length, float(settings["memory_budget_mb"]), chunk_days
    )
    return TileJob(
        tile_id,
        tile,
        predictor,
        stacks,
        prepare_static_inputs(predictor, static_land),
        [(s, min(n_days, s + per_block)) for s in range(0, n_days, per_block)],
        auto_batch_size(int(settings["batch_size"]), predictor.device),
        (float(valid_range[0]), float(valid_range[1])),
        chunk_days,
    )


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
    uncertainty_path: str | Path | None = None,
) -> TileResult:
    """Predict every land pixel-day of ``tile_id`` in ``year`` and write the tile store.

    The job's ``threads`` are workers over the year's blocks of days (each in turn reads,
    prepares, predicts and writes its own run of blocks); on the CPU each worker's tensor
    operations run in one thread, so the job uses its threads and no more. ``predictor``: one
    already loaded, used instead of ``model_path``'s (the benchmarks' null model, which
    measures what the job costs around the model). ``uncertainty_path``: the model's error
    model (rule ``uncertainty_calibration``), whose standard error of every pixel-day the tile
    holds as ``sm_uncertainty`` (None: no uncertainty; the benchmark's cost without it)."""
    started = time.perf_counter()
    if predictor is None:
        predictor = load_predictor(
            model_path, str(settings["device"]), threads, bool(settings.get("compile", False))
        )
    job = open_tile_job(
        year, tile_id, tile_deg, (stack_path, previous_stack_path), static_path, region,
        settings, valid_range, predictor,
    )  # fmt: skip
    if uncertainty_path is not None:
        job.error_model = read_error_model(uncertainty_path)
    n_land, length = job.stacks.n_land, job.length
    days_per_block = job.blocks[0][1] - job.blocks[0][0] if job.blocks else 0
    workers = tile_workers(
        int(settings.get("workers", 0)),
        threads if threads > 0 else torch.get_num_threads(),
        len(job.blocks) if isinstance(predictor, DeepPredictor) else 1,
        block_bytes(n_land, days_per_block, length) / 2**20,
        float(settings["memory_budget_mb"]),
    )
    LOGGER.info(
        "tile %s %d: %d land pixels x %d days, L=%d, %d blocks of %d days over %d workers, %s",
        tile_id, year, n_land, job.stacks.stack.sizes["time"], length, len(job.blocks),
        days_per_block, workers, describe_device(predictor.device),
    )  # fmt: skip
    try:
        with atomic_path(out_path) as tmp, _cpu_threads_per_worker(predictor, workers):
            _create_tile_store(tmp, job, year, global_attrs, uncertainty_path)
            setup_seconds = time.perf_counter() - started
            result = _run_workers(job, store_arrays(tmp, _tile_variables(job)), workers)
    finally:
        job.stacks.close()
    result.seconds = time.perf_counter() - started
    result.setup_seconds = setup_seconds
    LOGGER.info(
        "tile %s %d: %d pixel-days in %.1f s (%.0f per s; prepare and model %.1f s, read %.1f s, "
        "write %.1f s, summed over workers); flags %s",
        tile_id, year, result.pixel_days, result.seconds, result.pixel_days_per_second,
        result.forward_seconds, result.read_seconds, result.write_seconds, result.flags,
    )  # fmt: skip
    return result


@contextmanager
def _cpu_threads_per_worker(predictor: Predictor, workers: int) -> Iterator[None]:
    """On the CPU with several workers, one thread for each worker's tensor operations (the
    job's threads are the workers); the setting before is restored after."""
    if workers <= 1 or predictor.device.type != "cpu" or not isinstance(predictor, DeepPredictor):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tile_variables(job: TileJob) -> tuple[str, ...]:
    """The tile store's variables: the standard error with an error model."""
    uncertainty = ("sm_uncertainty",) if job.error_model is not None else ()
    return ("soil_moisture", *uncertainty, "quality_flag")


def _create_tile_store(
    path: Path,
    job: TileJob,
    year: int,
    global_attrs: Mapping[str, str],
    uncertainty_path: str | Path | None,
) -> None:
    """The empty tile store: soil moisture, its standard error (with an error model) and
    quality flags, chunked as the stack's days."""
    stack = job.stacks.stack
    time_coord = xr.DataArray(stack["time"].values, dims="time", attrs={"standard_name": "time"})
    attrs = {
        "soil_moisture": SM_ATTRS,
        "sm_uncertainty": SM_UNCERTAINTY_ATTRS,
        "quality_flag": QUALITY_ATTRS,
    }
    dims = ("time", "lat", "lon")
    uncertainty = (
        {}
        if uncertainty_path is None
        else {"uncertainty_model_sha256": file_sha256(uncertainty_path)}
    )
    create_store(
        path,
        job.tile,
        {
            name: (dims, np.int8 if name == "quality_flag" else np.float32, attrs[name])
            for name in _tile_variables(job)
        },
        {"time": job.chunk_days, "lat": job.tile.shape[0], "lon": job.tile.shape[1]},
        {
            "title": f"avhrrsm inference tile {job.tile_id} {year}",
            "tile": job.tile_id,
            **_arithmetic_provenance(job.predictor),
            "inference_batch_size": job.batch,
            **uncertainty,
            **global_attrs,
        },
        extra_coords={"time": time_coord},
    )


def _arithmetic_provenance(predictor: Predictor) -> dict[str, str]:
    """How the model's forward passes run (for the tile's provenance): the arithmetic on its
    device (``inference_precision``) and the eager or compiled path (``inference_compiled``)."""
    if not isinstance(predictor, DeepPredictor):
        return {"inference_precision": "float32 (XGBoost)", "inference_compiled": "eager"}
    dtype = autocast_dtype(predictor.device)
    return {
        "inference_precision": (
            "float32" if dtype is None else f"{str(dtype).replace('torch.', '')} autocast"
        ),
        "inference_compiled": "torch.compile (inductor)" if predictor.compiled else "eager",
    }


def _run_workers(job: TileJob, arrays: Mapping[str, Any], workers: int) -> TileResult:
    """Predict and write every block of ``job``, the runs of :func:`worker_segments` in
    ``workers`` workers: forked processes on the CPU, each pinned to one of the job's cores
    (threads share one interpreter and Zarr's one event loop for their host work: the
    benchmark measured 1.24x from 1 to 2 threads, against 1.47x for the job and 1.58x after
    set-up with processes), threads feeding a GPU (a CUDA context does not survive a fork).
    The first error stops the other workers and is raised."""
    segments = worker_segments(job.blocks, workers, job.chunk_days)
    if len(segments) <= 1:
        parts = [_predict_segment(job, segment, arrays, threading.Event()) for segment in segments]
    elif job.predictor.device.type == "cpu":
        # the parent picks each run's core: a pool process that takes a second run already
        # sees only the core of its first
        cores = sorted(os.sched_getaffinity(0))
        shared = (job, arrays, multiprocessing.get_context("fork").Event())
        pieces = [(cores[k % len(cores)], segment) for k, segment in enumerate(segments)]
        parts = list(map_shared(_segment_of_process, shared, pieces, len(segments)))
    else:
        shared = (job, arrays, threading.Event())
        with ThreadPoolExecutor(max_workers=len(segments)) as pool:
            parts = list(pool.map(lambda segment: _segment_of_worker(shared, segment), segments))
    result = TileResult(flags=dict.fromkeys(FLAG_NAMES, 0))
    for part in parts:
        result.add(part)
    return result


StopEvent = threading.Event | multiprocessing.synchronize.Event
"""What tells a tile job's workers to stop: set by the first that fails."""
WorkerShared = tuple[TileJob, Mapping[str, Any], StopEvent]
"""What every worker of a tile job shares: the job, the tile store's arrays, the stop event."""


def _segment_of_process(
    shared: WorkerShared, piece: tuple[int, list[tuple[int, int]]]
) -> TileResult:
    """A worker process's run of blocks on its core, the process's Zarr and decoding threads
    with it (measured: two workers left to roam both cores scale 1.2-1.3x, two independent
    pinned jobs 1.9x)."""
    core, segment = piece
    os.sched_setaffinity(0, {core})
    return _segment_of_worker(shared, segment)


def _segment_of_worker(shared: WorkerShared, segment: list[tuple[int, int]]) -> TileResult:
    """One worker's run of blocks; an error in it tells the other workers to stop."""
    job, arrays, failed = shared
    try:
        return _predict_segment(job, segment, arrays, failed)
    except BaseException:
        failed.set()
        raise


def _predict_segment(
    job: TileJob,
    segment: list[tuple[int, int]],
    arrays: Mapping[str, Any],
    failed: StopEvent,
) -> TileResult:
    """One worker's run of blocks: read each (its history carried), predict, write."""
    result = TileResult(flags=dict.fromkeys(FLAG_NAMES, 0))
    if not segment:
        return result
    predictor, stacks = job.predictor, job.stacks
    deep = isinstance(predictor, DeepPredictor)
    inputs = DeviceInputs(predictor.device if deep else CPU)
    reader = BlockReader(stacks, job.length, max(stop - start for start, stop in segment))
    for block in segment:
        if failed.is_set():
            break
        t0 = time.perf_counter()
        raw = reader.read(block)
        t1 = time.perf_counter()
        if stacks.n_land:
            values, uncertainty, flags = _predict_block(
                predictor, inputs, raw, job.static, job.length, job.batch, *job.valid_range,
                job.error_model,
            )  # fmt: skip
            result.count_flags(flags)
            result.pixel_days += values.size
        else:
            values = np.empty((block[1] - block[0], 0), np.float32)
            uncertainty, flags = values, np.empty(values.shape, np.int8)
        t2 = time.perf_counter()
        days = slice(*block)
        arrays["soil_moisture"][days] = _on_tile(values, stacks, job.tile.shape, np.nan)
        if uncertainty is not None:
            arrays["sm_uncertainty"][days] = _on_tile(uncertainty, stacks, job.tile.shape, np.nan)
        arrays["quality_flag"][days] = _on_tile(flags, stacks, job.tile.shape, 0)
        result.read_seconds += t1 - t0
        result.forward_seconds += t2 - t1
        result.write_seconds += time.perf_counter() - t2
    return result


def _on_tile(
    values: np.ndarray, stacks: TileStacks, shape: tuple[int, int], fill: float
) -> np.ndarray:
    """``(days, rows, cols)`` of ``(days, land pixels)``, ``fill`` off land."""
    if stacks.n_land == shape[0] * shape[1]:
        return values.reshape(values.shape[0], *shape)
    out = np.full((values.shape[0], *shape), fill, values.dtype)
    out[:, stacks.land_rows, stacks.land_cols] = values
    return out


class TileDays(NamedTuple):
    """Days of an inference tile ``(days, rows, cols)``: soil moisture and its standard error
    (m3 m-3, NaN off land) and the quality flag bits."""

    soil_moisture: np.ndarray
    sm_uncertainty: np.ndarray
    quality_flag: np.ndarray


def read_inference_tile(path: str | Path, days: slice) -> TileDays:
    """``days`` of a tile store written by :func:`predict_tile` with an error model; errors
    name the store (a tile without ``sm_uncertainty`` among them)."""
    with reading(path, what="inference tile"), xr.open_zarr(path, chunks=None) as stored:
        if "sm_uncertainty" not in stored:
            raise InputError(
                path,
                "has no sm_uncertainty (predicted without an error model)",
                "rerun its inference_tile job",
            )
        tile = TileDays(*(stored[name][days].values for name in TileDays._fields))
    check_range(tile.soil_moisture, "soil_moisture", path)
    check_range(tile.sm_uncertainty, "sm_uncertainty", path)
    return tile


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
    # amax > 0 is any(> 0), and runs fast over strided last axes (the variables' planes)
    gap_filled = fill_flags[length - 1 :].amax(dim=-1) > 0
    flags = gap_filled.to(torch.int8) * FLAG_GAP_FILLED
    if outside_day is not None and static_outside is not None:
        window_outside = outside_day.unfold(0, length, 1).amax(dim=-1) | static_outside[None, :]
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
    error_model: ErrorModel | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Soil moisture, its standard error (None without an ``error_model``) and quality flags
    ``(days, land pixels)`` of one raw block: a deep model prepares and predicts it on its
    device; the trees take host windows batch by batch. The standard error is the error
    model's class of each pixel-day (the day's fill flags, the range and history bits, the
    value after clipping), looked up on the same device."""
    n_pixels = raw.series.shape[1]
    # batches of whole days (or of pixels of one day where a day exceeds the batch)
    days_per_batch = max(1, batch // max(n_pixels, 1))
    pixels_per_batch = max(1, min(n_pixels, batch))
    fill_flags = inputs.put("fill_flags", raw.fill_flags)
    if isinstance(predictor, DeepPredictor):
        values, flags = _predict_on_device(
            predictor, inputs, raw, fill_flags, static, length, days_per_batch, pixels_per_batch
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
    values = values.clamp(lo, hi)
    if error_model is None:
        return values.cpu().numpy(), None, flags.cpu().numpy()
    uncertainty = error_model.standard_error_tensor(
        input_states(fill_flags[length - 1 :]),
        (flags & FLAG_OUTSIDE_TRAINING) > 0,
        (flags & FLAG_SHORT_HISTORY) > 0,
        values,
    )
    return values.cpu().numpy(), uncertainty.cpu().numpy(), flags.cpu().numpy()


def _predict_on_device(
    predictor: DeepPredictor,
    inputs: DeviceInputs,
    raw: RawBlock,
    fill_flags: torch.Tensor,
    static: StaticInputs,
    length: int,
    days_per_batch: int,
    pixels_per_batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soil moisture (m3 m-3) and the input quality bits ``(days, land pixels)`` of a raw
    block on the model's device, in pieces of one batch's pixels where a batch is part of a
    day (the whole block where batches hold whole days): a piece's range test, flags,
    normalisation and windows stay in cache, and the batches are those of the whole block;
    ``fill_flags``: the block's fill flags already on the device."""
    series = inputs.put("series", raw.series)
    scaler = predictor.scaler
    n_series, n_pixels = series.shape[0], series.shape[1]
    shape = (n_series - (length - 1), n_pixels)
    values = torch.empty(shape, dtype=torch.float32, device=series.device)
    flags = torch.empty(shape, dtype=torch.int8, device=series.device)
    piece = pixels_per_batch if days_per_batch == 1 else n_pixels
    for start in range(0, n_pixels, piece):
        pixels = slice(start, min(n_pixels, start + piece))
        part, part_flags = series[:, pixels], fill_flags[:, pixels]
        outside = scaler.outside_tensor(part, "dynamic")
        static_outside = None if static.outside is None else static.outside[pixels]
        flags[:, pixels] = input_flags(part_flags, raw.short, outside, static_outside, length)
        prepared = inputs.buffer(
            "prepared",
            (n_series, pixels.stop - pixels.start, scaler.n_model_dynamic),
            torch.float32,
        )
        scaler.dynamic_into(part, part_flags, prepared)
        values[:, pixels] = predictor.predict_windows(
            prepared, static.prepared[pixels], days_per_batch, pixels.stop - pixels.start
        )
    return values, flags


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
