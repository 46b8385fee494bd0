"""Every reader round-trips its synthetic files and rejects malformed ones with the file named."""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from avhrrsm.io.errors import InputError
from avhrrsm.io.gridded import _ordered, read_era5land, read_esa_cci
from avhrrsm.io.insitu import (
    Nsidc0712Name,
    cosmos_uk_files,
    nsidc0712_files,
    parse_nsidc0712_name,
    read_cosmos_uk,
    read_cosmos_uk_site_metadata,
    read_nsidc0712,
    read_nsidc0712_site_table,
)
from avhrrsm.io.layouts import CCI_INVALID_FLAG_BITS
from avhrrsm.io.netcdf import NcVar, write_netcdf
from avhrrsm.io.rasters import (
    merit_tiles_for_bounds,
    read_merit_tile,
    read_soilgrids,
    write_geotiff,
)


def _files(world: Path, sub: str, suffix: str = ".nc") -> list[Path]:
    return sorted(p for p in (world / sub).rglob(f"*{suffix}"))


def _truth(world: Path, year: int) -> xr.DataArray:
    with xr.open_dataset(world / "truth" / f"surface_soil_moisture_truth_{year}.nc") as ds:
        return ds["soil_moisture_true"].load()


# ------------------------------------------------------------------------------ ERA5-Land


@pytest.mark.parametrize(
    "lon",
    [
        np.arange(-179.5, 180.0, 1.0),  # in order
        np.arange(179.5, -180.0, -1.0),  # reversed
        np.round(np.where((v := np.arange(0.0, 360.0, 1.0)) > 180.0, v - 360.0, v), 10),  # ERA5
        np.array([3.0, -1.0, 7.0, 0.0, 5.0]),  # no pattern: sortby's own order
        np.array([2.0]),
    ],
)
def test_coordinates_are_put_in_order_as_sortby_puts_them(lon):
    """The readers' fast ordering (nothing, a reversed view, a rotation) gives what
    ``sortby`` gives, values and coordinates, ascending and descending."""
    values = np.random.default_rng(3).random((2, 3, lon.size), dtype=np.float32)
    array = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"lon": lon})
    for ascending in (True, False):
        assert _ordered(array, "lon", ascending).identical(array.sortby("lon", ascending=ascending))


def test_era5land_wraps_longitudes_and_keeps_raw_values(synthetic_world):
    path = _files(synthetic_world / "era5land", "2015")[0]  # 2001 comes as CDS zips
    swvl1 = read_era5land(path)
    assert swvl1.dims == ("time", "lat", "lon")
    assert swvl1.attrs["units"] == "m3 m-3"
    lon = swvl1["lon"].values
    assert lon.min() < 0 < lon.max() and np.all(np.diff(lon) > 0)
    assert np.all(np.diff(swvl1["lat"].values) < 0)
    assert np.allclose(np.diff(lon), 0.1)
    with netCDF4.Dataset(path) as raw:
        raw_lon = raw["longitude"][:]
        assert raw_lon.min() >= 0 and raw_lon.max() > 300  # the file itself is 0..360
        column = int(np.flatnonzero(np.isclose(raw_lon, 359.9))[0])
        raw_values = raw["swvl1"][:, :, column]
    np.testing.assert_allclose(
        swvl1.sel(lon=-0.1, method="nearest").values, np.ma.filled(raw_values, np.nan)
    )
    assert swvl1.sizes["time"] == 24 * 31 and pd.Timestamp(swvl1["time"].values[0]) == pd.Timestamp(
        "2015-01-01"
    )


def test_era5land_is_wetter_and_smoother_than_the_truth(synthetic_world):
    truth = _truth(synthetic_world, 2001)
    era = xr.concat([read_era5land(p) for p in _files(synthetic_world, "era5land")[:12]], "time")
    daily = era.resample(time="1D").mean()
    on_truth = daily.interp(lat=truth["lat"], lon=truth["lon"]).values
    valid = np.isfinite(on_truth) & np.isfinite(truth.values)
    bias = np.mean(on_truth[valid] - truth.values[valid])
    assert 0.01 < bias < 0.1
    day_to_day = lambda a: np.nanmean(np.abs(np.diff(a, axis=0)))  # noqa: E731
    assert day_to_day(on_truth) < day_to_day(truth.values)


def test_era5land_legacy_layout_time_and_packing(tmp_path):
    """The pre-2024 CDS layout: `time`, int16 packed with scale/offset, 0..360."""
    values = np.array([[[0.2, 0.3], [0.25, np.nan]]], dtype=np.float64)
    packed = np.where(np.isnan(values), -32767, np.round((values - 0.3) / 1e-5)).astype(np.int16)
    path = tmp_path / "legacy.nc"
    write_netcdf(
        path,
        {"time": 1, "latitude": 2, "longitude": 2},
        {
            "time": NcVar(
                ("time",),
                np.array([1_000_000], np.int32),
                np.int32,
                {"units": "hours since 1900-01-01 00:00:00.0", "calendar": "gregorian"},
            ),
            "latitude": NcVar(
                ("latitude",), np.array([45.0, 44.9]), np.float32, {"units": "degrees_north"}
            ),
            "longitude": NcVar(
                ("longitude",), np.array([0.0, 359.9]), np.float32, {"units": "degrees_east"}
            ),
            "swvl1": NcVar(
                ("time", "latitude", "longitude"),
                packed,
                np.int16,
                {"scale_factor": 1e-5, "add_offset": 0.3, "units": "m**3 m**-3"},
                np.int16(-32767),
            ),
        },
    )
    swvl1 = read_era5land(path)
    assert list(swvl1["lon"].values) == pytest.approx([-0.1, 0.0])
    np.testing.assert_allclose(swvl1.values[0], [[0.3, 0.2], [np.nan, 0.25]], atol=1e-5)


# ----------------------------------------------------------------------------- GLASS-MODIS


def test_glass_modis_only_2000_to_2020(synthetic_world):
    years = {p.parent.name for p in _files(synthetic_world, "glass_modis", ".tif")}
    assert years == {"2001", "2015"}  # the test config's years, both inside 2000-2020


# -------------------------------------------------------------------------------- ESA CCI


def test_esa_cci_masks_flagged_cells(synthetic_world):
    for path in _files(synthetic_world, "esa_cci")[:60]:
        sm = read_esa_cci(path)
        with netCDF4.Dataset(path) as raw:
            flag = raw["flag"][:].filled(127)[0]
        assert sm.dims == ("time", "lat", "lon")
        invalid = (flag.astype(np.int16) & CCI_INVALID_FLAG_BITS) != 0
        assert np.isnan(sm.values[0][invalid]).all()
        assert np.isfinite(sm.values[0][~invalid]).all()
        assert np.allclose(np.diff(sm["lon"].values), 0.25)


# ------------------------------------------------------------------------ MERIT, SoilGrids


def test_merit_tiles_and_values(synthetic_world, test_config):
    region = test_config["region"]
    present, absent = merit_tiles_for_bounds(
        synthetic_world / "merit_dem",
        (region["lon_min"], region["lat_min"], region["lon_max"], region["lat_max"]),
    )
    assert [p.name for p in present] == ["n40w005_dem.tif", "n40e000_dem.tif"] and absent == []
    tile = read_merit_tile(present[1])
    assert tile.rio.crs.to_epsg() == 4326
    assert float(tile["x"].min()) == pytest.approx(0 + 0.0025, abs=1e-6)  # 18 arc-second pixels
    assert float(tile["y"].max()) == pytest.approx(45 - 0.0025, abs=1e-6)
    assert np.isnan(tile.values).any()  # the sea
    assert np.nanmin(tile.values) >= 1.0


def test_merit_missing_tiles_reported(tmp_path):
    present, absent = merit_tiles_for_bounds(tmp_path, (-2, 41, 2, 45))
    assert present == [] and absent == ["n40w005", "n40e000"]


def test_soilgrids_fractions_sum_to_one(synthetic_world):
    fractions = [
        read_soilgrids(synthetic_world / "soilgrids" / n / f"{n}_0-5cm_mean.vrt", n)
        for n in ("sand", "silt", "clay")
    ]
    assert "Goode" in fractions[0].rio.crs.to_wkt() or "igh" in fractions[0].rio.crs.to_proj4()
    total = sum(f.values for f in fractions)
    valid = np.isfinite(total)
    assert valid.mean() > 0.5
    assert np.abs(total[valid] - 1.0).max() < 0.05


# --------------------------------------------------------------------------- COSMOS, SMAP


def test_cosmos_uk_converts_percent_and_missing(synthetic_world):
    daily, metadata = cosmos_uk_files(synthetic_world / "cosmos")
    assert metadata is not None and metadata.name.startswith("COSMOS-UK_SiteMetadata_")
    path = daily[0]
    frame = read_cosmos_uk(path, read_cosmos_uk_site_metadata(metadata))
    raw = pd.read_csv(path)
    assert (raw["COSMOS_VWC"] == -9999).sum() == frame["soil_moisture"].isna().sum() > 0
    good = raw["COSMOS_VWC"] != -9999
    np.testing.assert_allclose(
        frame["soil_moisture"].to_numpy()[good], raw["COSMOS_VWC"][good] / 100.0
    )
    assert frame["effective_depth_cm"].notna().sum() == good.sum()
    assert 5 < frame["effective_depth_cm"].median() < 40
    assert {"site_id", "latitude", "longitude"} <= set(frame.attrs)
    assert str(frame.index.tz) == "UTC" and frame.index.year.min() >= 2008


def test_nsidc0712_files_as_nsidc_ships_them(synthetic_world):
    files, others = nsidc0712_files(synthetic_world / "smap_cvs")
    assert not others and len(files) == 2  # one 9 km pixel, and a 36 km one for the first site
    path = next(p for p in files if parse_nsidc0712_name(p.name).grid_km == 9)
    lines = path.read_text().splitlines()
    assert lines[1].startswith("Yr,Mo,Day,Hr,Min,") and "," in lines[3]
    frame = read_nsidc0712(path)
    a = frame.attrs
    assert a["reference_pixel"] == "16000901" and a["site_id"] == "1600" and a["grid_km"] == 9
    assert a["product"] == "SMAPL2SMPE" and a["insitu_column"] == "WASM" and a["n_bad_lines"] == 0
    assert str(frame.index.tz) == "UTC" and frame.index.year.min() >= 2015
    # overpasses near 06:00 and 18:00 local solar time, the region lies at 2 W .. 2 E
    assert set(frame.index.hour) <= {5, 6, 17, 18}
    assert a["n_fill"] == frame["soil_moisture"].isna().sum() > 0
    assert frame["soil_moisture"].between(0, 1).sum() > 200


def test_nsidc0712_name_parts():
    name = parse_nsidc0712_name("NSIDC-0712_67013601_SMAPL2SMP_T16500_20150401_20180323.txt")
    assert name == Nsidc0712Name(
        site_id="6701",
        reference_pixel="67013601",
        grid_km=36,
        product="SMAPL2SMP",
        version="T16500",
        first_day="20150401",
        last_day="20180323",
    )
    assert parse_nsidc0712_name("nsidc-0712_16010901_smapl2smpe_r18290_20150401_20201231.TXT")
    assert parse_nsidc0712_name("NSIDC-0712_1601_SMAPL2SMP.txt") is None


NSIDC0712_TEXT = (
    "Reference pixel 16010901, SMAPL2SMPE R18290\n"
    "Yr,Mo,Day,Hr,Min,SM-1,Q-FLG-1,WASM\n"
    "{units}"
    "2015,4,1,13,5,0.21,0,0.2000\n"
    "2015,4,1,23,40,0.23,1,0.2200\n"
    "2015,4,3,13,10,0.19,0,-9999\n"
)


@pytest.mark.parametrize("units", ["", "yyyy,mm,dd,hh,mm,m3/m3,N/A,m3/m3\n"])
def test_nsidc0712_with_or_without_a_units_line(tmp_path, units):
    path = tmp_path / "NSIDC-0712_16010901_SMAPL2SMPE_R18290_20150401_20150403.txt"
    path.write_text(NSIDC0712_TEXT.format(units=units))
    frame = read_nsidc0712(path)
    assert list(frame.index) == list(
        pd.to_datetime(["2015-04-01 13:05", "2015-04-01 23:40", "2015-04-03 13:10"], utc=True)
    )
    np.testing.assert_allclose(frame["soil_moisture"], [0.2, 0.22, np.nan])
    assert frame.attrs["n_fill"] == 1 and frame.attrs["n_bad_lines"] == 0


# ------------------------------------------------------------------------------ bad input


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)  # an HDF5 signature, then nothing
    return path


def test_truncated_netcdf_is_named(synthetic_world, tmp_path):
    source = _files(synthetic_world / "era5land", "2015")[0]
    truncated = tmp_path / source.name
    truncated.write_bytes(source.read_bytes()[:5000])
    for reader in (read_era5land, read_esa_cci):
        with pytest.raises(InputError) as info:
            reader(truncated)
        assert str(truncated) in str(info.value) and "not a readable" in str(info.value)
    with pytest.raises(InputError, match="not a readable ERA5-Land NetCDF"):
        read_era5land(_garbage(tmp_path / "garbage.nc"))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="ERA5-Land file not found"):
        read_era5land(tmp_path / "nope.nc")


def _write_tif(path: Path, data: np.ndarray, crs: str | None, nodata=-32768) -> Path:
    return write_geotiff(path, data, 0, 1000, 100, nodata, crs=crs)


def test_soilgrids_in_percent_or_without_crs_is_rejected(tmp_path):
    percent = _write_tif(
        tmp_path / "sand_0-5cm_mean.tif", np.full((20, 20), 45, np.int16), "ESRI:54052"
    )
    with pytest.raises(InputError, match="look like percent, not g/kg"):
        read_soilgrids(percent, "sand")
    no_crs = _write_tif(tmp_path / "clay_0-5cm_mean.tif", np.full((20, 20), 300, np.int16), None)
    with pytest.raises(InputError, match="has no CRS"):
        read_soilgrids(no_crs, "clay")
    broken = tmp_path / "silt_0-5cm_mean.tif"
    broken.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="not a readable SoilGrids GeoTIFF"):
        read_soilgrids(broken, "silt")


def test_merit_tile_in_projected_crs_or_bad_name_is_rejected(tmp_path):
    projected = _write_tif(
        tmp_path / "n40e000_dem.tif", np.full((4, 4), 100.0, np.float32), "EPSG:3857", -9999.0
    )
    with pytest.raises(InputError, match="projected CRS"):
        read_merit_tile(projected)
    with pytest.raises(InputError, match="not a MERIT DEM tile name"):
        read_merit_tile(shutil.copy(projected, tmp_path / "dem.tif"))


def test_cosmos_bad_files(tmp_path):
    no_columns = tmp_path / "COSMOS-UK_X_HydroSoil_Daily_2015-2015.csv"
    no_columns.write_text("SITE_ID,DATE,VWC\nX,2015-01-01,30\n")
    with pytest.raises(InputError, match="COSMOS-UK columns missing: DATE_TIME, COSMOS_VWC"):
        read_cosmos_uk(no_columns)
    fraction = tmp_path / "COSMOS-UK_Y_HydroSoil_Daily_2015-2015.csv"
    fraction.write_text(
        "SITE_ID,DATE_TIME,COSMOS_VWC,D86_75M\nY,2015-01-01,0.30,15\nY,2015-01-02,0.31,15\n"
    )
    with pytest.raises(InputError, match="look like m3 m-3, not percent"):
        read_cosmos_uk(fraction)
    all_missing = tmp_path / "COSMOS-UK_Z_HydroSoil_Daily_2015-2015.csv"
    all_missing.write_text(
        "SITE_ID,DATE_TIME,COSMOS_VWC,D86_75M\nZ,2015-01-01,-9999,-9999\nZ,2015-01-02,-9999,-9999\n"
    )
    frame = read_cosmos_uk(all_missing)
    assert frame["soil_moisture"].isna().all() and frame.attrs["n_missing_days"] == 2
    bad_date = tmp_path / "COSMOS-UK_W_HydroSoil_Daily_2015-2015.csv"
    bad_date.write_text("SITE_ID,DATE_TIME,COSMOS_VWC\nW,2015-01-01,30\nW,yesterday,31\n")
    with pytest.raises(InputError, match="unreadable date 'yesterday' in data row 2"):
        read_cosmos_uk(bad_date)


def test_cosmos_uk_header_only_file_and_bad_positions_say_file_problem_and_fix(tmp_path):
    from avhrrsm.grid import region_window
    from avhrrsm.validate.sites import SkipLog, cosmos_uk_sites

    header_only = tmp_path / "COSMOS-UK_X_HydroSoil_Daily_2015-2015.csv"
    header_only.write_text("SITE_ID,DATE_TIME,COSMOS_VWC,D86_75M\n")
    with pytest.raises(InputError, match="a header but no data rows") as caught:
        read_cosmos_uk(header_only)
    assert str(header_only) in str(caught.value) and "download" in str(caught.value)
    metadata = tmp_path / "COSMOS-UK_SiteMetadata_2015-2015.csv"
    for latitude in ("42.6N", "142.6"):
        metadata.write_text(f"SITE_NAME,SITE_ID,LATITUDE,LONGITUDE\nEx,X,{latitude},0.1\n")
        with pytest.raises(InputError, match="LATITUDE is not a number of degrees") as caught:
            read_cosmos_uk_site_metadata(metadata)
        assert f"X '{latitude}'" in str(caught.value) and str(metadata) in str(caught.value)
    # a site listed without a position is skipped, counted and named
    metadata.write_text("SITE_NAME,SITE_ID,LATITUDE,LONGITUDE\nEx,X,,0.1\n")
    header_only.write_text("SITE_ID,DATE_TIME,COSMOS_VWC,D86_75M\nX,2015-01-01,30,15\n")
    window = region_window({"lon_min": -2.0, "lon_max": 2.0, "lat_min": 41.0, "lat_max": 45.0})
    skips = SkipLog()
    assert cosmos_uk_sites(tmp_path, window, skips) == []
    assert skips.sites[0]["reason"] == "no_position" and skips.sites[0]["station"] == "X"


def test_cosmos_uk_release_in_lower_case_with_a_site_missing_from_its_metadata(
    synthetic_world, tmp_path
):
    """The EIDC release as some versions name it (lower case); a site the one metadata file does
    not list is skipped, counted and named; daily files without a metadata file are an error."""
    from avhrrsm.grid import region_window
    from avhrrsm.validate.sites import SkipLog, cosmos_uk_sites

    daily, metadata = cosmos_uk_files(synthetic_world / "cosmos")
    release = tmp_path / "cosmos"
    release.mkdir()
    for path in daily:
        shutil.copy(path, release / path.name.lower())
    table = read_cosmos_uk_site_metadata(metadata).reset_index()
    dropped = table["SITE_ID"].iloc[0]
    table.iloc[1:].rename(columns=str.lower).to_csv(release / metadata.name.lower(), index=False)
    window = region_window({"lon_min": -2.0, "lon_max": 2.0, "lat_min": 41.0, "lat_max": 45.0})
    skips = SkipLog()
    sites = cosmos_uk_sites(release, window, skips)
    assert len(sites) + skips.counts["site_no_site_metadata"] == len(daily)
    assert skips.counts["site_no_site_metadata"] == 1
    assert [s["station"] for s in skips.sites if s["reason"] == "no_site_metadata"] == [dropped]
    (release / metadata.name.lower()).unlink()
    with pytest.raises(InputError, match="no COSMOS-UK_SiteMetadata_"):
        cosmos_uk_sites(release, window, SkipLog())


def test_nsidc0712_bad_files(tmp_path):
    name = "NSIDC-0712_16010901_SMAPL2SMPE_R18290_20150401_20150403.txt"
    good = NSIDC0712_TEXT.format(units="")
    cases = {
        "ends after 1 line": good.splitlines()[0],
        "line 2 is not the column-name line": good.replace("Yr,Mo,Day,Hr,Min", "Date,Time"),
        "no in-situ column 'WASM'": good.replace("WASM", "SM_INSITU"),
        "no data line": "\n".join(good.splitlines()[:2]) + "\n",
        "above 1 m3 m-3": good.replace("0.2200", "22.0"),
    }
    for message, text in cases.items():
        path = tmp_path / message.replace(" ", "_") / name
        path.parent.mkdir()
        path.write_text(text)
        with pytest.raises(InputError, match=message) as caught:
            read_nsidc0712(path)
        assert str(path) in str(caught.value)
    with pytest.raises(InputError, match="not an NSIDC-0712 match-up file name"):
        other = tmp_path / "matchup.txt"
        other.write_text(good)
        read_nsidc0712(other)


def test_truncated_nsidc0712_file_keeps_its_whole_lines_and_says_so(tmp_path):
    path = tmp_path / "NSIDC-0712_16010901_SMAPL2SMPE_R18290_20150401_20150403.txt"
    path.write_text(NSIDC0712_TEXT.format(units="")[:-12])  # cut inside the last line
    frame = read_nsidc0712(path)
    assert len(frame) == 2 and frame.attrs["n_bad_lines"] == 1
    assert frame.attrs["truncated"] and frame.attrs["first_bad_line"] == 5


def test_nsidc0712_site_table(tmp_path):
    table = tmp_path / "sites.csv"
    table.write_text("Site ID,Name,Latitude,Longitude\n1601,Walnut Gulch,31.7,-110.0\n401,X,1,2\n")
    frame = read_nsidc0712_site_table(table)
    assert list(frame.index) == ["1601", "0401"] and frame.loc["1601", "name"] == "Walnut Gulch"
    by_pixel = tmp_path / "pixels.csv"
    by_pixel.write_text("reference_pixel,lat,lon\n16010901,31.7,-110.0\n")
    assert list(read_nsidc0712_site_table(by_pixel).index) == ["16010901"]
    for text, message in [
        ("site_id,latitude\n1601,31.7\n", "columns missing: longitude"),
        ("site_id,latitude,longitude\n1601,91,0\n", "row 2 has no usable id or position"),
        ("site_id,latitude,longitude\n1601,1,0\n1601,2,0\n", "listed twice"),
    ]:
        table.write_text(text)
        with pytest.raises(InputError, match=message):
            read_nsidc0712_site_table(table)


@pytest.mark.parametrize(
    "pattern",
    [
        "{root}/lst/{year}/GLASS08B31.V40.A{year}{doy:03d}.*.hdf",
        "{root}/cci/{year}/ESACCI-SM-{year}{month:02d}{day:02d}000000-fv09.1.nc",
        "{root}/modis/{year}/GLASS_MODIS_SM_A{year}{doy:03d}*.tif",
        "{root}/odd/{year}/A{year}{doy:03d}[ab].tif",  # a class: matched day by day
    ],
)
def test_daily_files_list_each_folder_once_and_match_day_by_day(tmp_path, pattern):
    """The DAG's listing of daily files (one folder read at a time) finds exactly what the
    readers' day-by-day glob finds: several production dates, a day missing, a hidden name, a
    folder named like a file, a name without the zero padding, a year folder absent."""
    from avhrrsm.io.glass import matching_files
    from avhrrsm.io.rawfiles import daily_files

    names = {
        "lst/2001": [
            "GLASS08B31.V40.A2001001.2021047.hdf",
            "GLASS08B31.V40.A2001001.2022001.hdf",
            "GLASS08B31.V40.A2001003.2021047.hdf",
            ".GLASS08B31.V40.A2001004.2021047.hdf",
            "GLASS08B31.V40.A20015.2021047.hdf",
        ],
        "cci/2001": [
            "ESACCI-SM-20010101000000-fv09.1.nc",
            "ESACCI-SM-20010103000000-fv09.1.nc",
            "ESACCI-SM-2001014000000-fv09.1.nc",
        ],
        "modis/2001": ["GLASS_MODIS_SM_A2001002.tif", "GLASS_MODIS_SM_A2001002_h18v04.tif"],
        "odd/2001": ["A2001001a.tif", "A2001002c.tif"],
    }
    for folder, files in names.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in files:
            (tmp_path / folder / name).write_bytes(b"x")
    (tmp_path / "cci/2001/ESACCI-SM-20010102000000-fv09.1.nc").mkdir()  # not a file
    resolved = pattern.replace("{root}", str(tmp_path))
    days = pd.date_range("2000-12-30", "2001-01-05")  # 2000's folders do not exist
    expected = [str(p) for day in days for p in matching_files(resolved, day)]
    assert expected  # the case finds something
    assert daily_files(resolved, days) == expected
