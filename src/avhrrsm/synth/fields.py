"""Spatially correlated random fields and small time-series filters for the synthetic world."""

from __future__ import annotations

import numpy as np


def gaussian_field(
    shape: tuple[int, int], correlation_px: float, rng: np.random.Generator
) -> np.ndarray:
    """A zero-mean, unit-variance random field with a Gaussian correlation of ``correlation_px``.

    White noise filtered in Fourier space; float64, deterministic for a given generator state.
    """
    noise = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * correlation_px) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def fractal_field(
    shape: tuple[int, int], largest_px: float, rng: np.random.Generator, octaves: int = 5
) -> np.ndarray:
    """Sum of Gaussian fields from ``largest_px`` down by halves, amplitude halving each time."""
    total = np.zeros(shape)
    for octave in range(octaves):
        total += 0.5**octave * gaussian_field(shape, largest_px / 2**octave, rng)
    return total / total.std()


def exponential_filter(series: np.ndarray, tau_days: float, axis: int = 0) -> np.ndarray:
    """Recursive exponential smoothing along ``axis`` (time), as used for deeper soil layers."""
    gain = 1.0 - np.exp(-1.0 / tau_days)
    moved = np.moveaxis(np.asarray(series, dtype=np.float64), axis, 0)
    out = np.empty_like(moved)
    state = moved[0].copy()
    for index in range(moved.shape[0]):
        state += gain * (moved[index] - state)
        out[index] = state
    return np.moveaxis(out, 0, axis)
