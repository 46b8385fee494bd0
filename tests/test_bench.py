"""The benchmark's own arithmetic: FLOP counts, target verdicts, Snakemake job tables.

(The benchmark's speed figures are never asserted here: they belong to `make bench`.)
"""

from __future__ import annotations

import pytest

from avhrrsm.ops.bench.dag import snakemake_job_counts
from avhrrsm.ops.bench.learning import model_flops_per_pixel_day
from avhrrsm.ops.bench.report import render_markdown, target_verdicts
from avhrrsm.variables import DYNAMIC_FEATURES, FILL_INDICATORS, STATIC_FEATURES

# inputs, their fill indicators and the static layers (repeated at every lag)
N_INPUTS = len(DYNAMIC_FEATURES) + len(FILL_INDICATORS) + len(STATIC_FEATURES)


def _lstm_flops(hidden: int, inputs: int, length: int) -> int:
    """Four gates, each a (inputs + hidden) x hidden multiply-add, at every lag."""
    return length * 2 * 4 * hidden * (inputs + hidden)


def test_lstm_flops_count_the_recurrence_and_the_head():
    hidden, length = 32, 4
    lstm = {"hidden_size": hidden, "num_layers": 1, "dropout": 0.0}
    flops = model_flops_per_pixel_day("lstm", lstm, length)
    assert flops == _lstm_flops(hidden, N_INPUTS, length) + 2 * hidden
    both = model_flops_per_pixel_day("bilstm", lstm, length)
    assert both == 2 * _lstm_flops(hidden, N_INPUTS, length) + 2 * 2 * hidden
    # twice the lags, twice the recurrence
    longer = model_flops_per_pixel_day("lstm", lstm, 2 * length)
    assert longer - 2 * hidden == pytest.approx(2 * (flops - 2 * hidden))


def test_transformer_flops_grow_with_width():
    small = {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32, "dropout": 0.0}
    large = {**small, "d_model": 32, "dim_feedforward": 64}
    assert model_flops_per_pixel_day("transformer", large, 4) > 2 * model_flops_per_pixel_day(
        "transformer", small, 4
    )


RESULTS = {
    "machine": {"cpus": 2},
    "regrid_block": {
        "1km_to_5km": {
            "input_megapixels": 4.0,
            "ours_mpix_per_s": 120.0,
            "gdalwarp_mpix_per_s": 30.0,
            "ratio": 4.0,
            "max_abs_diff": 3e-8,
        }
    },
    "stack_global": {
        "2_days": {"seconds": 30.0, "peak_rss_gib": 3.5},
        "4_days": {"seconds": 50.0, "peak_rss_gib": 3.52},
    },
    "dag": {
        "seconds": 25.0,
        "seconds_all": [25.0, 26.0],
        "jobs": 2999,
        "jobs_per_rule": {"stack_year": 40, "inference_tile": 2880},
        "local_rules": ["all", "manifest"],
        "grouped_rules": ["inference_tile"],
        "group_jobs": 120,
        "slurm_submissions": 160,
    },
}


def test_verdicts_name_each_target_met_or_missed():
    verdicts = {v["target"]: v for v in target_verdicts(RESULTS)}
    block = verdicts["block aggregation >= 3x `gdalwarp -r average`, equal values"]
    assert block["met"] and block["figure"].startswith("4.00x")
    memory = verdicts["peak memory of any job <= 4 GiB at global size, independent of days"]
    assert memory["met"]
    dry_run = verdicts["global 40-year dry run <= 20 s"]
    assert not dry_run["met"] and dry_run["figure"] == "25.0 s for 2,999 jobs"
    # memory that grows with the days misses the target even below 4 GiB
    growing = {**RESULTS, "stack_global": {**RESULTS["stack_global"]}}
    growing["stack_global"]["4_days"] = {"seconds": 50.0, "peak_rss_gib": 3.9}
    (memory,) = [v for v in target_verdicts(growing) if v["target"].startswith("peak memory")]
    assert not memory["met"]
    text = render_markdown(RESULTS)
    assert "| global 40-year dry run <= 20 s | 25.0 s for 2,999 jobs | **missed** |" in text
    assert "10.0 s per day plus 10.0 s fixed" in text
    assert "160 submissions (120 group jobs; local rules all, manifest" in text


def test_job_table_of_a_dry_run_is_parsed():
    log = "Building DAG of jobs...\nJob stats:\njob      count\n-----  -----\nstack_year   40\n"
    log += "inference_tile  2880\ntotal   2920\n\nThis was a dry-run"
    assert snakemake_job_counts(log) == {"stack_year": 40, "inference_tile": 2880}


def test_benchmark_files_map_to_their_rules():
    from avhrrsm.ops.bench.cost import rule_of_benchmark

    assert rule_of_benchmark("stack_year_1999") == "stack_year"
    assert rule_of_benchmark("inference_2015_h17v04") == "inference_tile"
    assert rule_of_benchmark("train_atlstm_L4") == "train_deep"
    assert rule_of_benchmark("train_atlstm_L4_seed2") == "train_deep_replicate"
    assert rule_of_benchmark("train_xgboost_L4") == "train_xgboost"
    assert rule_of_benchmark("train_xgboost_L4_seed1") == "train_xgboost_replicate"
    assert rule_of_benchmark("samples_year_2001") == "samples_year"
    assert rule_of_benchmark("validation") == "validation"


def test_the_readme_cost_table_is_the_one_the_benchmark_wrote():
    """The README's figures of a real run come from benchmarks/results.json, not from memory."""
    import json

    from conftest import REPO_ROOT

    from avhrrsm.ops.bench.report import readme_block, with_generated_block

    results = json.loads((REPO_ROOT / "benchmarks" / "results.json").read_text())
    assert "skipped" not in results["run_cost"]
    readme = (REPO_ROOT / "README.md").read_text()
    assert with_generated_block(readme, readme_block(results)) == readme


@pytest.mark.slow
def test_run_cost_scales_a_finished_run(tiny_run):
    from conftest import REPO_ROOT

    from avhrrsm.config import load_config
    from avhrrsm.ops.bench.cost import GLOBAL_GRID_PIXELS, run_cost

    world = load_config(REPO_ROOT / "workflow" / "configs" / "global.yaml")
    cost = run_cost(tiny_run, world, {"jobs_per_rule": {"stack_year": 40, "train_deep": 3}})
    rules = cost["rules"]
    assert {"stack_year", "inference_tile", "validation", "train_deep"} <= set(rules)
    # per-year rules: one job's CPU time x the grid factor x the global job count
    stack = rules["stack_year"]
    assert stack["jobs_global"] == 40
    assert stack["cpu_hours_global"] == pytest.approx(
        stack["cpu_s_per_job_here"] * cost["factors"]["grid"] * 40 / 3600
    )
    assert (
        cost["factors"]["grid"] == GLOBAL_GRID_PIXELS / cost["measured_run"]["region_grid_pixels"]
    )
    # training scales with the samples: 21 target years at 200 000 against the run's
    assert cost["factors"]["samples"] > 1
    product = cost["disk"]["product"]
    assert product["bytes_global"] == product["bytes_here"] * cost["factors"]["grid_pixel_days"]
    walls = [cost["wall_hours_on_nodes"][n] for n in ("1", "4", "16")]
    assert walls[0] >= walls[1] >= walls[2] >= cost["longest_single_job"]["hours"] > 0
    assert cost["measured_run"]["jobs"] > 10 and cost["measured_run"]["wall_minutes"] > 0


def test_global_year_jobs_render_their_line_and_count_in_the_memory_verdict():
    """The product and validation year jobs at global size: seconds per day and fixed, a
    year's hours, the product's parallel efficiency; their peak memory is a job's memory."""
    year_jobs = {
        "stack_job": {"days": 8, "seconds": 100.0, "peak_rss_gib": 3.0},
        "product": {
            "4_days": {"seconds": 20.0, "peak_rss_gib": 2.0},
            "8_days": {"seconds": 32.0, "peak_rss_gib": 2.1},
            "two_workers": {"days": 8, "seconds": 20.0, "peak_rss_gib": 0.5},
            "parallel_efficiency": 0.8,
            "seconds_per_day": 3.0,
            "fixed_seconds": 8.0,
        },
        "validation": {
            "4_days": {"seconds": 14.0, "peak_rss_gib": 1.0},
            "8_days": {"seconds": 28.0, "peak_rss_gib": 1.1},
            "seconds_per_day": 3.5,
            "fixed_seconds": 0.0,
        },
    }
    results = {**RESULTS, "product_validation_global": year_jobs}
    text = render_markdown(results)
    assert "Product: 3.00 s per global day plus 8.0 s fixed, a year 0.31 h on one core" in text
    assert "parallel efficiency 0.80 from one worker to two" in text
    assert "| product | 8 | 2 | 20.0 | 0.50 (parent) |" in text
    heavy = {**year_jobs, "product": {**year_jobs["product"]}}
    heavy["product"]["8_days"] = {"seconds": 32.0, "peak_rss_gib": 4.5}
    (memory,) = [
        v
        for v in target_verdicts({**RESULTS, "product_validation_global": heavy})
        if v["target"].startswith("peak memory")
    ]
    assert not memory["met"] and memory["figure"].startswith("4.50 GiB at most")


def test_the_compiled_model_is_shown_against_its_eager_self():
    """The torch.compile table: ratios against the eager model-only rate at the job's batch and
    the eager tile job, the compile time and the largest difference."""
    eager = {
        "device": "cpu",
        "model_only_pixel_days_per_s": {"4096": 2.0e6, "16384": 2.5e6},
        "tile_job_pixel_days_per_s": 1.6e6,
        "tile_job_batch_size": 4096,
        "ratio_vs_model_only_same_batch": 0.8,
        "ratio_vs_model_only_best_batch": 0.64,
        "peak_rss_gib": 0.4,
    }
    compiled = {
        "compile_seconds": 4.2,
        "model_only_pixel_days_per_s": 3.0e6,
        "max_abs_diff": 3.0e-8,
        "tile_job_pixel_days_per_s": 0.8e6,
        "tile_job_seconds": 18.0,
    }
    inference = {"tile_pixels": 40000, "days": 365, "threads": 2}
    plain = render_markdown({**RESULTS, "inference": {**inference, "lstm": eager}})
    assert "torch.compile against eager" not in plain
    text = render_markdown(
        {**RESULTS, "inference": {**inference, "lstm": {**eager, "compiled": compiled}}}
    )
    assert "| lstm | 4.2 | 1.50 | 800,000 | 0.50 | 3.0e-08 |" in text


def test_the_uncertainty_cost_is_shown_and_judged_against_its_target():
    """The uncertainty's table and verdict: the job's cost with it over without it, against
    the 1.3x target, the worst model named."""
    base = {
        "device": "cpu",
        "model_only_pixel_days_per_s": {"4096": 2.0e6},
        "tile_job_pixel_days_per_s": 1.6e6,
        "tile_job_batch_size": 4096,
        "ratio_vs_model_only_same_batch": 0.8,
        "ratio_vs_model_only_best_batch": 0.8,
        "peak_rss_gib": 0.4,
    }
    inference = {
        "tile_pixels": 40000,
        "days": 365,
        "threads": 2,
        "lstm": {**base, "uncertainty": {"tile_job_pixel_days_per_s": 1.5e6, "cost_ratio": 1.07}},
        "atlstm": {**base, "uncertainty": {"tile_job_pixel_days_per_s": 1.1e6, "cost_ratio": 1.45}},
    }
    text = render_markdown({**RESULTS, "inference": inference})
    assert "| lstm | 1,500,000 | 1.07 | met |" in text
    assert "| atlstm | 1,100,000 | 1.45 | **missed** |" in text
    (verdict,) = [
        v
        for v in target_verdicts({**RESULTS, "inference": inference})
        if "uncertainty" in v["target"]
    ]
    assert not verdict["met"] and verdict["figure"] == "1.45x (worst model: atlstm)"
    inference["atlstm"]["uncertainty"]["cost_ratio"] = 1.2
    (verdict,) = [
        v
        for v in target_verdicts({**RESULTS, "inference": inference})
        if "uncertainty" in v["target"]
    ]
    assert verdict["met"]
