"""What jobs ask a scheduler for (avhrrsm.requests) and the schedule of a DAG from it
(avhrrsm.ops.bench.schedule): unit tests on small cases."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO_ROOT

from avhrrsm.config import load_yaml, validate_config
from avhrrsm.ops.bench.schedule import (
    Task,
    critical_path,
    list_schedule,
    lower_bound_hours,
    parse_dot,
    work_per_rule,
)
from avhrrsm.ops.slurm_profile import install_slurm_profile
from avhrrsm.requests import (
    COSTS,
    GROUP_JOB_CORES,
    cpu_inference_group_size,
    cpu_inference_tiles,
    inference_group_size,
    job_request,
    request,
    tile_pattern,
)


@pytest.fixture(scope="module")
def global_config():
    return validate_config(load_yaml(REPO_ROOT / "workflow" / "configs" / "global.yaml"))


def test_a_spreading_job_gets_threads_for_its_work_and_the_runtime_for_its_threads():
    small = request("product_year", 1e6, 1000)
    assert small.threads == 1 and small.runtime == 10  # the floor
    big = request("product_year", 3e11, 26_000_000, pieces=12)
    assert big.threads == 12  # no more threads than pieces of work
    assert big.runtime >= 1.5 * big.projected_minutes
    assert big.projected_minutes == pytest.approx(
        big.core_seconds / 60 / (12 * COSTS["product_year"].parallel_efficiency)
    )
    capped = request("product_year", 3e11, 26_000_000, pieces=12, threads=4)
    assert capped.runtime > big.runtime and capped.mem_mb < big.mem_mb
    serial = request("validation", 1e10, 1000, pieces=50)
    assert serial.threads == 1  # a job that does not spread gets no threads it cannot use


def test_hpc_settings_and_overrides_change_the_request():
    hpc = {"margin": 3.0, "resources": {"product_year": {"runtime": 500, "mem_mb": 7000}}}
    plain = request("product_year", 1e10, 26_000_000, pieces=12)
    chosen = request("product_year", 1e10, 26_000_000, {**hpc, "resources": {}}, pieces=12)
    assert chosen.runtime == pytest.approx(2 * plain.runtime, abs=1)
    fixed = request("product_year", 1e10, 26_000_000, hpc, pieces=12)
    assert (fixed.runtime, fixed.mem_mb) == (500, 7000)
    # a margin below 1.5 is refused by the schema; the module enforces it too
    assert request("product_year", 1e10, 1, {"margin": 1.0}, pieces=12).runtime == plain.runtime


def test_global_jobs_fit_an_hour_on_their_threads(global_config):
    for rule in ("stack_year", "product_year", "validation_year"):
        for year in (1990, 2010):  # without and with the GLASS-MODIS target
            job = job_request(rule, global_config, year)
            assert 1 <= job.threads <= 16
            assert job.projected_minutes <= 60, (rule, year, job)
            assert job.runtime >= 1.5 * job.projected_minutes
            # threads only where one core would take longer than the 30 minutes aimed at
            assert (job.threads > 1) == (job.core_seconds > 1800), (rule, year, job)
    with_target = job_request("stack_year", global_config, 2010)
    without = job_request("stack_year", global_config, 1990)
    # the 1 km sinusoidal target: modis_sinusoidal's 29.8 s a global day more
    assert with_target.core_seconds - without.core_seconds == pytest.approx(365 * 29.8)


def test_the_workflow_profile_groups_tiles_as_the_cost_says(global_config, tmp_path):
    profile = load_yaml(REPO_ROOT / "profiles" / "slurm" / "config.yaml")
    assert "groups" not in load_yaml(REPO_ROOT / "profiles" / "default" / "config.yaml")
    components = dict(entry.split("=") for entry in profile["group-components"])
    size = inference_group_size(global_config)
    assert int(components["inference"]) == size
    tile = job_request("inference_tile", global_config, 2021, "h05v02")
    assert 20 <= size * tile.projected_minutes <= 30  # about hpc.gpu_group_minutes of GPU
    # the CPU tiles: side by side on a group job's cores, rounds of about the same minutes
    cpu_size = cpu_inference_group_size(global_config)
    assert int(components["inference_cpu"]) == cpu_size
    on_cpu = job_request("inference_tile_cpu", global_config, 2021, "h00v00")
    assert on_cpu.projected_minutes > 5 * tile.projected_minutes  # no GPU: a slower tile
    rounds = cpu_size / (GROUP_JOB_CORES // on_cpu.threads)
    assert rounds == int(rounds) and 20 <= rounds * on_cpu.projected_minutes <= 30
    # a user's configuration: its own group sizes in the installed SLURM profile
    source = REPO_ROOT / "profiles" / "slurm" / "config.yaml"
    groups = {"inference": 7, "inference_cpu": 24}
    target = install_slurm_profile(source, tmp_path, inference_groups=groups, job_gpus=2)
    settings = yaml.safe_load(target.read_text())
    assert settings["group-components"] == ["inference=7", "inference_cpu=24"]
    assert "gpu=2" in settings["resources"] and settings["set-resource-scopes"] == ["gpu=local"]


def test_a_share_of_the_tiles_runs_on_cpu_cores_under_its_own_rule(global_config):
    """hpc.cpu_inference_share of the tiles (by pixels, spread over the tile order) match rule
    inference_tile_cpu's tile pattern, the others inference_tile's; none where no job has a
    GPU or the share is 0."""
    every = [f"h{h:02d}v{v:02d}" for h in range(12) for v in range(6)]
    for share, expected in ((0.5, 36), (0.25, 18), (1.0, 72)):
        config = {**global_config, "hpc": {**global_config["hpc"], "cpu_inference_share": share}}
        cpu_tiles = cpu_inference_tiles(config)
        assert len(cpu_tiles) == expected and set(cpu_tiles) <= set(every)
        rows = {tile[-2:] for tile in cpu_tiles}
        assert len(rows) == 6  # every tile row has its share, not the first rows only
        on_cpu = re.compile(rf"{tile_pattern(config, on_cpu=True)}\.zarr$")
        on_gpu = re.compile(rf"{tile_pattern(config, on_cpu=False)}\.zarr$")
        for tile in every:
            assert bool(on_cpu.match(f"{tile}.zarr")) == (tile in cpu_tiles), tile
            assert bool(on_gpu.match(f"{tile}.zarr")) != (tile in cpu_tiles), tile
    no_gpu = {**global_config, "hpc": {**global_config["hpc"], "gpus_per_job": 0}}
    assert cpu_inference_tiles(no_gpu) == ()
    assert not re.match(tile_pattern(no_gpu, on_cpu=True), "h00v00")
    assert re.fullmatch(tile_pattern(no_gpu, on_cpu=False), "h11v05")
    on_cpu_job = job_request("inference_tile_cpu", global_config, 2000, "h00v00")
    on_gpu_job = job_request("inference_tile", global_config, 2000, "h00v00")
    assert on_cpu_job.core_seconds > on_gpu_job.core_seconds and on_cpu_job.threads == 2


def test_dot_labels_get_the_year_their_input_jobs_have():
    dot = (
        '\t1[label = "stack_year\\nyear: 2000"];\n'
        '\t2[label = "stack_year\\nyear: 2001"];\n'
        '\t3[label = "inference_tile\\ntile: h00v00"];\n'
        '\t4[label = "product_year"];\n'
        "\t1 -> 3\n\t2 -> 3\n\t3 -> 4\n"
    )
    jobs, edges = parse_dot(dot)
    assert jobs[3] == ("inference_tile", {"tile": "h00v00", "year": "2001"})
    assert jobs[4] == ("product_year", {"year": "2001"}) and (3, 4) in edges


def test_a_list_schedule_packs_cores_and_follows_dependencies():
    tasks = [
        Task("a", ["a"], 60.0, 32, False, 90),
        Task("b", ["b"], 60.0, 32, False, 90),
        Task("c", ["c"], 30.0, 16, False, 45, needs={0}),
        Task("d", ["d"], 30.0, 16, True, 45, needs={0}),
    ]
    length, chain, _ = critical_path(tasks)
    assert length == 90.0 and [tasks[k].name for k in chain][0] == "a"
    one = list_schedule(tasks, 1)
    # a first (longest path to the end), then b (the whole node), then c and d side by side
    assert one["wall_hours"] == pytest.approx(2.5)
    two = list_schedule(tasks, 2)
    assert two["wall_hours"] == pytest.approx(1.5)
    assert 0 < two["core_utilisation"] <= 1 and 0 < two["gpu_utilisation"] <= 1
    # the work by rule and the bound no schedule beats: 80 core-hours on one node of 32
    # cores is 2.5 h, more than the critical path (1.5 h); on two nodes the path bounds it
    work = work_per_rule(tasks)
    assert work["a"] == {"submissions": 1, "core_hours": 32.0, "gpu_hours": 0.0}
    assert work["d"]["gpu_hours"] == 0.5
    core_hours = sum(w["core_hours"] for w in work.values())
    assert core_hours == 80.0
    assert lower_bound_hours(core_hours, 0.5, length / 60, 1) == pytest.approx(2.5)
    assert lower_bound_hours(core_hours, 0.5, length / 60, 2) == pytest.approx(1.5)
    for nodes in (1, 2):
        bound = lower_bound_hours(core_hours, 0.5, length / 60, nodes)
        assert list_schedule(tasks, nodes)["wall_hours"] >= bound - 1e-9


def test_global_year_costs_are_the_benchmarks_figures():
    """The per-day costs of the stack, product and validation years are what their global
    benchmarks measured (benchmarks/results.json), so re-measuring without updating fails."""
    import json

    from avhrrsm.ops.bench.timing import job_seconds_by_days, seconds_line
    from avhrrsm.requests import GLOBAL_GRID_PIXELS

    results = json.loads((REPO_ROOT / "benchmarks" / "results.json").read_text())
    stack = results["stack_global"]
    stack_per_day = seconds_line(job_seconds_by_days(stack))["seconds_per_day"]
    year_jobs = results["product_validation_global"]
    measured = {
        "stack_year": stack_per_day,
        "product_year": year_jobs["product"]["seconds_per_day"],
        "validation_year": year_jobs["validation"]["seconds_per_day"],
    }
    for rule, per_day in measured.items():
        assert COSTS[rule].per_unit_s * GLOBAL_GRID_PIXELS == pytest.approx(per_day, rel=0.01)
    assert COSTS["product_year"].fixed_s == pytest.approx(
        year_jobs["product"]["fixed_seconds"], rel=0.01
    )
    assert COSTS["product_year"].parallel_efficiency == pytest.approx(
        year_jobs["product"]["parallel_efficiency"], abs=0.01
    )
    # two workers' figure, capped: it does not show what sixteen workers share
    assert COSTS["stack_year"].parallel_efficiency == min(0.9, stack["parallel_efficiency"])


def test_the_tile_rule_asks_every_job_what_its_largest_job_needs(global_config):
    """The inference rule's one request (no function per job in a DAG of 2,880 tiles): equal
    to every tile's own on the global grid, at least each tile's on a region with edge tiles."""
    from avhrrsm.grid import region_window, tiles
    from avhrrsm.requests import envelope_request

    envelope = envelope_request("inference_tile", global_config)
    assert envelope == job_request("inference_tile", global_config, 2000, "h05v02")
    region = {"lon_min": -7.5, "lon_max": 31.0, "lat_min": 35.0, "lat_max": 71.5}
    europe = {**global_config, "region": region, "years": [2000, 2001]}
    envelope = envelope_request("inference_tile", europe)
    for tile, _ in tiles(region_window(region), europe["tile_deg"]):
        for year in (2000, 2001):
            job = job_request("inference_tile", europe, year, tile)
            assert envelope.runtime >= job.runtime and envelope.mem_mb >= job.mem_mb
            assert envelope.projected_minutes >= job.projected_minutes
