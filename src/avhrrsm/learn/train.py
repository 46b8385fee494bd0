"""Training of the deep models: seeded, deterministic, resumable, early-stopped.

A training run lives in one folder::

    model.pt          the best epoch's weights + everything needed to use them (no pickle:
                      plain tensors, numbers and strings, loaded with weights_only=True)
    metrics.csv       train and validation loss (normalised MSE) and validation RMSE per epoch
    run.json          the resolved settings, seed, device, sample set, result and provenance
    scaler.json       the normalisation statistics (fitted on the training split)
    checkpoints/      epoch_NNN.pt after every epoch (model, optimizer, scheduler, early-stopping
                      state, history): a killed job resumes from the last one

Determinism: the model is initialised from the seed; every epoch's shuffle and dropout draw
from a generator seeded by (seed, epoch), so an epoch replays identically after a resume; on
CUDA, cuDNN runs deterministic and without autotuning. On the CPU, the same seed and thread
count give identical weights.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.config import config_hash
from avhrrsm.device import (
    autocast_dtype,
    describe_device,
    make_deterministic,
    select_device,
    set_threads,
)
from avhrrsm.io.errors import InputError
from avhrrsm.learn.features import SampleArrays, Scaler, load_scaler, load_training_splits
from avhrrsm.learn.models import SequenceRegressor, build_model, masked_mse

LOGGER = logging.getLogger(__name__)
MODEL_FORMAT = "avhrrsm-model-1"
CHECKPOINT_FORMAT = "avhrrsm-checkpoint-1"
EVAL_BATCH = 8192
StepHook = Callable[[int, int], None]


def sample_set_id(samples_path: str | Path) -> str:
    """A content hash of a merged sample set (its manifest and scaler attributes)."""
    with xr.open_zarr(samples_path) as samples:
        attrs = {key: samples.attrs.get(key, "") for key in ("manifest", "scaler")}
    return hashlib.sha256(json.dumps(attrs, sort_keys=True).encode()).hexdigest()


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def _save(obj: Mapping[str, Any], path: Path) -> None:
    """torch.save to a temporary name, renamed into place when complete."""
    buffer = io.BytesIO()
    torch.save(dict(obj), buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _to_cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu").clone() for key, value in state.items()}


def _tensors(
    arrays: SampleArrays, scaler: Scaler, device: torch.device
) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(scaler.dynamic(arrays.dynamic, arrays.fill_flag)).to(device),
        torch.from_numpy(scaler.static(arrays.static)).to(device),
        torch.from_numpy(scaler.target(arrays.target)).to(device),
    )


@torch.no_grad()
def predict_normalised(
    model: SequenceRegressor,
    dynamic: torch.Tensor,
    static: torch.Tensor,
    batch_size: int = EVAL_BATCH,
) -> torch.Tensor:
    model.eval()
    dtype = autocast_dtype(dynamic.device)
    out = []
    for start in range(0, dynamic.shape[0], batch_size):
        with torch.autocast(dynamic.device.type, dtype=dtype, enabled=dtype is not None):
            out.append(
                model(
                    dynamic[start : start + batch_size], static[start : start + batch_size]
                ).float()
            )
    return torch.cat(out) if out else torch.empty(0, device=dynamic.device)


def _latest_checkpoint(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The newest readable checkpoint of this run's fingerprint, or None."""
    for path in sorted(folder.glob("epoch_*.pt"), reverse=True):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged file: fall back to the one before  # noqa: BLE001
            LOGGER.warning("checkpoint %s cannot be read (%s); trying the previous one", path, err)
            continue
        if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
            LOGGER.warning(
                "checkpoints in %s come from other settings or samples; training from scratch",
                folder,
            )
            return None
        return state
    return None


@dataclass
class TrainingRun:
    """One training run in progress: its device, data (on the device), model and optimiser,
    and the early-stopping state a checkpoint holds."""

    model_name: str
    settings: dict[str, Any]
    training: dict[str, Any]
    fingerprint: str
    checkpoints: Path
    device: torch.device
    dtype: torch.dtype | None
    threads: int
    scaler: Scaler
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    model: SequenceRegressor
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    grad_scaler: torch.amp.GradScaler
    state: dict[str, Any]
    timing: dict[str, float] = field(
        default_factory=lambda: {"loop_seconds": 0.0, "data_seconds": 0.0, "samples": 0}
    )


def train_deep_model(
    samples_path: str | Path,
    run_dir: str | Path,
    model_name: str,
    hyperparameters: Mapping[str, Any],
    sequence_length: int,
    training: Mapping[str, Any],
    seed: int,
    threads: int = 0,
    global_attrs: Mapping[str, str] | None = None,
    step_hook: StepHook | None = None,
    measure_data_wait: bool = False,
) -> dict[str, Any]:
    """Train ``model_name`` on the sample set; write the run folder; return the run summary.

    ``step_hook(epoch, step)`` is called before every training step (tests use it to
    interrupt a run mid-epoch). The returned summary (not run.json, whose bytes must not
    depend on the clock) also holds ``timing``: training-loop seconds, samples per second and
    the fraction of each step spent assembling the batch (``measure_data_wait`` synchronises a
    GPU around it, so that the split is exact there too).
    """
    run_dir = Path(run_dir)
    run = _set_up(
        samples_path, run_dir / "checkpoints", model_name, hyperparameters, sequence_length,
        training, seed, threads,
    )  # fmt: skip
    resumed_from = _resume(run) if training["resume"] else None
    if resumed_from is None:
        for old in run.checkpoints.glob("epoch_*.pt"):
            old.unlink()
    LOGGER.info(
        "training %s (L=%d, %d parameters) on %s: %d train, %d validation samples",
        model_name, sequence_length, sum(p.numel() for p in run.model.parameters()),
        describe_device(run.device), run.train[0].shape[0], run.validation[0].shape[0],
    )  # fmt: skip
    patience = int(training["patience"])
    while run.state["epoch"] < int(training["epochs"]):
        if run.state["epochs_without_improvement"] >= patience:
            break
        started = time.monotonic()
        epoch = run.state["epoch"] + 1
        train_loss = _one_epoch(run, epoch, step_hook, measure_data_wait)
        improved = _end_epoch(run, epoch, train_loss)
        _checkpoint(run, epoch, global_attrs)
        last = run.state["history"][-1]
        LOGGER.info(
            "%s epoch %d: train %.4f, validation %.4f (RMSE %.4f m3 m-3)%s, %.1f s",
            model_name, epoch, last["train_loss"], last["validation_loss"],
            last["validation_rmse_m3m3"], " *" if improved else "", time.monotonic() - started,
        )  # fmt: skip
    stopped_early = run.state["epochs_without_improvement"] >= patience
    summary = _save_run(
        run, run_dir, samples_path, global_attrs,
        {"stopped_early": stopped_early, "resumed_after_epoch": resumed_from},
    )  # fmt: skip
    loop = max(run.timing["loop_seconds"], 1e-9)
    summary["timing"] = {
        **run.timing,
        "samples_per_second": run.timing["samples"] / loop,
        "data_wait_fraction": run.timing["data_seconds"] / loop,
    }
    LOGGER.info(
        "%s: %.0f samples/s in training steps, %.1f%% of each step assembling the batch",
        model_name,
        summary["timing"]["samples_per_second"],
        100 * summary["timing"]["data_wait_fraction"],
    )
    return summary


def _set_up(
    samples_path: str | Path,
    checkpoints: Path,
    model_name: str,
    hyperparameters: Mapping[str, Any],
    sequence_length: int,
    training: Mapping[str, Any],
    seed: int,
    threads: int,
) -> TrainingRun:
    """The device (deterministic), the splits as tensors on it, the model initialised from
    the seed, its optimiser and scheduler, and a fresh early-stopping state."""
    checkpoints.mkdir(parents=True, exist_ok=True)
    device = select_device(str(training["device"]))
    threads_used = set_threads(threads)
    make_deterministic(device)
    dtype = autocast_dtype(device)
    scaler = load_scaler(samples_path)
    train, validation = load_training_splits(samples_path, sequence_length)
    settings = {
        "model": model_name,
        "hyperparameters": dict(hyperparameters),
        "sequence_length": sequence_length,
        "training": {k: v for k, v in training.items() if k not in ("resume", "device")},
        "seed": seed,
        "samples": sample_set_id(samples_path),
    }
    train_tensors = _tensors(train, scaler, device)
    validation_tensors = _tensors(validation, scaler, device)
    torch.manual_seed(seed)
    model = build_model(
        model_name, train_tensors[0].shape[-1], train_tensors[1].shape[-1], hyperparameters
    ).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=batch_learning_rate(training),
        weight_decay=float(training["weight_decay"]),
    )
    return TrainingRun(
        model_name,
        settings,
        dict(training),
        config_hash(settings),
        checkpoints,
        device,
        dtype,
        threads_used,
        scaler,
        train_tensors,
        validation_tensors,
        model,
        optimizer,
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2),
        torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
        {
            "epoch": 0,
            "best_val_loss": float("inf"),
            "best_epoch": 0,
            "epochs_without_improvement": 0,
            "best_model_state": _to_cpu(model.state_dict()),
            "history": [],
        },
    )


def _resume(run: TrainingRun) -> int | None:
    """Model, optimiser, scheduler and state from the run's last checkpoint of the same
    settings and samples; the epoch it ended, or None (nothing to resume from)."""
    checkpoint = _latest_checkpoint(run.checkpoints, run.fingerprint)
    if checkpoint is None:
        return None
    run.model.load_state_dict(checkpoint["model_state"])
    run.optimizer.load_state_dict(checkpoint["optimizer_state"])
    run.scheduler.load_state_dict(checkpoint["scheduler_state"])
    run.state = {key: checkpoint[key] for key in run.state}
    LOGGER.info("resuming %s after epoch %d", run.model_name, int(checkpoint["epoch"]))
    return int(checkpoint["epoch"])


def _one_epoch(
    run: TrainingRun, epoch: int, step_hook: StepHook | None, measure_data_wait: bool
) -> float:
    """One pass over the training split in the epoch's seeded order; the mean loss."""
    batch_size, seed = int(run.settings["training"]["batch_size"]), int(run.settings["seed"])
    train_x, train_s, train_y = run.train
    model, device, dtype = run.model, run.device, run.dtype
    model.train()
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    torch.manual_seed(epoch_seed(seed, epoch))  # dropout
    order = torch.randperm(train_x.shape[0], generator=generator).to(device)
    # summed on the device (float64, as a Python float would): no host sync per step
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    loss_count = 0
    for step, start in enumerate(range(0, train_x.shape[0], batch_size)):
        if step_hook is not None:
            step_hook(epoch, step)
        step_start = time.perf_counter()
        index = order[start : start + batch_size]
        batch_x, batch_s, batch_y = train_x[index], train_s[index], train_y[index]
        if measure_data_wait:
            _synchronise(device)
        data_done = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            prediction = model(batch_x, batch_s)
        loss = masked_mse(prediction.float(), batch_y)
        run.optimizer.zero_grad(set_to_none=True)
        run.grad_scaler.scale(loss).backward()
        run.grad_scaler.step(run.optimizer)
        run.grad_scaler.update()
        loss_sum += loss.detach().double() * index.numel()
        loss_count += index.numel()
        run.timing["data_seconds"] += data_done - step_start
        run.timing["loop_seconds"] += time.perf_counter() - step_start
        run.timing["samples"] += index.numel()
    return float(loss_sum) / max(loss_count, 1)


def _end_epoch(run: TrainingRun, epoch: int, train_loss: float) -> bool:
    """The validation loss, the scheduler's step, the best epoch kept and the history row;
    whether the epoch improved on the best."""
    val_x, val_s, val_y = run.validation
    val_loss = float(masked_mse(predict_normalised(run.model, val_x, val_s), val_y))
    run.scheduler.step(val_loss)
    state = run.state
    improved = val_loss < state["best_val_loss"]
    if improved:
        state["best_val_loss"] = val_loss
        state["best_epoch"] = epoch
        state["best_model_state"] = _to_cpu(run.model.state_dict())
        state["epochs_without_improvement"] = 0
    else:
        state["epochs_without_improvement"] += 1
    state["history"].append(
        {
            "epoch": epoch,
            "train_loss": train_loss,
            "validation_loss": val_loss,
            "validation_rmse_m3m3": float(np.sqrt(val_loss) * run.scaler.target_std),
            "learning_rate": float(run.optimizer.param_groups[0]["lr"]),
        }
    )
    state["epoch"] = epoch
    return improved


def _checkpoint(run: TrainingRun, epoch: int, global_attrs: Mapping[str, str] | None) -> None:
    """``checkpoints/epoch_NNN.pt``: what a killed job resumes from."""
    _save(
        {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": run.fingerprint,
            "model_state": _to_cpu(run.model.state_dict()),
            "optimizer_state": run.optimizer.state_dict(),
            "scheduler_state": run.scheduler.state_dict(),
            "provenance": dict(global_attrs or {}),
            **run.state,
        },
        run.checkpoints / f"epoch_{epoch:03d}.pt",
    )


def _save_run(
    run: TrainingRun,
    run_dir: Path,
    samples_path: str | Path,
    global_attrs: Mapping[str, str] | None,
    outcome: Mapping[str, Any],
) -> dict[str, Any]:
    """The run folder's model.pt (the best epoch), metrics.csv, scaler.json and run.json;
    the run summary (its ``training``: the whole training settings, resume and device too)."""
    state = run.state
    write_model_file(
        run_dir / "model.pt",
        run.model_name,
        run.settings["hyperparameters"],
        run.settings["sequence_length"],
        state["best_model_state"],
        run.scaler,
        {
            "fingerprint": run.fingerprint,
            "best_epoch": state["best_epoch"],
            "provenance": dict(global_attrs or {}),
        },
    )
    _write_history(run_dir / "metrics.csv", state["history"])
    write_text_atomic(
        run_dir / "scaler.json", json.dumps(run.scaler.to_dict(), indent=2, sort_keys=True) + "\n"
    )
    summary = {
        **run.settings,
        "training": run.training,
        "fingerprint": run.fingerprint,
        "device": describe_device(run.device),
        "threads": run.threads,
        "mixed_precision": str(run.dtype).replace("torch.", "") if run.dtype else "none",
        "samples_path": str(samples_path),
        "n_train": int(run.train[0].shape[0]),
        "n_validation": int(run.validation[0].shape[0]),
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        **outcome,
        "best_validation_rmse_m3m3": float(np.sqrt(state["best_val_loss"]) * run.scaler.target_std),
        "provenance": dict(global_attrs or {}),
    }
    write_text_atomic(
        run_dir / "run.json", json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
    )
    return summary


def batch_learning_rate(training: Mapping[str, Any]) -> float:
    """The optimiser's learning rate: ``training.learning_rate`` holds for batches of
    ``training.reference_batch_size`` (absent: the batch size itself); another batch size
    scales it by the square root of the ratio (the rule for Adam, whose steps do not grow
    with the gradient: large GPU batches keep the noise scale of the reference run)."""
    batch = int(training["batch_size"])
    reference = int(training.get("reference_batch_size") or batch)
    return float(training["learning_rate"]) * math.sqrt(batch / reference)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _write_history(path: Path, history: list[Mapping[str, float]]) -> None:
    fields = ["epoch", "train_loss", "validation_loss", "validation_rmse_m3m3", "learning_rate"]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({key: repr(row[key]) if key != "epoch" else row[key] for key in fields})


def write_model_file(
    path: str | Path,
    model_name: str,
    hyperparameters: Mapping[str, Any],
    sequence_length: int,
    state_dict: Mapping[str, torch.Tensor],
    scaler: Scaler,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """A model file: weights, architecture, L and scaler; tensors, numbers and strings only."""
    _save(
        {
            "format": MODEL_FORMAT,
            "model_name": model_name,
            "hyperparameters": dict(hyperparameters),
            "sequence_length": sequence_length,
            "n_dynamic": scaler.n_model_dynamic,
            "n_static": len(scaler.static_features),
            "state_dict": _to_cpu(state_dict),
            "scaler": json.dumps(scaler.to_dict(), sort_keys=True),
            **dict(extra or {}),
        },
        Path(path),
    )


def load_deep_model(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[SequenceRegressor, dict[str, Any], Scaler]:
    """A trained model (in eval mode), its metadata and its scaler, from ``model.pt``."""
    try:
        stored = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise InputError(
            path, f"cannot be read as a model file ({err})", "retrain the model"
        ) from err
    if not isinstance(stored, dict) or stored.get("format") != MODEL_FORMAT:
        raise InputError(
            path, "is not an avhrrsm model file", "give a model.pt from rule train_deep"
        )
    model = build_model(
        stored["model_name"], stored["n_dynamic"], stored["n_static"], stored["hyperparameters"]
    )
    model.load_state_dict(stored["state_dict"])
    model.to(device).eval()
    meta = {key: value for key, value in stored.items() if key != "state_dict"}
    return model, meta, Scaler.from_dict(json.loads(stored["scaler"]))
