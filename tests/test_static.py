"""Regridding primitives and the static layers, checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from avhrrsm.grid import Window, chunk_groups, region_window, tiles, window_for_bounds
from avhrrsm.io.errors import InputError
from avhrrsm.io.rasters import write_geotiff
from avhrrsm.regrid import bilinear_to_points, block_reduce_mean
from avhrrsm.static import build_static_layers, read_static_layers, slope_aspect, terrain_layers


def test_block_reduce_mean_ignores_nan_and_applies_threshold():
    values = np.array([[1.0, 3.0, np.nan, np.nan], [5.0, 7.0, np.nan, 8.0]])
    mean, fraction = block_reduce_mean(values, 2)
    assert mean.tolist() == [[4.0, 8.0]] and fraction.tolist() == [[1.0, 0.25]]
    strict, _ = block_reduce_mean(values, 2, min_valid_fraction=0.5)
    assert strict[0, 0] == 4.0 and np.isnan(strict[0, 1])
    stacked, _ = block_reduce_mean(np.stack([values, 2 * values]), 2)
    assert stacked[:, 0, 0].tolist() == [4.0, 8.0]
    with pytest.raises(ValueError, match="whole number"):
        block_reduce_mean(np.zeros((3, 4)), 2)


def test_bilinear_hand_values_and_coastal_renormalisation():
    src_lat = np.array([45.1, 45.0])  # descending, like ERA5-Land
    src_lon = np.array([0.0, 0.1])
    field = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = bilinear_to_points(
        field, src_lat, src_lon, np.array([45.075, 45.025]), np.array([0.025, 0.075])
    )
    # at (45.075, 0.025): a quarter of the way from the NW corner in both directions
    assert out[0, 0] == pytest.approx(
        0.75 * 0.75 * 1 + 0.75 * 0.25 * 2 + 0.25 * 0.75 * 3 + 0.25 * 0.25 * 4
    )
    assert out[1, 1] == pytest.approx(
        0.25 * 0.25 * 1 + 0.25 * 0.75 * 2 + 0.75 * 0.25 * 3 + 0.75 * 0.75 * 4
    )
    coastal = field.copy()
    coastal[0, 1] = np.nan  # a sea neighbour gets no weight
    out = bilinear_to_points(coastal, src_lat, src_lon, np.array([45.075]), np.array([0.025]))
    weights = np.array([0.5625, 0.1875, 0.0625])
    assert out[0, 0] == pytest.approx((weights * [1.0, 3.0, 4.0]).sum() / weights.sum())
    outside = bilinear_to_points(field, src_lat, src_lon, np.array([45.2]), np.array([0.05]))
    assert np.isnan(outside).all()


def test_slope_and_aspect_of_a_plane():
    step = 1 / 1200  # 3 arc-seconds, as MERIT
    lat = 45.0 - step * (np.arange(5) + 0.5)
    rise = 2.0  # metres per pixel towards the east: the slope faces west
    plane = np.tile(np.arange(5) * rise, (5, 1))
    slope, sin_a, cos_a = slope_aspect(plane, lat, step)
    dx = step * 111_195.0 * np.cos(np.deg2rad(lat[2]))
    assert slope[2, 2] == pytest.approx(np.degrees(np.arctan(rise / dx)), rel=1e-4)
    assert sin_a[2, 2] == pytest.approx(-1.0) and cos_a[2, 2] == pytest.approx(0.0, abs=1e-9)
    north_facing = np.tile((np.arange(5) * rise)[:, None], (1, 5))  # rises to the south
    _, sin_n, cos_n = slope_aspect(north_facing, lat, step)
    assert cos_n[2, 2] == pytest.approx(1.0) and sin_n[2, 2] == pytest.approx(0.0, abs=1e-9)
    flat = np.full((5, 5), 10.0)
    _, sin_f, cos_f = slope_aspect(flat, lat, step)
    assert (sin_f == 0).all() and (cos_f == 0).all()


def _tile(folder, name, west, south, step, data):
    write_geotiff(
        folder / f"{name}_dem.tif", data.astype(np.float32), west, south + 5, step, -9999.0
    )


def test_terrain_layers_hand_case(tmp_path):
    """A 5 x 5 degree tile at 0.01 degrees: sea in the west half of one cell, known heights."""
    step = 0.01
    data = np.full((500, 500), 100.0)
    data[:, :2] = -9999.0  # the two westernmost columns: 2 of 5 pixels of the first cells are sea
    data[:5, 5:10] = [10.0, 20.0, 30.0, 40.0, 50.0]  # the second cell of the first row
    _tile(tmp_path, "n40e000", 0, 40, step, data)
    window = window_for_bounds(0.0, 44.9, 0.15, 45.0)
    layers = terrain_layers(tmp_path, window)
    assert layers["land_fraction"][0].tolist() == pytest.approx([0.6, 1.0, 1.0])
    assert layers["land_mask"][0].tolist() == [1, 1, 1]
    assert layers["elevation"][0, 0] == pytest.approx(100.0)
    assert layers["elevation"][0, 1] == pytest.approx(30.0)
    # away from the bumps the terrain is flat (row 5 of cell [1, 1] still sees the bumps above it)
    assert layers["elevation"][1, 2] == pytest.approx(100.0) and layers["slope"][
        1, 2
    ] == pytest.approx(0.0)
    assert layers["slope"][1, 1] > 0


def test_missing_tiles_are_sea(tmp_path):
    _tile(tmp_path, "n40e000", 0, 40, 0.05, np.full((100, 100), 5.0))
    window = window_for_bounds(-0.1, 44.9, 0.1, 45.0)  # half in n40w005, which is absent
    layers = terrain_layers(tmp_path, window)
    assert layers["land_mask"][0].tolist() == [0, 0, 1, 1]
    assert np.isnan(layers["elevation"][0, :2]).all()


def test_tiles_of_a_region():
    window = region_window({"lon_min": -2.0, "lon_max": 2.0, "lat_min": 41.0, "lat_max": 45.0})
    ids = tiles(window, 10)
    assert [tile_id for tile_id, _ in ids] == ["h17v04", "h18v04"]
    assert sum(t.shape[1] for _, t in ids) == window.shape[1]
    assert all(t.shape[0] == window.shape[0] for _, t in ids)
    assert len(tiles(Window(0, 3600, 0, 7200), 10)) == 18 * 36
    with pytest.raises(ValueError, match="does not divide"):
        tiles(window, 7)


def test_tiles_that_share_a_store_chunk_form_one_parallel_piece():
    """A region off the tiling: its two 10 degree tiles share the store's one chunk (80 px
    wide), so they must be written by one worker; on the tiling every tile is a piece."""
    window = region_window({"lon_min": -2.0, "lon_max": 2.0, "lat_min": 41.0, "lat_max": 45.0})
    shared = chunk_groups(window, tiles(window, 10), 200)
    assert [[tile_id for tile_id, _ in group] for group in shared] == [["h17v04", "h18v04"]]
    aligned = chunk_groups(window, tiles(window, 0.5), 10)
    assert [len(group) for group in aligned] == [1] * 64
    # 1 degree tiles from lon -1.5: chunks of 20 px from the corner straddle tile edges,
    # which chains a row of tiles together, but rows stay apart (lat on the tiling)
    window = region_window({"lon_min": -1.5, "lon_max": 1.5, "lat_min": 40.0, "lat_max": 42.0})
    grouped = chunk_groups(window, tiles(window, 1), 20)
    assert [len(group) for group in grouped] == [4, 4]
    assert len({tile_id for group in grouped for tile_id, _ in group}) == 8


def test_static_layers_of_the_synthetic_world(
    synthetic_world, world_patterns, test_config, tmp_path
):
    built = {}
    for workers in (1, 2):  # two workers write their tiles' chunks: the same store as one
        out = tmp_path / ("static.zarr" if workers == 1 else "static_two_workers.zarr")
        build_static_layers(
            out,
            world_patterns["merit_dem"],
            world_patterns["soilgrids"],
            test_config["region"],
            0.5,
            {"avhrrsm_rule": "static_layers"},
            workers=workers,
        )
        built[workers] = xr.open_zarr(out).load()
    xr.testing.assert_identical(built[2], built[1])
    out = tmp_path / "static.zarr"
    static = built[1]
    truth = xr.open_dataset(synthetic_world / "truth" / "static_truth.nc").load()
    assert static["land_mask"].dtype == np.int8
    assert (static["land_mask"].values == truth["land_mask"].values).all()
    np.testing.assert_allclose(static["elevation"].values, truth["elevation"].values, atol=1e-3)
    land = static["land_mask"].values == 1
    total = sum(static[f"{f}_fraction"].values for f in ("sand", "silt", "clay"))
    assert np.abs(total[land] - 1.0).max() < 1e-5
    assert np.abs(static["sand_fraction"].values[land] - truth["sand"].values[land]).max() < 0.05
    assert static["elevation"].attrs["units"] == "m" and static["slope"].attrs["units"] == "degree"
    assert static["elevation"].attrs["grid_mapping"] == "crs"
    assert static["crs"].attrs["grid_mapping_name"] == "latitude_longitude"
    assert (
        static.attrs["Conventions"] == "CF-1.8" and static.attrs["avhrrsm_rule"] == "static_layers"
    )
    assert np.isnan(static["elevation"].values[~land]).all()
    assert not list(tmp_path.glob(".static.zarr.tmp-*"))
    # the reader beside the writer: layers by name, land as bool, the region checked
    window = region_window(test_config["region"])
    layers = read_static_layers(out, window, ("land_mask", "elevation"))
    assert layers["land_mask"].dtype == bool and (layers["land_mask"] == land).all()
    np.testing.assert_array_equal(layers["elevation"], static["elevation"].values)
    other = Window(window.row_start, window.row_stop - 1, window.col_start, window.col_stop)
    with pytest.raises(InputError, match="static.zarr.*the region needs"):
        read_static_layers(out, other)
    with pytest.raises(ValueError, match="no static layers named"):
        read_static_layers(out, window, ("sand",))
    with pytest.raises(InputError, match="missing.zarr"):
        read_static_layers(tmp_path / "missing.zarr", window)


def test_soilgrids_covering_part_of_the_region_is_an_error(tmp_path):
    """Filling half a region's soil from its nearest cells would be silently wrong."""
    from avhrrsm.io.errors import InputError
    from avhrrsm.static import soil_layers

    window = window_for_bounds(0.0, 42.0, 1.0, 43.0)
    land = np.ones(window.shape, np.int8)
    for fraction in ("sand", "silt", "clay"):  # a raster of the western half only
        write_geotiff(
            tmp_path / f"{fraction}.tif",
            np.full((100, 50), 333, np.int16),
            0.0, 43.0, 0.01, -32768,
        )  # fmt: skip
    with pytest.raises(InputError, match="points on the region's edge .* lie outside it") as info:
        soil_layers(str(tmp_path / "{fraction}.tif"), window, land)
    assert "sand.tif" in str(info.value)
