"""Inference tiles and the daily product: mosaic = whole region, year boundary, seamless,
packing, CF compliance, bounded memory, determinism."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import xarray as xr

from avhrrsm.grid import region_window, tiles
from avhrrsm.hashing import file_sha256
from avhrrsm.infer import (
    DeviceInputs,
    RawBlock,
    _predict_batches,
    _predict_block,
    block_days,
    day_windows,
    predict_tile,
    prepare_static_inputs,
    tile_workers,
    worker_segments,
)
from avhrrsm.learn.features import float32_bounds
from avhrrsm.learn.predictor import load_predictor
from avhrrsm.learn.uncertainty import ErrorModel, class_shape, input_states, read_error_model
from avhrrsm.product import product_file_name, write_year_product
from avhrrsm.variables import (
    DYNAMIC_FEATURES,
    FLAG_CLIPPED,
    FLAG_GAP_FILLED,
    FLAG_OUTSIDE_TRAINING,
    FLAG_SHORT_HISTORY,
    STATIC_FEATURES,
)

INFERENCE = {"model": "atlstm", "device": "auto", "batch_size": 0, "memory_budget_mb": 1500}
PRODUCT = {
    "version": "1.0",
    "scale_factor": 0.0001,
    "valid_range": [0.0, 0.6],
    "memory_budget_mb": 2000,
    "institution": "avhrrsm tests",
}


def _predict_all(
    folder, year, tile_deg, test_stacks, test_config, model_path, previous=None,
    uncertainty=None, **kw,
):  # fmt: skip
    paths = {}
    window = region_window(test_config["region"])
    for tile_id, _ in tiles(window, tile_deg):
        paths[tile_id] = folder / f"{year}_{tile_id}.zarr"
        predict_tile(
            paths[tile_id],
            year,
            tile_id,
            tile_deg,
            test_stacks["stacks"][year],
            previous,
            test_stacks["static"],
            model_path,
            test_config["region"],
            {**INFERENCE, **kw},
            PRODUCT["valid_range"],
            {"avhrrsm_rule": "inference_tile"},
            threads=2,
            uncertainty_path=uncertainty,
        )
    return paths


@pytest.fixture(scope="module")
def products(test_stacks, test_config, model_path, uncertainty_path, tmp_path_factory):
    """The 2001 product made from 0.5 degree tiles and from 10 degree tiles."""
    out = {}
    for tile_deg in (0.5, 10):
        folder = tmp_path_factory.mktemp(f"tiles{tile_deg}")
        paths = _predict_all(
            folder, 2001, tile_deg, test_stacks, test_config, model_path,
            uncertainty=uncertainty_path,
        )  # fmt: skip
        product_dir = folder / "product"
        counts = write_year_product(
            product_dir,
            folder / "summary.png",
            2001,
            paths,
            test_stacks["static"],
            test_config["region"],
            tile_deg,
            PRODUCT,
            model_path,
            "atlstm",
            {"avhrrsm_config_sha256": "0" * 64},
        )
        out[tile_deg] = {"dir": product_dir, "tiles": paths, "counts": counts, "folder": folder}
    return out


def test_tile_mosaic_equals_a_whole_region_run(products):
    small, large = products[0.5], products[10]
    assert len(small["tiles"]) > len(large["tiles"])
    for day in ("20010101", "20010615", "20011231"):
        name = f"avhrrsm_sm_{day}_v1.0.nc"
        with xr.open_dataset(small["dir"] / name, mask_and_scale=False) as a:
            with xr.open_dataset(large["dir"] / name, mask_and_scale=False) as b:
                np.testing.assert_array_equal(a["quality_flag"].values, b["quality_flag"].values)
                diff = np.abs(a["soil_moisture"].values.astype(int) - b["soil_moisture"].values)
                assert diff.max() <= 1  # at most one count (1e-4 m3 m-3) of float rounding


def test_every_land_pixel_has_a_value_every_day(products, test_stacks):
    product = products[0.5]
    land = xr.open_zarr(test_stacks["static"])["land_mask"].values.astype(bool)
    files = sorted(product["dir"].glob("*.nc"))
    assert len(files) == 365 and files[0].name == "avhrrsm_sm_20010101_v1.0.nc"
    with xr.open_mfdataset(files, combine="by_coords") as ds:
        sm = ds["soil_moisture"].values
    assert np.isfinite(sm[:, land]).all()
    assert np.isnan(sm[:, ~land]).all()
    assert product["counts"]["land_pixel_days"] == int(land.sum()) * 365


def test_product_reads_back_to_the_predictions(products):
    product = products[0.5]
    tile_id, path = next(iter(product["tiles"].items()))
    predicted = xr.open_zarr(path).load()
    with xr.open_dataset(
        product["dir"] / product_file_name(predicted.time.to_index()[40], "1.0")
    ) as ds:
        assert ds["soil_moisture"].attrs["units"] == "m3 m-3"
        assert ds["soil_moisture"].encoding["dtype"] == np.int16
        decoded = ds["soil_moisture"].sel(lat=predicted.lat, lon=predicted.lon).values[0]
        assert ds.attrs["model"] == "atlstm" and len(ds.attrs["model_checkpoint_sha256"]) == 64
        assert ds.attrs["avhrrsm_config_sha256"] == "0" * 64
    expected = predicted["soil_moisture"].values[40]
    land = np.isfinite(expected)
    assert land.any()
    np.testing.assert_allclose(decoded[land], expected[land], atol=0.5e-4 + 1e-7)


def test_every_pixel_day_has_the_standard_error_of_its_class(
    products, test_stacks, test_config, uncertainty_path
):
    """The tile's sm_uncertainty is the error model's value for the pixel-day's class (the
    day's stack fill flags, the range and history bits, the clipped value), on every land
    pixel-day; the daily file holds it packed as the soil moisture is, an ancillary variable
    of it."""
    product = products[10]
    error_model = read_error_model(uncertainty_path)
    stack = xr.open_zarr(test_stacks["stacks"][2001])
    fill_flags = np.stack([stack[f"{n}_fill_flag"].values for n in DYNAMIC_FEATURES], axis=-1)
    window = region_window(test_config["region"])
    layout = dict(tiles(window, 10))
    mosaic = np.full((365, *window.shape), np.nan, np.float32)
    for tile_id, path in product["tiles"].items():
        rows, cols = layout[tile_id].within(window)
        tile = xr.open_zarr(path).load()
        land = np.isfinite(tile["soil_moisture"].values)
        quality = tile["quality_flag"].values
        expected = error_model.standard_error(
            input_states(fill_flags[:, rows, cols])[land],
            (quality[land] & FLAG_OUTSIDE_TRAINING) > 0,
            (quality[land] & FLAG_SHORT_HISTORY) > 0,
            tile["soil_moisture"].values[land],
        )
        uncertainty = tile["sm_uncertainty"].values
        np.testing.assert_array_equal(uncertainty[land], expected)
        assert (uncertainty[land] > 0).all() and np.isnan(uncertainty[~land]).all()
        assert tile.attrs["uncertainty_model_sha256"] == file_sha256(uncertainty_path)
        mosaic[:, rows, cols] = uncertainty
    land = np.isfinite(mosaic[40])
    assert land.any() and np.unique(mosaic[np.isfinite(mosaic)]).size > 1
    day = xr.open_zarr(path).time.to_index()[40]
    with xr.open_dataset(product["dir"] / product_file_name(day, "1.0")) as ds:
        assert ds["soil_moisture"].attrs["ancillary_variables"] == "sm_uncertainty quality_flag"
        assert ds["sm_uncertainty"].encoding["dtype"] == np.int16
        assert ds["sm_uncertainty"].attrs["standard_name"] == (
            "volume_fraction_of_condensed_water_in_soil standard_error"
        )
        decoded = ds["sm_uncertainty"].values[0]
    np.testing.assert_allclose(decoded[land], mosaic[40][land], atol=0.5e-4 + 1e-7)
    assert np.isnan(decoded[~land]).all()


def test_daily_files_pass_the_cf_compliance_checker(products, tmp_path):
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite.load_all_available_checkers()
    path = products[0.5]["dir"] / "avhrrsm_sm_20010301_v1.0.nc"
    report = tmp_path / "cf.json"
    passed, errors = ComplianceChecker.run_checker(
        str(path), ["cf:1.8"], 0, "normal", output_filename=str(report), output_format="json"
    )
    results = json.loads(report.read_text())["cf:1.8"]
    failures = [r["name"] for r in results["high_priorities"] if r["value"][0] < r["value"][1]]
    assert passed and not errors and not failures, failures


def test_product_bytes_are_reproducible(products, test_stacks, test_config, model_path, tmp_path):
    """Written again in two worker processes (blocks of days in parallel): the same bytes."""
    product = products[0.5]
    again = tmp_path / "again"
    write_year_product(
        again,
        tmp_path / "summary.png",
        2001,
        product["tiles"],
        test_stacks["static"],
        test_config["region"],
        0.5,
        PRODUCT,
        model_path,
        "atlstm",
        {"avhrrsm_config_sha256": "0" * 64},
        workers=2,
    )
    for name in ("avhrrsm_sm_20010101_v1.0.nc", "avhrrsm_sm_20010930_v1.0.nc"):
        first = hashlib.sha256((product["dir"] / name).read_bytes()).hexdigest()
        second = hashlib.sha256((again / name).read_bytes()).hexdigest()
        assert first == second
    assert (tmp_path / "summary.png").read_bytes() == (
        product["folder"] / "summary.png"
    ).read_bytes()


def test_a_missing_tile_or_a_hole_is_refused(
    products, test_stacks, test_config, model_path, tmp_path
):
    tiles_05 = dict(products[0.5]["tiles"])
    tiles_05.pop(next(iter(tiles_05)))
    with pytest.raises(ValueError, match="inference tiles missing"):
        write_year_product(
            tmp_path / "p", tmp_path / "s.png", 2001, tiles_05, test_stacks["static"],
            test_config["region"], 0.5, PRODUCT, model_path, "atlstm", {},
        )  # fmt: skip
    assert not (tmp_path / "p").exists()
    # a tile store with a hole over land
    holed = dict(products[0.5]["tiles"])
    tile_id, path = next(iter(holed.items()))
    copy = tmp_path / "holed.zarr"
    store = xr.open_zarr(path).load()
    land_pixel = np.argwhere(np.isfinite(store["soil_moisture"].values[3]))[0]
    store["soil_moisture"].values[3, land_pixel[0], land_pixel[1]] = np.nan
    for name in store.variables:
        store[name].encoding = {}
    store.to_zarr(copy)
    holed[tile_id] = copy
    with pytest.raises(
        Exception, match="without a prediction or its uncertainty, first on 2001-01-04"
    ):
        write_year_product(
            tmp_path / "p", tmp_path / "s.png", 2001, holed, test_stacks["static"],
            test_config["region"], 0.5, PRODUCT, model_path, "atlstm", {},
        )  # fmt: skip
    assert not (tmp_path / "p").exists()


def _stack_of_2014(test_stacks, folder):
    """The 2001 stack relabelled as 2014 (the year before the 2015 stack), and its path."""
    source = xr.open_zarr(test_stacks["stacks"][2001]).load()
    days = np.arange("2014-01-01", "2015-01-01", dtype="datetime64[D]").astype("datetime64[ns]")
    previous = source.isel(time=slice(0, days.size)).assign_coords(time=days)
    for name in previous.variables:
        previous[name].encoding = {}
    previous_path = folder / "2014.zarr"
    previous.to_zarr(previous_path)
    return previous, previous_path


def test_year_boundary_sequences_use_the_previous_year(
    test_stacks, test_config, model_path, tmp_path
):
    previous, previous_path = _stack_of_2014(test_stacks, tmp_path)
    with_previous = _predict_all(
        tmp_path / "with", 2015, 10, test_stacks, test_config, model_path, previous_path
    )
    without = _predict_all(tmp_path / "without", 2015, 10, test_stacks, test_config, model_path)
    tile_id = next(iter(with_previous))
    a = xr.open_zarr(with_previous[tile_id]).load()
    b = xr.open_zarr(without[tile_id]).load()
    land = np.isfinite(a["soil_moisture"].values[0])
    # the first 3 days differ (another history) and only the padded run is flagged
    assert not np.array_equal(
        a["soil_moisture"].values[0][land], b["soil_moisture"].values[0][land]
    )
    assert ((b["quality_flag"].values[:3][:, land] & FLAG_SHORT_HISTORY) > 0).all()
    assert ((a["quality_flag"].values[:, land] & FLAG_SHORT_HISTORY) == 0).all()
    assert ((b["quality_flag"].values[3:][:, land] & FLAG_SHORT_HISTORY) == 0).all()
    np.testing.assert_array_equal(a["soil_moisture"].values[3:], b["soil_moisture"].values[3:])
    # 1 January 2015 equals the model applied by hand to 29-31 December 2014 and 1 January 2015
    predictor = load_predictor(model_path, "cpu")
    current = xr.open_zarr(test_stacks["stacks"][2015]).load()
    static = xr.open_zarr(test_stacks["static"]).load()
    r, c = np.argwhere(land)[0]
    row = int(np.flatnonzero(current["lat"].values == a["lat"].values[r])[0])
    col = int(np.flatnonzero(current["lon"].values == a["lon"].values[c])[0])
    names = ("albedo_bsa_vis", "albedo_bsa_nir", "albedo_bsa_shortwave", "lst", "era5land_swvl1")

    def by_hand_series(suffix: str) -> np.ndarray:
        return np.stack(
            [
                np.concatenate(
                    [
                        previous[n + suffix].values[-3:, row, col],
                        current[n + suffix].values[:1, row, col],
                    ]
                )
                for n in names
            ],
            axis=-1,
        )[None]

    sequence = by_hand_series("").astype(np.float32)
    fill_flags = by_hand_series("_fill_flag")
    layers = STATIC_FEATURES
    static_values = np.array([[static[n].values[row, col] for n in layers]], np.float32)
    by_hand = predictor(
        predictor.prepare_dynamic(sequence, fill_flags), predictor.prepare_static(static_values)
    )
    assert a["soil_moisture"].values[0, r, c] == pytest.approx(float(by_hand[0]), abs=1e-6)


def test_day_windows_are_the_sequences_ending_on_each_day():
    series = np.arange(6 * 2 * 1, dtype=np.float32).reshape(6, 2, 1)  # 6 days, 2 pixels
    windows = day_windows(series, 3, slice(0, 4))
    assert windows.shape == (4, 2, 3, 1)
    np.testing.assert_array_equal(windows[0, 1, :, 0], series[0:3, 1, 0])
    np.testing.assert_array_equal(windows[3, 0, :, 0], series[3:6, 0, 0])


def _host_reference(predictor, raw, static_land, length, days_per_batch, pixels_per_batch):
    """A raw block predicted the plain way, on the host: NumPy normalisation and range test
    (float64 bounds), host windows batch by batch, the quality bits day by day."""
    scaler = predictor.scaler
    n_inputs = raw.series.shape[-1]
    normalised = (raw.series - scaler.dynamic_mean.astype(np.float32)) * (
        1.0 / scaler.dynamic_std
    ).astype(np.float32)
    indicators = (raw.fill_flags > 0).astype(np.float32)  # every input has its indicator
    prepared = np.concatenate([normalised, indicators], axis=-1)
    assert scaler.n_model_dynamic == 2 * n_inputs
    static = (static_land - scaler.static_mean.astype(np.float32)) * (
        1.0 / scaler.static_std
    ).astype(np.float32)
    values = _predict_batches(predictor, prepared, static, length, days_per_batch, pixels_per_batch)
    n_days = values.shape[0]
    outside = ((raw.series < scaler.dynamic_min) | (raw.series > scaler.dynamic_max)).any(-1)
    static_outside = ((static_land < scaler.static_min) | (static_land > scaler.static_max)).any(-1)
    flags = np.zeros(values.shape, np.int8)
    for day in range(n_days):
        flags[day] |= np.where((raw.fill_flags[day + length - 1] > 0).any(-1), FLAG_GAP_FILLED, 0)
        window = outside[day : day + length].any(0) | static_outside
        flags[day] |= np.where(window, FLAG_OUTSIDE_TRAINING, 0).astype(np.int8)
        if raw.short and day < length - 1:
            flags[day] |= FLAG_SHORT_HISTORY
    lo, hi = 0.0, 0.6
    flags |= np.where((values < lo) | (values > hi), FLAG_CLIPPED, 0).astype(np.int8)
    return np.clip(values, lo, hi), flags


def test_a_raw_block_prepared_on_the_device_equals_the_host_path_bit_for_bit(model_path):
    """The device path (raw block to the device once; normalisation, fill indicators, range
    test, windows by unfold and static broadcast as tensor operations; one copy back) gives
    the same bits as the host path, whether a batch holds several days or part of one day."""
    predictor = load_predictor(model_path, "cpu", threads=1)
    scaler = predictor.scaler
    rng = np.random.default_rng(3)
    length, n_days, n_pixels = predictor.sequence_length, 9, 37
    span = scaler.dynamic_max - scaler.dynamic_min
    series = rng.uniform(
        scaler.dynamic_min - 0.05 * span,
        scaler.dynamic_max + 0.05 * span,
        (length - 1 + n_days, n_pixels, len(scaler.dynamic_features)),
    ).astype(np.float32)
    fill_flags = rng.choice(np.array([0, 1, 2], np.int8), series.shape, p=[0.8, 0.1, 0.1])
    static_span = scaler.static_max - scaler.static_min
    static_land = rng.uniform(
        scaler.static_min - 0.02 * static_span,
        scaler.static_max + 0.02 * static_span,
        (n_pixels, len(STATIC_FEATURES)),
    ).astype(np.float32)
    static_inputs = prepare_static_inputs(predictor, static_land)
    # an error model whose every class has a value of its own
    shape = class_shape(3)
    error_model = ErrorModel(
        (0.2, 0.3), np.arange(1, np.prod(shape) + 1, dtype=np.float64).reshape(shape) / 1000,
        np.full(shape, 100), np.zeros(shape, np.int64), 0.0, 50,
    )  # fmt: skip
    seen = np.int8(0)
    for short in (True, False):
        raw = RawBlock(series, fill_flags, short)
        for batch in (4 * n_pixels, 10, n_days * n_pixels):
            days_per_batch, pixels_per_batch = max(1, batch // n_pixels), min(n_pixels, batch)
            values, uncertainty, flags = _predict_block(
                predictor, DeviceInputs(torch.device("cpu")), raw, static_inputs, length,
                batch, 0.0, 0.6, error_model,
            )  # fmt: skip
            ref_values, ref_flags = _host_reference(
                predictor, raw, static_land, length, days_per_batch, pixels_per_batch
            )
            assert values.shape == (n_days, n_pixels)
            np.testing.assert_array_equal(values, ref_values)
            np.testing.assert_array_equal(flags, ref_flags)
            # the device lookup is the host one of the same classes
            ref_uncertainty = error_model.standard_error(
                input_states(fill_flags[length - 1 :]),
                (ref_flags & FLAG_OUTSIDE_TRAINING) > 0,
                (ref_flags & FLAG_SHORT_HISTORY) > 0,
                ref_values,
            )
            np.testing.assert_array_equal(uncertainty, ref_uncertainty)
            assert np.unique(uncertainty).size > 5  # classes told apart
            seen |= np.bitwise_or.reduce(ref_flags, axis=None)
            assert ((ref_flags & FLAG_OUTSIDE_TRAINING) == 0).any()  # the range test tells apart
    assert seen & (FLAG_GAP_FILLED | FLAG_OUTSIDE_TRAINING | FLAG_SHORT_HISTORY) == 7


def test_float32_bounds_give_the_float64_range_test():
    """The range test on the device compares float32 values with float32 bounds; for every
    float32 value it answers as the float64 comparison with the training range does."""
    rng = np.random.default_rng(5)
    lo = rng.uniform(-10, 10, 200)
    hi = lo + rng.uniform(0, 5, 200)
    lo[0], hi[0] = 0.1, 0.1  # not representable in float32
    lo[1], hi[1] = 0.5, 0.5  # exactly representable
    lo32, hi32 = float32_bounds(lo, hi)
    for bound in (lo, hi):
        near = bound.astype(np.float32)
        for values in (near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, -np.inf)):
            values = values.astype(np.float32)
            np.testing.assert_array_equal(values < lo32, values < lo)
            np.testing.assert_array_equal(values > hi32, values > hi)


def test_block_memory_is_bounded_whatever_the_tile_size():
    small = block_days(10_000, 365, 4, 1500, 32)
    assert small == 32
    huge = block_days(1800 * 1800, 365, 4, 1500, 32)  # a 90-degree tile
    assert 1 <= huge < 32 and 32 % huge == 0  # blocks never share a chunk of the tile store
    per_day_bytes = 1800 * 1800 * 5 * 9 * 1.5
    assert (huge + 3) * per_day_bytes <= 1500 * 2**20
    assert block_days(10**9, 365, 4, 100, 32) == 1
    assert block_days(10_000, 20, 4, 1500, 32) == 20  # a short run: one block
    assert block_days(1800 * 1800, 365, 4, 1500, 30) in (3, 2)  # the largest divisor held


def test_workers_split_the_blocks_in_runs_of_whole_chunks():
    blocks = [(s, min(365, s + 8)) for s in range(0, 365, 8)]  # 8-day blocks, 32-day chunks
    runs = worker_segments(blocks, 3, 32)
    assert len(runs) == 3 and [b for run in runs for b in run] == blocks
    for run in runs:
        assert run[0][0] % 32 == 0  # each run starts a chunk: no chunk is written by two
        assert all(a[1] == b[0] for a, b in zip(run, run[1:], strict=False))  # contiguous
    assert max(map(len, runs)) - min(map(len, runs)) <= 4  # as even as whole chunks allow
    assert worker_segments(blocks[:2], 4, 32) == [blocks[:2]]  # one chunk: one worker
    assert worker_segments([], 2, 32) == []
    # the job's threads, never more than the blocks or than the memory holds
    assert tile_workers(0, 4, 12, 100, 1500) == 4
    assert tile_workers(0, 4, 2, 100, 1500) == 2
    assert tile_workers(0, 16, 12, 600, 1500) == 2
    assert tile_workers(3, 1, 12, 100, 1500) == 3
    assert tile_workers(0, 0, 12, 5000, 1500) == 1


def test_a_tile_job_gives_the_same_bytes_on_any_number_of_workers(
    test_stacks, test_config, model_path, tmp_path, monkeypatch
):
    """Blocks shorter than the chunks, spread over one, two or three workers (each carrying
    its history from block to block, or reading it across 1 January from the previous year):
    the same values and flags, bit for bit, as one worker reading block by block."""
    import avhrrsm.infer as infer

    _, previous_path = _stack_of_2014(test_stacks, tmp_path)
    monkeypatch.setattr(infer, "block_days", lambda *args: 8)
    window = region_window(test_config["region"])
    land_mask = xr.open_zarr(test_stacks["static"])["land_mask"].values.astype(bool)
    tile_id = next(  # a tile with water: its land pixels are gathered
        tile_id
        for tile_id, tile in tiles(window, 0.5)
        if 0 < land_mask[tile.within(window)].mean() < 1
    )
    stores = {}
    for workers, previous_stack in (
        (1, None),
        (2, None),
        (3, None),
        (1, previous_path),
        (3, previous_path),
    ):
        out = tmp_path / f"{workers}_{previous_stack is not None}.zarr"
        predict_tile(
            out, 2015, tile_id, 0.5, test_stacks["stacks"][2015], previous_stack,
            test_stacks["static"], model_path, test_config["region"],
            {**INFERENCE, "workers": workers}, PRODUCT["valid_range"], {}, threads=1,
        )  # fmt: skip
        stores[workers, previous_stack is not None] = xr.open_zarr(out).load()
    land = np.isfinite(stores[1, False]["soil_moisture"].values[0])
    assert land.any() and not land.all()
    for with_previous in (False, True):
        one = stores[1, with_previous]
        for workers in (2, 3) if not with_previous else (3,):
            other = stores[workers, with_previous]
            for name in ("soil_moisture", "quality_flag"):
                np.testing.assert_array_equal(one[name].values, other[name].values)
    # the runs read across 1 January only at the year's start
    short = (stores[1, False]["quality_flag"].values[:, land] & FLAG_SHORT_HISTORY) > 0
    assert short[:3].all() and not short[3:].any()
    assert not (stores[3, True]["quality_flag"].values[:, land] & FLAG_SHORT_HISTORY).any()


def test_inference_runs_on_the_detected_device(model_path):
    predictor = load_predictor(model_path, "auto", threads=1)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert predictor.device.type == expected
    assert torch.get_num_threads() == 1


def test_a_compiled_model_gives_the_eager_tile_to_float32_rounding(
    test_stacks, test_config, model_path, tmp_path
):
    """inference.compile: the tile through torch.compile (in two forked workers, each compiling
    at its first batch) holds the eager tile's values to 1e-6 m3 m-3 (float32 rounding of fused
    operations; measured 0 to 4e-7 on the normalised outputs) and the same flags, and its
    provenance says which path ran."""
    window = region_window(test_config["region"])
    tile_id = next(tile_id for tile_id, _ in tiles(window, 0.5))
    stores = {}
    for compiled in (False, True):
        out = tmp_path / f"compiled_{compiled}.zarr"
        predict_tile(
            out, 2001, tile_id, 0.5, test_stacks["stacks"][2001], None, test_stacks["static"],
            model_path, test_config["region"], {**INFERENCE, "workers": 2, "compile": compiled},
            PRODUCT["valid_range"], {}, threads=2,
        )  # fmt: skip
        stores[compiled] = xr.open_zarr(out).load()
    eager, compiled = stores[False], stores[True]
    assert np.isfinite(eager["soil_moisture"].values).any()
    np.testing.assert_allclose(
        compiled["soil_moisture"].values, eager["soil_moisture"].values, rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(compiled["quality_flag"].values, eager["quality_flag"].values)
    assert eager.attrs["inference_compiled"] == "eager"
    assert compiled.attrs["inference_compiled"] == "torch.compile (inductor)"
