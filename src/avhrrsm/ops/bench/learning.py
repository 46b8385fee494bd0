"""Benchmarks of the models: inference (model-only against the whole tile job) and training
throughput."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from avhrrsm.ops.bench.fixtures import (
    build_bench_sample_set,
    inference_scaler,
    write_inference_inputs,
)
from avhrrsm.ops.bench.timing import best_of, run_job


def bench_inference(
    work: Path,
    models: tuple[str, ...] = ("lstm", "bilstm", "atlstm", "transformer"),
    n_days: int = 365,
    batch_sizes: tuple[int, ...] = (1024, 4096, 16384, 65536),
    threads: int = 2,
) -> dict[str, Any]:
    """Model-only forward throughput (batch sizes swept) against the whole tile job (read,
    prepare, predict, write) on a 200 x 200 pixel tile, per deep model (default sizes); the
    host-only rate (the tile job with a null model) at 1 and ``threads`` threads; each model
    through ``torch.compile`` against its eager self (:func:`_compiled_against_eager`); on a CUDA
    device, the 40-year global inference projected from the measured tile-job rates."""
    import torch

    from avhrrsm.config import validate_config
    from avhrrsm.infer import auto_batch_size
    from avhrrsm.learn.models import build_model
    from avhrrsm.learn.predictor import load_predictor
    from avhrrsm.learn.train import write_model_file
    from avhrrsm.variables import STATIC_FEATURES

    region, tile_id = write_inference_inputs(work, n_days)
    error_model_path = write_bench_error_model(work / "uncertainty.json")
    config = validate_config({})
    length = int(config["models"]["sequence_length"])
    rng = np.random.default_rng(1)
    scaler = inference_scaler(work, length)
    results: dict[str, Any] = {"tile_pixels": 200 * 200, "days": n_days, "threads": threads}
    for name in models:
        torch.manual_seed(0)
        model = build_model(
            name, scaler.n_model_dynamic, len(STATIC_FEATURES), config["models"][name]
        )
        path = work / f"{name}.pt"
        write_model_file(path, name, config["models"][name], length, model.state_dict(), scaler)
        predictor = load_predictor(path, "auto", threads)
        used_batch = auto_batch_size(0, predictor.device)
        sweep, at_job_batch = {}, None
        for batch in batch_sizes:
            # distinct batches of ready inputs (2**20 pixel-days, beyond the caches), as in a job
            count = max(4, 2**20 // batch)
            xs = rng.standard_normal((count, batch, length, scaler.n_model_dynamic), np.float32)
            ss = rng.standard_normal((count, batch, len(STATIC_FEATURES)), np.float32)
            predictor(xs[0], ss[0])  # warm-up
            sweep[str(batch)] = count * batch / _best_forward_seconds(predictor, xs, ss)
            if batch == used_batch:
                at_job_batch = (xs, ss)
        # the fastest of two runs, as the model-only figure is the fastest of two
        tile = min(
            (
                run_job(
                    "inference", str(work), tile_id, str(path), json.dumps(region), str(threads)
                )
                for _ in range(2)
            ),
            key=lambda run: run["seconds"],
        )
        tile_rate = tile["pixel_days"] / tile["seconds"]
        results[name] = {
            "device": predictor.device.type,
            "device_name": tile["device"],
            "model_only_pixel_days_per_s": sweep,
            "tile_job_pixel_days_per_s": tile_rate,
            "tile_job_batch_size": used_batch,
            "flops_per_pixel_day": (
                flops := model_flops_per_pixel_day(name, config["models"][name], length)
            ),
            "model_only_gflops": flops * max(sweep.values()) / 1e9,
            "ratio_vs_model_only_same_batch": tile_rate / sweep[str(used_batch)],
            "ratio_vs_model_only_best_batch": tile_rate / max(sweep.values()),
            **{k: v for k, v in tile.items() if k != "device"},
        }
        results[name]["uncertainty"] = _uncertainty_cost(
            (str(work), tile_id, str(path), json.dumps(region)), threads, error_model_path, tile
        )
        if at_job_batch is not None:
            results[name]["compiled"] = _compiled_against_eager(
                path, predictor, at_job_batch, (str(work), tile_id, json.dumps(region)), threads
            )
        shutil.rmtree(work / "tile_out_0.zarr", ignore_errors=True)
    results["host_only"] = _host_only(work, tile_id, work / f"{models[0]}.pt", region, threads)
    results["global_projection"] = global_projection(results)
    return results


def _compiled_against_eager(
    model_path: Path,
    eager: Any,
    inputs: tuple[np.ndarray, np.ndarray],
    job: tuple[str, str, str],
    threads: int,
) -> dict[str, Any]:
    """The model through ``torch.compile`` against the eager one (config ``inference.compile``):
    its compile time (the first batch), its model-only rate on the same distinct batches
    (``inputs``: the job's batch size) and its largest difference from the eager outputs
    (m3 m-3), and one tile job with the model compiled in the job (compile time included, as
    every job pays it); ``job``: the work folder, tile and region of the eager tile jobs."""
    from avhrrsm.learn.predictor import load_predictor

    xs, ss = inputs
    compiled = load_predictor(model_path, "auto", threads, compile_model=True)
    started = time.perf_counter()
    first = compiled(xs[0], ss[0])
    compile_seconds = time.perf_counter() - started
    work, tile_id, region = job
    tile = run_job(
        "inference", work, tile_id, str(model_path), region, str(threads), "no", "0", "yes"
    )
    shutil.rmtree(Path(work) / "tile_out_0.zarr", ignore_errors=True)
    return {
        "compile_seconds": compile_seconds,
        "model_only_pixel_days_per_s": (
            xs.shape[0] * xs.shape[1] / _best_forward_seconds(compiled, xs, ss)
        ),
        "max_abs_diff": float(np.max(np.abs(first - eager(xs[0], ss[0])))),
        "tile_job_pixel_days_per_s": tile["pixel_days"] / tile["seconds"],
        "tile_job_seconds": tile["seconds"],
    }


def write_bench_error_model(path: Path) -> Path:
    """An error model of the default classes with a value of its own in every class (the
    lookup's cost does not depend on the values), written where the tile jobs read it."""
    from avhrrsm.config import validate_config
    from avhrrsm.learn.uncertainty import ErrorModel, class_shape, write_error_model

    edges = tuple(validate_config({})["uncertainty"]["wetness_edges_m3m3"])
    shape = class_shape(len(edges) + 1)
    sigma = np.linspace(0.01, 0.05, int(np.prod(shape))).reshape(shape)
    ones = np.ones(shape, np.int64)
    write_error_model(path, ErrorModel(edges, sigma, ones * 100, ones * 0, 0.0, 50), {})
    return path


def _uncertainty_cost(
    job: tuple[str, str, str, str],
    threads: int,
    error_model_path: Path,
    without: dict[str, Any],
) -> dict[str, Any]:
    """The tile job with the uncertainty (the error model's lookup on the device and the
    ``sm_uncertainty`` array written) against the same job without it (``without``, the
    fastest of two), the fastest of two each: the cost ratio of the whole job's rate."""
    work, tile_id, model_path, region = job
    runs = [
        run_job(
            "inference",
            work,
            tile_id,
            model_path,
            region,
            str(threads),
            "no",
            "0",
            "no",
            str(error_model_path),
        )  # fmt: skip
        for _ in range(2)
    ]
    shutil.rmtree(Path(work) / "tile_out_0.zarr", ignore_errors=True)
    best = min(runs, key=lambda run: run["seconds"])
    rate = best["pixel_days"] / best["seconds"]
    return {
        "tile_job_pixel_days_per_s": rate,
        "tile_job_seconds": best["seconds"],
        "cost_ratio": (without["pixel_days"] / without["seconds"]) / rate,
    }


def _best_forward_seconds(predictor: Any, xs: np.ndarray, ss: np.ndarray) -> float:
    """Seconds of the fastest of two passes of ``predictor`` over every batch of ``xs``
    (dynamic inputs) and ``ss`` (static ones), batch by batch as a tile job feeds it."""

    def forward_all() -> None:
        for x, s in zip(xs, ss, strict=True):
            predictor(x, s)

    return best_of(forward_all, repeat=2)


def _host_only(
    work: Path,
    tile_id: str,
    model_path: Path,
    region: dict[str, float],
    threads: int,
    repeat: int = 3,
) -> dict[str, Any]:
    """The tile job with a null model (read, prepare on the device, write) at 1 and
    ``threads`` threads, the fastest of ``repeat`` runs each (a job of a few seconds on a
    noisy machine): pixel-days per second (of the whole job, and of its read-prepare-write
    phase after the serial set-up), per core, and the scaling between the two; beside it the
    machine's own ceiling: ``threads`` independent one-thread jobs at once, each on a core of
    its own (what the cores give work that shares nothing but the memory and caches)."""
    arguments = (str(work), tile_id, str(model_path), json.dumps(region))
    rates: dict[str, Any] = {}
    for used in sorted({1, threads}):
        runs = [_null_jobs(arguments, 1, used)[0] for _ in range(repeat)]
        rates[str(used)] = _host_only_rates(min(runs, key=lambda run: run["seconds"]), used)
    one, many = rates["1"], rates[str(max(1, threads))]
    side_by_side = min(
        (_null_jobs(arguments, threads) for _ in range(repeat)),
        key=lambda runs: max(run["seconds"] for run in runs),
    )
    return {
        "threads": rates,
        "scaling": many["pixel_days_per_s"] / one["pixel_days_per_s"],
        "phase_scaling": many["phase_pixel_days_per_s"] / one["phase_pixel_days_per_s"],
        "independent_jobs": {
            "jobs": threads,
            "scaling": sum(run["pixel_days"] for run in side_by_side)
            / max(run["seconds"] for run in side_by_side)
            / one["pixel_days_per_s"],
            "phase_scaling": sum(run["pixel_days"] for run in side_by_side)
            / max(run["seconds"] - run["setup_seconds"] for run in side_by_side)
            / one["phase_pixel_days_per_s"],
        },
        "repeat": repeat,
        "device": one["device"],
    }


def _host_only_rates(job: dict[str, Any], threads: int) -> dict[str, Any]:
    rate = job["pixel_days"] / job["seconds"]
    phase = job["pixel_days"] / max(job["seconds"] - job["setup_seconds"], 1e-9)
    return {
        **job,
        "pixel_days_per_s": rate,
        "per_core": rate / threads,
        "phase_pixel_days_per_s": phase,
    }


def _null_jobs(arguments: tuple[str, ...], jobs: int, threads: int = 1) -> list[dict[str, Any]]:
    """``jobs`` null-model tile jobs of ``threads`` threads each, started together (one job:
    simply run), each on cores of its own; their outputs removed."""
    from concurrent.futures import ThreadPoolExecutor

    work = Path(arguments[0])
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(
            pool.map(
                lambda k: run_job("inference", *arguments, str(threads), "yes", str(k * threads)),
                range(jobs),
            )
        )
    for k in range(jobs):
        shutil.rmtree(work / f"tile_out_{k * threads}.zarr", ignore_errors=True)
    return runs


def inference_models(inference: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-model figures of the inference section (not its host-only or projection)."""
    return {
        name: r
        for name, r in inference.items()
        if isinstance(r, dict) and "tile_job_pixel_days_per_s" in r
    }


def global_projection(inference: dict[str, Any]) -> dict[str, Any]:
    """Hours of the 40-year global inference on the device the tile jobs ran on, from their
    measured rates; only where that device is a CUDA card (the CPU's figure is no GPU's)."""
    from avhrrsm.requests import GLOBAL_DAYS, GLOBAL_LAND_PIXELS

    measured = inference_models(inference)
    cards = {r.get("device_name", "") for r in measured.values() if r["device"] == "cuda"}
    if not cards:
        return {"not_measured": "no CUDA device where this benchmark ran"}
    pixel_days = GLOBAL_LAND_PIXELS * GLOBAL_DAYS
    return {
        "card": sorted(cards)[0],
        "pixel_days": pixel_days,
        **{
            name: pixel_days / r["tile_job_pixel_days_per_s"] / 3600
            for name, r in measured.items()
            if r["device"] == "cuda"
        },
    }


def model_flops_per_pixel_day(name: str, hyperparameters: dict[str, Any], length: int) -> float:
    """Multiply-add FLOPs (x2) of one forward pass per pixel-day: matmuls counted by torch's
    FlopCounterMode, plus the LSTM recurrences (which it does not see) counted analytically.
    Element-wise work (activations, norms, softmax) is left out."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from avhrrsm.learn.models import build_model
    from avhrrsm.variables import DYNAMIC_FEATURES, FILL_INDICATORS, STATIC_FEATURES

    n_dynamic = len(DYNAMIC_FEATURES) + len(FILL_INDICATORS)  # inputs, then fill indicators
    model = build_model(name, n_dynamic, len(STATIC_FEATURES), hyperparameters)
    # training mode: in eval mode the Transformer takes PyTorch's fused encoder "fast path",
    # whose matmuls the counter does not see (same arithmetic either way)
    model.train()
    batch = 256
    x = torch.zeros(batch, length, n_dynamic)
    s = torch.zeros(batch, len(STATIC_FEATURES))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, s)
    flops = counter.get_total_flops() / batch
    for module in model.modules():
        if isinstance(module, torch.nn.LSTM):
            hidden, directions = module.hidden_size, 2 if module.bidirectional else 1
            for layer in range(module.num_layers):
                inputs = module.input_size if layer == 0 else hidden * directions
                flops += directions * length * 2 * 4 * hidden * (inputs + hidden)
    return float(flops)


def bench_training(
    work: Path,
    models: tuple[str, ...] = ("lstm", "bilstm", "atlstm", "transformer"),
    epochs: int = 2,
    threads: int = 2,
) -> dict[str, Any]:
    """Training throughput (samples per second in training steps) and the fraction of a step
    spent assembling the batch, per deep model at the default sizes and batch size."""
    from avhrrsm.learn.train import train_deep_model

    samples, config = build_bench_sample_set(work / "training")
    training = {**config["training"], "epochs": epochs, "patience": epochs + 1, "resume": False}
    results: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": training["batch_size"],
        "threads": threads,
    }
    for name in models:
        summary = train_deep_model(
            samples_path=samples,
            run_dir=work / "training" / name,
            model_name=name,
            hyperparameters=config["models"][name],
            sequence_length=int(config["models"]["sequence_length"]),
            training=training,
            seed=int(config["seed"]),
            threads=threads,
            measure_data_wait=True,
        )
        results[name] = {
            "device": summary["device"],
            "train_samples": summary["n_train"],
            **summary["timing"],
        }
    return results
