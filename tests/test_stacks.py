"""Per-year stacks: gap filling, grid checks, ERA5-Land daily means, the stack of a synthetic year."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from avhrrsm.config import validate_config
from avhrrsm.grid import region_window, window_for_bounds
from avhrrsm.io.errors import InputError
from avhrrsm.io.netcdf import NcVar, write_netcdf
from avhrrsm.stacks import build_year_stack, era5land_daily_on_grid, fill_gaps, missing_keys
from avhrrsm.static import build_static_layers
from avhrrsm.variables import (
    FLAG_ANNUAL,
    FLAG_INTERPOLATED,
    FLAG_NEAREST,
    FLAG_OBSERVED,
    FLAG_SEASONAL,
    FLAG_WATER,
    INPUTS,
    TARGET,
)


def test_fill_gaps_hand_case():
    series = np.array([1.0, np.nan, np.nan, 4.0] + [np.nan] * 8 + [10.0, 10.0])
    values = np.stack([series, series, np.full(14, np.nan)], axis=1)[:, :, None]  # (t, 3, 1)
    land = np.array([[True], [False], [True]])
    filled, flag = fill_gaps(values, land, max_interp_days=3, seasonal_window_days=5)
    pixel = filled[:, 0, 0]
    assert pixel[:4].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert flag[1, 0, 0] == FLAG_INTERPOLATED and flag[0, 0, 0] == FLAG_OBSERVED
    # day 5 is 2 days after the last observation (day 3): the +-2 day window holds only 4.0
    assert pixel[5] == pytest.approx(4.0) and flag[5, 0, 0] == FLAG_SEASONAL
    # day 7 has no observation within +-2 days and no land pixel observed that day:
    # the pixel's mean of the year; the never-observed pixel takes its nearest land pixel's
    assert pixel[7] == pytest.approx(6.25) and flag[7, 0, 0] == FLAG_ANNUAL
    assert flag[7, 2, 0] == FLAG_NEAREST and flag[2, 2, 0] == FLAG_NEAREST
    # the water pixel stays empty, the never-observed land pixel copies its nearest neighbour
    assert np.isnan(filled[:, 1, 0]).all() and (flag[:, 1, 0] == FLAG_WATER).all()
    assert np.isfinite(filled[:, 2, 0]).all()
    np.testing.assert_allclose(filled[:, 2, 0], pixel)


def test_grid_alignment_is_checked(tmp_path):
    """A GLASS HDF4 band that is not the global 0.05 degree grid, and a GLASS-MODIS GeoTIFF
    that is not sinusoidal, are refused with the file named."""
    from pyhdf.SD import SD, SDC

    from avhrrsm.io.glass import read_glass_sds
    from avhrrsm.io.glass_modis import glass_modis_on_grid
    from avhrrsm.io.layouts import GLASS_LST
    from avhrrsm.io.rasters import write_geotiff

    window = window_for_bounds(0.0, 44.9, 0.1, 45.0)
    path = tmp_path / "GLASS08B31.V40.A2001001.2021047.hdf"
    hdf = SD(str(path), SDC.WRITE | SDC.CREATE)
    sds = hdf.create("LST", SDC.UINT16, (360, 720))  # a 0.5 degree subset, not the CMG grid
    sds[:] = np.full((360, 720), 29000, np.uint16)
    sds.endaccess()
    hdf.end()
    with pytest.raises(InputError, match="not the global 0.05 degree grid") as info:
        read_glass_sds(path, GLASS_LST, "lst", window)
    assert str(path) in str(info.value)
    geographic = write_geotiff(
        tmp_path / "GLASS_MODIS_SM_A2001001.tif",
        np.full((4, 4), 0.2, np.float32),
        0,
        45,
        0.01,
        -9999.0,
    )
    with pytest.raises(InputError, match="not the MODIS sinusoidal projection"):
        glass_modis_on_grid([geographic], window, 0.5)


def _write_era5(
    path,
    seconds: np.ndarray,
    values: np.ndarray,
    lat: tuple[float, ...] | np.ndarray = (45.0, 44.9),
    lon: tuple[float, ...] | np.ndarray = (0.0, 0.1),
) -> None:
    """Hourly swvl1 in the new CDS NetCDF layout, by default on a 2 x 2 grid (45.0/44.9 N,
    0.0/0.1 E)."""
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    write_netcdf(
        path,
        {"valid_time": seconds.size, "latitude": lat.size, "longitude": lon.size},
        {
            "valid_time": NcVar(
                ("valid_time",), seconds, np.int64, {"units": "seconds since 1970-01-01"}
            ),
            "latitude": NcVar(("latitude",), lat),
            "longitude": NcVar(("longitude",), lon),
            "swvl1": NcVar(
                ("valid_time", "latitude", "longitude"),
                values,
                np.float32,
                {"units": "m**3 m**-3"},
                np.float32(np.nan),
            ),
        },
    )


def test_era5land_daily_mean_needs_24_hours(tmp_path):
    hours = pd.date_range("2001-01-01", periods=48, freq="h")
    values = np.full((48, 2, 2), 0.2, dtype=np.float32)
    values[24:] = 0.4
    values[30, 0, 0] = np.nan  # one missing hour on day 2 at one point
    seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy()
    path = tmp_path / "era.nc"
    _write_era5(path, seconds, values)
    window = window_for_bounds(0.0, 44.9, 0.1, 45.0)
    day = pd.Timestamp
    assert np.allclose(era5land_daily_on_grid(path, window, day("2001-01-01")), 0.2)
    # the point with a missing hour drops out of day 2; its neighbours carry the cells
    assert np.allclose(era5land_daily_on_grid(path, window, day("2001-01-02")), 0.4)
    assert np.isnan(
        era5land_daily_on_grid(path, window, day("2001-01-03"))
    ).all()  # no hours at all

    counts: dict[str, int] = {}
    values[24:] = np.nan  # day 2 entirely fill: counted and logged, not silently filled
    path.unlink()
    _write_era5(path, seconds, values)
    era5land_daily_on_grid(path, window, day("2001-01-01"), counts)
    era5land_daily_on_grid(path, window, day("2001-01-02"), counts)
    assert counts == {"era5land_swvl1 (all fill)": 1}
    # a file that covers only part of the region is an error naming the file
    wider = window_for_bounds(0.0, 44.9, 0.2, 45.0)
    with pytest.raises(InputError, match=r"2 column\(s\) of the region .* lie outside it") as info:
        era5land_daily_on_grid(path, wider, day("2001-01-01"))
    assert str(path) in str(info.value)


def test_era5land_global_file_covers_both_edges_of_the_dateline(tmp_path):
    """ERA5-Land as the CDS gives the globe (longitudes 0..359.9) carries the cells at both
    edges of -180..180: west of -179.9 from the 180 and -179.9 columns, east of 179.9 from
    179.9 and 180; the values are the bilinear interpolation across the dateline."""
    lon = np.round(0.1 * np.arange(3600), 6)
    lat = np.array([45.0, 44.9])
    hours = pd.date_range("2001-01-01", periods=24, freq="h")
    field = (0.3 + 0.1 * np.cos(np.deg2rad(lon)))[None, None, :].repeat(2, axis=1)
    seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy()
    path = tmp_path / "era_global.nc"
    _write_era5(path, seconds, field.repeat(24, axis=0).astype(np.float32), lat, lon)
    for west, east in ((-180.0, -179.8), (179.8, 180.0)):
        window = window_for_bounds(west, 44.9, east, 45.0)
        on_grid = era5land_daily_on_grid(path, window, pd.Timestamp("2001-01-01"))
        # cos is smooth: bilinear between 0.1 degree neighbours is within 1e-6 of it
        expected = 0.3 + 0.1 * np.cos(np.deg2rad(window.lon()))
        assert np.allclose(on_grid, expected[None, :], atol=1e-6), (west, on_grid)


@pytest.fixture(scope="module")
def stack_2001(test_stacks):
    """The 2001 stack of the test region, built in 0.5 degree tiles (conftest.test_stacks)."""
    # no input file is missing (whole-cloud days, counted as "(all fill)", are part of the world)
    assert all(test_stacks["missing"][2001][key] == 0 for key in missing_keys())
    return (
        xr.open_zarr(test_stacks["stacks"][2001]).load(),
        xr.open_zarr(test_stacks["static"]).load(),
    )


def test_stack_is_seamless_on_land_with_flags(stack_2001, test_config):
    stack, static = stack_2001
    land = static["land_mask"].values == 1
    assert stack.sizes == {"time": 365, "lat": 20, "lon": 20}
    assert stack["time"].values[0] == np.datetime64("2001-01-01")
    np.testing.assert_allclose(stack["lat"].values, region_window(test_config["region"]).lat())
    for name in (
        "albedo_bsa_vis",
        "albedo_bsa_nir",
        "albedo_bsa_shortwave",
        "lst",
        "era5land_swvl1",
    ):
        values, flag = stack[name].values, stack[f"{name}_fill_flag"].values
        assert np.isfinite(values[:, land]).all(), name
        assert np.isnan(values[:, ~land]).all() and (flag[:, ~land] == FLAG_WATER).all()
        assert stack[f"{name}_fill_flag"].attrs["flag_meanings"].startswith("water observed")
    lst_flag = stack["lst_fill_flag"].values[:, land]
    assert 0.3 < (lst_flag == FLAG_OBSERVED).mean() < 0.95  # clouds were filled
    assert (stack["era5land_swvl1_fill_flag"].values[:, land] == FLAG_OBSERVED).all()
    assert stack["lst"].attrs["units"] == "K" and stack["era5land_swvl1"].attrs["units"] == "m3 m-3"
    assert stack.attrs["target_available"] == "true" and stack.attrs["avhrrsm_rule"] == "stack_year"


def test_stack_values_match_the_synthetic_truth(stack_2001, synthetic_world):
    stack, static = stack_2001
    truth = xr.open_dataset(synthetic_world / "truth" / "surface_soil_moisture_truth_2001.nc")
    truth = truth["soil_moisture_true"].values
    target = stack["glass_modis_sm"].values
    valid = np.isfinite(target)
    land_mask = static["land_mask"].values == 1
    # continuous through clouds, as GLASS-MODIS SM is: the cloudy (LST-filled) days have a target
    assert valid[:, land_mask].mean() > 0.98
    cloudy = stack["lst_fill_flag"].values > 0
    assert valid[cloudy & land_mask[None]].mean() > 0.98
    assert np.sqrt(np.mean((target[valid] - truth[valid]) ** 2)) < 0.025
    era = stack["era5land_swvl1"].values
    land = np.isfinite(truth)
    assert 0.02 < np.mean(era[land] - truth[land]) < 0.1  # ERA5-Land's wet bias survives regridding
    assert np.corrcoef(era[land], truth[land])[0, 1] > 0.6


def test_a_year_without_any_avhrr_file_fails_clearly(
    synthetic_world, world_patterns, test_config, tmp_path
):
    static = tmp_path / "static.zarr"
    build_static_layers(
        static,
        world_patterns["merit_dem"],
        world_patterns["soilgrids"],
        test_config["region"],
        1,
        {},
    )
    patterns = {
        **world_patterns,
        "glass_albedo": str(tmp_path / "nothing" / "GLASS02B05.V04.A{year}{doy:03d}.*.hdf"),
    }
    out = tmp_path / "2015.zarr"
    with pytest.raises(InputError, match="albedo_bsa_vis has no valid value in 2015"):
        build_year_stack(
            out, 2015, patterns, static, test_config["region"], 1, validate_config({})["stacks"], {}
        )
    assert not out.exists() and not list(tmp_path.glob(".2015.zarr.tmp-*"))


def test_read_blocks_shrink_for_large_regions():
    from avhrrsm.grid import Window
    from avhrrsm.stacks import read_block_days

    small = region_window({"lon_min": 0, "lon_max": 1, "lat_min": 40, "lat_max": 41})
    assert read_block_days(small, 32, 2000) == 32
    globe = Window(0, 3600, 0, 7200)
    assert read_block_days(globe, 32, 2000) == 1
    # six global days fit 8000 MiB: four, so that blocks never straddle the chunks of 32
    assert read_block_days(globe, 32, 8000) == 4
    assert read_block_days(globe, 30, 8000) == 6


def test_modis_target_read_in_stripes_equals_whole(world_patterns, test_config, monkeypatch):
    import avhrrsm.io.glass_modis as glass_modis
    import avhrrsm.stacks as stacks
    from avhrrsm import variables

    window = region_window(test_config["region"])
    days = pd.date_range("2001-03-01", periods=3)
    whole = stacks.read_inputs_block(
        world_patterns, window, days, 0.5, dict.fromkeys(stacks.missing_keys(), 0)
    )
    monkeypatch.setattr(glass_modis, "STRIPE_ROWS", 7)  # 20 rows -> stripes of 7, 7 and 6
    striped = stacks.read_inputs_block(
        world_patterns, window, days, 0.5, dict.fromkeys(stacks.missing_keys(), 0)
    )
    np.testing.assert_allclose(whole[variables.TARGET], striped[variables.TARGET], rtol=1e-6)
    assert np.isfinite(whole[variables.TARGET]).any()


def test_glass_modis_part_of_the_region_equals_that_part_of_the_whole(world_patterns, test_config):
    from avhrrsm.grid import Window
    from avhrrsm.io.glass_modis import glass_modis_files, glass_modis_on_grid

    window = region_window(test_config["region"])
    files = glass_modis_files(world_patterns["glass_modis"], pd.Timestamp("2001-04-10"))
    whole, fraction = glass_modis_on_grid(files, window, 0.5)
    part_window = Window(
        window.row_start + 4, window.row_start + 9, window.col_start + 3, window.col_start + 11
    )
    part, _ = glass_modis_on_grid(files, part_window, 0.5)
    np.testing.assert_allclose(part, whole[4:9, 3:11], rtol=1e-5)
    assert np.isfinite(whole).mean() > 0.05 and ((fraction >= 0) & (fraction <= 1)).all()


def _stack_2001_in_two_workers(path, test_stacks, world_patterns, test_config) -> dict:
    """The test region's 2001 stack built by two worker processes; its missing-day counts."""
    return build_year_stack(
        path,
        2001,
        world_patterns,
        test_stacks["static"],
        test_config["region"],
        0.5,
        test_config["stacks"],
        {"avhrrsm_rule": "stack_year"},
        workers=2,
    )


def test_a_stack_built_in_two_workers_equals_the_serial_one(
    stack_2001, test_stacks, world_patterns, test_config, tmp_path
):
    """Time chunks (pass 1) and tiles (pass 2) written by two processes: the same values and
    counts as the one-process build."""
    stack, _ = stack_2001
    parallel_path = tmp_path / "2001.zarr"
    counts = _stack_2001_in_two_workers(parallel_path, test_stacks, world_patterns, test_config)
    assert counts == test_stacks["missing"][2001]
    parallel = xr.open_zarr(parallel_path).load()
    xr.testing.assert_identical(parallel, stack)


def test_a_stack_read_in_blocks_shorter_than_its_chunks_equals_the_direct_one(
    stack_2001, test_stacks, world_patterns, test_config, tmp_path, monkeypatch
):
    """A region too large for a chunk of days in memory (the globe: a day at a time into
    chunks of 32) reads pass 1 into a scratch store chunked by the block, and pass 2 moves
    the tiles into the stack: the same stack, and no scratch left beside it."""
    import avhrrsm.stacks as stacks

    stack, _ = stack_2001
    assert int(test_config["stacks"]["chunk_days"]) > 1
    monkeypatch.setattr(stacks, "read_block_days", lambda *args: 1)
    written = []
    original = stacks.create_store
    monkeypatch.setattr(
        stacks,
        "create_store",
        lambda path, *a, **k: written.append(path) or original(path, *a, **k),
    )
    path = tmp_path / "2001.zarr"
    counts = _stack_2001_in_two_workers(path, test_stacks, world_patterns, test_config)
    assert len(written) == 2 and ".pass1.tmp-" in written[1].name  # the scratch was used
    assert counts == test_stacks["missing"][2001]
    xr.testing.assert_identical(xr.open_zarr(path).load(), stack)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2001.zarr"]


def test_every_day_records_its_land_coverage(stack_2001):
    """Each input and the target carry their daily share of the region's land, as observed."""
    stack, _ = stack_2001
    for name in (*INPUTS, TARGET):
        share = stack[f"{name}_land_coverage"].values
        assert share.shape == (stack.sizes["time"],) and ((share >= 0) & (share <= 1)).all()
        observed = stack[f"{name}_fill_flag"] == 0 if name != TARGET else np.isfinite(stack[name])
        land = stack["era5land_swvl1_fill_flag"].values[0] != -1
        np.testing.assert_allclose(share, observed.values[:, land].mean(axis=1), atol=1e-6)
    assert np.median(stack[f"{TARGET}_land_coverage"].values) > 0.5


def test_a_thinned_or_misplaced_target_day_is_counted_or_refused(
    world_patterns, test_stacks, test_config, tmp_path, caplog
):
    """A GLASS-MODIS day that covers a quarter of the region is counted, logged and listed in
    the stack; a day georeferenced off the region is an error naming the file."""
    import rasterio
    from rasterio.transform import Affine

    from avhrrsm.io.glass_modis import glass_modis_files

    folder = tmp_path / "glass_modis"
    folder.mkdir()
    days = pd.date_range("2001-01-01", periods=3)
    for day in days:
        for source in glass_modis_files(world_patterns["glass_modis"], day):
            shutil.copy(source, folder / source.name)
    pattern = str(folder / Path(world_patterns["glass_modis"]).name)
    [thinned] = glass_modis_files(pattern, days[1])
    with rasterio.open(thinned) as src:
        profile, data = src.profile, src.read(1)
    quarter = np.full_like(data, profile["nodata"])
    rows, cols = data.shape[0] // 2, data.shape[1] // 2
    quarter[:rows, :cols] = data[:rows, :cols]
    with rasterio.open(thinned, "w", **profile) as out:
        out.write(quarter, 1)
    patterns = {**world_patterns, "glass_modis": pattern}
    build = functools.partial(
        build_year_stack, year=2001, patterns=patterns, static_path=test_stacks["static"],
        region=test_config["region"], tile_deg=0.5, settings=test_config["stacks"],
        global_attrs={}, day_count=3,
    )  # fmt: skip
    counts = build(tmp_path / "thin.zarr")
    key = f"{TARGET} (below 0.5 of the land)"
    assert counts[key] == 1
    with xr.open_zarr(tmp_path / "thin.zarr") as stack:
        share = stack[f"{TARGET}_land_coverage"].values
        assert share[1] < 0.4 and share[0] > 0.5 and share[2] > 0.5
        assert json.loads(stack.attrs["days_below_min_coverage"])[key] == 1
    assert f"{TARGET} covers less than 0.5 of the region's land on 1 day(s): 2001-01-02" in (
        caplog.text
    )
    [misplaced] = glass_modis_files(pattern, days[2])
    shifted = profile["transform"] @ Affine.translation(0, 3000)  # 3000 rows south: off the region
    with rasterio.open(misplaced, "w", **{**profile, "transform": shifted}) as out:
        out.write(data, 1)
    with pytest.raises(InputError, match="lies off the region") as caught:
        build(tmp_path / "off.zarr")
    assert str(misplaced) in str(caught.value)
    assert not (tmp_path / "off.zarr").exists()


def test_a_real_global_ecmwf_file_covers_both_edges_of_the_dateline(caplog):
    """The real legacy-CDS NetCDF (0.75 degree, 0..359.25 E, packed int16, two time steps):
    no column of a window at either edge of -180..180 lies outside it; with two hours the day
    is missing (logged), not an error."""
    from conftest import DATA_DIR

    path = DATA_DIR / "era5" / "eraint_example_downloaded_raw.nc"
    day = pd.Timestamp(xr.open_dataset(path)["time"].values[0]).normalize()
    for west, east in ((-180.0, -179.0), (179.0, 180.0)):
        window = window_for_bounds(west, 44.0, east, 45.0)
        on_grid = era5land_daily_on_grid(path, window, day)
        assert on_grid.shape == window.shape and np.isnan(on_grid).all()
    assert "has only 2 hour(s); the day is missing" in caplog.text
