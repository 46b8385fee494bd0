"""A trained model as the comparison and the inference use it: the predictor protocol, the
deep-model and XGBoost predictors, and :func:`load_predictor` for a trained run's model file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from avhrrsm.device import autocast_dtype, select_device, set_threads
from avhrrsm.learn.boost import channels, load_xgboost, predict_xgboost
from avhrrsm.learn.features import Scaler
from avhrrsm.learn.train import load_deep_model


class Predictor(Protocol):
    """A trained model as inference uses it.

    ``prepare_dynamic``/``prepare_static`` turn physical inputs (and the inputs' stack fill
    flags, for the models that read fill indicators) into the model's inputs once per block
    (the deep models normalise; the trees take them as they are); ``__call__`` maps
    prepared sequences ``(n, L, F)`` and static layers ``(n, S)`` to soil moisture (m3 m-3).
    """

    sequence_length: int
    device: torch.device
    forward_seconds: float

    def prepare_dynamic(self, values: np.ndarray, fill_flags: np.ndarray) -> np.ndarray: ...

    def prepare_static(self, values: np.ndarray) -> np.ndarray: ...

    def __call__(self, dynamic: np.ndarray, static: np.ndarray) -> np.ndarray: ...


@dataclass
class DeepPredictor:
    """A trained PyTorch model with its scaler, on a device."""

    model: torch.nn.Module
    scaler: Scaler
    sequence_length: int
    device: torch.device
    forward_seconds: float = 0.0
    compiled: bool = False

    def prepare_dynamic(self, values: np.ndarray, fill_flags: np.ndarray) -> np.ndarray:
        return self.scaler.dynamic(values, fill_flags)

    def prepare_static(self, values: np.ndarray) -> np.ndarray:
        return self.scaler.static(values)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(values)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def _autocast(self) -> torch.autocast:
        """Mixed precision where the device has it (bf16/fp16 on a GPU), full on the CPU."""
        dtype = autocast_dtype(self.device)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    @torch.inference_mode()
    def __call__(self, dynamic: np.ndarray, static: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        x, s = self._tensor(dynamic), self._tensor(static)
        with self._autocast():
            out = self.model(x, s).float()
        result = out.cpu().numpy()
        self.forward_seconds += time.perf_counter() - started
        return self.scaler.target_back(result)

    @torch.inference_mode()
    def predict_windows(
        self,
        prepared: torch.Tensor,
        static: torch.Tensor,
        days_per_batch: int,
        pixels_per_batch: int,
    ) -> torch.Tensor:
        """Soil moisture ``(days, pixels)`` (m3 m-3, on the device) of a prepared series
        ``(L-1 + days, pixels, C)`` (:meth:`Scaler.dynamic_into`, contiguous) and prepared
        static layers ``(pixels, S)``, all already on the device: the sequence windows
        (``unfold``) and the static broadcast are views there; a batch of one day's pixels is a
        view the recurrent models read without a copy (its sequence-first form is a slice of
        the series), a batch of whole days is gathered into one contiguous copy; the batches
        of :func:`block_batches` are predicted back to back into one device buffer, with no
        wait for the device. Each batch holds the values :meth:`__call__` is given for it
        (days, then pixels), so the results are the same bits."""
        length = self.sequence_length
        n_days, n_pixels = prepared.shape[0] - (length - 1), prepared.shape[1]
        n_channels = prepared.shape[2]
        # (days, pixels, C, L) -> (days, pixels, L, C)
        windows = prepared.unfold(0, length, 1).permute(0, 1, 3, 2)
        out = torch.empty((n_days, n_pixels), dtype=torch.float32, device=static.device)
        with self._autocast():
            for days, pixels in block_batches(n_days, n_pixels, days_per_batch, pixels_per_batch):
                n_batch_days = days.stop - days.start
                x = windows[days, pixels].reshape(-1, length, n_channels)
                s = static[pixels].expand(n_batch_days, -1, -1).reshape(-1, static.shape[1])
                out[days, pixels] = self.model(x, s).float().reshape(n_batch_days, -1)
        return self.scaler.target_back_tensor(out)


def block_batches(
    n_days: int, n_pixels: int, days_per_batch: int, pixels_per_batch: int
) -> Iterator[tuple[slice, slice]]:
    """The batches of a block of ``n_days`` x ``n_pixels`` pixel-days, in order: whole days
    (``days_per_batch`` of them), or, where a day exceeds the batch, ``pixels_per_batch``
    pixels of one day."""
    for day0 in range(0, n_days, days_per_batch):
        days = slice(day0, min(n_days, day0 + days_per_batch))
        for pixel0 in range(0, n_pixels, pixels_per_batch):
            yield days, slice(pixel0, min(n_pixels, pixel0 + pixels_per_batch))


@dataclass
class BoostPredictor:
    """The XGBoost benchmark (``device`` of the booster from detection)."""

    booster: Any
    sequence_length: int
    device: torch.device
    fill_indicators: tuple[str, ...] = ()
    forward_seconds: float = 0.0

    def prepare_dynamic(self, values: np.ndarray, fill_flags: np.ndarray) -> np.ndarray:
        return channels(values, fill_flags, self.fill_indicators)

    def prepare_static(self, values: np.ndarray) -> np.ndarray:
        return values

    def __call__(self, dynamic: np.ndarray, static: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        out = predict_xgboost(self.booster, dynamic, static)
        self.forward_seconds += time.perf_counter() - started
        return out


def load_predictor(
    model_path: str | Path, device: str = "auto", threads: int = 0, compile_model: bool = False
) -> Predictor:
    """The predictor of a trained run (``model.pt`` or ``model.ubj``) on the selected device.

    ``compile_model``: a deep model runs through ``torch.compile`` (inductor, compiled at its
    first batch of each shape; config ``inference.compile``); the eager and the compiled model
    agree to float32 rounding (tests/test_inference.py). XGBoost ignores it."""
    chosen = select_device(device)
    set_threads(threads)
    model_path = Path(model_path)
    if model_path.suffix == ".ubj":
        booster, length, indicators = load_xgboost(model_path)
        booster.set_param({"device": chosen.type, "nthread": max(threads, 0)})
        return BoostPredictor(booster, length, chosen, indicators)
    model, meta, scaler = load_deep_model(model_path, chosen)
    if compile_model:
        model = torch.compile(model)
    return DeepPredictor(
        model, scaler, int(meta["sequence_length"]), chosen, compiled=compile_model
    )
