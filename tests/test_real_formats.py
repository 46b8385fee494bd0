"""The gridded readers on the products' real layouts: real ECMWF files where a package ships
them (tests/data/era5/PROVENANCE.md), the synthetic world's HDF4 / sinusoidal GeoTIFF / CDS zip
files, and the bad inputs of those layouts."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import REPO_ROOT

from avhrrsm.config import validate_config
from avhrrsm.grid import region_window
from avhrrsm.io.check import check_glass_modis, check_inputs
from avhrrsm.io.errors import InputError
from avhrrsm.io.glass import composite_start, find_file, read_glass_sds
from avhrrsm.io.glass_modis import glass_modis_files, glass_modis_on_grid
from avhrrsm.io.gridded import read_era5land
from avhrrsm.io.insitu import nsidc0712_files
from avhrrsm.io.layouts import GLASS_ALBEDO, GLASS_LST, glass_layout
from avhrrsm.io.rasters import merit_tiles_for_bounds
from avhrrsm.validate.check import check_insitu

ERA5_DATA = REPO_ROOT / "tests" / "data" / "era5"


def _truth(world: Path, year: int) -> xr.DataArray:
    with xr.open_dataset(world / "truth" / f"surface_soil_moisture_truth_{year}.nc") as ds:
        return ds["soil_moisture_true"].load()


# ------------------------------------------------------------------ real ECMWF sample files


def test_real_legacy_netcdf3_packed_int16_is_read():
    """The pre-2024 CDS layout (NetCDF3, `time`, int16 scale/offset, 0..360) of a real file."""
    path = ERA5_DATA / "eraint_example_downloaded_raw.nc"
    swvl1 = read_era5land(path)
    assert swvl1.dims == ("time", "lat", "lon") and swvl1.sizes["time"] == 2
    assert swvl1.attrs["units"] == "m3 m-3"
    lon = swvl1["lon"].values
    assert -180.0 <= lon.min() < -179.0 and lon.max() <= 180.0 and np.all(np.diff(lon) > 0)
    with xr.open_dataset(path) as raw:  # xarray's own decoding of the packed integers
        expected = raw["swvl1"].isel(time=0).sel(latitude=45.0, longitude=0.0).item()
    assert swvl1.isel(time=0).sel(lat=45.0, lon=0.0).item() == pytest.approx(expected, abs=1e-6)
    valid = swvl1.values[np.isfinite(swvl1.values)]
    assert 0.0 <= valid.min() and valid.max() < 0.8 and valid.size > 10000


def test_real_grib_swvl1_is_read_through_cfgrib():
    path = ERA5_DATA / "era5_swvl1_20100101_0000_1200.grb"
    swvl1 = read_era5land(path)
    assert swvl1.sizes == {"time": 2, "lat": 721, "lon": 1440}
    assert list(pd.DatetimeIndex(swvl1["time"].values).hour) == [0, 12]
    assert -180.0 <= float(swvl1["lon"].min()) < -179.0
    with xr.open_dataset(
        path, engine="cfgrib", backend_kwargs={"indexpath": ""}
    ) as raw:  # the GRIB decoder's own values
        expected = raw["swvl1"].isel(time=1).sel(latitude=45.0, longitude=10.0).item()
    assert swvl1.isel(time=1).sel(lat=45.0, lon=10.0).item() == pytest.approx(expected, abs=1e-6)
    one_day = read_era5land(path, pd.Timestamp("2010-01-01"))
    assert one_day.sizes["time"] == 2


def test_real_grib_on_a_reduced_gaussian_grid_is_refused():
    path = ERA5_DATA / "eraint_swvl1_reduced_gaussian.grb"
    with pytest.raises(InputError, match="not on a regular lat/lon grid") as info:
        read_era5land(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------- ERA5-Land as the CDS ships it


def test_the_synthetic_world_delivers_its_first_year_as_cds_zips(synthetic_world):
    zipped = sorted((synthetic_world / "era5land" / "2001").glob("*.nc"))
    assert len(zipped) == 12 and all(zipfile.is_zipfile(p) for p in zipped)
    with zipfile.ZipFile(zipped[0]) as archive:
        assert archive.namelist() == ["data_stream-oper_stepType-instant.nc"]
    plain = sorted((synthetic_world / "era5land" / "2015").glob("*.nc"))
    assert not any(zipfile.is_zipfile(p) for p in plain)
    a = read_era5land(zipped[0])
    with _from_zip(zipped[0]) as raw:
        assert "valid_time" in raw.dims and "expver" in raw and raw["number"].ndim == 0
        assert a.sizes["time"] == raw.sizes["valid_time"]


def _from_zip(path: Path) -> xr.Dataset:
    with zipfile.ZipFile(path) as archive:
        payload = archive.read("data_stream-oper_stepType-instant.nc")
    dataset = netCDF4.Dataset("in-memory.nc", memory=payload)
    return xr.open_dataset(xr.backends.NetCDF4DataStore(dataset))


def test_small_negative_swvl1_is_set_to_zero_and_counted(synthetic_world):
    path = sorted((synthetic_world / "era5land" / "2015").glob("*.nc"))[6]
    with xr.open_dataset(path) as raw:
        negative = int((raw["swvl1"] < 0).sum())
    assert negative > 0  # the synthetic world writes them, as real ERA5-Land has them
    swvl1 = read_era5land(path)
    assert swvl1.attrs["negative_values_set_to_zero"] == negative
    assert float(swvl1.min()) == 0.0


def test_a_zip_without_netcdf_and_a_damaged_zip_are_named(tmp_path):
    empty = tmp_path / "era5-land_swvl1_2001_01.nc"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.txt", "no data")
    with pytest.raises(InputError, match="zip holds no NetCDF file") as info:
        read_era5land(empty)
    assert str(empty) in str(info.value) and "README.txt" in str(info.value)
    damaged = tmp_path / "damaged.nc"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(InputError, match="zip is damaged"):
        read_era5land(damaged)


def test_a_grib_without_swvl1_is_named(tmp_path):
    import eccodes

    source = ERA5_DATA / "era5_swvl1_20100101_0000_1200.grb"
    other = tmp_path / "t2m.grb"
    with open(source, "rb") as handle:
        message = eccodes.codes_grib_new_from_file(handle)
    eccodes.codes_set(message, "paramId", 167)  # 2 m temperature
    with open(other, "wb") as handle:
        eccodes.codes_write(message, handle)
    eccodes.codes_release(message)
    with pytest.raises(InputError, match="has no swvl1 message") as info:
        read_era5land(other)
    assert str(other) in str(info.value)


# ------------------------------------------------------------------------ GLASS-AVHRR HDF4


def test_glass_files_are_hdf4_with_the_real_sds_on_the_global_grid(world_patterns):
    from pyhdf.SD import SD, SDC

    day = pd.Timestamp("2001-03-05")
    albedo = find_file(world_patterns["glass_albedo"], composite_start(day, 8))
    assert albedo is not None and albedo.name == "GLASS02B05.V04.A2001057.2019353.hdf"
    hdf = SD(str(albedo), SDC.READ)
    datasets = hdf.datasets()
    hdf.end()
    assert {"ABD_BSA_VIS", "ABD_BSA_NIR", "ABD_BSA_shortwave", "ABD_WSA_VIS"} <= set(datasets)
    assert all(shape == (3600, 7200) for _, shape, *_ in datasets.values())
    assert albedo.stat().st_size < 500_000  # unwritten chunks are not stored
    lst = find_file(world_patterns["glass_lst"], day)
    assert lst is not None and lst.name == "GLASS08B31.V40.A2001064.2021047.hdf"


@pytest.mark.parametrize("variable", ["albedo_bsa_vis", "albedo_bsa_nir", "lst"])
def test_glass_decodes_scale_and_fill_of_the_sds(world_patterns, test_config, variable):
    from pyhdf.SD import SD, SDC

    layout = GLASS_LST if variable == "lst" else GLASS_ALBEDO
    window = region_window(test_config["region"])
    name = "glass_lst" if variable == "lst" else "glass_albedo"
    path = find_file(world_patterns[name], pd.Timestamp("2001-06-02"))
    values = read_glass_sds(path, layout, variable, window)
    hdf = SD(str(path), SDC.READ)
    sds = hdf.select(layout.sds[variable])
    stored = sds[window.row_start : window.row_stop, window.col_start : window.col_stop]
    attributes = sds.attributes()
    hdf.end()
    invalid = (stored < attributes["valid_range"][0]) | (stored > attributes["valid_range"][1])
    expected = np.where(invalid, np.nan, stored * attributes["scale_factor"])
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert np.isfinite(values).any()
    if variable == "lst":
        assert 240 < np.nanmean(values) < 320
    else:
        assert 0 < np.nanmean(values) < 0.5


def test_a_config_override_wins_over_the_sds_attribute(world_patterns, test_config):
    window = region_window(test_config["region"])
    path = find_file(world_patterns["glass_lst"], pd.Timestamp("2001-06-02"))
    plain = read_glass_sds(path, GLASS_LST, "lst", window)
    shifted = read_glass_sds(path, glass_layout("glass_lst", {"add_offset": 10.0}), "lst", window)
    np.testing.assert_allclose(shifted, plain + 10.0, rtol=1e-5)


def test_every_day_takes_the_composite_that_covers_it(test_stacks):
    with xr.open_zarr(test_stacks["stacks"][2001]) as stack:
        composite = pd.DatetimeIndex(stack["albedo_composite"].values)
        vis = stack["albedo_bsa_vis"].values
        flags = stack["albedo_bsa_vis_fill_flag"].values
    assert composite[0] == pd.Timestamp("2001-01-01") and composite[8] == pd.Timestamp("2001-01-09")
    assert composite[-1] == pd.Timestamp("2001-12-27")
    # days 9..16 share the composite of day 9: observed (flag 0) and equal where observed
    same = (flags[8:16] == 0).all(axis=0)
    np.testing.assert_array_equal(
        vis[8:16][:, same], np.broadcast_to(vis[8][same], (8, same.sum()))
    )
    assert (flags == 0).mean() > 0.8  # composites have few gaps


def test_gdal_opens_the_glass_files_as_georeferenced_hdf_eos_grids(
    gdalwarp, world_patterns, test_config
):
    """The synthetic GLASS files are HDF-EOS2 grids as distributed: GDAL's HDF4 driver (a peer
    reader) finds the grid, its 0.05 degree georeferencing and the same values as ours."""
    import shutil
    import subprocess

    # the gdalwarp fixture installs GDAL's command-line tools (gdal-bin) where missing
    gdalinfo, locate = shutil.which("gdalinfo"), shutil.which("gdallocationinfo")
    if gdalinfo is None or locate is None:
        pytest.skip("GDAL's command-line tools are not installed (apt-get install gdal-bin)")
    if "HDF4" not in subprocess.run([gdalinfo, "--formats"], capture_output=True, text=True).stdout:
        pytest.skip("this GDAL has no HDF4 driver")
    path = find_file(world_patterns["glass_albedo"], pd.Timestamp("2001-06-02"))
    field = f'HDF4_EOS:EOS_GRID:"{path}":GLASS02B05:ABD_BSA_VIS'
    info = subprocess.run([gdalinfo, field], capture_output=True, text=True, check=True).stdout
    assert "Size is 7200, 3600" in info and "Origin = (-180.0" in info
    assert "Pixel Size = (0.050000000000000,-0.050000000000000)" in info
    window = region_window(test_config["region"])
    ours = read_glass_sds(path, GLASS_ALBEDO, "albedo_bsa_vis", window)
    row, col = np.argwhere(np.isfinite(ours))[len(np.argwhere(np.isfinite(ours))) // 2]
    lat, lon = window.lat()[row], window.lon()[col]
    stored = subprocess.run(
        [locate, "-valonly", "-wgs84", field, str(lon), str(lat)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(stored) * 1e-4 == pytest.approx(float(ours[row, col]), abs=1e-7)


def test_an_hdf_eos_grid_that_is_not_the_cmg_is_named(tmp_path, test_config):
    from avhrrsm.synth.hdf4 import Sds, struct_metadata, write_glass_hdf4

    window = region_window(test_config["region"])
    path = write_glass_hdf4(
        tmp_path / "GLASS08B31.V40.A2001001.2021047.hdf",
        window,
        {"LST": Sds(np.full(window.shape, 29000, np.uint16), 0)},
        grid="GLASS08B31",
    )
    from pyhdf.SD import SD, SDC

    hdf = SD(str(path), SDC.WRITE)
    shifted = struct_metadata("GLASS08B31", {"LST": "DFNT_UINT16"}).replace(
        "UpperLeftPointMtrs=(-180000000.000000", "UpperLeftPointMtrs=(-179030000.000000"
    )
    hdf.attr("StructMetadata.0").set(SDC.CHAR8, shifted)
    hdf.end()
    with pytest.raises(InputError, match="not the global 0.05 degree CMG") as info:
        read_glass_sds(path, GLASS_LST, "lst", window)
    assert "UpperLeftPointMtrs (-179.5, 90.0)" in str(info.value)  # 179 deg 30 min


def test_glass_bad_files_are_named(tmp_path, test_config):
    from pyhdf.SD import SD, SDC

    window = region_window(test_config["region"])
    hdf5 = tmp_path / "GLASS08B31.V40.A2001001.2021047.hdf"
    with netCDF4.Dataset(hdf5, "w", format="NETCDF4") as handle:  # HDF5 underneath
        handle.createDimension("x", 2)
        handle.createVariable("LST", "f4", ("x",))
    with pytest.raises(InputError, match="HDF5/NetCDF4 file where .* HDF4 is expected"):
        read_glass_sds(hdf5, GLASS_LST, "lst", window)
    no_sds = tmp_path / "GLASS02B05.V04.A2001001.2019353.hdf"
    hdf = SD(str(no_sds), SDC.WRITE | SDC.CREATE)
    sds = hdf.create("ABD_WSA_VIS", SDC.INT16, (3600, 7200))
    sds.endaccess()
    hdf.end()
    with pytest.raises(InputError, match="SDS 'ABD_BSA_VIS' not found") as info:
        read_glass_sds(no_sds, GLASS_ALBEDO, "albedo_bsa_vis", window)
    assert "ABD_WSA_VIS" in str(info.value) and str(no_sds) in str(info.value)
    not_hdf = tmp_path / "text.hdf"
    not_hdf.write_text("hello")
    with pytest.raises(InputError, match="is not an HDF4 file"):
        read_glass_sds(not_hdf, GLASS_LST, "lst", window)


def test_lst_decoding_to_celsius_like_values_is_named(
    world_patterns, test_stacks, test_config, tmp_path
):
    from avhrrsm.stacks import build_year_stack

    with pytest.raises(
        InputError,
        match=r"LST \(GLASS08B31\) decodes to .* K, outside 150..360 K: scale_factor 0.01 from "
        r"the SDS, add_offset -273.15 from the config",
    ):
        build_year_stack(
            tmp_path / "2001.zarr", 2001, world_patterns, test_stacks["static"],
            test_config["region"], 10, test_config["stacks"], {}, day_count=3,
            layouts={"glass_lst": {"add_offset": -273.15}},
        )  # fmt: skip
    assert not (tmp_path / "2001.zarr").exists()
    # packed at 0.02 K but without a scale_factor attribute: the message says the default was used
    from avhrrsm.io.glass import decode

    raw = np.full((2, 2), 14500, np.uint16)
    with pytest.raises(InputError, match="scale_factor 0.01 from the layout's default: the SDS"):
        decode(raw, {}, GLASS_LST, tmp_path / "lst.hdf")


# ---------------------------------------------------------------- GLASS-MODIS, sinusoidal


def test_glass_modis_is_sinusoidal_and_its_area_mean_tracks_the_truth(
    synthetic_world, world_patterns, test_config
):
    import rasterio

    window = region_window(test_config["region"])
    truth = _truth(synthetic_world, 2001)
    diffs = []
    for doy in (11, 101, 201, 301):
        day = pd.Timestamp("2001-01-01") + pd.Timedelta(days=doy - 1)
        files = glass_modis_files(world_patterns["glass_modis"], day)
        assert len(files) == 1
        with rasterio.open(files[0]) as dataset:
            assert "+proj=sinu" in dataset.crs.to_proj4() and dataset.nodata == -9999.0
            assert dataset.res[0] == pytest.approx(926.625433, rel=1e-6)
        mean, fraction = glass_modis_on_grid(files, window, 0.5)
        assert mean.shape == window.shape
        assert np.isnan(mean[fraction < 0.5]).all()
        diffs.append(mean - truth.values[doy - 1])
    diffs = np.concatenate([d[np.isfinite(d)].ravel() for d in diffs])
    assert abs(np.mean(diffs)) < 0.01 and np.sqrt(np.mean(diffs**2)) < 0.03


def test_glass_modis_tiles_of_one_day_are_combined(world_patterns, test_config, tmp_path):
    """A day split into two GeoTIFF tiles gives the same field as the single file."""
    import rasterio
    from rasterio.windows import Window as RasterWindow

    window = region_window(test_config["region"])
    day = pd.Timestamp("2001-04-10")
    [single] = glass_modis_files(world_patterns["glass_modis"], day)
    with rasterio.open(single) as source:
        profile = source.profile
        half = source.width // 2
        for k, (start, width) in enumerate(((0, half), (half, source.width - half))):
            part = RasterWindow(start, 0, width, source.height)
            profile.update(width=width, transform=source.window_transform(part))
            with rasterio.open(
                tmp_path / f"GLASS_MODIS_SM_A2001100_h{k}.tif", "w", **profile
            ) as out:
                out.write(source.read(1, window=part), 1)
    tiles = glass_modis_files(str(tmp_path / "GLASS_MODIS_SM_A{year}{doy:03d}*.tif"), day)
    assert len(tiles) == 2
    whole, whole_fraction = glass_modis_on_grid([single], window, 0.0)
    combined, fraction = glass_modis_on_grid(tiles, window, 0.0)
    # the tiles' means weighted by valid area: the single file's average up to GDAL's weights
    np.testing.assert_allclose(combined, whole, atol=2e-3)
    assert np.nanmean(np.abs(combined - whole)) < 2e-4
    np.testing.assert_allclose(fraction, whole_fraction, atol=0.05)


# ----------------------------------------------------------------- MERIT tars, SoilGrids VRT


def test_merit_tiles_are_found_in_the_folders_the_tars_unpack_into(synthetic_world, test_config):
    region = test_config["region"]
    present, absent = merit_tiles_for_bounds(
        synthetic_world / "merit_dem",
        (region["lon_min"], region["lat_min"], region["lon_max"], region["lat_max"]),
    )
    assert [p.parent.name for p in present] == ["dem_tif_n30w030", "dem_tif_n30e000"]
    assert absent == []


def test_merit_and_nsidc_folders_behind_links_are_read(synthetic_world, test_config, tmp_path):
    region = test_config["region"]
    bounds = (region["lon_min"], region["lat_min"], region["lon_max"], region["lat_max"])
    linked = tmp_path / "merit_dem"
    linked.mkdir()
    for tar_folder in sorted((synthetic_world / "merit_dem").iterdir()):
        (linked / tar_folder.name).symlink_to(tar_folder)  # each tar unpacked elsewhere
    present, absent = merit_tiles_for_bounds(linked, bounds)
    assert len(present) == 2 and absent == []
    nsidc = tmp_path / "nsidc0712"
    nsidc.mkdir()
    (nsidc / "2015").symlink_to(synthetic_world / "smap_cvs")
    files, others = nsidc0712_files(nsidc)
    assert len(files) == 2 and others == []


def test_soilgrids_is_read_through_its_vrt(synthetic_world, test_stacks):
    import rasterio

    vrt = synthetic_world / "soilgrids" / "sand" / "sand_0-5cm_mean.vrt"
    with rasterio.open(vrt) as dataset:
        assert dataset.driver == "VRT" and len(dataset.files) == 5  # the VRT and 4 tiles
        data = dataset.read(1, masked=True)
        assert 0 < data.mean() < 1000
    with xr.open_zarr(test_stacks["static"]) as static:
        land = static["land_mask"].values.astype(bool)
        assert np.isfinite(static["sand_fraction"].values[land]).all()


# --------------------------------------------------------------------- avhrrsm inputs check


def _checks(patterns, region, years=(2001,)):
    validation = validate_config({})["validation"]
    return {
        c.product: c
        for c in [
            *check_inputs(patterns, list(years), region),
            *check_insitu(patterns, region, validation),
        ]
    }


def test_inputs_check_reports_every_product(world_patterns, test_config, tmp_path):
    checks = _checks(world_patterns, test_config["region"])
    assert all(c.ok for c in checks.values()), [c.line() for c in checks.values() if not c.ok]
    assert checks["glass_albedo"].found == 46 and checks["glass_lst"].found == 365
    assert checks["era5land"].found == 12 and checks["glass_modis"].found == 365
    assert checks["smap_cvs"].found == 2 and checks["smap_cvs_sites"].found == 1
    broken = dict(world_patterns)
    other_sites = tmp_path / "sites.csv"
    other_sites.write_text("site_id,latitude,longitude\n0401,30,10\n")
    broken["smap_cvs_sites"] = str(other_sites)
    broken["era5land"] = str(tmp_path / "{year}_{month:02d}.nc")
    bad_lst = tmp_path / "lst" / "GLASS08B31.V40.A2001001.2021047.hdf"
    bad_lst.parent.mkdir()
    bad_lst.write_text("not hdf")
    broken["glass_lst"] = str(tmp_path / "lst" / "GLASS08B31.V40.A{year}{doy:03d}.*.hdf")
    checks = _checks(broken, test_config["region"])
    assert not checks["era5land"].ok and len(checks["era5land"].missing) == 12
    lst = checks["glass_lst"]
    assert len(lst.unreadable) == 1 and str(bad_lst) in lst.unreadable[0]
    assert len(lst.missing) == 364 and "BLOCKS THE RUN" in lst.line()
    smap = checks["smap_cvs"]  # placed by no row of the table: skipped in a run, listed here
    assert smap.ok and smap.missing == [
        "reference pixel 16000901 of NSIDC-0712_16000901_SMAPL2SMPE_R18290_20150101_20151231.txt",
        "reference pixel 16003601 of NSIDC-0712_16003601_SMAPL2SMP_R18290_20150101_20151231.txt",
    ]


def test_inputs_check_names_glass_modis_days_off_or_thinly_over_the_region(
    world_patterns, test_config, tmp_path
):
    """From the files' footprints (no pixel read): a day whose file covers a quarter of the
    region is named as a thin target; a day georeferenced off the region blocks the run."""
    import rasterio
    from rasterio.transform import Affine

    folder = tmp_path / "glass_modis" / "2001"
    folder.mkdir(parents=True)
    for day in pd.date_range("2001-01-01", "2001-12-31"):
        for source in glass_modis_files(world_patterns["glass_modis"], day):
            (folder / source.name).symlink_to(source)
    pattern = str(folder / Path(world_patterns["glass_modis"]).name)
    window = region_window(test_config["region"])
    check = check_glass_modis(pattern, [2001], window)
    assert check.ok and check.found == 365 and not check.skipped
    [thin] = glass_modis_files(pattern, pd.Timestamp("2001-03-01"))
    [off] = glass_modis_files(pattern, pd.Timestamp("2001-03-02"))
    with rasterio.open(thin.resolve()) as src:
        profile, data = src.profile, src.read(1)
    thin.unlink()
    rows, cols = data.shape[0] // 2, data.shape[1] // 2
    with rasterio.open(thin, "w", **{**profile, "height": rows, "width": cols}) as out:
        out.write(data[:rows, :cols], 1)  # the north-west quarter only
    off.unlink()
    shifted = profile["transform"] @ Affine.translation(0, 3000)  # 3000 km south
    with rasterio.open(off, "w", **{**profile, "transform": shifted}) as out:
        out.write(data, 1)
    check = check_glass_modis(pattern, [2001], window)
    assert not check.ok and check.found == 364
    assert check.unreadable == [f"{off}: the day's 1 file(s) lie off the region (georeferencing?)"]
    [named] = check.skipped
    assert named.startswith("2001-03-01: its files cover 2") and "thin training target" in named


def test_inputs_check_reads_the_in_situ_sources_as_the_validation_does(
    world_patterns, test_config, tmp_path
):
    """A truncated ISMN zip and a COSMOS-UK file with a header only: the validation would fail
    on them, so the check says so, naming the file; a duplicated sensor file is listed as the
    run would skip it."""
    from avhrrsm.io.ismn import parse_file_name

    region, validation = test_config["region"], validate_config({})["validation"]
    checks = _checks(world_patterns, region)
    assert checks["ismn"].ok and checks["cosmos"].ok
    assert any("site(s) with valid days in the region" in note for note in checks["ismn"].notes)
    broken = dict(world_patterns)
    archive = tmp_path / "ismn.zip"
    whole = Path(world_patterns["ismn"]).read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    broken["ismn"] = str(archive)
    cosmos = tmp_path / "cosmos"
    shutil.copytree(world_patterns["cosmos"], cosmos)
    daily = sorted(cosmos.glob("COSMOS-UK_*_HydroSoil_Daily_*.csv"))
    daily[0].write_text(daily[0].read_text().splitlines()[0] + "\n")
    broken["cosmos"] = str(cosmos)
    checks = _checks(broken, region)
    assert not checks["ismn"].ok and str(archive) in checks["ismn"].unreadable[0]
    assert "truncated" in checks["ismn"].unreadable[0]
    assert not checks["cosmos"].ok and str(daily[0]) in checks["cosmos"].unreadable[0]
    assert "a header but no data rows" in checks["cosmos"].line()
    # a second copy of one sensor file: read, and listed as the run would skip it
    folder = tmp_path / "ismn_folder"
    with zipfile.ZipFile(world_patterns["ismn"]) as synthetic:
        synthetic.extractall(folder)
    first = next(
        path
        for path in sorted(folder.rglob("*.stm"))
        if parse_file_name(path.name).depth_to <= validation["ismn_max_depth_m"]
    )
    (first.parent / "copy").mkdir()
    shutil.copy(first, first.parent / "copy" / first.name)
    checks = _checks({**world_patterns, "ismn": str(folder)}, region)
    assert checks["ismn"].ok
    assert "1 sensors_duplicate_record" in checks["ismn"].skipped
    assert "skipped: 1 sensors_duplicate_record" in checks["ismn"].line()


def test_inputs_check_command_exits_1_where_a_run_would_fail(
    world_patterns, test_config, tmp_path, capsys
):
    import yaml

    from avhrrsm.cli import main

    config = {
        "run": "check",
        "results_dir": str(tmp_path / "results"),
        "region": test_config["region"],
        "years": [2015],
        "synthetic": {"enabled": False},
        "inputs": dict(world_patterns),
    }
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(config))
    assert main(["inputs", "check", "--configfile", str(good)]) == 0
    out = capsys.readouterr().out
    assert "glass_lst        365 of 365" in out and "every input a run needs" in out
    config["inputs"]["era5land"] = str(tmp_path / "nowhere" / "{year}_{month:02d}.nc")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["inputs", "check", "--configfile", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "a run would fail on: era5land" in out and "nowhere/2015_01.nc is missing" in out


def test_glass_modis_packing_from_tags_or_the_config(world_patterns, test_config, tmp_path):
    """A GeoTIFF storing percent with no nodata tag: the layout's nodata (-9999) applies, and a
    config scale_factor of 0.01 gives m3 m-3; without it the file is refused, named."""
    import rasterio

    from avhrrsm.io.layouts import glass_modis_layout

    window = region_window(test_config["region"])
    [source] = glass_modis_files(world_patterns["glass_modis"], pd.Timestamp("2001-07-20"))
    with rasterio.open(source) as src:
        profile, data = src.profile, src.read(1)
    profile.update(nodata=None)
    percent = tmp_path / "percent.tif"
    with rasterio.open(percent, "w", **profile) as out:
        out.write(np.where(data == -9999.0, data, data * 100.0).astype(np.float32), 1)
    reference, _ = glass_modis_on_grid([source], window, 0.5)
    scaled, _ = glass_modis_on_grid(
        [percent], window, 0.5, glass_modis_layout({"scale_factor": 0.01})
    )
    np.testing.assert_allclose(scaled, reference, rtol=1e-5, equal_nan=True)
    with pytest.raises(InputError, match=r"mostly outside 0..1 m3 m-3") as info:
        glass_modis_on_grid([percent], window, 0.5)  # percent, read as m3 m-3
    assert str(percent) in str(info.value) and "layouts.glass_modis" in str(info.value)
