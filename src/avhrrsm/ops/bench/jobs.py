"""The jobs the benchmarks time in a process of their own (``python -m avhrrsm.ops.bench.jobs
JOB ARGS...``): each runs one stage's real entry function and prints its wall time and the
process's peak memory as one JSON line. Imports stay inside each job, so a job's peak memory
holds only what its stage loads."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _peak_rss_gib() -> float:
    """This process's peak resident memory since it started its program: Linux's VmHWM (the
    getrusage maximum survives exec, so it would report the parent's size at the fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def stack_job(
    folder: str, year: str, days: str, patterns: str, workers: str = "1", chunk_days: str = "2"
) -> dict[str, Any]:
    """A global stack of ``days`` days from the inputs ``fixtures.write_global_inputs`` wrote,
    on ``workers`` processes, in time chunks of ``chunk_days`` (so that a few days make several
    pieces of pass 1)."""
    from avhrrsm.config import validate_config
    from avhrrsm.stacks import build_year_stack

    settings = {**validate_config({})["stacks"], "chunk_days": int(chunk_days)}
    start = time.perf_counter()
    build_year_stack(
        f"{folder}/stack_{days}_{workers}.zarr", int(year), json.loads(patterns),
        f"{folder}/static.zarr", {"lon_min": -180, "lon_max": 180, "lat_min": -90, "lat_max": 90},
        10, settings, {}, day_count=int(days), workers=int(workers),
    )  # fmt: skip
    return {"seconds": time.perf_counter() - start, "peak_rss_gib": _peak_rss_gib()}


GLOBAL_REGION = {"lon_min": -180.0, "lon_max": 180.0, "lat_min": -90.0, "lat_max": 90.0}


def product_job(
    folder: str, year: str, days: str, tiles: str, workers: str = "1"
) -> dict[str, Any]:
    """The product job of the first ``days`` of ``year`` on the global grid, from the tiles
    ``fixtures.write_global_inference_tiles`` wrote (``tiles``: JSON tile id -> store), on
    ``workers`` processes, into ``folder/product_{days}_{workers}``."""
    from avhrrsm.config import validate_config
    from avhrrsm.product import write_year_product

    model = Path(folder, "model.pt")
    model.write_bytes(b"a checkpoint the product only hashes")
    start = time.perf_counter()
    counts = write_year_product(
        f"{folder}/product_{days}_{workers}", f"{folder}/summary_{days}_{workers}.png",
        int(year), json.loads(tiles), f"{folder}/static.zarr", GLOBAL_REGION, 30.0,
        validate_config({})["product"], model, "atlstm", {}, workers=int(workers),
        day_count=int(days),
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_gib": _peak_rss_gib(),
        "land_pixel_days": counts["land_pixel_days"],
    }


def validation_job(
    folder: str,
    year: str,
    days: str,
    product: str,
    stack: str,
    patterns: str,
    sites: str,
    workers: str = "1",
) -> dict[str, Any]:
    """The validation year job's part of the first ``days`` of ``year`` on the global grid:
    the product files in ``product`` with the stack ``stack`` and the raw ERA5-Land and ESA CCI
    files of ``patterns`` (JSON), at ``sites`` land sites (one pixel each, as many as the cost
    model's ``hpc.validation_sites``), on ``workers`` processes, written to a part file."""
    import numpy as np
    import pandas as pd

    from avhrrsm.config import validate_config
    from avhrrsm.grid import region_window
    from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS
    from avhrrsm.static import read_static_layers
    from avhrrsm.validate.parts import write_year_part, year_part
    from avhrrsm.validate.sites import Site

    start = time.perf_counter()
    window = region_window(GLOBAL_REGION)
    land = read_static_layers(f"{folder}/static.zarr", window)["land_mask"]
    rows, cols = np.nonzero(land)
    chosen = np.random.default_rng(7).choice(rows.size, int(sites), replace=False)
    at_sites = [
        Site(
            "bench",
            f"site{k}",
            "sensor",
            "point",
            float(window.lat()[rows[i]]),
            float(window.lon()[cols[i]]),
            0.0,
            0.05,
            "",
            pd.Series(dtype=np.float64),
            np.array([[rows[i], cols[i]]]),
        )  # fmt: skip
        for k, i in enumerate(chosen)
    ]
    part = year_part(
        [int(year)], {int(year): product}, {int(year): stack}, window, land, at_sites,
        json.loads(patterns), validate_config({})["validation"], CCI_INVALID_FLAG_BITS,
        workers=int(workers), day_count=int(days),
    )  # fmt: skip
    write_year_part(f"{folder}/validation_{days}_{workers}.nc", part, window, {})
    return {"seconds": time.perf_counter() - start, "peak_rss_gib": _peak_rss_gib()}


def inference_job(
    work: str,
    tile_id: str,
    model: str,
    region: str,
    threads: str,
    null: str = "no",
    first_core: str = "0",
    compiled: str = "no",
    uncertainty: str = "",
) -> dict[str, Any]:
    """One tile's inference job on ``fixtures.write_inference_inputs``' stack and layers;
    ``null`` 'yes': with the model file's scaler but a null model (the host-only rate);
    ``compiled`` 'yes': the model through ``torch.compile``, compiled in the job;
    ``uncertainty``: an error model file (the tile then holds ``sm_uncertainty``). The
    process runs on ``threads`` cores from its ``first_core``-th, as a SLURM job with that many
    CPUs would (its library threads, e.g. Zarr's decoding, share them with the job's workers);
    it writes ``tile_out_<first_core>.zarr``, so jobs on other cores may run beside it."""
    from avhrrsm.device import describe_device
    from avhrrsm.infer import predict_tile
    from avhrrsm.learn.predictor import load_predictor

    cores = pin_to_cores(int(threads), int(first_core))
    start = time.perf_counter()
    predictor = load_predictor(model, "auto", int(threads), compiled == "yes")
    if null == "yes":
        predictor.model = _null_model()  # type: ignore[union-attr]
    result_start = time.perf_counter()
    result = predict_tile(
        f"{work}/tile_out_{first_core}.zarr", 1999, tile_id, 10, f"{work}/stack.zarr", None,
        f"{work}/static.zarr", model, json.loads(region),
        {"device": "auto", "batch_size": 0, "memory_budget_mb": 1500}, [0.0, 0.6], {},
        threads=int(threads), predictor=predictor, uncertainty_path=uncertainty or None,
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - start,
        "pixel_days": result.pixel_days,
        "forward_seconds": result.forward_seconds,
        "read_seconds": result.read_seconds,
        "write_seconds": result.write_seconds,
        "setup_seconds": result.setup_seconds + (result_start - start),
        "peak_rss_gib": _peak_rss_gib(),
        "device": describe_device(predictor.device),
        "cores": cores,
    }


def pin_to_cores(count: int, first: int = 0) -> int:
    """Confine this process to ``count`` of the cores it may run on, from the ``first``-th
    (all where ``count`` is 0 or more than there are); the number it runs on."""
    available = sorted(os.sched_getaffinity(0))
    if 0 < count < len(available):
        first = min(max(0, first), len(available) - count)
        os.sched_setaffinity(0, available[first : first + count])
    return len(os.sched_getaffinity(0))


def _null_model() -> Any:
    import torch

    class Null(torch.nn.Module):
        """Reads each sequence's last day, first channel: the job around the model, measured."""

        def forward(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
            return dynamic[:, -1, 0]

    return Null()


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "stack": stack_job,
    "product": product_job,
    "validation": validation_job,
    "inference": inference_job,
}


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in JOBS:
        print(
            f"usage: python -m avhrrsm.ops.bench.jobs {{{','.join(JOBS)}}} ARGS...", file=sys.stderr
        )
        return 2
    print(json.dumps(JOBS[argv[0]](*argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
