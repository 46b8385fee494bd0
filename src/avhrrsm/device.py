"""Device selection for training and inference: CUDA when present (or asked for), else the CPU."""

from __future__ import annotations

import os
import platform

import torch


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def select_device(requested: str = "auto") -> torch.device:
    """``auto``: the first CUDA GPU when one is usable, else the CPU; ``cpu``/``cuda`` force one."""
    if requested not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {requested!r}; use auto, cpu or cuda")
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise DeviceError(
            "training.device is 'cuda' but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
            "set it to 'auto' or 'cpu', or run the job on a GPU node"
        )
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """A human-readable name of the device (GPU model, or CPU architecture and thread count)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}:{torch.get_num_threads()} threads"


def make_deterministic(device: torch.device) -> None:
    """Deterministic kernels: on CUDA, cuDNN deterministic and no autotuning (same seed, same bytes)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on GPU (bf16 where supported, else fp16); full precision on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def set_threads(threads: int) -> int:
    """Use ``threads`` CPU threads (the job's allocation); returns the number in use."""
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def device_provenance(requested: str = "auto") -> str:
    """The device a job with this setting computes on, for its provenance record.

    'cuda (GPU model)' or 'cpu (CPU model)'; the thread count is recorded separately.
    """
    from avhrrsm.provenance import cpu_description

    device = select_device(requested)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return cpu_description()
