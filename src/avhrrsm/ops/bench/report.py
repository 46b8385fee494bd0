"""``benchmarks/RESULTS.md``: the figures of ``results.json`` against the project's targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from avhrrsm.ops.bench.cost import cost_markdown
from avhrrsm.ops.bench.learning import inference_models
from avhrrsm.ops.bench.schedule import schedule_markdown

TARGETS = {
    "block_vs_gdalwarp_ratio": 3.0,
    "stack_peak_memory_gib": 4.0,
    "tile_vs_model_only_ratio": 0.8,
    "host_only_per_core": 5.0e6,
    "host_only_scaling": 1.8,
    "uncertainty_cost_ratio": 1.3,
    "global_dry_run_seconds": 20.0,
    "sinusoidal_vs_gdalwarp_ratio": 1.0,
}


def target_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's targets against this run's figures (missing sections are omitted)."""
    verdicts: list[dict[str, Any]] = []
    for section in (
        _block_verdicts,
        _inference_verdicts,
        _memory_verdicts,
        _sinusoidal_verdicts,
        _dag_verdicts,
        _schedule_verdicts,
    ):
        verdicts += section(results)
    return verdicts


def _block_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Block aggregation against gdalwarp: speed and equal values."""
    verdicts: list[dict[str, Any]] = []
    block = results.get("regrid_block", {})
    if block and "skipped" not in block:
        worst = min(block.values(), key=lambda r: r["ratio"])
        verdicts.append(
            {
                "target": "block aggregation >= 3x `gdalwarp -r average`, equal values",
                "figure": f"{worst['ratio']:.2f}x (worst case), max abs diff "
                f"{max(r['max_abs_diff'] for r in block.values()):.1e}",
                "met": worst["ratio"] >= TARGETS["block_vs_gdalwarp_ratio"]
                and max(r["max_abs_diff"] for r in block.values()) < 1e-5,
            }
        )
    return verdicts


def _inference_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The tile job against model-only; the host-only rate and its scaling."""
    verdicts: list[dict[str, Any]] = []
    inference = inference_models(results.get("inference", {}))
    if inference:
        worst = min(r["ratio_vs_model_only_same_batch"] for r in inference.values())
        verdicts.append(
            {
                "target": f"tile job >= {TARGETS['tile_vs_model_only_ratio']:.0%} of model-only "
                "throughput",
                "figure": f"{worst:.2f} (worst model, same batch size)",
                "met": worst >= TARGETS["tile_vs_model_only_ratio"],
            }
        )
    costs = {n: r["uncertainty"]["cost_ratio"] for n, r in inference.items() if "uncertainty" in r}
    if costs:
        worst_cost = max(costs.values())
        verdicts.append(
            {
                "target": f"tile job with the uncertainty <= {TARGETS['uncertainty_cost_ratio']}x "
                "the cost without it",
                "figure": f"{worst_cost:.2f}x (worst model: {max(costs, key=costs.__getitem__)})",
                "met": worst_cost <= TARGETS["uncertainty_cost_ratio"],
            }
        )
    host = results.get("inference", {}).get("host_only")
    if host:
        per_core = _host_only_worst_per_core(host)
        verdicts.append(
            {
                "target": f"host-only tile job >= {TARGETS['host_only_per_core'] / 1e6:.0f} M "
                f"pixel-days/s per core, >= {TARGETS['host_only_scaling']}x from 1 to 2 threads",
                "figure": f"{per_core / 1e6:.2f} M per core at worst, {host['scaling']:.2f}x",
                "met": _host_only_met(host),
            }
        )
    return verdicts


def _memory_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Peak memory of every job measured at global size, flat in days."""
    verdicts: list[dict[str, Any]] = []
    inference = inference_models(results.get("inference", {}))
    stack = {k: v for k, v in results.get("stack_global", {}).items() if k.endswith("_days")}
    year_jobs = results.get("product_validation_global", {})
    peaks = (
        [r["peak_rss_gib"] for r in stack.values()]
        + [r["peak_rss_gib"] for r in inference.values()]
        + [
            r["peak_rss_gib"]
            for job in ("product", "validation")
            for key, r in year_jobs.get(job, {}).items()
            if key.endswith("_days")
        ]
    )
    if stack:
        days = sorted(stack, key=lambda k: int(k.split("_")[0]))
        first, last = stack[days[0]]["peak_rss_gib"], stack[days[-1]]["peak_rss_gib"]
        flat = last <= 1.1 * first
        verdicts.append(
            {
                "target": "peak memory of any job <= 4 GiB at global size, independent of days",
                "figure": f"{max(peaks):.2f} GiB at most; stack job {first:.2f} GiB "
                f"({days[0].split('_')[0]} days) -> {last:.2f} GiB ({days[-1].split('_')[0]} days)",
                "met": max(peaks) <= TARGETS["stack_peak_memory_gib"] and flat,
            }
        )
    return verdicts


def _sinusoidal_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The global sinusoidal day against gdalwarp: speed, equal values, cells."""
    verdicts: list[dict[str, Any]] = []
    sinusoidal = results.get("modis_sinusoidal", {})
    if sinusoidal and "skipped" not in sinusoidal:
        verdicts.append(
            {
                "target": "global 1 km sinusoidal day -> 0.05 degree >= 1x `gdalwarp -r average`, "
                "equal values",
                "figure": f"{sinusoidal['ratio']:.2f}x, max abs diff {sinusoidal['max_abs_diff']:.1e}, "
                f"{sinusoidal['missing_differ_cells']} of {sinusoidal['cells']:,} cells missing in "
                "one only",
                "met": sinusoidal["ratio"] >= TARGETS["sinusoidal_vs_gdalwarp_ratio"]
                and sinusoidal["max_abs_diff"] < 1e-5
                and sinusoidal["missing_differ_cells"] <= 1e-6 * sinusoidal["cells"],
            }
        )
    return verdicts


def _dag_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The global dry run's time."""
    verdicts: list[dict[str, Any]] = []
    dag = results.get("dag", {})
    if dag:
        verdicts.append(
            {
                "target": "global 40-year dry run <= 20 s",
                "figure": f"{dag['seconds']:.1f} s for {dag['jobs']:,} jobs",
                "met": dag["seconds"] <= TARGETS["global_dry_run_seconds"],
            }
        )
    return verdicts


def _schedule_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The global run's schedule: wall hours, longest job, submissions."""
    verdicts: list[dict[str, Any]] = []
    schedule = results.get("schedule", {})
    if schedule and "skipped" not in schedule:
        wall = {r["nodes"]: r["wall_hours"] for r in schedule["on_nodes"]}
        bound = {
            r["nodes"]: f" (no schedule under {r['lower_bound_hours']:.1f} h)"
            for r in schedule["on_nodes"]
            if "lower_bound_hours" in r
        }
        longest = schedule["longest_job"]
        verdicts += [
            {
                "target": "global 40-year run <= 4 h on 16 nodes (schedule)",
                "figure": f"{wall[16]:.1f} h{bound.get(16, '')}",
                "met": wall[16] <= 4.0,
            },
            {
                "target": "global 40-year run <= 20 h on 1 node (schedule)",
                "figure": f"{wall[1]:.1f} h{bound.get(1, '')}",
                "met": wall[1] <= 20.0,
            },
            {
                "target": "longest job <= 60 min on its requested cores",
                "figure": f"{longest['name']}: {longest['minutes']:.0f} min",
                "met": longest["minutes"] <= 60.0,
            },
            {
                "target": "SLURM submissions <= 1,000",
                "figure": f"{schedule['submissions']:,}",
                "met": schedule["submissions"] <= 1000,
            },
        ]
    return verdicts


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Benchmark results", "", f"Machine: {results['machine']}", ""]
    for section in (
        _targets_markdown,
        _block_markdown,
        _bilinear_markdown,
        _hdf4_markdown,
        _sinusoidal_markdown,
        _stack_markdown,
    ):
        lines += section(results)
    lines += _year_jobs_markdown(results.get("product_validation_global"))
    lines += _inference_markdown(results)
    lines += _training_markdown(results.get("training", {}))
    lines += _dag_markdown(results.get("dag", {}))
    lines += _cost_markdown_section(results)
    return "\n".join(lines)


def _targets_markdown(results: dict[str, Any]) -> list[str]:
    """The targets and this machine's verdict on each."""
    lines: list[str] = []
    verdicts = target_verdicts(results)
    if verdicts:
        lines += ["## Targets", "", "| target | this machine | verdict |", "|---|---|---|"]
        lines += [
            f"| {v['target']} | {v['figure']} | {'met' if v['met'] else '**missed**'} |"
            for v in verdicts
        ]
        lines.append("")
    return lines


def _block_markdown(results: dict[str, Any]) -> list[str]:
    """Block aggregation against gdalwarp -r average, case by case."""
    lines: list[str] = []
    block = results.get("regrid_block", {})
    if "skipped" not in block and block:
        lines += [
            "## Block aggregation against `gdalwarp -r average` (file to file)",
            "",
            "| case | input MP | ours MP/s | gdalwarp MP/s | ratio | max abs diff | target (>= 3x) |",
            "|---|---|---|---|---|---|---|",
        ]
        for case, r in block.items():
            met = "met" if r["ratio"] >= TARGETS["block_vs_gdalwarp_ratio"] else "**missed**"
            lines.append(
                f"| {case} | {r['input_megapixels']:.1f} | {r['ours_mpix_per_s']:.1f} | "
                f"{r['gdalwarp_mpix_per_s']:.1f} | {r['ratio']:.2f} | {r['max_abs_diff']:.2e} | {met} |"
            )
        lines.append("")
    return lines


def _bilinear_markdown(results: dict[str, Any]) -> list[str]:
    """ERA5-Land's bilinear regridding against gdalwarp -r bilinear."""
    lines: list[str] = []
    bil = results.get("regrid_bilinear", {})
    if "skipped" not in bil and bil:
        lines += [
            "## ERA5-Land 0.1 -> 0.05 degree bilinear against `gdalwarp -r bilinear`",
            "",
            f"ours {bil['ours_mpix_per_s']:.1f} MP/s (output), gdalwarp {bil['gdalwarp_mpix_per_s']:.1f} "
            f"MP/s, ratio {bil['ratio']:.2f}, max abs diff {bil['max_abs_diff']:.2e} "
            "(ours in memory, gdalwarp file to file).",
            "",
        ]
    return lines


def _hdf4_markdown(results: dict[str, Any]) -> list[str]:
    """A global GLASS HDF4 day read onto the grid."""
    lines: list[str] = []
    hdf4 = results.get("glass_hdf4", {})
    if hdf4:
        lines += [
            "## A global GLASS HDF4 day read into the 0.05 degree grid",
            "",
            f"LST day (1 SDS) {hdf4['lst_day_seconds']:.2f} s, albedo composite (3 SDS) "
            f"{hdf4['albedo_composite_seconds']:.2f} s: {hdf4['mpix_per_s']:.0f} MP/s through "
            f"`io.glass.read_glass_sds` (pyhdf, deflate-compressed chunks; files "
            f"{hdf4['file_mb']['lst']:.1f} MB and {hdf4['file_mb']['albedo']:.1f} MB).",
            "",
        ]
    return lines


def _sinusoidal_markdown(results: dict[str, Any]) -> list[str]:
    """A global GLASS-MODIS sinusoidal day aggregated, against gdalwarp."""
    lines: list[str] = []
    sinusoidal = results.get("modis_sinusoidal", {})
    if sinusoidal and "skipped" not in sinusoidal:
        met = sinusoidal["ratio"] >= TARGETS["sinusoidal_vs_gdalwarp_ratio"]
        lines += [
            "## GLASS-MODIS: a global 1 km sinusoidal day -> 0.05 degree against `gdalwarp -r average`",
            "",
            f"{sinusoidal['input_megapixels']:.0f} MP in (43200 x 21600, the MODIS grid). Ours "
            f"(`io.glass_modis.glass_modis_on_grid`: the area-weighted mean and the valid "
            f"fraction, in 5 degree stripes) {sinusoidal['ours_seconds']:.1f} s "
            f"({sinusoidal['ours_mpix_per_s']:.1f} MP/s); gdalwarp (the mean only, file to "
            f"file) {sinusoidal['gdalwarp_seconds']:.1f} s: ratio {sinusoidal['ratio']:.2f} "
            f"({'met' if met else '**missed**'}, target >= 1x); max abs diff "
            f"{sinusoidal['max_abs_diff']:.1e} where both have a value; "
            f"{sinusoidal['missing_differ_cells']} of {sinusoidal['cells']:,} cells have a value "
            "in one only (GDAL's exact transformer, `-et 0`, gives the same cells as its default: "
            "the difference is in which source pixels a whole-file warp selects for a cell).",
            "",
        ]
    return lines


def _stack_markdown(results: dict[str, Any]) -> list[str]:
    """The stack job at global size: time and memory by days, two workers."""
    lines: list[str] = []
    stack_global = results.get("stack_global", {})
    stack = {k: v for k, v in stack_global.items() if k.endswith("_days")}
    if stack:
        lines += [
            "## A stack job at global size (7200 x 3600), inputs in the real formats (GLASS HDF4, CDS NetCDF)",
            "",
            "| days | seconds | peak RSS (GiB) | target (<= 4 GiB, flat in days) |",
            "|---|---|---|---|",
        ]
        for case, r in stack.items():
            met = "met" if r["peak_rss_gib"] <= TARGETS["stack_peak_memory_gib"] else "**missed**"
            lines.append(
                f"| {case.split('_')[0]} | {r['seconds']:.1f} | {r['peak_rss_gib']:.2f} | {met} |"
            )
        days = np.array([int(case.split("_")[0]) for case in stack], dtype=float)
        seconds = np.array([r["seconds"] for r in stack.values()])
        if len(days) >= 2:
            slope, intercept = np.polyfit(days, seconds, 1)
            residual = float(np.max(np.abs(seconds - (slope * days + intercept))))
            lines += [
                "",
                f"Time grows linearly with the days: {slope:.1f} s per day plus {intercept:.1f} s "
                f"fixed (largest deviation from the line {residual:.1f} s); memory is bounded by "
                "one chunk of days on one tile, so it stays flat. A year (365 days) would take "
                f"about {(slope * 365 + intercept) / 3600:.1f} h on this machine's core.",
            ]
        if "parallel_efficiency" in stack_global:
            two = stack_global["two_workers"]
            lines += [
                "",
                f"On two worker processes the {two['days']}-day job took {two['seconds']:.1f} s "
                f"({two['peak_rss_gib']:.2f} GiB in the parent): parallel efficiency "
                f"{stack_global['parallel_efficiency']:.2f} from one core to two.",
            ]
        lines.append("")
    return lines


def _inference_markdown(results: dict[str, Any]) -> list[str]:
    """The inference section: model-only and tile-job rates per model, host-only."""
    lines: list[str] = []
    inference = results.get("inference", {})
    if inference:
        lines += [
            f"## Inference on a {inference['tile_pixels']}-pixel tile x {inference['days']} days "
            f"({inference['threads']} threads)",
            "",
            "Model-only: forward passes over 2^20 pixel-days of ready, normalised inputs in "
            "distinct batches. Tile job: `predict_tile` end to end (load the model, read the "
            "stack as stored, prepare it on the device, predict, flag, write the tile store), "
            "in its own process.",
            "",
            "| model | device | FLOPs / pixel-day | model-only best (px-days/s, GFLOP/s) | "
            "model-only at the job's batch | tile job (px-days/s) | ratio (same batch) | "
            f"ratio (best batch) | peak RSS (GiB) | target (>= {TARGETS['tile_vs_model_only_ratio']}) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in inference_models(inference).items():
            same = r["model_only_pixel_days_per_s"][str(r["tile_job_batch_size"])]
            ratio = r["ratio_vs_model_only_same_batch"]
            met = "met" if ratio >= TARGETS["tile_vs_model_only_ratio"] else "**missed**"
            flops = f"{r['flops_per_pixel_day']:,.0f}" if "flops_per_pixel_day" in r else "-"
            gflops = f" ({r['model_only_gflops']:.1f})" if "model_only_gflops" in r else ""
            lines.append(
                f"| {name} | {r.get('device_name', r['device'])} | {flops} | "
                f"{max(r['model_only_pixel_days_per_s'].values()):,.0f}{gflops} | "
                f"{same:,.0f} (batch {r['tile_job_batch_size']}) | "
                f"{r['tile_job_pixel_days_per_s']:,.0f} | {ratio:.2f} | "
                f"{r['ratio_vs_model_only_best_batch']:.2f} | {r['peak_rss_gib']:.2f} | {met} |"
            )
        lines += ["", *_uncertainty_markdown(inference), *_compiled_markdown(inference)]
        lines += [*_host_only_markdown(inference), ""]
    return lines


def _uncertainty_markdown(inference: dict[str, Any]) -> list[str]:
    """The tile job with the uncertainty against the same job without it, where measured."""
    measured = {n: r for n, r in inference_models(inference).items() if "uncertainty" in r}
    if not measured:
        return []
    lines = [
        "### The uncertainty's cost",
        "",
        "The same tile job with the error model (`sm_uncertainty`: each pixel-day's class looked "
        "up on the device, the array written) against the job without it; the fastest of two "
        f"runs each. Target: at most {TARGETS['uncertainty_cost_ratio']}x.",
        "",
        "| model | tile job with the uncertainty (px-days/s) | cost with / without | target |",
        "|---|---|---|---|",
    ]
    for name, r in measured.items():
        u = r["uncertainty"]
        met = "met" if u["cost_ratio"] <= TARGETS["uncertainty_cost_ratio"] else "**missed**"
        lines.append(
            f"| {name} | {u['tile_job_pixel_days_per_s']:,.0f} | {u['cost_ratio']:.2f} | {met} |"
        )
    return [*lines, ""]


def _compiled_markdown(inference: dict[str, Any]) -> list[str]:
    """torch.compile against eager per model (config ``inference.compile``), where measured."""
    measured = {n: r for n, r in inference_models(inference).items() if "compiled" in r}
    if not measured:
        return []
    lines = [
        "### torch.compile against eager",
        "",
        "The same model through `torch.compile` (inductor; config `inference.compile`): "
        "model-only at the job's batch on the same distinct batches, and one tile job that "
        "compiles the model in each of its workers, as every job would. The largest "
        "difference is of the soil moisture (m3 m-3) over a batch.",
        "",
        "| model | compile (s, first batch) | model-only compiled / eager | tile job compiled "
        "(px-days/s) | tile job compiled / eager | largest difference |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in measured.items():
        c = r["compiled"]
        eager_model = r["model_only_pixel_days_per_s"][str(r["tile_job_batch_size"])]
        lines.append(
            f"| {name} | {c['compile_seconds']:.1f} | "
            f"{c['model_only_pixel_days_per_s'] / eager_model:.2f} | "
            f"{c['tile_job_pixel_days_per_s']:,.0f} | "
            f"{c['tile_job_pixel_days_per_s'] / r['tile_job_pixel_days_per_s']:.2f} | "
            f"{c['max_abs_diff']:.1e} |"
        )
    return [*lines, ""]


def _cost_markdown_section(results: dict[str, Any]) -> list[str]:
    """The real 40-year global run's cost and schedule."""
    lines: list[str] = []
    cost = results.get("run_cost", {})
    if cost and "skipped" not in cost:
        lines += ["## The real 40-year global run", "", *cost_markdown(cost)]
        lines += [*schedule_markdown(results.get("schedule")), ""]
    return lines


def _host_only_worst_per_core(host: dict[str, Any]) -> float:
    return min(r["per_core"] for r in host["threads"].values())


def _host_only_met(host: dict[str, Any]) -> bool:
    """The host-only goals: the rate per core at every thread count, and the scaling."""
    return (
        _host_only_worst_per_core(host) >= TARGETS["host_only_per_core"]
        and host["scaling"] >= TARGETS["host_only_scaling"]
    )


def _host_only_markdown(inference: dict[str, Any]) -> list[str]:
    """The host-only rate (null model) and the global projection, or what was not measured."""
    lines = []
    host = inference.get("host_only")
    if host:
        rates = ", ".join(
            f"{r['pixel_days_per_s'] / 1e6:.2f} M pixel-days/s on {threads} thread(s) "
            f"({r['per_core'] / 1e6:.2f} M per core; {r['seconds']:.2f} s, of which set-up "
            f"{r.get('setup_seconds', 0.0):.2f} s; summed over the workers: read "
            f"{r['read_seconds']:.2f} s, prepare and null model {r['forward_seconds']:.2f} s, "
            f"write {r['write_seconds']:.2f} s)"
            for threads, r in host["threads"].items()
        )
        met = "met" if _host_only_met(host) else "**missed**"
        lines += [
            f"Host-only (the tile job with a null model that reads each sequence's last day, "
            f"the fastest of {host.get('repeat', 1)} runs; the job's threads are its workers, "
            f"and it runs on as many cores, as under SLURM): "
            f"{rates}; {host['scaling']:.2f}x from 1 to 2 threads "
            f"(target >= {TARGETS['host_only_per_core'] / 1e6:.0f} M per core and >= "
            f"{TARGETS['host_only_scaling']}x: {met}).",
            "",
        ]
        if "independent_jobs" in host:
            ceiling = host["independent_jobs"]
            lines += [
                f"Read, prepare and write alone (after the serial set-up): "
                f"{host['phase_scaling']:.2f}x from 1 to 2 threads. The machine's own ceiling, "
                f"{ceiling['jobs']} independent one-thread jobs at once, each on a core of its "
                f"own: {ceiling['scaling']:.2f}x the one-thread job's rate "
                f"({ceiling['phase_scaling']:.2f}x after set-up).",
                "",
            ]
    projection = inference.get("global_projection", {})
    if "card" in projection:
        hours = ", ".join(
            f"{name} {value:,.1f} h" for name, value in projection.items() if name in inference
        )
        lines.append(
            f"The 40-year global inference ({projection['pixel_days']:.3g} land pixel-days) on "
            f"one {projection['card']} at the tile-job rates measured on it: {hours}."
        )
    elif projection:
        lines.append(
            f"The 40-year global inference on a GPU: not measured ({projection['not_measured']})."
        )
    return lines


def _training_markdown(training: dict[str, Any]) -> list[str]:
    if not training:
        return []
    lines = [
        f"## Training ({training['epochs']} epochs, batch {training['batch_size']}, "
        f"{training['threads']} threads)",
        "",
        "Samples per second over the training steps (batch assembly, forward, backward, "
        "optimiser step), and the share of a step spent assembling the batch (gathering the "
        "shuffled samples from the tensors the sample set is loaded into once).",
        "",
        "| model | device | train samples | samples/s | waiting for data |",
        "|---|---|---|---|---|",
    ]
    for name, r in training.items():
        if isinstance(r, dict):
            lines.append(
                f"| {name} | {r['device']} | {r['train_samples']:,} | "
                f"{r['samples_per_second']:,.0f} | {100 * r['data_wait_fraction']:.1f}% |"
            )
    return [*lines, ""]


def _dag_markdown(dag: dict[str, Any]) -> list[str]:
    if not dag:
        return []
    met = "met" if dag["seconds"] <= TARGETS["global_dry_run_seconds"] else "**missed**"
    return [
        "## DAG of the global 1982-2021 configuration",
        "",
        f"`snakemake -n` plans {dag['jobs']:,} jobs in {dag['seconds']:.1f} s "
        f"(best of {len(dag['seconds_all'])}; target <= 20 s: {met}). Under SLURM, with the "
        f"SLURM profile's job groups ({', '.join(dag['grouped_rules'])}), they are "
        f"{dag['slurm_submissions']:,} submissions ({dag['group_jobs']:,} group jobs; local "
        f"rules {', '.join(dag['local_rules'])} run on the head node)"
        + (
            f"; that plan takes {dag['slurm_plan_seconds']:.1f} s (Snakemake's group checks)."
            if "slurm_plan_seconds" in dag
            else "."
        ),
        "",
        "| rule | jobs |",
        "|---|---|",
        *(f"| {rule} | {n:,} |" for rule, n in dag["jobs_per_rule"].items()),
        "",
    ]


README_BLOCK_BEGIN = (
    "<!-- run-cost: written by `avhrrsm bench --section run_cost` from benchmarks/results.json; "
    "do not edit -->"
)
README_BLOCK_END = "<!-- run-cost end -->"


def readme_block(results: dict[str, Any]) -> list[str]:
    """The README's generated cost block: run_cost's table, then the schedule's lines."""
    return cost_markdown(results["run_cost"]) + schedule_markdown(results.get("schedule"))


def with_generated_block(text: str, lines: list[str]) -> str:
    """``text`` (the README) with the lines between the run-cost markers replaced."""
    begin, end = text.find(README_BLOCK_BEGIN), text.find(README_BLOCK_END)
    if begin < 0 or end < begin:
        raise ValueError("the README has no run-cost block (its markers are missing)")
    head = text[: begin + len(README_BLOCK_BEGIN)]
    return head + "\n" + "\n".join(lines) + "\n" + text[end:]


def _year_jobs_markdown(measured: Mapping[str, Any] | None) -> list[str]:
    """The product and validation year jobs at global size (section product_validation_global)."""
    if not measured:
        return []
    lines = [
        "## Product and validation year jobs at global size (7200 x 3600, 72 tiles of 30 degrees)",
        "",
        "| job | days | workers | seconds | peak RSS (GiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for job in ("product", "validation"):
        figures = measured[job]
        for key, r in figures.items():
            if key.endswith("_days"):
                lines.append(
                    f"| {job} | {key.split('_')[0]} | 1 | {r['seconds']:.1f} | "
                    f"{r['peak_rss_gib']:.2f} |"
                )
        if "two_workers" in figures:
            two = figures["two_workers"]
            lines.append(
                f"| {job} | {two['days']} | 2 | {two['seconds']:.1f} | "
                f"{two['peak_rss_gib']:.2f} (parent) |"
            )
    product, validation = measured["product"], measured["validation"]
    lines += [
        "",
        f"Product: {product['seconds_per_day']:.2f} s per global day plus "
        f"{product['fixed_seconds']:.1f} s fixed, a year {_year_hours(product):.2f} h on one core; "
        f"parallel efficiency {product['parallel_efficiency']:.2f} from one worker to two. "
        f"Validation year: {validation['seconds_per_day']:.2f} s per global day plus "
        f"{validation['fixed_seconds']:.1f} s fixed, a year {_year_hours(validation):.2f} h on one "
        "core (its pieces are blocks of 32 days: eight days make one, so no two-worker figure). "
        "These are the per-unit costs `avhrrsm.requests.COSTS` gives the two rules. Inputs: the "
        f"stack job's global stack of {measured['stack_job']['days']} days "
        f"({measured['stack_job']['seconds']:.1f} s on two workers) and inference tiles in the "
        "tile job's layout.",
        "",
    ]
    return lines


def _year_hours(figures: Mapping[str, Any]) -> float:
    return (figures["seconds_per_day"] * 365 + figures["fixed_seconds"]) / 3600
