"""The global 40-year inference on one H100, projected from this machine's measurements."""

from __future__ import annotations

from typing import Any

from avhrrsm.ops.bench.timing import best_of

# Assumptions of the projection (stated in RESULTS.md).
GLOBAL_LAND_PIXELS = 9.0e6  # land pixels of the 0.05 degree grid (about 9 million)


GLOBAL_DAYS = 14610  # 1982-01-01 .. 2021-12-31


H100 = {
    "name": "NVIDIA H100 SXM5",
    "bf16_dense_tflops": 989.0,  # datasheet peak, dense tensor cores (inference runs in bf16)
    "gemm_fraction_of_peak": 0.7,  # what large dense GEMMs reach on it
    "host_cores": 16,  # CPU cores beside each GPU that read, normalise and write tiles
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


def cpu_gemm_flops(threads: int = 2, size: int = 2048) -> float:
    """FLOP/s of a large float32 matrix product on this CPU: the attainable reference."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2 * size**3 / best_of(lambda: torch.mm(a, b), repeat=5)


def gpu_projection(inference: dict[str, Any], threads: int = 2) -> dict[str, Any]:
    """The global 40-year inference on one H100, projected from this machine's measurements.

    Model part: each model reaches on the CPU a fraction of what a large GEMM reaches there;
    assume the same fraction of the H100's attainable bf16 GEMM throughput. Host part: the tile
    job's time outside the forward pass (read, normalise, flag, write) per pixel-day and core,
    spread over the GPU node's host cores. The two run overlapped; the slower one sets the pace.
    """
    from avhrrsm.config import validate_config

    config = validate_config({})
    length = int(config["models"]["sequence_length"])
    gemm = cpu_gemm_flops(threads)
    gpu_gemm = H100["bf16_dense_tflops"] * 1e12 * H100["gemm_fraction_of_peak"]
    total = GLOBAL_LAND_PIXELS * GLOBAL_DAYS
    results: dict[str, Any] = {
        "assumptions": {
            **H100,
            "global_land_pixels": GLOBAL_LAND_PIXELS,
            "days": GLOBAL_DAYS,
            "pixel_days": total,
            "cpu_threads": threads,
        },
        "cpu_gemm_gflops": gemm / 1e9,
    }
    for name, measured in inference.items():
        if not isinstance(measured, dict) or "model_only_pixel_days_per_s" not in measured:
            continue
        flops = model_flops_per_pixel_day(name, config["models"][name], length)
        cpu_rate = max(measured["model_only_pixel_days_per_s"].values())
        efficiency = cpu_rate * flops / gemm
        gpu_rate = efficiency * gpu_gemm / flops
        host_core_seconds = (
            (measured["seconds"] - measured["forward_seconds"]) * threads / measured["pixel_days"]
        )
        host_rate = H100["host_cores"] / host_core_seconds
        rate = min(gpu_rate, host_rate)
        results[name] = {
            "flops_per_pixel_day": flops,
            "cpu_model_only_pixel_days_per_s": cpu_rate,
            "cpu_fraction_of_gemm": efficiency,
            "gpu_model_pixel_days_per_s": gpu_rate,
            "host_core_seconds_per_pixel_day": host_core_seconds,
            "host_pixel_days_per_s": host_rate,
            "bound": "GPU" if gpu_rate < host_rate else "host (read/normalise/write)",
            "projected_hours": total / rate / 3600,
            "projected_hours_gpu_only": total / gpu_rate / 3600,
            "cpu_hours_this_machine": total / measured["tile_job_pixel_days_per_s"] / 3600,
        }
    return results
