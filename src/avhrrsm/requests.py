"""What each job asks a scheduler for, from what the job does at the configured size.

A job's cost on one core is ``fixed + per_unit x units``: ``units`` is what its work grows with
(grid pixel-days of a year's stack, land pixel-days of a tile, samples, ...), and ``per_unit`` is
the figure the benchmarks measured on one core of the project's 2-core machine (each entry of
``COSTS`` names the measurement; the default run's figures include each job's start-up, so
they over-estimate the global jobs, which is the safe side). A job whose work is spread over
pieces (the stack's time chunks and tiles, the product's and the validation year's blocks of
days, the split's target years, a sample set's tiles; :mod:`avhrrsm.parallel`) gets as many
threads as bring it under ``hpc.target_job_minutes``, at most ``hpc.max_threads``
and at most its pieces; its projected wall time divides by the threads times the parallel
efficiency measured from 1 to 2 cores. The request is ``hpc.margin`` (at least 1.5) times the
projection, and never less than ``hpc.min_runtime_minutes``.

The Snakefile evaluates :func:`job_request` for every job when it plans the DAG (cached per
job shape), so it only does arithmetic on the config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from avhrrsm.config import TARGET_YEARS
from avhrrsm.grid import STEP_DEG, chunk_groups, region_window, tiles

GLOBAL_GRID_PIXELS = 7200 * 3600
GLOBAL_LAND_PIXELS = 9.0e6  # land pixels of the global 0.05 degree land mask (MERIT DEM)
# the share of land of the global grid: the default estimate of a tile's land pixels
GLOBAL_LAND_SHARE = GLOBAL_LAND_PIXELS / GLOBAL_GRID_PIXELS
GLOBAL_DAYS = 14610  # 1982-01-01 .. 2021-12-31


@dataclass(frozen=True)
class Cost:
    """One rule's cost model: ``fixed_s + per_unit_s x units`` seconds on one core, memory
    ``mem_fixed_mb + mem_per_pixel_mb x grid pixels`` per worker, and where it was measured."""

    per_unit_s: float
    units: str
    measured: str
    fixed_s: float = 10.0
    mem_fixed_mb: float = 500.0
    mem_per_pixel_mb: float = 0.0  # per grid pixel of the region (a worker holds a day or two)
    spreads: bool = False  # pieces on several cores
    target_per_unit_s: float = 0.0  # added per unit in a year with a GLASS-MODIS target
    # a spread job's speed-up per thread; the assumed figure where none was measured
    parallel_efficiency: float = 0.8


# Measured on this project's 2-core machine (benchmarks/results.json). The default run: 6,400
# grid pixels (5,553 land), 2,192 days, 5 target years, 40,000 samples per target year
# (run_cost's per-job CPU seconds divided by the job's units). The global jobs, measured on the
# global grid itself: stack_global (21.3 s per global day without the target, 17 s fixed; one
# worker to two at 0.92, counted as 0.9: two workers do not show what sixteen share),
# modis_sinusoidal (29.8 s for the 1 km sinusoidal target of one global day),
# product_validation_global (product 2.29 s per global day, 12.6 s fixed, 0.63 from one worker
# to two; validation year 9.42 s per global day at 3,000 sites, 3.5 s fixed). Memory: run_cost's
# peak RSS, and the global jobs' own (stack 3.7 GiB, product 3.4 GiB, validation 2.8 GiB).
COSTS: dict[str, Cost] = {
    "synthesize": Cost(2.0e-5, "grid pixel-days", "run_cost (default run)", 60.0, 1000.0, 1e-4),
    "static_layers": Cost(
        1.55e-4, "grid pixels", "run_cost (default run)", 10.0, 500.0, 2e-4, spreads=True
    ),
    "stack_year": Cost(
        21.3 / GLOBAL_GRID_PIXELS,
        "grid pixel-days",
        "stack_global: 21.3 s per global day; target years add modis_sinusoidal's 29.8 s",
        17.0,
        300.0,
        1.43e-4,  # 3.7 GiB at the global grid (stack_global: 3.3 GiB since the scratch pass)
        spreads=True,
        target_per_unit_s=29.8 / GLOBAL_GRID_PIXELS,  # modis_sinusoidal, per global day
        parallel_efficiency=0.9,
    ),
    "sample_split": Cost(
        3.1e-5, "grid pixels x target years", "run_cost (default run)", spreads=True
    ),
    "samples_year": Cost(
        2.9e-4, "grid pixels", "run_cost (default run)", 10.0, 600.0, 1e-4, spreads=True
    ),
    "samples_merge": Cost(1.1e-5, "samples", "run_cost (default run)"),
    "train_deep": Cost(2.1e-5, "samples x epochs / 8", "run_cost (default run, CPU)", 60.0, 2000.0),
    "train_xgboost": Cost(4.0e-5, "samples", "run_cost (default run)", 60.0, 2000.0),
    "compare_models": Cost(3.9e-5, "samples", "run_cost (default run, CPU)", 60.0, 2000.0),
    # two forward passes of one model over the validation split (a share of the samples)
    "uncertainty_calibration": Cost(1.0e-5, "samples", "run_cost (default run, CPU)", 60.0, 2000.0),
    # fixed: a tile job's start (imports, model) is bounded by the default run's whole tile
    # job, 5.1 s of CPU
    "inference_tile": Cost(
        5.03e-6, "land pixel-days (CPU)", "inference section / run_cost (2 threads)", 6.0, 1500.0
    ),
    "product_year": Cost(
        2.29 / GLOBAL_GRID_PIXELS,
        "grid pixel-days",
        "product_validation_global: 2.29 s per global day, 12.6 s fixed",
        12.6,
        500.0,
        1.2e-4,  # 3.4 GiB at the global grid, one worker (product_validation_global)
        spreads=True,
        parallel_efficiency=0.63,
    ),
    "validation_sites": Cost(1.0e-5, "sites x days", "run_cost (default run)", 60.0, 2000.0),
    # memory: a worker holds 8 days of ERA5-Land and GLASS-MODIS and the six per-pixel sums
    "validation_year": Cost(
        9.42 / GLOBAL_GRID_PIXELS,
        "grid pixel-days",
        "product_validation_global: 9.42 s per global day at 3,000 sites, 3.5 s fixed",
        3.5,
        500.0,
        1.2e-4,
        spreads=True,
    ),
    "validation": Cost(2.0e-5, "sites x days", "run_cost (default run)", 120.0, 2000.0, 5e-5),
    "manifest": Cost(3.4e-8, "grid pixel-days", "run_cost (default run)", 10.0, 500.0),
}
# A tile job on a GPU: the 2 M land pixel-days/s a real H100 reached (host-bound, issue 18).
GPU_LAND_PIXEL_DAYS_PER_S = 2.0e6
DEFAULT_HPC = {
    "max_threads": 16,
    "target_job_minutes": 30.0,
    "margin": 1.5,
    "min_runtime_minutes": 10.0,
    "land_share": GLOBAL_LAND_SHARE,
    "gpu_group_minutes": 30.0,
    "cpu_inference_share": 0.0,
    "validation_sites": 3000,
    "resources": {},
}


@dataclass(frozen=True)
class Request:
    """A job's request: threads, memory (MB), runtime (minutes), with the projection it covers
    (wall minutes on those threads) and the one-core cost it comes from."""

    threads: int
    mem_mb: int
    runtime: int
    projected_minutes: float
    core_seconds: float


def hpc_settings(hpc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``hpc:`` config with the defaults of this module filled in."""
    settings = {**DEFAULT_HPC, **(hpc or {})}
    settings["margin"] = max(1.5, float(settings["margin"]))
    return settings


def core_seconds(rule: str, units: float, gpu: bool = False, target: bool = False) -> float:
    """The projected cost of one job of ``rule`` on one core (or, ``gpu``, on its GPU);
    ``target``: a year with a GLASS-MODIS target."""
    cost = COSTS[rule]
    if rule == "inference_tile" and gpu:
        return cost.fixed_s + units / GPU_LAND_PIXEL_DAYS_PER_S
    per_unit = cost.per_unit_s + (cost.target_per_unit_s if target else 0.0)
    return cost.fixed_s + per_unit * units


def request(
    rule: str,
    units: float,
    grid_pixels: int,
    hpc: Mapping[str, Any] | None = None,
    pieces: int = 1,
    gpu: bool = False,
    threads: int | None = None,
    target: bool = False,
) -> Request:
    """What a job of ``rule`` with ``units`` of work (over a region of ``grid_pixels``) asks
    for; ``pieces``: the independent pieces it can spread over; ``threads``: the threads it
    was given where they are fixed already (a smaller --cores, --set-threads)."""
    settings = hpc_settings(hpc)
    cost = COSTS[rule]
    seconds = core_seconds(rule, units, gpu, target)
    override = dict(settings["resources"].get(rule, {}))
    if threads is None and "threads" in override:
        threads = int(override["threads"])
    if threads is None:
        threads = 1
        if cost.spreads:
            wanted = seconds / (
                60.0 * float(settings["target_job_minutes"]) * cost.parallel_efficiency
            )
            threads = max(1, min(int(settings["max_threads"]), int(pieces), math.ceil(wanted)))
    # only a spreading job's work divides by its threads (and not beyond its pieces)
    workers = min(threads, pieces) if cost.spreads else 1
    wall = seconds / (workers * cost.parallel_efficiency) if workers > 1 else seconds
    runtime = settings["margin"] * wall / 60.0
    if rule not in GROUPED:  # a group job's runtime is its members' sum: the floor is its own
        runtime = max(float(settings["min_runtime_minutes"]), runtime)
    memory = (
        settings["margin"] * (cost.mem_fixed_mb + cost.mem_per_pixel_mb * grid_pixels) * workers
    )
    return Request(
        threads=threads,
        mem_mb=int(override.get("mem_mb", math.ceil(memory / 100.0) * 100)),
        runtime=int(override.get("runtime", math.ceil(runtime))),
        projected_minutes=wall / 60.0,
        core_seconds=seconds,
    )


def year_days(year: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 366 if leap else 365


def gpu_group_size(tile_seconds: float, hpc: Mapping[str, Any] | None = None) -> int:
    """How many tile jobs one GPU allocation runs, so that it runs ``hpc.gpu_group_minutes``."""
    settings = hpc_settings(hpc)
    return max(1, math.floor(60.0 * float(settings["gpu_group_minutes"]) / max(tile_seconds, 1.0)))


def inference_group_size(config: Mapping[str, Any]) -> int:
    """Tiles per inference group job of a run of ``config``: as many as fill
    ``hpc.gpu_group_minutes`` at the projected cost of the run's largest tile (on its GPU, or
    on its CPU threads where ``hpc.gpus_per_job`` is 0)."""
    window = region_window(config["region"])
    year = max(config["years"])
    tile_minutes = max(
        job_request("inference_tile", config, year=year, tile=tile_id).projected_minutes
        for tile_id, _ in tiles(window, float(config["tile_deg"]))
    )
    return gpu_group_size(60.0 * tile_minutes, config.get("hpc"))


# The most cores one job (or group job) asks for: the installed SLURM profile's `cores`
# (`avhrrsm slurm-profile --job-cores`). 15 by default: on a node of 32 cores and one GPU, two
# jobs of 15 fill the node beside a GPU tile job's 2 threads, where jobs of 16 would leave 14
# cores that no job of 16 fits (the schedule benchmark of the global config: 23.1 h against
# 19.4 h on one node).
GROUP_JOB_CORES = 15
TILE_ID_PATTERN = r"h\d+v\d+"


def cpu_inference_tiles(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The tiles whose inference runs on CPU cores (rule ``inference_tile_cpu``) while the GPUs
    take the others: ``hpc.cpu_inference_share`` of the region's pixels, spread evenly over the
    tile order (a tile is taken where the taken share would otherwise fall more than half a tile
    behind). None where the jobs have no GPU (``hpc.gpus_per_job`` 0): every tile then runs on
    CPU cores under rule ``inference_tile`` anyway."""
    share = float(hpc_settings(config.get("hpc"))["cpu_inference_share"])
    if int(config.get("hpc", {}).get("gpus_per_job", 0)) == 0 or share <= 0.0:
        return ()
    region = tuple(sorted(config["region"].items()))
    chosen, taken, seen = [], 0, 0
    for tile_id, pixels in _tile_pixels(region, float(config["tile_deg"])).items():
        seen += pixels
        if share * seen - taken >= pixels / 2:
            chosen.append(tile_id)
            taken += pixels
    return tuple(chosen)


def tile_pattern(config: Mapping[str, Any], on_cpu: bool) -> str:
    """The ``tile`` wildcard's regular expression of rule ``inference_tile_cpu`` (``on_cpu``)
    or ``inference_tile``: the two match disjoint tiles, together every tile."""
    cpu_tiles = set(cpu_inference_tiles(config))
    if not cpu_tiles:
        return r"(?!x)x" if on_cpu else TILE_ID_PATTERN
    region = tuple(sorted(config["region"].items()))
    every = _tile_pixels(region, float(config["tile_deg"]))
    ids = [t for t in every if (t in cpu_tiles) == on_cpu]
    if not ids:
        return r"(?!x)x"
    # longest first, so that no id stops the match at a shorter id it starts with
    return "(?:" + "|".join(sorted(ids, key=lambda t: (-len(t), t))) + ")"


def cpu_inference_group_size(config: Mapping[str, Any], job_cores: int = GROUP_JOB_CORES) -> int:
    """Tiles per group job of rule ``inference_tile_cpu``: side by side on the group job's
    ``job_cores`` (the SLURM profile's `cores`), in as many rounds as fill ``hpc.gpu_group_minutes`` at the
    projected cost of the run's largest tile on its CPU threads."""
    window = region_window(config["region"])
    year = max(config["years"])
    largest = max(
        (
            job_request("inference_tile_cpu", config, year=year, tile=tile_id)
            for tile_id, _ in tiles(window, float(config["tile_deg"]))
        ),
        key=lambda r: r.projected_minutes,
    )
    side = max(1, int(job_cores) // largest.threads)
    rounds = gpu_group_size(60.0 * largest.projected_minutes, config.get("hpc"))
    return side * rounds


# rules whose jobs run in groups on a cluster (a group asks for the sum of its members' runtimes)
GROUPED = ("inference_tile", "inference_tile_cpu")
# what a spread job's pieces are: the stack's time chunks or tiles, whichever are more (its two
# passes), the product's blocks of days, the validation year's blocks of days
PRODUCT_BLOCK_DAYS = 32
VALIDATION_BLOCK_DAYS = 32
# rules of fixed threads: the deep-learning jobs (torch's threads) and the synthetic world
FIXED_THREADS = {"synthesize": 2, "train_deep": 2, "train_xgboost": 2, "inference_tile": 2}


def job_request(
    rule: str,
    config: Mapping[str, Any],
    year: int | None = None,
    tile: str | None = None,
    threads: int | None = None,
) -> Request:
    """The request of one job of ``rule`` (the replicate rules as their rule) in a run of
    ``config`` (resolved): its year and tile where it has them; ``threads`` where Snakemake
    fixed them already (capped by --cores, or --set-threads)."""
    rule = rule.removesuffix("_replicate")
    # the CPU share of the inference tiles: the tile job on its CPU threads
    on_cpu = rule == "inference_tile_cpu"
    rule = rule.removesuffix("_cpu")
    region = tuple(sorted(config["region"].items()))
    units, pieces = _job_units(
        rule,
        region,
        float(config["tile_deg"]),
        tuple(config["years"]),
        int(config["samples"]["per_year"]),
        int(config["training"]["epochs"]),
        year,
        tile,
        float(hpc_settings(config.get("hpc"))["land_share"]),
        int(hpc_settings(config.get("hpc"))["validation_sites"]),
        int(config["stacks"]["chunk_days"]),
    )
    gpu = (
        rule == "inference_tile"
        and not on_cpu
        and int(config.get("hpc", {}).get("gpus_per_job", 0)) > 0
    )
    if threads is None and rule in FIXED_THREADS:
        threads = FIXED_THREADS[rule]
    return request(
        rule,
        units,
        _grid_pixels(region),
        config.get("hpc"),
        pieces,
        gpu,
        threads,
        target=year in TARGET_YEARS,
    )


def envelope_request(rule: str, config: Mapping[str, Any]) -> Request:
    """The largest request of any (year, tile) job of ``rule`` in a run of ``config``: what a
    rule of thousands of jobs (the inference tiles) asks for every one of them, so that
    Snakemake evaluates no function per job (each evaluation costs it far more than the
    request itself). Equal to every job's own request where the tiles are of one size (the
    global run); a region's smaller edge tiles ask as much as its largest."""
    region = tuple(sorted(config["region"].items()))
    tile_ids = list(_tile_pixels(region, float(config["tile_deg"])))
    # years that ask alike: one of each length and target status
    years = {(year_days(y), y in TARGET_YEARS): y for y in config["years"]}.values()
    requests = [job_request(rule, config, year, tile) for year in years for tile in tile_ids]
    return Request(
        threads=max(r.threads for r in requests),
        mem_mb=max(r.mem_mb for r in requests),
        runtime=max(r.runtime for r in requests),
        projected_minutes=max(r.projected_minutes for r in requests),
        core_seconds=max(r.core_seconds for r in requests),
    )


@lru_cache(maxsize=64)
def _grid_pixels(region: tuple[tuple[str, float], ...]) -> int:
    window = region_window(dict(region))
    return int(window.shape[0] * window.shape[1])


@lru_cache(maxsize=64)
def _tile_pixels(region: tuple[tuple[str, float], ...], tile_deg: float) -> dict[str, int]:
    return {
        tile_id: int(window.shape[0] * window.shape[1])
        for tile_id, window in tiles(region_window(dict(region)), tile_deg)
    }


@lru_cache(maxsize=64)
def _tile_groups(region: tuple[tuple[str, float], ...], tile_deg: float) -> int:
    """How many pieces the tile passes have: groups of tiles that share no store chunk."""
    window = region_window(dict(region))
    tile_px = int(round(tile_deg / STEP_DEG))
    return len(chunk_groups(window, tiles(window, tile_deg), tile_px))


def _job_units(
    rule: str,
    region: tuple[tuple[str, float], ...],
    tile_deg: float,
    years: tuple[int, ...],
    samples_per_year: int,
    epochs: int,
    year: int | None,
    tile: str | None,
    land_share: float,
    validation_sites: int,
    chunk_days: int,
) -> tuple[float, int]:
    """(units of work, independent pieces) of one job, in the units of ``COSTS[rule]``."""
    pixels = _grid_pixels(region)
    days = sum(year_days(y) for y in years)
    target_years = [y for y in years if y in TARGET_YEARS]
    samples = samples_per_year * len(target_years)
    if rule == "synthesize":
        return pixels * days, 1
    if rule == "static_layers":  # the tiles (groups of tiles sharing chunks) a piece
        return pixels, _tile_groups(region, tile_deg)
    if rule == "stack_year":
        assert year is not None
        n_tiles = _tile_groups(region, tile_deg)
        chunks = math.ceil(year_days(year) / chunk_days)
        return pixels * year_days(year), max(n_tiles, chunks)
    if rule == "sample_split":  # the target years' counts, one year a piece
        return pixels * len(target_years), max(1, len(target_years))
    if rule == "samples_year":  # the tiles, scanned and gathered one a piece
        return pixels, len(_tile_pixels(region, tile_deg))
    if rule in ("samples_merge", "train_xgboost", "compare_models", "uncertainty_calibration"):
        return samples, 1
    if rule == "train_deep":
        return samples * epochs / 8, 1
    if rule == "inference_tile":
        assert year is not None and tile is not None
        return _tile_pixels(region, tile_deg)[tile] * land_share * year_days(year), 1
    if rule == "product_year":
        assert year is not None
        return pixels * year_days(year), math.ceil(year_days(year) / PRODUCT_BLOCK_DAYS)
    if rule == "validation_year":
        assert year is not None
        return pixels * year_days(year), math.ceil(year_days(year) / VALIDATION_BLOCK_DAYS)
    if rule in ("validation_sites", "validation"):
        return validation_sites * days, 1
    if rule == "manifest":
        return pixels * days, 1
    raise KeyError(f"no cost model for rule {rule}")
