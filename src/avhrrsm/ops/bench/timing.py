"""Timing helpers of the benchmarks: best of several runs, and a measured job in a process of
its own (so that its peak memory is the job's alone)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any


def best_of(function: Callable[[], Any], repeat: int = 3) -> float:
    """The shortest wall time (seconds) of ``repeat`` calls of ``function``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def run_job(job: str, *arguments: str) -> dict[str, Any]:
    """Run one of :mod:`avhrrsm.ops.bench.jobs` in a new Python process; its JSON figures."""
    done = subprocess.run(
        [sys.executable, "-m", "avhrrsm.ops.bench.jobs", job, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark job {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def seconds_line(seconds_by_days: Mapping[int, float]) -> dict[str, float]:
    """Seconds per day and fixed seconds of a job through its runs at the fewest and the most
    days (the per-day slope is never below 0)."""
    (d0, t0), (d1, t1) = min(seconds_by_days.items()), max(seconds_by_days.items())
    if d1 == d0:
        raise ValueError("a line needs runs at two day counts")
    per_day = max(0.0, (t1 - t0) / (d1 - d0))
    return {"seconds_per_day": per_day, "fixed_seconds": t0 - d0 * per_day}


def job_seconds_by_days(figures: Mapping[str, Any]) -> dict[int, float]:
    """The wall seconds of a benchmark section's ``<days>_days`` runs, by day count."""
    return {
        int(key.split("_")[0]): value["seconds"]
        for key, value in figures.items()
        if key.endswith("_days") and isinstance(value, dict)
    }
