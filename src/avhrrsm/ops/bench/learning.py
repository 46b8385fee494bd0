"""Benchmarks of the models: inference (model-only against the whole tile job) and training
throughput."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from avhrrsm.ops.bench.fixtures import build_bench_sample_set, write_inference_inputs
from avhrrsm.ops.bench.timing import best_of, run_job


def bench_inference(
    work: Path,
    models: tuple[str, ...] = ("lstm", "bilstm", "atlstm", "transformer"),
    n_days: int = 365,
    batch_sizes: tuple[int, ...] = (1024, 4096, 16384, 65536),
    threads: int = 2,
) -> dict[str, Any]:
    """Model-only forward throughput (batch sizes swept) against the whole tile job (read,
    normalise, predict, write) on a 200 x 200 pixel tile, per deep model (default sizes)."""
    import torch

    from avhrrsm.config import validate_config
    from avhrrsm.infer import auto_batch_size
    from avhrrsm.learn.features import Scaler
    from avhrrsm.learn.models import build_model
    from avhrrsm.learn.predictor import load_predictor
    from avhrrsm.learn.train import write_model_file
    from avhrrsm.variables import DYNAMIC_FEATURES, STATIC_FEATURES

    region, tile_id = write_inference_inputs(work, n_days)
    config = validate_config({})
    length = int(config["models"]["sequence_length"])
    rng = np.random.default_rng(1)
    scaler = Scaler.fit(
        rng.random((1000, length, len(DYNAMIC_FEATURES)), dtype=np.float32),
        rng.random((1000, len(STATIC_FEATURES)), dtype=np.float32),
        rng.random(1000, dtype=np.float32),
    )
    results: dict[str, Any] = {"tile_pixels": 200 * 200, "days": n_days, "threads": threads}
    for name in models:
        torch.manual_seed(0)
        model = build_model(
            name, scaler.n_model_dynamic, len(STATIC_FEATURES), config["models"][name]
        )
        path = work / f"{name}.pt"
        write_model_file(path, name, config["models"][name], length, model.state_dict(), scaler)
        predictor = load_predictor(path, "auto", threads)
        sweep = {}
        for batch in batch_sizes:
            # distinct batches of ready inputs (2**20 pixel-days, beyond the caches), as in a job
            count = max(4, 2**20 // batch)
            xs = rng.standard_normal((count, batch, length, scaler.n_model_dynamic), np.float32)
            ss = rng.standard_normal((count, batch, len(STATIC_FEATURES)), np.float32)
            predictor(xs[0], ss[0])  # warm-up

            def forward_all(xs=xs, ss=ss, predictor=predictor) -> None:
                for x, s in zip(xs, ss, strict=True):
                    predictor(x, s)

            sweep[str(batch)] = count * batch / best_of(forward_all, repeat=2)
        tile = run_job("inference", str(work), tile_id, str(path), json.dumps(region), str(threads))
        used_batch = auto_batch_size(0, predictor.device)
        tile_rate = tile["pixel_days"] / tile["seconds"]
        results[name] = {
            "device": predictor.device.type,
            "model_only_pixel_days_per_s": sweep,
            "tile_job_pixel_days_per_s": tile_rate,
            "tile_job_batch_size": used_batch,
            "ratio_vs_model_only_same_batch": tile_rate / sweep[str(used_batch)],
            "ratio_vs_model_only_best_batch": tile_rate / max(sweep.values()),
            **tile,
        }
        shutil.rmtree(work / "tile_out.zarr", ignore_errors=True)
    return results


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
