"""Work of one job spread over the cores it was given: independent pieces (blocks of days,
tiles, months) run in worker processes, and their results come back in the pieces' order.

The pieces are fixed by the work (a year's months, its time chunks, its tiles), never by the
number of workers, so a job gives the same bytes on 1 core and on 16. One worker runs the
pieces in this process, as a job without ``threads`` always has.

Workers are forked (a job's entry script is not importable, so ``spawn`` would run it again)
and compute dask graphs synchronously (the parent's dask thread pool is not theirs); each
piece's function and arguments must be picklable (module-level functions, plain data).
Large read-only data every piece needs (open stacks, the region's static layers) goes in
``shared`` instead: the forked workers inherit it, it is never pickled, and the function is
called as ``function(shared, piece)``. An error in a piece is raised in the job as it was
raised in the worker.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
# what the workers of the pool being started inherit (set just before the fork)
_SHARED: dict[str, Any] = {}


def map_pieces(function: Callable[[T], R], pieces: Iterable[T], workers: int = 1) -> list[R]:
    """``[function(piece) for piece in pieces]``, on ``workers`` processes (at most one per
    piece); the results in the order of ``pieces``."""
    return list(iter_pieces(function, pieces, workers))


def iter_pieces(function: Callable[[T], R], pieces: Iterable[T], workers: int = 1) -> Iterator[R]:
    """:func:`map_pieces` one result at a time, in the order of ``pieces`` (to add results up
    as they come instead of holding them all)."""
    pieces = list(pieces)
    workers = max(1, min(int(workers), len(pieces)))
    if workers == 1:
        yield from (function(piece) for piece in pieces)
        return
    LOGGER.info("%d pieces on %d worker processes", len(pieces), workers)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker
    ) as pool:
        yield from pool.map(function, pieces)


def map_shared(
    function: Callable[[Any, T], R], shared: Any, pieces: Iterable[T], workers: int = 1
) -> Iterator[R]:
    """``function(shared, piece)`` for every piece, as :func:`iter_pieces` does, with
    ``shared`` inherited by the forked workers rather than pickled with every piece."""
    previous = dict(_SHARED)
    _SHARED.update(function=function, shared=shared)
    try:
        yield from iter_pieces(_call_shared, pieces, workers)
    finally:
        _SHARED.clear()
        _SHARED.update(previous)


def _call_shared(piece: Any) -> Any:
    return _SHARED["function"](_SHARED["shared"], piece)


def _start_worker() -> None:
    """A forked worker computes dask graphs in its own thread: the parent's dask thread pool
    does not exist in the child (its queue would wait forever), and the process is already
    the unit of parallelism."""
    import dask

    dask.config.set(scheduler="synchronous")
