"""The XGBoost benchmark: gradient-boosted trees on the flattened sequence plus static layers.

It reads the same sample set as the deep models (same splits, same last ``L`` lags), in
physical units (trees need no normalisation). Trees use the ``hist`` method on the device of
:func:`avhrrsm.device.select_device` (``cuda`` when a GPU is present); the model is saved in
XGBoost's own UBJSON format (``model.ubj``), never pickled.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.device import select_device
from avhrrsm.io.errors import InputError
from avhrrsm.learn.features import SampleArrays, fill_indicator_channels, load_training_splits
from avhrrsm.learn.train import sample_set_id
from avhrrsm.variables import DYNAMIC_FEATURES, FILL_INDICATORS, STATIC_FEATURES

LOGGER = logging.getLogger(__name__)


def feature_names(sequence_length: int, indicators: Sequence[str] = ()) -> list[str]:
    """Names of the flattened features: at each lag (oldest first) every dynamic input, then
    the fill indicators; then the static layers."""
    channels = [*DYNAMIC_FEATURES, *(f"{name}_filled" for name in indicators)]
    lagged = [f"{name}_d{days}" for days in range(sequence_length - 1, -1, -1) for name in channels]
    return lagged + list(STATIC_FEATURES)


def channels(dynamic: np.ndarray, fill_flags: np.ndarray, indicators: Sequence[str]) -> np.ndarray:
    """``(n, L, F + K)``: the dynamic inputs (physical units: trees need no normalisation),
    then the fill indicators."""
    if not indicators:
        return dynamic.astype(np.float32, copy=False)
    return np.concatenate(
        [dynamic, fill_indicator_channels(fill_flags, DYNAMIC_FEATURES, indicators)], axis=-1
    ).astype(np.float32, copy=False)


def flatten(dynamic_channels: np.ndarray, static: np.ndarray) -> np.ndarray:
    """(n, L, C) dynamic channels + (n, S) static -> (n, L*C + S), in the order of
    :func:`feature_names`."""
    n = len(static)
    return np.concatenate([dynamic_channels.reshape(n, -1), static], axis=1).astype(np.float32)


def _matrix(arrays: SampleArrays, sequence_length: int, indicators: Sequence[str]) -> xgb.DMatrix:
    keep = np.isfinite(arrays.target)
    return xgb.DMatrix(
        flatten(channels(arrays.dynamic, arrays.fill_flag, indicators), arrays.static)[keep],
        label=arrays.target[keep],
        feature_names=feature_names(sequence_length, indicators),
    )


def train_xgboost(
    samples_path: str | Path,
    run_dir: str | Path,
    hyperparameters: Mapping[str, Any],
    sequence_length: int,
    device: str,
    seed: int,
    threads: int = 0,
    global_attrs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Train the benchmark with early stopping on the validation split; write the run folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch_device = select_device(device)
    train, validation = load_training_splits(samples_path, sequence_length)
    skipped = int((~np.isfinite(train.target)).sum() + (~np.isfinite(validation.target)).sum())
    if skipped:
        LOGGER.warning("%d samples without a target skipped", skipped)
    hyper = dict(hyperparameters)
    params = {
        "objective": "reg:squarederror",
        "eval_metric": "rmse",
        "tree_method": "hist",
        "device": torch_device.type,
        "max_depth": int(hyper["max_depth"]),
        "eta": float(hyper["learning_rate"]),
        "subsample": float(hyper["subsample"]),
        "colsample_bytree": float(hyper["colsample_bytree"]),
        "min_child_weight": float(hyper["min_child_weight"]),
        "seed": int(seed % 2**31),
        "nthread": int(threads) if threads > 0 else 0,
    }
    dtrain = _matrix(train, sequence_length, FILL_INDICATORS)
    dvalidation = _matrix(validation, sequence_length, FILL_INDICATORS)
    history: dict[str, dict[str, list[float]]] = {}
    LOGGER.info(
        "training xgboost (L=%d, %d features) on %s: %d train, %d validation samples",
        sequence_length,
        dtrain.num_col(),
        params["device"],
        dtrain.num_row(),
        dvalidation.num_row(),
    )
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=int(hyper["n_estimators"]),
        evals=[(dtrain, "train"), (dvalidation, "validation")],
        early_stopping_rounds=int(hyper["early_stopping_rounds"]),
        evals_result=history,
        verbose_eval=False,
    )
    # the booster's own attributes carry the provenance (UBJ has no other metadata)
    booster.set_attr(
        sequence_length=str(sequence_length),
        fill_indicators=json.dumps(list(FILL_INDICATORS)),
        **dict(global_attrs or {}),
    )
    with atomic_path(run_dir / "model.ubj") as tmp:
        booster.save_model(str(tmp.with_suffix(".ubj")))
        tmp.with_suffix(".ubj").rename(tmp)
    with atomic_path(run_dir / "metrics.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["round", "train_rmse_m3m3", "validation_rmse_m3m3"])
        for k, (a, b) in enumerate(
            zip(history["train"]["rmse"], history["validation"]["rmse"], strict=True), start=1
        ):
            writer.writerow([k, repr(float(a)), repr(float(b))])
    summary = {
        "model": "xgboost",
        "hyperparameters": hyper,
        "sequence_length": sequence_length,
        "fill_indicators": list(FILL_INDICATORS),
        "xgboost_params": params,
        "seed": seed,
        "samples": sample_set_id(samples_path),
        "samples_path": str(samples_path),
        "n_train": int(dtrain.num_row()),
        "n_validation": int(dvalidation.num_row()),
        "skipped_without_target": skipped,
        "rounds_run": len(history["validation"]["rmse"]),
        "best_iteration": int(booster.best_iteration),
        "best_validation_rmse_m3m3": float(history["validation"]["rmse"][booster.best_iteration]),
        "provenance": dict(global_attrs or {}),
    }
    write_text_atomic(
        run_dir / "run.json", json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
    )
    LOGGER.info(
        "xgboost: best iteration %d, validation RMSE %.4f m3 m-3",
        summary["best_iteration"],
        summary["best_validation_rmse_m3m3"],
    )
    return summary


def load_xgboost(path: str | Path) -> tuple[xgb.Booster, int, tuple[str, ...]]:
    """A trained booster, its sequence length and its fill indicators, from ``model.ubj``."""
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as err:
        raise InputError(path, f"cannot be read as an XGBoost model ({err})", "retrain it") from err
    length = booster.attr("sequence_length")
    if length is None:
        raise InputError(path, "has no sequence_length attribute", "use a model from train_xgboost")
    indicators = tuple(json.loads(booster.attr("fill_indicators") or "[]"))
    return booster, int(length), indicators


def predict_xgboost(
    booster: xgb.Booster, dynamic_channels: np.ndarray, static: np.ndarray
) -> np.ndarray:
    """Predictions (m3 m-3) with the trees up to the best iteration, from the dynamic channels
    of :func:`channels` and the static layers."""
    matrix = xgb.DMatrix(flatten(dynamic_channels, static), feature_names=booster.feature_names)
    best = int(booster.best_iteration) if booster.attr("best_iteration") is not None else None
    iterations = (0, best + 1) if best is not None else (0, 0)
    return booster.predict(matrix, iteration_range=iterations).astype(np.float32)
