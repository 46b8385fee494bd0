"""Timing helpers of the benchmarks: best of several runs, and a measured job in a process of
its own (so that its peak memory is the job's alone)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
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
