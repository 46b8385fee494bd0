"""What a real 40-year global run costs, from measured figures: each rule's jobs, CPU time,
memory and disk as measured on a finished run of this machine (its Snakemake benchmark files,
provenance records and folders), scaled to the global 1982-2021 run by the quantity the rule's
work grows with (stated per rule), with the job counts of the global configuration's DAG and
the GPU hours at the tile-job rates measured on a real H100.

The README's cost table is rendered from this section of ``benchmarks/results.json`` (a test
keeps the two equal), so the numbers it quotes cannot go stale.
"""

from __future__ import annotations

import calendar
import csv
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from avhrrsm.grid import N_LAT, N_LON, region_window
from avhrrsm.ops.bench.timing import job_seconds_by_days, seconds_line
from avhrrsm.requests import (
    COSTS,
    GLOBAL_DAYS,
    GLOBAL_LAND_PIXELS,
    job_request,
)
from avhrrsm.static import read_static_layers
from avhrrsm.variables import GLASS_MODIS_YEARS

GLOBAL_GRID_PIXELS = N_LON * N_LAT  # the 0.05 degree grid, sea included
GLOBAL_TARGET_YEARS = len(GLASS_MODIS_YEARS)  # the years with a training target
NODE = {"cores": 16, "gpus": 1}  # the node the wall-time column assumes

# benchmark file name -> rule (the patterns of workflow/rules/*.smk's benchmark_path calls)
BENCHMARK_RULES = (
    (r"^stack_year_\d+$", "stack_year"),
    (r"^samples_year_\d+$", "samples_year"),
    (r"^inference_\d+_h\d+v\d+$", "inference_tile"),
    (r"^product_\d+$", "product_year"),
    (r"^validation_year_\d+$", "validation_year"),
    (r"^train_xgboost_L\d+_seed\d+$", "train_xgboost_replicate"),
    (r"^train_xgboost_L\d+$", "train_xgboost"),
    (r"^train_\w+_L\d+_seed\d+$", "train_deep_replicate"),
    (r"^train_\w+_L\d+$", "train_deep"),
    (r"^(\w+)$", None),  # static_layers, sample_split, samples_merge, ... named as the rule
)
# What each rule's work grows with, from this run to the global one: "per_job" scales one job's
# CPU time and multiplies by the global job count (a year, a model); "total" scales the rule's
# whole CPU time by the factor (one job, or jobs whose count follows the same quantity).
SCALING = {
    "static_layers": ("total", "grid", "grid pixels"),
    "stack_year": ("per_job", "grid", "grid pixels, per year"),
    "sample_split": ("total", "grid_target_years", "grid pixels x target years"),
    "samples_year": ("per_job", "grid", "grid pixels, per target year"),
    "samples_merge": ("total", "samples", "samples (target years x samples per year)"),
    "train_deep": ("per_job", "samples", "samples, per model"),
    "train_deep_replicate": ("per_job", "samples", "samples, per model"),
    "train_xgboost": ("per_job", "samples", "samples, per model"),
    "train_xgboost_replicate": ("per_job", "samples", "samples, per model"),
    "compare_models": ("total", "samples", "test samples"),
    "uncertainty_calibration": ("total", "samples", "validation samples"),
    "inference_tile": ("total", "land_pixel_days", "land pixel-days"),
    "product_year": ("per_job", "grid", "grid pixels, per year"),
    "validation_sites": ("total", "fixed", "not scaled: sites x days of the real networks"),
    "validation_year": ("per_job", "grid", "grid pixels, per year"),
    "validation": ("total", "fixed", "not scaled: sites x days of the real networks (the merge)"),
    "manifest": ("total", "grid_pixel_days", "bytes of outputs (grid pixel-days)"),
}
# The tile job measured on a real H100 (issue 18): host-bound, pixel-days per second.
H100_MEASURED_TILE_JOB = (2.0e6, 4.0e6)
# Stage folders of a run and what their size grows with.
DISK_STAGES = {  # stage -> (scaling factor, what it grows with)
    "stacks": ("grid_pixel_days", "grid pixel-days"),
    "static": ("grid", "grid pixels"),
    "samples": ("samples", "samples"),
    "models": ("fixed", "nothing (fixed sizes)"),
    "inference": ("land_pixel_days", "land pixel-days"),
    "product": ("grid_pixel_days", "grid pixel-days"),
    "validation": ("fixed", "not scaled: sites x days of the real networks"),
}


def rule_of_benchmark(stem: str) -> str:
    for pattern, rule in BENCHMARK_RULES:
        match = re.match(pattern, stem)
        if match:
            return rule or match.group(1)
    raise ValueError(stem)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def run_cost(
    run_dir: str | Path,
    global_config: Mapping[str, Any],
    dag: Mapping[str, Any] | None = None,
    stack_global: Mapping[str, Any] | None = None,
    nodes: tuple[int, ...] = (1, 4, 16),
    product_validation_global: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The measured run's figures per rule and their scaling to the global 40-year run of
    ``global_config`` (the resolved workflow/configs/global.yaml: its samples per year); the
    stack, product and validation year jobs from their global benchmarks where measured."""
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "MANIFEST.json").read_text())
    config = manifest["config"]
    years = list(config["years"])
    window = region_window(config["region"])
    grid = window.shape[0] * window.shape[1]
    land = int(
        read_static_layers(run_dir / "static" / "static_layers.zarr", window)["land_mask"].sum()
    )
    days = sum(366 if calendar.isleap(y) else 365 for y in years)
    factors = _scale_factors(config, global_config, grid, land, days)
    measured = _measured_rules(run_dir)
    global_jobs = _global_jobs(dag)
    rules = {
        rule: _rule_cost(
            rule, measured[rule], factors, global_jobs, stack_global, product_validation_global
        )
        for rule in SCALING
        if rule in measured
    }
    pixel_days = GLOBAL_LAND_PIXELS * GLOBAL_DAYS
    measured_h100 = [pixel_days / rate / 3600 for rate in reversed(H100_MEASURED_TILE_JOB)]
    gpu_hours = measured_h100[-1]  # plan for the slower of what a real H100 gave
    disk = {
        stage: {
            "bytes_here": (here := _folder_bytes(run_dir / stage)),
            "bytes_global": here * factors[key],
            "grows_with": grows_with,
        }
        for stage, (key, grows_with) in DISK_STAGES.items()
    }
    cpu_total = sum(r["cpu_hours_global"] for r in rules.values())
    cpu_total_without_inference = cpu_total - rules.get("inference_tile", {}).get(
        "cpu_hours_global", 0.0
    )
    longest, wall = _wall_hours(rules, global_config, cpu_total_without_inference, gpu_hours, nodes)
    return {
        "run_dir": str(run_dir),
        "measured_run": {
            "region_grid_pixels": grid,
            "region_land_pixels": land,
            "years": years,
            "days": days,
            "jobs": int(sum(v["jobs"] for v in measured.values())),
            "wall_minutes": _wall_minutes(run_dir, manifest),
            "git_commit": manifest.get("git_commit"),
        },
        "global_run": {
            "grid_pixels": GLOBAL_GRID_PIXELS,
            "land_pixels": GLOBAL_LAND_PIXELS,
            "days": GLOBAL_DAYS,
            "target_years": GLOBAL_TARGET_YEARS,
            "jobs": int(sum(global_jobs.values())) if global_jobs else None,
        },
        "factors": factors,
        "rules": rules,
        "cpu_hours_total": cpu_total,
        "cpu_hours_without_inference": cpu_total_without_inference,
        "gpu_hours_inference": gpu_hours,
        "gpu_hours_inference_measured_h100": measured_h100,
        "disk": disk,
        "node": dict(NODE),
        "wall_hours_on_nodes": wall,
        "longest_single_job": {"rule": longest[0], "hours": longest[1]},
        "manifest_hours": rules.get("manifest", {}).get("cpu_hours_global"),
    }


def _scale_factors(
    config: Mapping[str, Any], global_config: Mapping[str, Any], grid: int, land: int, days: int
) -> dict[str, float]:
    """What each rule's cost grows with, global size over the measured run's."""
    target_years = [y for y in config["years"] if y in GLASS_MODIS_YEARS]
    return {
        "grid": GLOBAL_GRID_PIXELS / grid,
        "grid_target_years": GLOBAL_GRID_PIXELS
        * GLOBAL_TARGET_YEARS
        / (grid * max(1, len(target_years))),
        "land_pixel_days": GLOBAL_LAND_PIXELS * GLOBAL_DAYS / (land * days),
        "grid_pixel_days": GLOBAL_GRID_PIXELS * GLOBAL_DAYS / (grid * days),
        "samples": GLOBAL_TARGET_YEARS
        * float(global_config["samples"]["per_year"])
        / (max(1, len(target_years)) * float(config["samples"]["per_year"])),
        "fixed": 1.0,
    }


def _measured_rules(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per rule of the measured run (its Snakemake benchmark files): jobs, summed CPU
    seconds, the largest peak memory."""
    measured: dict[str, dict[str, Any]] = {}
    for path in sorted((run_dir / "benchmarks").glob("*.tsv")):
        rule = rule_of_benchmark(path.stem)
        with open(path, newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        entry = measured.setdefault(rule, {"jobs": 0, "cpu_s": 0.0, "rss_mb": 0.0})
        entry["jobs"] += 1
        entry["cpu_s"] += _number(row.get("cpu_time"))
        entry["rss_mb"] = max(entry["rss_mb"], _number(row.get("max_rss")))
    return measured


def _global_jobs(dag: Mapping[str, Any] | None) -> dict[str, int]:
    """Jobs per rule of the global DAG; the tiles on CPU cores (hpc.cpu_inference_share) are
    tile jobs too: one row for both."""
    global_jobs = dict((dag or {}).get("jobs_per_rule", {}))
    global_jobs["inference_tile"] = global_jobs.get("inference_tile", 0) + global_jobs.pop(
        "inference_tile_cpu", 0
    )
    if not global_jobs["inference_tile"]:
        del global_jobs["inference_tile"]
    return global_jobs


def _rule_cost(
    rule: str,
    here: Mapping[str, Any],
    factors: Mapping[str, float],
    global_jobs: Mapping[str, int],
    stack_global: Mapping[str, Any] | None,
    product_validation_global: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One rule's global CPU-hours: its measured jobs scaled as :data:`SCALING` says, or the
    global benchmark of its year job where one was measured."""
    mode, factor_key, grows_with = SCALING[rule]
    jobs_global = int(global_jobs.get(rule, here["jobs"]))
    per_job_here = here["cpu_s"] / here["jobs"]
    if mode == "per_job":
        cpu_hours = per_job_here * factors[factor_key] * jobs_global / 3600
    else:
        cpu_hours = here["cpu_s"] * factors[factor_key] / 3600
    note = f"scaled by {grows_with}"
    if rule == "stack_year" and stack_global:
        per_day = _stack_seconds_per_day(stack_global)
        if per_day:
            cpu_hours = per_day * GLOBAL_DAYS / 3600
            note = "measured on the global grid (benchmark stack_global: wall s per day) x days"
    year_job = {"product_year": "product", "validation_year": "validation"}.get(rule)
    measured_global = (product_validation_global or {}).get(year_job or "", {})
    if measured_global.get("seconds_per_day") is not None:
        cpu_hours = (
            measured_global["seconds_per_day"] * GLOBAL_DAYS
            + max(0.0, measured_global["fixed_seconds"]) * jobs_global
        ) / 3600
        note = (
            "measured on the global grid (benchmark product_validation_global: wall s per "
            "day and fixed s per job) x days and jobs"
        )
    if rule in ("train_deep", "train_deep_replicate", "compare_models"):
        note += "; runs on the GPU in a real run (CPU figures here)"
    return {
        "jobs_here": here["jobs"],
        "cpu_s_per_job_here": per_job_here,
        "max_rss_mb_here": here["rss_mb"],
        "jobs_global": jobs_global,
        "cpu_hours_global": cpu_hours,
        "scaling": note,
    }


def _wall_hours(
    rules: Mapping[str, Mapping[str, Any]],
    global_config: Mapping[str, Any],
    cpu_hours_without_inference: float,
    gpu_hours: float,
    nodes: tuple[int, ...],
) -> tuple[tuple[str, float], dict[str, float]]:
    """The longest single job and the wall hours on each number of nodes: the larger of the
    CPU work over their cores, the inference over their GPUs and that longest job (a rule of
    one job is a floor under the wall time: its CPU time on the threads it asks for at the
    global size, the pieces it spreads over at the assumed parallel efficiency)."""
    single = {
        r: v["cpu_hours_global"] / _spread(r, global_config)
        for r, v in rules.items()
        if v["jobs_global"] == 1 and r != "manifest"
    }
    longest = max(single.items(), key=lambda item: item[1]) if single else ("", 0.0)
    wall = {
        str(n): max(
            cpu_hours_without_inference / (n * NODE["cores"]),
            gpu_hours / (n * NODE["gpus"]),
            longest[1],
        )
        for n in nodes
    }
    return longest, wall


def _spread(rule: str, global_config: Mapping[str, Any]) -> float:
    """How many times faster than on one core a global job of ``rule`` runs on its request."""
    if rule not in COSTS:
        return 1.0
    threads = job_request(rule, global_config).threads
    return threads * COSTS[rule].parallel_efficiency if threads > 1 else 1.0


def _number(text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return 0.0
    return value if np.isfinite(value) else 0.0


def _stack_seconds_per_day(stack_global: Mapping[str, Any]) -> float | None:
    """Seconds per day of a global stack job: the slope between the two measured day counts."""
    points = job_seconds_by_days(stack_global)
    if len(points) < 2 or min(points) == max(points):
        return None
    return seconds_line(points)["seconds_per_day"]


def _wall_minutes(run_dir: Path, manifest: Mapping[str, Any]) -> float | None:
    """First job start to last job end of the run, from the outputs' provenance records."""
    from avhrrsm.provenance import read_sidecar

    starts, ends = [], []
    for rel in manifest["outputs"]:
        sidecar = read_sidecar(run_dir / rel)
        if sidecar and "job" in sidecar:
            starts.append(datetime.fromisoformat(sidecar["job"]["started"]))
            ends.append(datetime.fromisoformat(sidecar["job"]["finished"]))
    if not starts:
        return None
    return (max(ends) - min(starts)).total_seconds() / 60


def cost_markdown(cost: Mapping[str, Any]) -> list[str]:
    """The cost table (README and RESULTS.md) from the ``run_cost`` section."""
    here, world = cost["measured_run"], cost["global_run"]
    lines = [
        f"Measured: the default run ({here['region_grid_pixels']:,} pixels, "
        f"{here['region_land_pixels']:,} of them land, years {', '.join(map(str, here['years']))}) "
        f"ran {here['jobs']} jobs in {here['wall_minutes']:.1f} min on this machine (2 cores). "
        f"Scaled to the global run ({world['grid_pixels']:,} pixels, {world['land_pixels']:,.0f} "
        f"land, {world['days']:,} days, {world['target_years']} target years"
        + (f", {world['jobs']:,} jobs" if world["jobs"] else "")
        + ") by what each rule's work grows with:",
        "",
        "| rule | jobs here | CPU s / job here | peak memory here (MB) | jobs (global) | CPU-hours (global) | scaling |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for rule in (name for name in SCALING if name in cost["rules"]):  # data-flow order
        r = cost["rules"][rule]
        lines.append(
            f"| {rule} | {r['jobs_here']} | {r['cpu_s_per_job_here']:,.1f} | "
            f"{r['max_rss_mb_here']:,.0f} | {r['jobs_global']:,} | {r['cpu_hours_global']:,.0f} | "
            f"{r['scaling']} |"
        )
    low, high = cost["gpu_hours_inference_measured_h100"]
    lines += [
        "",
        f"CPU-hours in all: {cost['cpu_hours_total']:,.0f} "
        f"({cost['cpu_hours_without_inference']:,.0f} without inference, which the GPUs "
        "take, but for the share of the tiles hpc.cpu_inference_share sends to CPU cores). "
        f"Inference on one H100: {low:,.1f}-{high:,.1f} GPU-hours at the 2-4 M pixel-days/s the "
        "tile job reached on a real H100 (host-bound, issue 18, measured before the host was "
        "left with I/O alone; the inference benchmark re-measures it where a card is at hand).",
        "",
        "| stage | disk here | disk (global) | grows with |",
        "|---|---:|---:|---|",
    ]
    for stage in (name for name in DISK_STAGES if name in cost["disk"]):
        d = cost["disk"][stage]
        lines.append(
            f"| {stage} | {d['bytes_here'] / 1e6:,.1f} MB | {_size(d['bytes_global'])} | "
            f"{d['grows_with']} |"
        )
    node = cost["node"]
    lines += [
        "",
        "These CPU-hours scale whole jobs of the default run, their fixed costs (start-up, "
        "imports, opening files) included, so they overstate the rules measured only here (the "
        "product and validation years where their global benchmark was not at hand, the "
        "samples, the inference tiles on CPU); the schedule below projects every job from the "
        "per-unit costs measured at global size instead. Spread over nodes of "
        f"{node['cores']} cores and {node['gpus']} GPU, these figures would give at least: "
        "the CPU stages packed perfectly, the GPU inference, or the longest single job "
        f"({cost['longest_single_job']['rule']}, {cost['longest_single_job']['hours']:,.1f} h on "
        "the threads it asks for), whichever is longest: "
        + ", ".join(
            f"{n} node{'s' if int(n) > 1 else ''}: {h:,.1f} h"
            for n, h in sorted(cost["wall_hours_on_nodes"].items(), key=lambda item: int(item[0]))
        )
        + ".",
    ]
    if cost.get("manifest_hours"):
        lines[-1] += (
            f" The manifest (every output hashed on the head node once the run is done) adds "
            f"{cost['manifest_hours']:,.1f} h after it."
        )
    return lines


def _size(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.1f} {unit}"
    return f"{n_bytes / 1e3:,.1f} kB"
