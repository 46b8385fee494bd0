"""Our regridding equals GDAL's (`gdalwarp`) where the methods are the same."""

from __future__ import annotations

import numpy as np
import rasterio

from avhrrsm.grid import window_for_bounds
from avhrrsm.io.rasters import write_geotiff
from avhrrsm.ops.bench.inputs import gdalwarp_to_window
from avhrrsm.regrid import bilinear_to_points, block_reduce_mean, window_transform


def _write(path, data, west, north, step, nodata=-9999.0):
    write_geotiff(
        path, np.where(np.isnan(data), nodata, data).astype(np.float32), west, north, step, nodata
    )


def _warp(gdalwarp, source, target, window, method):
    gdalwarp_to_window(gdalwarp, source, target, window, method)
    with rasterio.open(target) as src:
        assert src.transform.almost_equals(window_transform(window))
        return src.read(1)


def test_block_mean_equals_gdalwarp_average(gdalwarp, tmp_path):
    """1 km -> 5 km and 90 m -> 5 km style aggregation, with nodata (sea) pixels."""
    rng = np.random.default_rng(0)
    window = window_for_bounds(1.0, 44.0, 2.0, 45.0)
    for factor in (5, 20):
        step = 0.05 / factor
        fine = rng.uniform(0.0, 0.5, (window.shape[0] * factor, window.shape[1] * factor)).astype(
            np.float32
        )
        fine[rng.random(fine.shape) < 0.3] = np.nan
        fine[: 2 * factor, : 2 * factor] = np.nan  # whole empty cells
        _write(tmp_path / "fine.tif", fine, 1.0, 45.0, step)
        reference = _warp(gdalwarp, tmp_path / "fine.tif", tmp_path / "avg.tif", window, "average")
        ours, _ = block_reduce_mean(fine, factor)
        assert np.array_equal(np.isnan(ours), np.isnan(reference))
        np.testing.assert_allclose(ours, reference, atol=1e-5, equal_nan=True)


def test_bilinear_equals_gdalwarp_bilinear(gdalwarp, tmp_path):
    """ERA5-Land-like 0.1 degree points (pixel centres) -> 0.05 degree, away from the edges."""
    rng = np.random.default_rng(1)
    lat = np.round(46.0 - 0.1 * np.arange(31), 6)  # 46.0 .. 43.0, descending
    lon = np.round(-1.0 + 0.1 * np.arange(41), 6)  # -1.0 .. 3.0
    smooth = np.cumsum(np.cumsum(rng.normal(0, 0.01, (31, 41)), 0), 1).astype(np.float32) + 0.3
    _write(tmp_path / "era.tif", smooth, lon[0] - 0.05, lat[0] + 0.05, 0.1)
    window = window_for_bounds(0.0, 44.0, 2.0, 45.0)
    reference = _warp(gdalwarp, tmp_path / "era.tif", tmp_path / "bil.tif", window, "bilinear")
    ours = bilinear_to_points(smooth, lat, lon, window.lat(), window.lon())
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_glass_modis_area_mean_equals_gdalwarp_average(
    gdalwarp, world_patterns, test_config, tmp_path
):
    """A sinusoidal 1 km GLASS-MODIS day -> 0.05 degree: our overlap-weighted sums give GDAL's
    `average` (valid pixels only); cells without a valid pixel are missing in both."""
    import pandas as pd

    from avhrrsm.grid import region_window
    from avhrrsm.io.glass_modis import glass_modis_files, glass_modis_on_grid

    window = region_window(test_config["region"])
    [source] = glass_modis_files(world_patterns["glass_modis"], pd.Timestamp("2001-07-20"))
    reference = _warp(gdalwarp, source, tmp_path / "modis.tif", window, "average")
    ours, fraction = glass_modis_on_grid([source], window, 0.0)
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    np.testing.assert_allclose(ours, reference, atol=1e-5, equal_nan=True)
    assert np.isfinite(ours).mean() > 0.3 and 0.0 < fraction.mean() <= 1.0
