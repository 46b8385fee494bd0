"""Running the benchmark sections and writing ``results.json`` and ``RESULTS.md``."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from avhrrsm.config import load_yaml, validate_config
from avhrrsm.ops.bench import BENCH_SECTIONS
from avhrrsm.ops.bench.cost import run_cost
from avhrrsm.ops.bench.dag import bench_dag
from avhrrsm.ops.bench.inputs import (
    bench_glass_hdf4,
    bench_modis_sinusoidal,
    bench_product_validation_global,
    bench_regrid_bilinear,
    bench_regrid_block,
    bench_stack_global,
)
from avhrrsm.ops.bench.learning import bench_inference, bench_training
from avhrrsm.ops.bench.report import readme_block, render_markdown, with_generated_block
from avhrrsm.ops.bench.schedule import bench_schedule
from avhrrsm.ops.checkout import Checkout

LOGGER = logging.getLogger(__name__)


def run_benchmarks(
    checkout: Checkout,
    out_dir: str | Path = "benchmarks",
    sections: tuple[str, ...] | None = None,
    run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``sections`` (default: all) of the benchmarks of the workflow ``checkout``; write
    ``out_dir/results.json`` and ``out_dir/RESULTS.md``. ``run_cost`` reads the finished run
    ``run_dir`` (default: the checkout's results/default, what `make run` makes) and rewrites
    the README's cost table from its figures."""
    out_dir = Path(out_dir)
    work = out_dir / "tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gdalwarp = shutil.which("gdalwarp")
    # A partial run (--section) updates its sections and keeps the others' last figures.
    previous = out_dir / "results.json"
    results: dict[str, Any] = (
        json.loads(previous.read_text()) if sections and previous.is_file() else {}
    )
    results.pop("gpu_projection", None)  # the assumption-based section this replaced
    results["machine"] = {
        "python": platform.python_version(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }
    todo = sections or BENCH_SECTIONS
    for name in todo:
        LOGGER.info("benchmark %s", name)
        if name.startswith("regrid") and gdalwarp is None:
            results[name] = {"skipped": "gdalwarp not installed (apt-get install gdal-bin)"}
            continue
        if name == "modis_sinusoidal" and gdalwarp is None:
            results[name] = {"skipped": "gdalwarp not installed (apt-get install gdal-bin)"}
            continue
        if name == "regrid_block":
            results[name] = bench_regrid_block(work, gdalwarp)
        elif name == "glass_hdf4":
            results[name] = bench_glass_hdf4(work)
        elif name == "modis_sinusoidal":
            results[name] = bench_modis_sinusoidal(work, gdalwarp)
        elif name == "regrid_bilinear":
            results[name] = bench_regrid_bilinear(work, gdalwarp)
        elif name == "stack_global":
            results[name] = bench_stack_global(work)
        elif name == "product_validation_global":
            results[name] = bench_product_validation_global(work)
        elif name == "inference":
            results[name] = bench_inference(work)
        elif name == "training":
            results[name] = bench_training(work)
        elif name == "dag":
            results[name] = bench_dag(work, checkout)
        elif name == "schedule":
            results[name] = bench_schedule(work, checkout)
        elif name == "run_cost":
            run = Path(run_dir) if run_dir else checkout.root / "results" / "default"
            if not (run / "MANIFEST.json").is_file():
                results[name] = {"skipped": f"no finished run at {run} (make run first)"}
                continue
            results[name] = run_cost(
                run,
                validate_config(load_yaml(checkout.config("global"))),
                results.get("dag"),
                results.get("stack_global"),
                product_validation_global=results.get("product_validation_global"),
            )
    if {"run_cost", "schedule"} & set(todo) and "skipped" not in results.get(
        "run_cost", {"skipped": ""}
    ):
        # the README's cost block: run_cost's table and the schedule's lines
        readme = checkout.root / "README.md"
        readme.write_text(with_generated_block(readme.read_text(), readme_block(results)))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out_dir / "RESULTS.md").write_text(render_markdown(results))
    shutil.rmtree(work, ignore_errors=True)
    return results
