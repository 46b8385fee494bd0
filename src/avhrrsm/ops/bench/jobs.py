"""The jobs the benchmarks time in a process of their own (``python -m avhrrsm.ops.bench.jobs
JOB ARGS...``): each runs one stage's real entry function and prints its wall time and the
process's peak memory as one JSON line. Imports stay inside each job, so a job's peak memory
holds only what its stage loads."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def _peak_rss_gib() -> float:
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


def inference_job(
    work: str, tile_id: str, model: str, region: str, threads: str, null: str = "no"
) -> dict[str, Any]:
    """One tile's inference job on ``fixtures.write_inference_inputs``' stack and layers;
    ``null`` 'yes': with the model file's scaler but a null model (the host-only rate)."""
    from avhrrsm.device import describe_device
    from avhrrsm.infer import predict_tile
    from avhrrsm.learn.predictor import load_predictor

    start = time.perf_counter()
    predictor = load_predictor(model, "auto", int(threads))
    if null == "yes":
        predictor.model = _null_model()  # type: ignore[union-attr]
    result = predict_tile(
        f"{work}/tile_out.zarr", 1999, tile_id, 10, f"{work}/stack.zarr", None,
        f"{work}/static.zarr", model, json.loads(region),
        {"device": "auto", "batch_size": 0, "memory_budget_mb": 1500}, [0.0, 0.6], {},
        threads=int(threads), predictor=predictor,
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - start,
        "pixel_days": result.pixel_days,
        "forward_seconds": result.forward_seconds,
        "read_seconds": result.read_seconds,
        "write_seconds": result.write_seconds,
        "peak_rss_gib": _peak_rss_gib(),
        "device": describe_device(predictor.device),
    }


def _null_model() -> Any:
    import torch

    class Null(torch.nn.Module):
        """Reads each sequence's last day, first channel: the job around the model, measured."""

        def forward(self, dynamic: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
            return dynamic[:, -1, 0]

    return Null()


JOBS: dict[str, Callable[..., dict[str, Any]]] = {"stack": stack_job, "inference": inference_job}


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
