"""The embedded synthetic world: a hidden truth and every input product in its real format.

``write_world`` is the entry point (rule `synthesize`, CLI `avhrrsm synth`). It writes into a
temporary folder beside the target and renames it into place only when every product is
complete, so an interrupted run never leaves a half-written world behind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from avhrrsm import __version__
from avhrrsm.atomic import atomic_path
from avhrrsm.config import config_hash, in_synthetic_world, with_synthetic_folder
from avhrrsm.synth.base import World
from avhrrsm.synth.products import DAILY_PRODUCTS, WRITERS, products_to_write, write_truth
from avhrrsm.synth.world import build_static, simulate

LOGGER = logging.getLogger(__name__)

_WORLD: World | None = None  # shared with forked worker processes


def _run_writer(task: tuple[str, int | None]) -> tuple[str, int, float]:
    """Write one product (or one year of a daily product) from the shared world."""
    assert _WORLD is not None
    name, year = task
    start = time.monotonic()
    count = WRITERS[name](_WORLD, None if year is None else [year])
    return name, count, time.monotonic() - start


def _tasks(names: Sequence[str], years: Sequence[int]) -> list[tuple[str, int | None]]:
    """Daily products split by year, biggest first, so that workers stay evenly loaded."""
    tasks: list[tuple[str, int | None]] = []
    for name in names:
        if name in DAILY_PRODUCTS:
            tasks.extend((name, year) for year in years)
        else:
            tasks.append((name, None))
    weight = {"glass_modis": 4, "glass_lst": 3, "glass_albedo": 2, "era5land": 2, "esa_cci": 1}
    return sorted(tasks, key=lambda task: -weight.get(task[0], 0))


def synthetic_patterns(input_patterns: Mapping[str, str], out_dir: Path) -> dict[str, str]:
    """The products that live in the synthetic world, with {synthetic} replaced by ``out_dir``."""
    return {
        name: with_synthetic_folder(pattern, out_dir)
        for name, pattern in input_patterns.items()
        if in_synthetic_world(pattern)
    }


def write_world(
    out_dir: str | Path,
    region: Mapping[str, float],
    years: Sequence[int],
    settings: Mapping[str, Any],
    input_patterns: Mapping[str, str],
    threads: int = 1,
) -> dict[str, Any]:
    """Simulate the world and write every product whose input path lies in {synthetic}.

    Returns the world's manifest (also written as ``world.json``).
    """
    global _WORLD
    out_dir = Path(out_dir)
    started = time.monotonic()
    with atomic_path(out_dir) as tmp_dir:
        tmp_dir.mkdir()
        try:
            rng = np.random.default_rng(int(settings["seed"]))
            LOGGER.info("building static layers for region %s", dict(region))
            static = build_static(region, settings, rng)
            LOGGER.info("simulating the water balance for years %s", list(years))
            truth = simulate(static, years, int(settings["spinup_years"]), rng)
            patterns = synthetic_patterns(input_patterns, tmp_dir)
            _WORLD = World(static, truth, patterns, settings, int(settings["seed"]))
            names = list(products_to_write(patterns))
            # Shared daily fields are computed before the workers fork, so each is computed once.
            if {"glass_albedo", "glass_lst", "glass_modis"} & set(names):
                _ = _WORLD.clouds
            if {"glass_albedo", "glass_lst", "esa_cci"} & set(names):
                _ = _WORLD.vegetation
            if "era5land" in names:
                _ = _WORLD.era5land
            tasks = _tasks(names, years)
            if threads > 1 and len(tasks) > 1:
                import multiprocessing

                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(max_workers=threads, mp_context=context) as pool:
                    results = list(pool.map(_run_writer, tasks))
            else:
                results = [_run_writer(task) for task in tasks]
            counts: dict[str, int] = dict.fromkeys(names, 0)
            seconds: dict[str, float] = dict.fromkeys(names, 0.0)
            for name, count, elapsed in results:
                counts[name] += count
                seconds[name] += elapsed
            for name in names:
                LOGGER.info(
                    "%s: %d files in %.1f s of worker time", name, counts[name], seconds[name]
                )
            counts["truth"] = write_truth(_WORLD, tmp_dir / "truth")
            manifest = {
                "description": "avhrrsm synthetic world: products in the real formats, derived from a "
                "hidden daily soil-moisture truth (truth/ is for tests, never an input)",
                "avhrrsm_version": __version__,
                "seed": int(settings["seed"]),
                "region": dict(region),
                "years": list(years),
                "settings": dict(settings),
                "settings_sha256": config_hash(
                    {"region": dict(region), "years": list(years), "settings": dict(settings)}
                ),
                "products": {
                    name: {"pattern": input_patterns[name], "files": counts[name]} for name in names
                },
                "truth_files": counts["truth"],
            }
            (tmp_dir / "world.json").write_text(
                json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            )
        finally:
            _WORLD = None
    LOGGER.info("synthetic world written to %s in %.1f s", out_dir, time.monotonic() - started)
    return manifest
