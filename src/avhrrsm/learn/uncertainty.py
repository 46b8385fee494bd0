"""The soil moisture's standard error per pixel-day: an error model calibrated on the
validation split.

Every pixel-day of the product falls in an error class made of what its error depends on and
inference knows: the day's inputs (every input observed; LST gap-filled, by each of the
stack's fill methods; LST observed but albedo or ERA5-Land filled), inputs outside the
training range, a short history (the first days of the record) and the wetness (the predicted
value in ``wetness_edges`` bins). The error model holds, per class, the root-mean-square
residual of the product's model on the validation split (prediction minus GLASS-MODIS
target), less the target's own error variance (``target_error_m3m3``, the target's random
error at 0.05 degree: a residual against the target carries it, an error against the truth
does not). The validation split never meets a short history: its samples are predicted a
second time from their own day repeated over the earlier lags (what the first day of a record
sees, the shortest history), and those residuals make the short-history classes.

A class with fewer than ``min_samples`` validation residuals takes the value of the first
coarser class that has them: the LST fill methods pooled, then the day's inputs pooled, then
the training range, the history and finally the wetness pooled (the whole split). The model
is a table of every class; inference looks a pixel-day's class up on its device, so the cost
is one gather per pixel-day. Neither the test split nor any truth takes part.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avhrrsm.atomic import write_text_atomic
from avhrrsm.io.errors import InputError
from avhrrsm.learn.features import SampleArrays
from avhrrsm.learn.predictor import Predictor
from avhrrsm.variables import DYNAMIC_FEATURES, FILL_METHOD_NAMES

LOGGER = logging.getLogger(__name__)
ERROR_MODEL_FORMAT = "avhrrsm-error-model-1"
LST = DYNAMIC_FEATURES.index("lst")
# the day's inputs: 0 every input observed, 1-4 LST filled by the stack's method of that
# value, 5 LST observed and albedo or ERA5-Land filled
N_INPUT_STATES = 6
OTHER_FILLED = 5
INPUT_STATE_NAMES = (
    "every input observed",
    *(f"LST gap-filled: {FILL_METHOD_NAMES[m]}" for m in range(1, 5)),
    "LST observed, albedo or ERA5-Land gap-filled",
)
NOMINAL_COVERAGES = (0.68, 0.90, 0.95)
# the pooling order: each level keeps the factors named
LEVELS = (
    ("input_state", "outside", "short", "wetness"),
    ("lst_filled", "outside", "short", "wetness"),
    ("outside", "short", "wetness"),
    ("short", "wetness"),
    ("wetness",),
    (),
)


def input_states(day_fill_flags: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The day's input state (0-5, above) from its stack fill flags ``(..., dynamic features)``
    (0 observed, 1-4 the fill method; water's -1 counts as observed)."""
    lst = day_fill_flags[..., LST]
    others = [k for k in range(len(DYNAMIC_FEATURES)) if k != LST]
    if isinstance(day_fill_flags, torch.Tensor):
        other = (day_fill_flags[..., others] > 0).any(dim=-1)
        lst_state = lst.clamp(min=0).to(torch.int64)
        return torch.where((lst_state == 0) & other, OTHER_FILLED, lst_state)
    other = (day_fill_flags[..., others] > 0).any(axis=-1)
    lst_state = np.maximum(lst, 0).astype(np.int64)
    return np.where((lst_state == 0) & other, OTHER_FILLED, lst_state)


@dataclass(frozen=True)
class ErrorModel:
    """Standard error (m3 m-3) per error class, with the validation residuals behind each."""

    wetness_edges: tuple[float, ...]
    sigma: np.ndarray  # (input states, outside, short, wetness bins) float64
    count: np.ndarray  # validation residuals in the class itself, same shape
    level: np.ndarray  # the pooling level (index of LEVELS) the class's value comes from
    target_error_m3m3: float
    min_samples: int

    @property
    def n_wetness(self) -> int:
        return len(self.wetness_edges) + 1

    def codes(
        self,
        states: np.ndarray,
        outside: np.ndarray,
        short: np.ndarray,
        predicted: np.ndarray,
    ) -> np.ndarray:
        """The flat class index of each pixel-day (host arrays)."""
        wet = np.searchsorted(np.asarray(self.wetness_edges), predicted, side="right")
        return _flat(
            states.astype(np.int64), outside.astype(np.int64), short.astype(np.int64), wet,
            self.n_wetness,
        )  # fmt: skip

    def standard_error(
        self,
        states: np.ndarray,
        outside: np.ndarray,
        short: np.ndarray,
        predicted: np.ndarray,
    ) -> np.ndarray:
        """The standard error (m3 m-3, float32) of each pixel-day."""
        table = self.sigma.reshape(-1).astype(np.float32)
        return table[self.codes(states, outside, short, predicted)]

    def standard_error_tensor(
        self,
        states: torch.Tensor,
        outside: torch.Tensor,
        short: torch.Tensor,
        predicted: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`standard_error` as tensor operations on the values' device."""
        device = predicted.device
        edges = torch.tensor(self.wetness_edges, dtype=torch.float32, device=device)
        wet = torch.bucketize(predicted.to(torch.float32), edges, right=True)
        codes = _flat(
            states.to(torch.int64), outside.to(torch.int64), short.to(torch.int64), wet,
            self.n_wetness,
        )  # fmt: skip
        table = torch.from_numpy(self.sigma.reshape(-1).astype(np.float32)).to(device)
        return table[codes]

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for index in np.ndindex(self.sigma.shape):
            state, outside, short, wet = index
            rows.append(
                {
                    "input_state": INPUT_STATE_NAMES[state],
                    "outside_training": bool(outside),
                    "short_history": bool(short),
                    "wetness_bin": int(wet),
                    "sigma_m3m3": float(self.sigma[index]),
                    "validation_residuals": int(self.count[index]),
                    "from_factors": list(LEVELS[int(self.level[index])]),
                }
            )
        return {
            "format": ERROR_MODEL_FORMAT,
            "wetness_edges_m3m3": list(self.wetness_edges),
            "target_error_m3m3": self.target_error_m3m3,
            "min_samples": self.min_samples,
            "classes": rows,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ErrorModel:
        edges = tuple(float(e) for e in values["wetness_edges_m3m3"])
        shape = class_shape(len(edges) + 1)
        rows = values["classes"]
        if len(rows) != int(np.prod(shape)):
            raise ValueError(f"{len(rows)} classes, expected {int(np.prod(shape))}")

        def column(name: str, dtype: type) -> np.ndarray:
            return np.array([r[name] for r in rows], dtype).reshape(shape)

        level = [LEVELS.index(tuple(r["from_factors"])) for r in rows]
        return cls(
            edges, column("sigma_m3m3", np.float64), column("validation_residuals", np.int64),
            np.array(level, np.int64).reshape(shape), float(values["target_error_m3m3"]),
            int(values["min_samples"]),
        )  # fmt: skip


def class_shape(n_wetness: int) -> tuple[int, int, int, int]:
    """The error classes' axes: input state, outside the training range, short history,
    wetness bin."""
    return (N_INPUT_STATES, 2, 2, n_wetness)


def _flat(states: Any, outside: Any, short: Any, wet: Any, n_wetness: int) -> Any:
    return ((states * 2 + outside) * 2 + short) * n_wetness + wet


def _level_keys(
    level: tuple[str, ...], factors: Mapping[str, np.ndarray], n_wetness: int
) -> tuple[np.ndarray, int]:
    """The key of each entry at one pooling level (the factors it keeps, as one integer) and
    the number of keys there are at that level."""
    states = factors["input_state"]
    values = {
        "input_state": (states, N_INPUT_STATES),
        # observed, LST filled (any method), only albedo or ERA5-Land filled
        "lst_filled": (np.where(states == OTHER_FILLED, 2, np.minimum(states, 1)), 3),
        "outside": (factors["outside"], 2),
        "short": (factors["short"], 2),
        "wetness": (factors["wetness"], n_wetness),
    }
    key, size = np.zeros(states.shape, np.int64), 1
    for name in level:
        value, n = values[name]
        key, size = key * n + value, size * n
    return key, size


def fit_error_model(
    residuals: np.ndarray,
    states: np.ndarray,
    outside: np.ndarray,
    short: np.ndarray,
    predicted: np.ndarray,
    wetness_edges: Sequence[float],
    target_error_m3m3: float = 0.0,
    min_samples: int = 50,
) -> ErrorModel:
    """The error model of validation residuals (m3 m-3, prediction minus target) and their
    classes: every class holds the root-mean-square residual of the finest pooling level
    (:data:`LEVELS`) with at least ``min_samples`` residuals in it (the last level, the whole
    split, whatever it holds), less the target's error variance (never below 0)."""
    edges = tuple(float(e) for e in wetness_edges)
    if list(edges) != sorted(edges):
        raise ValueError(f"wetness edges must rise: {edges}")
    valid = np.isfinite(residuals)
    if not valid.any():
        raise ValueError("no finite validation residual to calibrate the uncertainty on")
    n_wetness = len(edges) + 1
    observed = {
        "input_state": states[valid].astype(np.int64),
        "outside": outside[valid].astype(np.int64),
        "short": short[valid].astype(np.int64),
        "wetness": np.searchsorted(np.asarray(edges), predicted[valid], side="right"),
    }
    shape = class_shape(n_wetness)
    grid = dict(
        zip(
            ("input_state", "outside", "short", "wetness"),
            (g.reshape(-1) for g in np.indices(shape)),
            strict=True,
        )
    )
    squared = residuals[valid].astype(np.float64) ** 2
    mean_square = np.full(grid["wetness"].size, np.nan)
    level = np.zeros(mean_square.size, np.int64)
    count = np.zeros(mean_square.size, np.int64)
    for k, factors in enumerate(LEVELS):
        keys, size = _level_keys(factors, observed, n_wetness)
        n = np.bincount(keys, minlength=size)
        sums = np.bincount(keys, weights=squared, minlength=size)
        class_keys, _ = _level_keys(factors, grid, n_wetness)
        if k == 0:
            count = n[class_keys]
        enough = n[class_keys] >= (min_samples if k < len(LEVELS) - 1 else 1)
        todo = np.isnan(mean_square) & enough
        mean_square[todo] = sums[class_keys[todo]] / n[class_keys[todo]]
        level[todo] = k
    sigma = np.sqrt(np.maximum(mean_square - target_error_m3m3**2, 0.0))
    return ErrorModel(
        edges, sigma.reshape(shape), count.reshape(shape), level.reshape(shape),
        float(target_error_m3m3), int(min_samples),
    )  # fmt: skip


PIT_BINS = 20  # the reliability histogram's bins of the probability integral transform
CALIBRATION_SUMS = (
    "n",
    "sum_sigma",
    "sum_sigma_squared",
    *(f"inside_{round(p * 100)}" for p in NOMINAL_COVERAGES),
    *(f"pit_bin_{k}" for k in range(PIT_BINS)),
)


def calibration_sums(errors: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """What a set of errors (value minus reference) and their standard errors adds to a
    calibration score (:data:`CALIBRATION_SUMS`, summed over sets): the count, the sums of
    sigma and sigma², the errors inside each nominal Gaussian interval, and the histogram of
    the probability integral transform (PIT) of the reference under N(value, sigma²) in
    :data:`PIT_BINS` bins (flat where the uncertainty is calibrated; a U: too small; a hump:
    too large)."""
    from scipy.stats import norm

    valid = np.isfinite(errors) & np.isfinite(sigma)
    e, s = errors[valid].astype(np.float64), sigma[valid].astype(np.float64)
    ratio = np.abs(e) / np.maximum(s, 1e-12)
    inside = [np.count_nonzero(ratio <= norm.ppf(0.5 + p / 2)) for p in NOMINAL_COVERAGES]
    pit = norm.cdf(-e / np.maximum(s, 1e-12))  # P(value + error below the reference)
    bins = np.bincount(
        np.minimum((pit * PIT_BINS).astype(np.int64), PIT_BINS - 1), minlength=PIT_BINS
    )
    return np.array([e.size, s.sum(), (s * s).sum(), *inside, *bins], np.float64)


def calibration_scores(sums: np.ndarray, rmse: float) -> dict[str, Any]:
    """The calibration of summed :func:`calibration_sums` against the errors' ``rmse``: mean
    and root-mean-square sigma (the latter is what the RMSE should equal where the errors have
    the variances the uncertainty gives), their ratio to the RMSE, the share inside each
    nominal interval and the PIT histogram as shares."""
    n = float(sums[0])
    if n == 0:
        return {}
    rms = float(np.sqrt(sums[2] / n))
    return {
        "mean_sigma": float(sums[1] / n),
        "rms_sigma": rms,
        "rms_sigma_over_rmse": rms / rmse if rmse > 0 else np.nan,
        **{
            f"coverage_{round(p * 100)}": float(sums[3 + k] / n)
            for k, p in enumerate(NOMINAL_COVERAGES)
        },
        "pit_histogram": [float(v / n) for v in sums[3 + len(NOMINAL_COVERAGES) :]],
    }


def write_error_model(path: str | Path, model: ErrorModel, extra: Mapping[str, Any]) -> None:
    """The error model as JSON (``extra``: the calibration's figures and provenance)."""
    payload = {**model.to_dict(), **extra}
    write_text_atomic(Path(path), json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_error_model(path: str | Path) -> ErrorModel:
    """The error model a calibration wrote; an error naming the file if it is not one."""
    try:
        values = json.loads(Path(path).read_text())
        if values.get("format") != ERROR_MODEL_FORMAT:
            raise ValueError(f"format {values.get('format')!r}, not {ERROR_MODEL_FORMAT}")
        return ErrorModel.from_dict(values)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            path, f"is not an avhrrsm error model ({err})", "rerun rule uncertainty_calibration"
        ) from err


def short_history(arrays: SampleArrays) -> SampleArrays:
    """The samples as the first day of a record sees them: every earlier lag repeats the
    sample's own day (values and fill flags), as inference's short history does."""
    dynamic = np.repeat(arrays.dynamic[:, -1:], arrays.dynamic.shape[1], axis=1)
    fill_flag = np.repeat(arrays.fill_flag[:, -1:], arrays.fill_flag.shape[1], axis=1)
    return replace(arrays, dynamic=dynamic, fill_flag=fill_flag)


def outside_training(predictor: Predictor, arrays: SampleArrays) -> np.ndarray:
    """True where any input of a sample's sequence or static layers lies outside the training
    split's range (the deep models' quality bit; the trees have no such test: all False)."""
    scaler = getattr(predictor, "scaler", None)
    if scaler is None:
        return np.zeros(len(arrays), bool)
    dynamic = scaler.outside_tensor(torch.from_numpy(arrays.dynamic.astype(np.float32)), "dynamic")
    static = scaler.outside_tensor(torch.from_numpy(arrays.static.astype(np.float32)), "static")
    return (dynamic.amax(dim=-1) | static).numpy().astype(bool)


def split_residuals(
    predictor: Predictor, arrays: SampleArrays, valid_range: Sequence[float]
) -> dict[str, np.ndarray]:
    """Residuals (prediction clipped into ``valid_range`` as the product is, minus the target)
    of the samples with their history and again from their own day alone (short history),
    with each residual's class factors."""
    from avhrrsm.learn.compare import predict_run

    lo, hi = float(valid_range[0]), float(valid_range[1])
    states = np.asarray(input_states(arrays.fill_flag[:, -1]))
    outside = outside_training(predictor, arrays)
    parts = []
    for short, samples in ((False, arrays), (True, short_history(arrays))):
        predicted = np.clip(predict_run(predictor, samples), lo, hi)
        parts.append(
            {
                "residual": predicted.astype(np.float64) - arrays.target,
                "input_state": states,
                "outside": outside,
                "short": np.full(len(arrays), short),
                "predicted": predicted,
            }
        )
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def calibrate_uncertainty(
    samples_path: str | Path,
    model_path: str | Path,
    out_path: str | Path,
    settings: Mapping[str, Any],
    valid_range: Sequence[float],
    device: str = "auto",
    threads: int = 0,
    global_attrs: Mapping[str, str] | None = None,
) -> ErrorModel:
    """Fit the product model's error model on the validation split of the sample set and write
    it (``settings``: config ``uncertainty``), with its scores per input state on the
    validation split itself (a check of the fit) and on the test split (never used to fit:
    the comparison's held-out samples); against the truth and the sites it is scored in the
    validation stage."""
    from avhrrsm.learn.features import load_split
    from avhrrsm.learn.predictor import load_predictor

    predictor = load_predictor(model_path, device, threads)
    arrays = load_split(samples_path, "validation", predictor.sequence_length)
    if len(arrays) == 0:
        raise InputError(samples_path, "has no validation samples", "check samples.split_fractions")
    rows = split_residuals(predictor, arrays, valid_range)
    model = fit_error_model(
        rows["residual"], rows["input_state"], rows["outside"], rows["short"], rows["predicted"],
        settings["wetness_edges_m3m3"], float(settings["target_error_m3m3"]),
        int(settings["min_samples"]),
    )  # fmt: skip
    fit = scores_by_input_state(model, rows)
    test = load_split(samples_path, "test", predictor.sequence_length)
    tested = (
        scores_by_input_state(model, split_residuals(predictor, test, valid_range))
        if len(test)
        else {}
    )
    write_error_model(
        out_path,
        model,
        {
            "model_file": str(model_path),
            "validation_samples": len(arrays),
            "validation_scores": fit,
            "test_samples": len(test),
            "test_scores": tested,
            "provenance": dict(global_attrs or {}),
        },
    )
    for split, scores in (("validation", fit), ("test", tested)):
        if "all" in scores:
            LOGGER.info(
                "uncertainty of %s on the %s split (%d residuals): RMSE %.4f, RMS uncertainty "
                "%.4f m3 m-3; inside the nominal 68/90/95 %% intervals %.1f/%.1f/%.1f %%",
                model_path, split, scores["all"]["n"], scores["all"]["rmse"],
                scores["all"]["rms_sigma"], *(100 * scores["all"][f"coverage_{p}"]
                                               for p in (68, 90, 95)),
            )  # fmt: skip
    return model


def scores_by_input_state(
    model: ErrorModel, rows: Mapping[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """The error model's calibration on a split's residuals (:func:`split_residuals`), over all
    of them and per input state: count, RMSE, mean and RMS standard error, coverage of the
    nominal intervals, PIT histogram (:func:`calibration_scores`); empty for no residuals."""
    sigma = model.standard_error(
        rows["input_state"], rows["outside"], rows["short"], rows["predicted"]
    )
    subsets = {"all": np.isfinite(rows["residual"])}
    for state in range(N_INPUT_STATES):
        subsets[INPUT_STATE_NAMES[state]] = subsets["all"] & (rows["input_state"] == state)
    scores = {}
    for name, chosen in subsets.items():
        if not chosen.any():
            continue
        residual = rows["residual"][chosen]
        rmse = float(np.sqrt(np.mean(residual**2)))
        sums = calibration_sums(residual, sigma[chosen])
        scores[name] = {"n": int(chosen.sum()), "rmse": rmse, **calibration_scores(sums, rmse)}
    return scores
