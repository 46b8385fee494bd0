"""The model-input contract: the normalisation (:class:`Scaler`, with the fill-indicator
channels and the training range), the sample arrays a model trains and is tested on, and their
loaders.

The scaler's arithmetic is written once, as tensor operations that run on whatever device holds
the inputs (inference prepares raw blocks on the GPU); the NumPy methods call the same
operations on the CPU, so training and inference normalise with the same bits."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from avhrrsm.io.chunks import check_range
from avhrrsm.io.errors import InputError, reading
from avhrrsm.variables import (
    DYNAMIC_FEATURES,
    FILL_INDICATORS,
    SPLITS,
    STATIC_FEATURES,
)


@dataclass(frozen=True)
class Scaler:
    """Normalisation statistics of the inputs and the target (from the training split only)."""

    dynamic_features: tuple[str, ...]
    static_features: tuple[str, ...]
    dynamic_mean: np.ndarray
    dynamic_std: np.ndarray
    static_mean: np.ndarray
    static_std: np.ndarray
    target_mean: float
    target_std: float
    # the training range of every input (inference flags values outside it)
    dynamic_min: np.ndarray
    dynamic_max: np.ndarray
    static_min: np.ndarray
    static_max: np.ndarray
    # inputs whose "gap-filled" indicator (fill flag > 0, as 0/1) follows the normalised dynamic
    # inputs as a model input channel; empty for models trained before the indicators existed
    fill_indicators: tuple[str, ...] = ()

    @property
    def n_model_dynamic(self) -> int:
        """Dynamic channels a model reads: the inputs, then their fill indicators."""
        return len(self.dynamic_features) + len(self.fill_indicators)

    @classmethod
    def fit(cls, dynamic: np.ndarray, static: np.ndarray, target: np.ndarray) -> Scaler:
        """Means and standard deviations (float64 sums; a constant feature gets std 1)."""
        if target.size == 0:
            raise ValueError("the training split is empty: no normalisation can be fitted")

        def std(values: np.ndarray, axis: tuple[int, ...] | int | None) -> np.ndarray:
            out = values.astype(np.float64).std(axis=axis)
            return np.where(out > 0, out, 1.0)

        return cls(
            dynamic_features=DYNAMIC_FEATURES,
            static_features=STATIC_FEATURES,
            dynamic_mean=dynamic.astype(np.float64).mean(axis=(0, 1)),
            dynamic_std=std(dynamic, (0, 1)),
            static_mean=static.astype(np.float64).mean(axis=0),
            static_std=std(static, 0),
            target_mean=float(target.astype(np.float64).mean()),
            target_std=float(std(target, None)),
            dynamic_min=dynamic.min(axis=(0, 1)).astype(np.float64),
            dynamic_max=dynamic.max(axis=(0, 1)).astype(np.float64),
            static_min=static.min(axis=0).astype(np.float64),
            static_max=static.max(axis=0).astype(np.float64),
            fill_indicators=FILL_INDICATORS,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dynamic_features": list(self.dynamic_features),
            "static_features": list(self.static_features),
            "dynamic_mean": [float(v) for v in self.dynamic_mean],
            "dynamic_std": [float(v) for v in self.dynamic_std],
            "static_mean": [float(v) for v in self.static_mean],
            "static_std": [float(v) for v in self.static_std],
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            **{
                name: [float(v) for v in getattr(self, name)]
                for name in ("dynamic_min", "dynamic_max", "static_min", "static_max")
            },
            "fill_indicators": list(self.fill_indicators),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Scaler:
        return cls(
            dynamic_features=tuple(values["dynamic_features"]),
            static_features=tuple(values["static_features"]),
            dynamic_mean=np.asarray(values["dynamic_mean"], np.float64),
            dynamic_std=np.asarray(values["dynamic_std"], np.float64),
            static_mean=np.asarray(values["static_mean"], np.float64),
            static_std=np.asarray(values["static_std"], np.float64),
            target_mean=float(values["target_mean"]),
            target_std=float(values["target_std"]),
            **{
                name: np.asarray(values[name], np.float64)
                for name in ("dynamic_min", "dynamic_max", "static_min", "static_max")
            },
            fill_indicators=tuple(values.get("fill_indicators", ())),
        )

    def dynamic(self, values: np.ndarray, fill_flags: np.ndarray | None = None) -> np.ndarray:
        """The model's dynamic inputs ``(..., n_model_dynamic)`` of NumPy inputs (see
        :meth:`dynamic_tensor`)."""
        flags = None if fill_flags is None else _host_tensor(fill_flags)
        return self.dynamic_tensor(_host_tensor(values), flags).numpy()

    def dynamic_tensor(
        self, values: torch.Tensor, fill_flags: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The model's dynamic inputs ``(..., n_model_dynamic)`` on the inputs' device (see
        :meth:`dynamic_into`), in a new tensor."""
        out = torch.empty(
            (*values.shape[:-1], self.n_model_dynamic), dtype=torch.float32, device=values.device
        )
        self.dynamic_into(values, fill_flags, out)
        return out

    def dynamic_into(
        self, values: torch.Tensor, fill_flags: torch.Tensor | None, out: torch.Tensor
    ) -> None:
        """The model's dynamic inputs of ``values`` ``(..., F)`` written into ``out``
        ``(..., n_model_dynamic)`` (any strides): the normalised inputs (float32 arithmetic), then, for models that read them, the fill indicators (1.0 where the
        input's stack fill flag, same shape as ``values``, is > 0)."""
        n_inputs = values.shape[-1]
        _normalise(values, self.dynamic_mean, self.dynamic_std, out[..., :n_inputs])
        if not self.fill_indicators:
            return
        if fill_flags is None or tuple(fill_flags.shape) != tuple(values.shape):
            raise ValueError(
                f"the model reads fill indicators of {list(self.fill_indicators)}: fill flags "
                f"of the inputs' shape {tuple(values.shape)} are needed"
            )
        index = [self.dynamic_features.index(name) for name in self.fill_indicators]
        if index != list(range(len(self.dynamic_features))):
            fill_flags = fill_flags[..., index]
        out[..., n_inputs:].copy_(fill_flags > 0)

    def static(self, values: np.ndarray) -> np.ndarray:
        return self.static_tensor(_host_tensor(values)).numpy()

    def static_tensor(self, values: torch.Tensor) -> torch.Tensor:
        return _normalise(values, self.static_mean, self.static_std)

    def outside_tensor(self, values: torch.Tensor, kind: str) -> torch.Tensor:
        """True where any feature (last axis) of float32 ``values`` lies outside the training
        range of the ``kind`` ('dynamic' or 'static') inputs; NaN is inside. The float64 range is
        rounded inwards to float32 bounds that give, for float32 values, exactly the float64
        comparison, so no float64 arithmetic runs on the device."""
        if values.dtype != torch.float32:
            raise TypeError(f"the range test takes float32 inputs, not {values.dtype}")
        lo, hi = float32_bounds(getattr(self, f"{kind}_min"), getattr(self, f"{kind}_max"))
        lo_t = torch.from_numpy(lo).to(values.device)
        hi_t = torch.from_numpy(hi).to(values.device)
        # amax: the same answer as any(), and fast over a strided last axis
        return ((values < lo_t) | (values > hi_t)).amax(dim=-1)

    def target(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.target_mean) / self.target_std).astype(np.float32)

    def target_back(self, values: np.ndarray) -> np.ndarray:
        """From the normalised scale back to m3 m-3."""
        return self.target_back_tensor(_host_tensor(values)).numpy()

    def target_back_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """From the normalised scale back to m3 m-3 (float32, on the values' device)."""
        return values.to(torch.float32) * self.target_std + self.target_mean


def float32_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 bounds ``(lo32, hi32)`` such that, for every float32 ``x``, ``x < lo32`` is
    ``x < lo`` and ``x > hi32`` is ``x > hi`` in float64: the smallest float32 >= ``lo`` and the
    largest float32 <= ``hi``."""
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    with np.errstate(over="ignore"):
        lo32 = lo.astype(np.float32)
        hi32 = hi.astype(np.float32)
    lo32 = np.where(lo32.astype(np.float64) < lo, np.nextafter(lo32, np.float32(np.inf)), lo32)
    hi32 = np.where(hi32.astype(np.float64) > hi, np.nextafter(hi32, np.float32(-np.inf)), hi32)
    return lo32.astype(np.float32), hi32.astype(np.float32)


def fill_indicator_channels(
    fill_flags: np.ndarray, features: Sequence[str], indicators: Sequence[str]
) -> np.ndarray:
    """``(..., len(indicators))`` float32: 1 where the indicator's input was gap-filled."""
    index = [list(features).index(name) for name in indicators]
    return (fill_flags[..., index] > 0).astype(np.float32)


def _host_tensor(values: np.ndarray) -> torch.Tensor:
    """A CPU tensor on the array's memory (a copy only where the array is read-only)."""
    array = np.asarray(values)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def _normalise(
    values: torch.Tensor, mean: np.ndarray, std: np.ndarray, out: torch.Tensor | None = None
) -> torch.Tensor:
    """(values - mean) * (1 / std) in float32 on the values' device, in a new tensor or into
    ``out`` (any strides; the same bits)."""
    mean32 = torch.from_numpy(mean.astype(np.float32)).to(values.device)
    inverse32 = torch.from_numpy((1.0 / std).astype(np.float32)).to(values.device)
    centred = torch.sub(values.to(torch.float32), mean32)
    if out is None:
        return centred.mul_(inverse32)
    return torch.mul(centred, inverse32, out=out)


@dataclass(frozen=True)
class SampleArrays:
    """The samples of one split, in physical units, with the last ``L`` lags only."""

    dynamic: np.ndarray  # (n, L, dynamic features)
    static: np.ndarray  # (n, static features)
    target: np.ndarray  # (n,) m3 m-3; NaN where missing (masked in the loss)
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    fill_flag: np.ndarray  # (n, L, dynamic features) int8 stack fill flags
    gap_simulated: np.ndarray  # (n,) bool: a gap was simulated on the sample's day

    def __len__(self) -> int:
        return int(self.target.size)


def load_split(path: str | Path, split: str, sequence_length: int) -> SampleArrays:
    """The samples of ``split`` ('train', 'validation', 'test') with the last L lags."""
    with reading(path, what="sample set"), xr.open_zarr(path) as samples:
        lags = samples.sizes["lag"]
        if sequence_length > lags:
            raise InputError(
                path,
                f"holds {lags} lags, the model needs sequence_length {sequence_length}",
                "raise samples.stored_lags and rebuild the sample sets",
            )
        chosen = np.flatnonzero(samples["split"].values == SPLITS.index(split))
        subset = samples.isel(sample=chosen)
        last = slice(lags - sequence_length, None)
        dynamic = np.ascontiguousarray(subset["dynamic"].values[:, last])
        target = subset["target"].values
        # a damaged chunk (named) rather than an input no stack could hold
        for k, name in enumerate(DYNAMIC_FEATURES):
            check_range(dynamic[..., k], name, path, array="dynamic")
        check_range(target, "target", path)
        return SampleArrays(
            dynamic=dynamic,
            static=subset["static"].values,
            target=target,
            time=subset["time"].values,
            lat=subset["lat"].values,
            lon=subset["lon"].values,
            fill_flag=np.ascontiguousarray(subset["dynamic_fill_flag"].values[:, last]),
            gap_simulated=subset["gap_simulated"].values.astype(bool).any(axis=1),
        )


def load_training_splits(
    path: str | Path, sequence_length: int
) -> tuple[SampleArrays, SampleArrays]:
    """The train and validation splits; an error naming the set when either is empty."""
    train = load_split(path, "train", sequence_length)
    validation = load_split(path, "validation", sequence_length)
    if len(train) == 0 or len(validation) == 0:
        raise InputError(
            path,
            f"has {len(train)} training and {len(validation)} validation samples",
            "both splits need samples: check samples.split_fractions and samples.per_year",
        )
    return train, validation


def load_scaler(path: str | Path) -> Scaler:
    """The scaler stored with a merged sample set."""
    with xr.open_zarr(path) as samples:
        if "scaler" not in samples.attrs:
            raise InputError(path, "has no normalisation statistics", "use the merged sample set")
        return Scaler.from_dict(json.loads(samples.attrs["scaler"]))
