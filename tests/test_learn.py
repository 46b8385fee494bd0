"""The learning stage: sample sets, models, training (determinism, resume), XGBoost, comparison."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from avhrrsm import variables
from avhrrsm.device import DeviceError, select_device
from avhrrsm.grid import Window
from avhrrsm.learn import features, gaps, samples, splitting
from avhrrsm.learn.boost import (
    channels,
    feature_names,
    flatten,
    load_xgboost,
    predict_xgboost,
    train_xgboost,
)
from avhrrsm.learn.compare import compare_models
from avhrrsm.learn.models import MODELS, AttentionLSTM, build_model, masked_mse
from avhrrsm.learn.train import load_deep_model, train_deep_model
from avhrrsm.metrics import paired_rmse_difference, regression_metrics

HYPER = {
    "lstm": {"hidden_size": 8, "num_layers": 1, "dropout": 0.0},
    "bilstm": {"hidden_size": 8, "num_layers": 2, "dropout": 0.1},
    "atlstm": {"hidden_size": 8, "num_layers": 1, "dropout": 0.0, "attention_size": 4},
    "transformer": {
        "d_model": 8,
        "nhead": 2,
        "num_layers": 1,
        "dim_feedforward": 16,
        "dropout": 0.1,
    },
}
TRAINING = {
    "device": "cpu",
    "epochs": 3,
    "patience": 5,
    "batch_size": 256,
    "learning_rate": 0.003,
    "weight_decay": 0.0,
    "resume": True,
}
FRACTIONS = {"train": 0.7, "validation": 0.15, "test": 0.15}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- split map -------------------------------------------------------------------------------


def test_block_split_gives_every_split_and_guards_its_edges():
    window = Window(1000, 1060, 3000, 3060)  # 3 x 3 degrees
    split = splitting.block_split_map(window, 0.5, FRACTIONS, seed=3, guard_pixels=1)
    values, counts = np.unique(split, return_counts=True)
    assert set(values) == {-1, 0, 1, 2}
    # shares of the non-guard pixels roughly follow the fractions (36 blocks)
    kept = {v: c for v, c in zip(values, counts, strict=True) if v >= 0}
    assert kept[0] > kept[1] and kept[0] > kept[2]
    # no two neighbouring pixels (8-neighbourhood) belong to two different splits
    padded = np.pad(split, 1, constant_values=-1)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            neighbour = padded[1 + dr : 61 + dr, 1 + dc : 61 + dc]
            both = (split >= 0) & (neighbour >= 0)
            assert (split[both] == neighbour[both]).all()
    # deterministic, and another seed gives another split
    assert (splitting.block_split_map(window, 0.5, FRACTIONS, 3, 1) == split).all()
    assert (splitting.block_split_map(window, 0.5, FRACTIONS, 4, 1) != split).any()


def test_block_split_stratified_by_wetness_puts_wet_blocks_in_every_split():
    window = Window(0, 40, 0, 40)  # 4 x 4 blocks of 0.5 degrees
    wetness = np.zeros(window.shape, np.float32)
    wetness[:, :20] = 0.9  # the western half of the blocks is wet, the eastern dry
    for seed in range(10):
        split = splitting.block_split_map(window, 0.5, FRACTIONS, seed, 0, wetness)
        assert {0, 1, 2} <= set(np.unique(split[:, :20])), seed
        assert {0, 1, 2} <= set(np.unique(split[:, 20:])), seed


def test_too_few_blocks_is_a_clear_error():
    with pytest.raises(ValueError, match="lower samples.block_deg"):
        splitting.block_split_map(Window(0, 10, 0, 10), 0.5, FRACTIONS, 0, 0)


def test_allocation_is_proportional_and_capped():
    counts = samples.allocate(10, [5, 3, 2])
    assert counts.tolist() == [5, 3, 2]
    assert samples.allocate(100, [5, 3, 2]).tolist() == [5, 3, 2]  # never more than exist
    assert samples.allocate(7, [10, 10, 0]).sum() == 7
    assert samples.allocate(0, [1, 2]).tolist() == [0, 0]


def test_wet_regime_is_oversampled_in_training_only():
    available = {(0, 0): 10000, (0, 1): 200, (1, 0): 2000, (1, 1): 40, (2, 0): 2000, (2, 1): 40}
    wanted = samples.stratum_targets(available, 1000, 0.15)
    train_total = wanted[(0, 0)] + wanted[(0, 1)]
    assert wanted[(0, 1)] >= 0.15 * train_total - 1  # at least the minimum wet share
    assert wanted[(0, 1)] <= 200
    test_total = wanted[(2, 0)] + wanted[(2, 1)]
    assert abs(wanted[(2, 1)] / test_total - 40 / 2040) < 0.01  # natural share in test
    assert sum(wanted.values()) == 1000


# --- sample sets -------------------------------------------------------------------------------


def test_samples_equal_the_stack_values_they_were_drawn_from(sample_set, test_stacks):
    drawn = xr.open_zarr(sample_set["years"][0]).load()
    stack = xr.open_zarr(test_stacks["stacks"][2001]).load()
    static = xr.open_zarr(test_stacks["static"]).load()
    lags = drawn.sizes["lag"]
    stored_features = json.loads(drawn["dynamic"].attrs["features"])
    rng = np.random.default_rng(0)
    simulated = drawn["gap_simulated"].values.any(axis=1)
    assert simulated.any() and not simulated.all()
    chosen = [
        *rng.choice(np.flatnonzero(simulated), 10, replace=False),
        *rng.choice(np.flatnonzero(~simulated), 10, replace=False),
    ]
    for k in chosen:
        sample = drawn.isel(sample=k)
        t = int(np.flatnonzero(stack["time"].values == sample["time"].values)[0])
        r = int(sample["row"]) - int(np.round((90 - stack["lat"].values[0]) / 0.05 - 0.5))
        c = int(sample["col"]) - int(np.round((stack["lon"].values[0] + 180) / 0.05 - 0.5))
        for f, name in enumerate(stored_features):
            expected = stack[name].values[t - lags + 1 : t + 1, r, c]
            stack_flags = stack[f"{name}_fill_flag"].values[t - lags + 1 : t + 1, r, c]
            values = sample["dynamic"].values[:, f]
            flags = sample["dynamic_fill_flag"].values[:, f]
            if sample["gap_simulated"].values[f]:
                # the day was observed in the stack and is gap-filled in the sample; the days
                # the sample still calls observed are the stack's observed values
                assert name == "lst" and stack_flags[-1] == 0 and flags[-1] > 0
                kept = flags == 0
                np.testing.assert_array_equal(values[kept], expected[kept])
                assert (stack_flags[kept] == 0).all()
                assert values[-1] != expected[-1]
            else:
                np.testing.assert_array_equal(values, expected)
                np.testing.assert_array_equal(flags, stack_flags)
        assert float(sample["target"]) == float(stack["glass_modis_sm"].values[t, r, c])
        assert float(sample["static"].values[0]) == float(static["elevation"].values[r, c])
        assert float(sample["lat"]) == pytest.approx(float(stack["lat"].values[r]))


def test_no_pixel_in_two_splits_and_splits_not_adjacent(sample_set, test_config):
    merged = xr.open_zarr(sample_set["merged"]).load()
    pixel = merged["row"].values.astype(np.int64) * 10000 + merged["col"].values
    split = merged["split"].values
    for key in np.unique(pixel):
        assert np.unique(split[pixel == key]).size == 1
    guard = test_config["samples"]["guard_pixels"]
    rows, cols = merged["row"].values, merged["col"].values
    for a in range(3):
        for b in range(a + 1, 3):
            ra, ca = rows[split == a][:, None], cols[split == a][:, None]
            rb, cb = rows[split == b][None], cols[split == b][None]
            distance = np.maximum(np.abs(ra - rb), np.abs(ca - cb))
            assert distance.min() > guard


def test_every_split_has_samples_and_counts_add_up(sample_set):
    manifest = sample_set["manifest"]
    splits = manifest["splits"]
    assert all(splits[name]["samples"] > 0 for name in ("train", "validation", "test"))
    assert sum(s["samples"] for s in splits.values()) == manifest["samples"]
    for name, counts in splits.items():
        assert counts["dry"] + counts["wet"] == counts["samples"], name
    on_disk = json.loads((sample_set["folder"] / "manifest.json").read_text())
    assert on_disk["samples"] == manifest["samples"]
    year = manifest["years"][0]
    # the simulated gaps (test config: 30% of the samples whose day's LST was observed)
    simulation = year["gap_simulation"]
    assert simulation["fraction"] == 0.3 and simulation["inputs"] == ["lst"]
    assert set(simulation["skipped"]) == {
        "gap_simulation_unfillable",
        "gap_simulation_no_gaps_in_tile",
    }
    simulated = {
        split: simulation["simulated"][split]["lst"] for split in ("train", "validation", "test")
    }
    assert all(n > 0 for n in simulated.values())
    drawn = xr.open_zarr(sample_set["years"][0])
    assert int(drawn["gap_simulated"].sum()) == sum(simulated.values())
    assert 0.1 < sum(simulated.values()) / drawn.sizes["sample"] < 0.3
    assert set(year["skipped"]) == {
        "land_pixel_days",
        "target_missing",
        "guard_pixel_days",
        "no_full_sequence",
    }
    # without a previous-year stack the first L-1 days are skipped, and counted
    assert year["skipped"]["no_full_sequence"] > 0
    merged = xr.open_zarr(sample_set["merged"])
    first = merged["time"].values.astype("datetime64[D]")
    lags = merged.sizes["lag"]
    assert (first - first.astype("datetime64[Y]")).astype(int).min() >= lags - 1


def test_scaler_comes_from_the_training_split_only(sample_set):
    merged = xr.open_zarr(sample_set["merged"]).load()
    scaler = features.load_scaler(sample_set["merged"])
    train = merged["split"].values == 0
    np.testing.assert_allclose(
        scaler.dynamic_mean, merged["dynamic"].values[train].astype(np.float64).mean(axis=(0, 1))
    )
    assert scaler.target_mean == pytest.approx(float(merged["target"].values[train].mean()))
    assert scaler.target_mean != pytest.approx(float(merged["target"].values.mean()), abs=1e-7)


def test_scaler_channels_are_the_normalised_inputs_then_the_fill_indicators(sample_set):
    scaler = features.load_scaler(sample_set["merged"])
    assert scaler.fill_indicators == variables.FILL_INDICATORS
    assert scaler.n_model_dynamic == 2 * len(variables.DYNAMIC_FEATURES)
    values = np.full((2, 3, 5), 1.0, np.float32) * scaler.dynamic_mean.astype(np.float32)
    flags = np.zeros((2, 3, 5), np.int8)
    flags[1, 2, 3] = 1  # LST of the second sample's day interpolated
    flags[0, 0, 3] = 2  # ... the first's oldest day a seasonal mean
    out = scaler.dynamic(values, flags)
    assert out.shape == (2, 3, 10) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., :5], 0.0, atol=1e-5)
    assert out[..., 5:].sum() == 2 and out[1, 2, 8] == 1 and out[0, 0, 8] == 1
    with pytest.raises(ValueError, match="fill flags"):
        scaler.dynamic(values)
    # a scaler stored before the indicators existed gives the inputs alone, as its models read
    old = {k: v for k, v in scaler.to_dict().items() if k != "fill_indicators"}
    legacy = features.Scaler.from_dict(old)
    assert legacy.n_model_dynamic == 5
    assert legacy.dynamic(values).shape == (2, 3, 5)


def test_a_stack_without_its_gap_filling_settings_is_named(tmp_path):
    from avhrrsm.io.errors import InputError
    from avhrrsm.stacks import gap_filling_settings

    with pytest.raises(InputError, match="old_stack.zarr.*gap-filling settings"):
        gap_filling_settings(xr.Dataset(attrs={"title": "x"}), tmp_path / "old_stack.zarr")
    recorded = xr.Dataset(
        attrs={"gap_filling_max_interp_days": "5", "gap_filling_seasonal_window_days": "31"}
    )
    assert gap_filling_settings(recorded, "s.zarr") == {
        "max_interp_days": 5,
        "seasonal_window_days": 31,
    }


def test_gap_run_lengths_pair_each_start_with_its_end():
    gap_filled = np.array(
        [
            [1, 0, 1, 1, 0, 0, 1, 1, 1],  # runs 1, 2, 3
            [0, 0, 0, 0, 0, 0, 0, 0, 0],  # none
            [-1, -1, -1, -1, -1, -1, -1, -1, -1],  # water: no runs
            [2, 2, 2, 2, 0, 3, 0, 0, 4],  # runs 4, 1, 1
        ],
        np.int8,
    ).T[:, :, None]  # (time, y, x)
    assert sorted(gaps.gap_run_lengths(gap_filled).tolist()) == [1, 1, 1, 2, 3, 4]


def test_simulated_gaps_fall_on_days_as_the_real_gap_filled_days_do():
    rng = np.random.default_rng(3)
    runs = np.array([1, 1, 1, 3])  # 3 one-day gaps and one 3-day gap: 3 gap days each
    lengths, offsets = gaps.draw_gaps(runs, 20000, rng)
    assert set(np.unique(lengths)) == {1, 3}
    assert (lengths == 3).mean() == pytest.approx(0.5, abs=0.02)
    assert ((offsets >= 0) & (offsets < lengths)).all()
    assert np.bincount(offsets[lengths == 3]) / (lengths == 3).sum() == pytest.approx(
        [1 / 3] * 3, abs=0.03
    )


def test_a_simulated_gap_is_refilled_by_the_stacks_method():
    days = np.arange(40, dtype=np.float32)
    values = np.stack([300 + days, 300 + days, 300 + days], axis=1)  # (time, 3 series)
    flags = np.zeros(values.shape, np.int8)
    flags[20, 1] = 1  # series 1 has a real 1-day gap just after the simulated one
    values[20, 1] = 999.0  # (a stack value the simulation must replace: it is in the same run)
    day = np.array([18, 18, 18])
    lengths = np.array([3, 2, 12])
    offsets = np.array([1, 1, 5])
    out, out_flags, filled = gaps.simulate_gap(values, flags, day, lengths, offsets, 5, 31)
    assert filled.all()
    # series 0: days 17-19 removed, linear in time between 16 and 20: the line itself
    np.testing.assert_allclose(out[:, 0], values[:, 0])
    assert out_flags[17:20, 0].tolist() == [1, 1, 1] and (out_flags[:17, 0] == 0).all()
    # series 1: days 17-18 simulated, 20 a real gap: one run 17-20 (19 still observed)
    assert out_flags[17:19, 1].tolist() == [1, 1] and out_flags[19, 1] == 0
    assert out_flags[20, 1] == 1 and out[20, 1] == 999.0  # another run: the stack's value kept
    # series 2: a 12-day gap (13-24) is longer than max_interp_days: the seasonal mean
    assert (out_flags[13:25, 2] == 2).all() and (out_flags[25:, 2] == 0).all()
    window_mean = np.mean([300 + d for d in range(3, 34) if not 13 <= d < 25])
    assert out[18, 2] == pytest.approx(window_mean)
    # a series with nothing observed near the gap cannot be refilled: returned unchanged
    lonely = np.where(np.arange(40) == 18, 0, 1).astype(np.int8)[:, None]
    out, out_flags, filled = gaps.simulate_gap(
        values[:, :1], lonely, np.array([18]), np.array([1]), np.array([0]), 5, 31
    )
    assert not filled[0] and (out_flags == lonely).all() and (out == values[:, :1]).all()


def test_sequences_cross_into_the_previous_year(sample_set, test_stacks, test_config, tmp_path):
    """2015's first days take their earlier lags from the end of the 2014 stack."""
    source = xr.open_zarr(test_stacks["stacks"][2001]).load()
    days = np.arange("2014-01-01", "2015-01-01", dtype="datetime64[D]").astype("datetime64[ns]")
    previous = source.isel(time=slice(0, days.size)).assign_coords(time=days)
    previous_path = tmp_path / "2014.zarr"
    for name in previous.variables:
        previous[name].encoding = {}
    previous.to_zarr(previous_path)
    out = tmp_path / "2015.zarr"
    no_gaps = {"fraction": 0.0, "inputs": ["lst"]}  # the stacks' own values, unchanged
    settings = dict(test_config["samples"], per_year=4000, gap_simulation=no_gaps)
    summary = samples.draw_year_samples(
        out,
        2015,
        test_stacks["stacks"][2015],
        previous_path,
        test_stacks["static"],
        sample_set["split"],
        test_config["region"],
        test_config["tile_deg"],
        settings,
        test_config["seed"],
        {},
    )
    assert summary["skipped"]["no_full_sequence"] == 0
    drawn = xr.open_zarr(out).load()
    early = np.flatnonzero(drawn["time"].values == np.datetime64("2015-01-01", "ns"))
    assert early.size > 0
    lat0, lon0 = float(source["lat"][0]), float(source["lon"][0])
    for k in early[:5]:
        sample = drawn.isel(sample=k)
        r = int(round((lat0 - float(sample["lat"])) / 0.05))
        c = int(round((float(sample["lon"]) - lon0) / 0.05))
        lst = json.loads(drawn["dynamic"].attrs["features"]).index("lst")
        expected = previous["lst"].values[-(drawn.sizes["lag"] - 1) :, r, c]
        np.testing.assert_array_equal(sample["dynamic"].values[:-1, lst], expected)


def test_wrong_previous_year_is_refused(sample_set, test_stacks, test_config, tmp_path):
    with pytest.raises(Exception, match="is not the stack of 2014"):
        samples.draw_year_samples(
            tmp_path / "x.zarr",
            2015,
            test_stacks["stacks"][2015],
            test_stacks["stacks"][2001],
            test_stacks["static"],
            sample_set["split"],
            test_config["region"],
            test_config["tile_deg"],
            test_config["samples"],
            test_config["seed"],
            {},
        )
    assert not (tmp_path / "x.zarr").exists()


# --- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("length", [1, 5])
def test_model_forward_shape(name, length):
    torch.manual_seed(0)
    model = build_model(name, 5, 7, HYPER[name]).eval()
    out = model(torch.randn(3, length, 5), torch.randn(3, 7))
    assert out.shape == (3,)
    assert torch.isfinite(out).all()


def test_model_rejects_wrong_feature_count():
    model = build_model("lstm", 5, 7, HYPER["lstm"])
    with pytest.raises(ValueError, match=r"\(batch, L, 5\)"):
        model(torch.randn(2, 4, 6), torch.randn(2, 7))


def test_attention_weights_are_one_per_lag_and_sum_to_one():
    torch.manual_seed(0)
    model = build_model("atlstm", 5, 7, HYPER["atlstm"])
    assert isinstance(model, AttentionLSTM)
    weights = model.attention_weights(torch.randn(6, 4, 5), torch.randn(6, 7))
    assert weights.shape == (6, 4)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(6))


def test_masked_loss_skips_missing_targets():
    prediction = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    target = torch.tensor([1.5, float("nan"), 2.0, float("nan")])
    loss = masked_mse(prediction, target)
    assert loss.item() == pytest.approx((0.25 + 1.0) / 2)
    loss.backward()
    assert torch.isfinite(prediction.grad).all()
    assert prediction.grad[1] == 0 and prediction.grad[3] == 0
    assert masked_mse(prediction, torch.full((4,), float("nan"))).item() == 0.0


def test_device_detection_falls_back_to_cpu_and_refuses_a_missing_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert select_device("auto").type == "cpu"
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        select_device("cuda")


# --- training ----------------------------------------------------------------------------------


def test_training_is_deterministic_and_loads_without_pickle(sample_set, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        train_deep_model(sample_set["merged"], run, "atlstm", HYPER["atlstm"], 4, TRAINING, 5, 2)
    assert _sha(runs[0] / "model.pt") == _sha(runs[1] / "model.pt")
    assert (runs[0] / "metrics.csv").read_text() == (runs[1] / "metrics.csv").read_text()
    stored = torch.load(runs[0] / "model.pt", weights_only=True)
    assert stored["model_name"] == "atlstm" and stored["sequence_length"] == 4
    for checkpoint in sorted((runs[0] / "checkpoints").glob("epoch_*.pt")):
        torch.load(checkpoint, weights_only=True)
    assert len(list((runs[0] / "checkpoints").glob("epoch_*.pt"))) == 3
    run = json.loads((runs[0] / "run.json").read_text())
    assert run["seed"] == 5 and run["epochs_run"] == 3 and run["threads"] == 2
    assert json.loads((runs[0] / "scaler.json").read_text())["target_std"] > 0
    # another seed, other weights
    train_deep_model(
        sample_set["merged"], tmp_path / "c", "atlstm", HYPER["atlstm"], 4, TRAINING, 6, 2
    )
    assert _sha(tmp_path / "c" / "model.pt") != _sha(runs[0] / "model.pt")


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("name", ["bilstm", "transformer"])  # both use dropout
def test_resume_after_an_interrupted_epoch_gives_the_uninterrupted_result(
    sample_set, tmp_path, name
):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    train_deep_model(sample_set["merged"], whole, name, HYPER[name], 3, TRAINING, 9, 2)

    def stop_in_epoch_two(epoch, step):
        if epoch == 2 and step == 3:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train_deep_model(
            sample_set["merged"],
            broken,
            name,
            HYPER[name],
            3,
            TRAINING,
            9,
            2,
            step_hook=stop_in_epoch_two,
        )
    assert not (broken / "model.pt").exists()  # nothing final from an interrupted run
    assert [p.name for p in sorted((broken / "checkpoints").glob("*.pt"))] == ["epoch_001.pt"]
    summary = train_deep_model(sample_set["merged"], broken, name, HYPER[name], 3, TRAINING, 9, 2)
    assert summary["resumed_after_epoch"] == 1
    a, _, _ = load_deep_model(whole / "model.pt")
    b, _, _ = load_deep_model(broken / "model.pt")
    for (key, left), (_, right) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(left, right, rtol=0, atol=0, msg=key)
    assert (whole / "metrics.csv").read_text() == (broken / "metrics.csv").read_text()


def test_checkpoints_of_other_settings_are_not_resumed(sample_set, tmp_path):
    run = tmp_path / "run"
    short = dict(TRAINING, epochs=1)
    train_deep_model(sample_set["merged"], run, "lstm", HYPER["lstm"], 2, short, 1, 2)
    other = dict(TRAINING, epochs=1, learning_rate=0.01)
    summary = train_deep_model(sample_set["merged"], run, "lstm", HYPER["lstm"], 2, other, 1, 2)
    assert summary["resumed_after_epoch"] is None


# --- XGBoost and the comparison ----------------------------------------------------------------


def test_xgboost_reads_the_same_samples_and_is_deterministic(sample_set, tmp_path):
    hyper = {
        "n_estimators": 40,
        "max_depth": 4,
        "learning_rate": 0.2,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "early_stopping_rounds": 10,
    }
    runs = [tmp_path / "x1", tmp_path / "x2"]
    summaries = [train_xgboost(sample_set["merged"], r, hyper, 4, "auto", 3, 2) for r in runs]
    assert _sha(runs[0] / "model.ubj") == _sha(runs[1] / "model.ubj")
    deep = train_deep_model(
        sample_set["merged"],
        tmp_path / "deep",
        "lstm",
        HYPER["lstm"],
        4,
        dict(TRAINING, epochs=1),
        3,
        2,
    )
    assert summaries[0]["n_train"] == deep["n_train"]
    assert summaries[0]["n_validation"] == deep["n_validation"]
    assert summaries[0]["samples"] == deep["samples"]
    assert summaries[0]["xgboost_params"]["tree_method"] == "hist"
    booster, length, indicators = load_xgboost(runs[0] / "model.ubj")
    assert length == 4 and indicators == variables.FILL_INDICATORS
    test = features.load_split(sample_set["merged"], "test", 4)
    dynamic = channels(test.dynamic, test.fill_flag, indicators)
    assert flatten(dynamic, test.static).shape[1] == len(feature_names(4, indicators)) == 4 * 10 + 7
    assert booster.feature_names == feature_names(4, indicators)
    predicted = predict_xgboost(booster, dynamic, test.static)
    assert regression_metrics(predicted, test.target)["rmse_m3m3"] < 0.1


def test_regression_metrics_hand_case():
    observed = np.array([0.1, 0.2, 0.3, 0.4])
    predicted = observed + 0.05
    m = regression_metrics(predicted, observed)
    assert m["n"] == 4
    assert m["bias_m3m3"] == pytest.approx(0.05)
    assert m["rmse_m3m3"] == pytest.approx(0.05)
    assert m["pearson_r"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 4 * 0.0025 / 0.05)
    with_gap = regression_metrics(np.array([0.1, np.nan, 0.3]), np.array([0.1, 0.2, np.nan]))
    assert with_gap["n"] == 1 and np.isnan(with_gap["rmse_m3m3"])


def test_comparison_names_a_winner_and_beats_era5land(sample_set, tmp_path):
    runs = {}
    for name in ("lstm", "atlstm"):
        train_deep_model(
            sample_set["merged"],
            tmp_path / name,
            name,
            HYPER[name],
            4,
            dict(TRAINING, epochs=4),
            2,
            2,
        )
        runs[name] = tmp_path / name / "model.pt"
    train_deep_model(
        sample_set["merged"],
        tmp_path / "at1",
        "atlstm",
        HYPER["atlstm"],
        1,
        dict(TRAINING, epochs=2),
        2,
        2,
    )
    train_deep_model(  # a second seed of the LSTM
        sample_set["merged"],
        tmp_path / "lstm_seed1",
        "lstm",
        HYPER["lstm"],
        4,
        dict(TRAINING, epochs=4),
        3,
        2,
    )
    outputs = {
        key: tmp_path / "cmp" / name
        for key, name in {
            "metrics": "metrics.csv",
            "sequence_length": "sequence_length.csv",
            "attention": "attention.csv",
            "scatter": "scatter.png",
            "length_figure": "length.png",
            "attention_figure": "attention.png",
            "summary": "summary.html",
            "summary_json": "summary.json",
        }.items()
    }
    summary = compare_models(
        sample_set["merged"],
        runs,
        {1: tmp_path / "at1" / "model.pt", 4: runs["atlstm"]},
        "atlstm",
        0.4,
        outputs,
        replicate_runs={"lstm": [tmp_path / "lstm_seed1" / "model.pt"]},
    )
    assert summary["winner"] in runs
    assert summary["winner"] in summary["statement"]
    assert summary["rmse_reduction_vs_baseline"] > 0.3
    assert len(summary["rmse_by_seed"]["lstm"]) == 2 and len(summary["rmse_by_seed"]["atlstm"]) == 1
    assert summary["rmse_by_seed"]["lstm"][0] != summary["rmse_by_seed"]["lstm"][1]
    test = summary["ranking_test"]
    assert test["seeds"] in ([2, 1], [1, 2]) and test["pixels"] > 10
    assert test["low_m3m3"] <= test["difference_m3m3"] <= test["high_m3m3"]
    assert summary["winner_distinguishable_from_runner_up"] == (test["high_m3m3"] < 0)
    assert "paired bootstrap over" in summary["statement"]
    metrics = outputs["metrics"].read_text().splitlines()
    assert metrics[0].startswith("model,sequence_length,subset,n,r2,rmse_m3m3")
    # all, wet, every input observed, gap-filled on the day, simulated gap
    assert sum(line.startswith("era5land_swvl1,") for line in metrics) == 5
    assert any(",simulated_gap," in line for line in metrics)
    attention = outputs["attention"].read_text().splitlines()
    assert len(attention) == 1 + 1 + 4  # header, L=1, L=4
    for key in ("scatter", "length_figure", "attention_figure"):
        assert outputs[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = outputs["summary"].read_text()
    assert "has the lowest RMSE on the test split (days with a GLASS-MODIS target)" in page
    # no verdict from R² where the target range is too narrow; the figures are on the page
    wet_rows = [row for row in page.split("<tr>") if "target_above_0.4" in row]
    assert wet_rows and all("<td>n/a*</td>" in row for row in wet_rows)
    if "Above 0.4" in summary["statement"]:
        assert "no model is ranked there" in summary["statement"]
    for name in ("scatter.png", "length.png", "attention.png"):
        assert f"<img src='{name}'" in page


def test_paired_bootstrap_finds_a_real_lead_and_calls_a_seed_noise_margin_level():
    rng = np.random.default_rng(0)
    pixel = np.repeat(np.arange(200), 10)
    target = rng.uniform(0.1, 0.4, pixel.size)
    better = target + rng.normal(0, 0.010, pixel.size)
    worse = target + rng.normal(0, 0.020, pixel.size)
    lead = paired_rmse_difference([better], [worse], target, pixel, resamples=400)
    assert lead["pixels"] == 200 and lead["seeds"] == [1, 1]
    assert lead["difference_m3m3"] == pytest.approx(-0.010, abs=0.002)
    assert lead["high_m3m3"] < 0
    # a 0.0003 margin between two models whose seeds spread by 0.004: level
    seeds_a = [target + rng.normal(0, sd, pixel.size) for sd in (0.013, 0.017)]
    seeds_b = [target + rng.normal(0, sd, pixel.size) for sd in (0.0153, 0.0153)]
    level = paired_rmse_difference(seeds_a, seeds_b, target, pixel, resamples=400)
    assert level["low_m3m3"] < 0 < level["high_m3m3"]
    same = paired_rmse_difference([better], [better], target, pixel, resamples=50)
    assert same["difference_m3m3"] == 0 and same["low_m3m3"] == same["high_m3m3"] == 0


def test_a_damaged_model_file_is_named(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(Exception, match="model.pt"):
        load_deep_model(bad)
    shutil.rmtree(tmp_path)


def test_samples_and_split_drawn_in_two_workers_equal_the_serial_ones(
    sample_set, test_stacks, test_config, tmp_path
):
    """Tiles scanned and gathered (and target years counted) by two processes: the same
    samples and the same split map as in one."""
    settings = test_config["samples"]
    stack = test_stacks["stacks"][2001]
    drawn = {}
    for workers in (1, 2):
        drawn[workers] = tmp_path / f"samples_{workers}.zarr"
        samples.draw_year_samples(
            drawn[workers], 2001, stack, None, test_stacks["static"], sample_set["split"],
            test_config["region"], 0.25, settings, test_config["seed"], {}, workers=workers,
        )  # fmt: skip
    serial, parallel = (xr.open_zarr(drawn[w]).load() for w in (1, 2))
    assert serial.sizes["sample"] > 0
    xr.testing.assert_identical(serial, parallel)
    split = tmp_path / "split.zarr"
    splitting.build_split_map(
        split, list(test_stacks["stacks"].values()), test_stacks["static"],
        test_config["region"], settings, test_config["seed"], {}, workers=2,
    )  # fmt: skip
    xr.testing.assert_identical(
        xr.open_zarr(split).load(), xr.open_zarr(sample_set["split"]).load()
    )


def test_the_learning_rate_scales_with_the_square_root_of_the_batch():
    from avhrrsm.config import validate_config
    from avhrrsm.learn.train import batch_learning_rate

    default = validate_config({})["training"]
    assert batch_learning_rate(default) == default["learning_rate"]  # the default run unchanged
    large = {**default, "batch_size": 4 * default["reference_batch_size"]}
    assert batch_learning_rate(large) == pytest.approx(2 * default["learning_rate"])
    assert batch_learning_rate(TRAINING) == TRAINING["learning_rate"]  # no reference: as given
