"""The per-pixel-day uncertainty: the error model's classes, its fit on validation residuals
(pooling where a class is thin, the target's error taken out), its lookup on the host and on a
device, its file, and the calibration of a trained model on its validation split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avhrrsm.io.errors import InputError
from avhrrsm.learn.uncertainty import (
    LEVELS,
    N_INPUT_STATES,
    OTHER_FILLED,
    fit_error_model,
    input_states,
    read_error_model,
    short_history,
    write_error_model,
)
from avhrrsm.variables import DYNAMIC_FEATURES

LST = DYNAMIC_FEATURES.index("lst")
EDGES = (0.2, 0.4)


def test_the_day_input_state_names_lst_filling_before_the_other_inputs():
    flags = np.zeros((6, len(DYNAMIC_FEATURES)), np.int8)
    flags[1, LST] = 2  # LST by the seasonal window mean
    flags[2, 0] = 1  # albedo filled, LST observed
    flags[3, LST], flags[3, 0] = 3, 1  # both filled: the LST method names it
    flags[4, :] = -1  # water counts as observed
    flags[5, -1] = 4  # ERA5-Land by the annual mean
    expected = [0, 2, OTHER_FILLED, 3, 0, OTHER_FILLED]
    np.testing.assert_array_equal(input_states(flags), expected)
    np.testing.assert_array_equal(input_states(torch.from_numpy(flags)).numpy(), expected)


def _residuals(rng, n, state, short, wet_value, sigma):
    return {
        "residual": rng.standard_normal(n) * sigma,
        "input_state": np.full(n, state),
        "outside": np.zeros(n, bool),
        "short": np.full(n, short),
        "predicted": np.full(n, wet_value),
    }


def _fit(parts, **kw):
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    model = fit_error_model(
        rows["residual"], rows["input_state"], rows["outside"], rows["short"], rows["predicted"],
        EDGES, **kw,
    )  # fmt: skip
    return model, rows


def test_each_class_gets_its_own_rms_error_and_thin_classes_are_pooled():
    rng = np.random.default_rng(0)
    model, rows = _fit(
        [
            _residuals(rng, 20000, 0, False, 0.1, 0.010),  # observed, dry
            _residuals(rng, 20000, 0, False, 0.5, 0.030),  # observed, wet
            _residuals(rng, 20000, 1, False, 0.1, 0.020),  # LST interpolated, dry
            _residuals(rng, 20000, 0, True, 0.1, 0.040),  # short history, dry
            _residuals(rng, 10, 2, False, 0.1, 1.0),  # seasonal fill: too few of its own
        ],
        min_samples=50,
    )
    observed_dry = model.sigma[0, 0, 0, 0]
    assert observed_dry == pytest.approx(0.010, rel=0.03)
    assert model.sigma[0, 0, 0, 2] == pytest.approx(0.030, rel=0.03)
    assert model.sigma[1, 0, 0, 0] == pytest.approx(0.020, rel=0.03)
    assert model.sigma[0, 0, 1, 0] == pytest.approx(0.040, rel=0.03)
    assert model.level[0, 0, 0, 0] == 0 and model.count[0, 0, 0, 0] == 20000
    # the seasonal-fill class pools the LST methods (the interpolated and its own 10)
    assert model.count[2, 0, 0, 0] == 10 and LEVELS[model.level[2, 0, 0, 0]][0] == "lst_filled"
    lst_filled = np.isin(rows["input_state"], (1, 2))
    assert model.sigma[2, 0, 0, 0] == pytest.approx(
        np.sqrt(np.mean(rows["residual"][lst_filled] ** 2)), rel=1e-12
    )
    # no residual outside the training range: the inputs and the range pooled, wetness kept
    assert LEVELS[model.level[0, 1, 0, 0]] == ("short", "wetness")
    assert model.sigma[0, 1, 0, 2] == pytest.approx(0.030, rel=0.03)
    # nothing in the middle wetness bin at all: the whole split
    assert LEVELS[model.level[0, 0, 0, 1]] == ()


def test_the_targets_own_error_is_taken_out_of_the_residuals():
    rng = np.random.default_rng(1)
    parts = [_residuals(rng, 40000, 0, False, 0.1, 0.013)]
    plain, _ = _fit(parts)
    less, _ = _fit(parts, target_error_m3m3=0.005)
    assert less.sigma[0, 0, 0, 0] == pytest.approx(
        np.sqrt(plain.sigma[0, 0, 0, 0] ** 2 - 0.005**2), rel=1e-12
    )
    # a target error above the residuals' gives 0, never NaN
    assert (_fit(parts, target_error_m3m3=0.05)[0].sigma == 0).all()


def test_the_lookup_is_the_same_on_the_host_and_as_tensors_and_survives_its_file(tmp_path):
    rng = np.random.default_rng(2)
    n = 5000
    model, rows = _fit(
        [
            {
                "residual": rng.standard_normal(n) * 0.02,
                "input_state": rng.integers(0, N_INPUT_STATES, n),
                "outside": rng.random(n) < 0.3,
                "short": rng.random(n) < 0.5,
                "predicted": rng.uniform(0, 0.6, n).astype(np.float32),
            }
        ],
        min_samples=20,
    )
    args = (rows["input_state"], rows["outside"], rows["short"], rows["predicted"])
    host = model.standard_error(*args)
    device = model.standard_error_tensor(*(torch.from_numpy(np.asarray(a)) for a in args))
    np.testing.assert_array_equal(host, device.numpy())
    # a value on an edge falls in the bin above it, on the host and the device alike
    edge = np.array([EDGES[0]], np.float32)
    codes = model.codes(np.array([0]), np.array([False]), np.array([False]), edge)
    assert codes[0] == 1
    path = tmp_path / "uncertainty.json"
    write_error_model(path, model, {"validation_samples": n})
    back = read_error_model(path)
    assert back.wetness_edges == model.wetness_edges
    for name in ("sigma", "count", "level"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
    assert json.loads(path.read_text())["validation_samples"] == n
    path.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="is not an avhrrsm error model"):
        read_error_model(path)


def test_coverage_counts_residuals_inside_the_gaussian_intervals():
    from avhrrsm.learn.uncertainty import calibration_scores, calibration_sums

    residual = np.array([0.5, 1.0, 1.5, 2.0, np.nan])
    scores = calibration_scores(calibration_sums(residual, np.ones(5)), 1.0)
    # z = 0.994, 1.645, 1.960 for 68, 90, 95 %
    assert [scores[f"coverage_{p}"] for p in (68, 90, 95)] == [0.25, 0.75, 0.75]


def test_a_short_history_repeats_the_day_over_the_earlier_lags():
    from avhrrsm.learn.features import SampleArrays

    n, length, f = 3, 4, len(DYNAMIC_FEATURES)
    dynamic = np.arange(n * length * f, dtype=np.float32).reshape(n, length, f)
    flags = np.zeros((n, length, f), np.int8)
    flags[:, -1, LST] = 1
    arrays = SampleArrays(
        dynamic, np.zeros((n, 2)), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), flags,
        np.zeros(n, bool),
    )  # fmt: skip
    short = short_history(arrays)
    for lag in range(length):
        np.testing.assert_array_equal(short.dynamic[:, lag], dynamic[:, -1])
        np.testing.assert_array_equal(short.fill_flag[:, lag], flags[:, -1])


def test_a_trained_model_is_calibrated_on_its_validation_split(sample_set, uncertainty_path):
    """The fixture's AtLSTM on its validation split (the session's calibration): every
    validation residual counted once with its history and once as a short history, finite
    standard errors in every class, the fit's own coverage recorded."""
    from avhrrsm.learn.features import load_split

    out = uncertainty_path
    model = read_error_model(out)
    validation = load_split(sample_set["merged"], "validation", 4)
    finite = int(np.isfinite(validation.target).sum())
    assert finite > 100
    assert model.count[:, :, 0].sum() == model.count[:, :, 1].sum() == finite
    assert np.isfinite(model.sigma).all() and (model.sigma > 0).all()
    written = json.loads(out.read_text())
    assert written["validation_samples"] == len(validation)
    fit = written["validation_scores"]["all"]
    assert fit["n"] == 2 * finite
    assert 0.5 < fit["coverage_68"] < fit["coverage_90"] < fit["coverage_95"] <= 1.0
    # the test split is scored, never fitted on
    test = load_split(sample_set["merged"], "test", 4)
    assert written["test_samples"] == len(test) > 0
    assert written["test_scores"]["all"]["n"] == 2 * int(np.isfinite(test.target).sum())


def test_calibration_scores_see_a_calibrated_and_a_too_small_uncertainty():
    """Gaussian errors scored with their own sigma: coverage at the nominal shares, a flat
    PIT histogram and RMS sigma equal to the RMSE; with half their sigma: coverage far below
    and a U-shaped histogram. Sums of two halves score as the whole."""
    from avhrrsm.learn.uncertainty import PIT_BINS, calibration_scores, calibration_sums

    rng = np.random.default_rng(7)
    sigma = rng.uniform(0.01, 0.05, 200_000)
    errors = rng.standard_normal(sigma.size) * sigma
    rmse = float(np.sqrt(np.mean(errors**2)))
    halves = calibration_sums(errors[:1000], sigma[:1000]) + calibration_sums(
        errors[1000:], sigma[1000:]
    )
    whole = calibration_sums(np.append(errors, np.nan), np.append(sigma, 0.02))
    np.testing.assert_allclose(halves, whole, rtol=1e-12)
    good = calibration_scores(whole, rmse)
    for nominal in (68, 90, 95):
        assert good[f"coverage_{nominal}"] == pytest.approx(nominal / 100, abs=0.005)
    assert good["rms_sigma_over_rmse"] == pytest.approx(1.0, abs=0.01)
    assert len(good["pit_histogram"]) == PIT_BINS
    np.testing.assert_allclose(good["pit_histogram"], 1 / PIT_BINS, atol=0.003)
    small = calibration_scores(calibration_sums(errors, sigma / 2), rmse)
    assert small["coverage_68"] < 0.45 and small["rms_sigma_over_rmse"] < 0.55
    pit = small["pit_histogram"]
    assert pit[0] > 3 / PIT_BINS and pit[-1] > 3 / PIT_BINS and pit[PIT_BINS // 2] < 1 / PIT_BINS
    assert calibration_scores(np.zeros_like(whole), rmse) == {}
