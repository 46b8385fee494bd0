"""Validation: metrics equal pytesmo's, ISMN flag/depth filtering counts, skipped stations,
SMAP 9 km cells, fair common-day scoring, the Pettitt homogeneity test."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_DIR

from avhrrsm import metrics as M
from avhrrsm.grid import ease2_cell, region_window
from avhrrsm.io.errors import InputError
from avhrrsm.io.ismn import read_sensor_file
from avhrrsm.validate.at_sites import PRODUCTS, collect_sites, score_sites
from avhrrsm.validate.homogeneity import homogeneity_test, pettitt
from avhrrsm.validate.sites import (
    Site,
    SkipLog,
    cell_pixels,
    flag_kept,
    ismn_daily,
    ismn_sites,
    nearest_pixel,
    one_site_per_record,
    smap_sites,
)

REGION = {"lon_min": -0.5, "lon_max": 0.5, "lat_min": 42.0, "lat_max": 43.0}
SETTINGS = {
    "ismn_max_depth_m": 0.05,
    "cosmos_max_depth_m": 0.19,
    "cosmos_networks": ["COSMOS"],
    "quality_flags": ["G"],
    "min_obs_per_day": 12,
}


def _pairs():
    rng = np.random.default_rng(42)
    x = rng.random(200) * 0.4
    yield x, 0.7 * x + 0.05 + rng.normal(0, 0.03, x.size)
    yield rng.random(15), rng.random(15)
    real = read_sensor_file(next((DATA_DIR / "ismn" / "format_header_values").rglob("*.stm")))[
        "soil_moisture"
    ].to_numpy()
    real = real[np.isfinite(real)]
    yield real[1:], real[:-1]  # a real series against itself a step later
    yield real, real * 0.9 + 0.02 + rng.normal(0, 0.01, real.size)


@pytest.mark.parametrize("case", range(4))
def test_metrics_equal_pytesmo(case):
    pytesmo = pytest.importorskip("pytesmo.metrics")
    pairwise = pytest.importorskip("pytesmo.metrics.pairwise")
    x, y = list(_pairs())[case]
    assert abs(M.bias(x, y) - pytesmo.bias(x, y)) < 1e-10
    assert abs(M.rmse(x, y) - pytesmo.rmsd(x, y)) < 1e-10
    assert abs(M.ubrmse(x, y) - pytesmo.ubrmsd(x, y)) < 1e-10
    r = M.pearson_r(x, y)
    assert abs(r - pytesmo.pearson_r(x, y)) < 1e-10
    ours = M.pearson_r_ci(r, x.size, 0.05)
    theirs = pairwise.pearson_r_ci(x, y, r, 0.05)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    u = M.ubrmse(x, y)
    np.testing.assert_allclose(
        M.ubrmse_ci(u, x.size, 0.05), pairwise.ubrmsd_ci(x, y, u, 0.05), rtol=0, atol=1e-10
    )


def test_bias_sign_convention_and_site_metrics():
    y = np.array([0.1, 0.2, 0.3, 0.25, np.nan])
    x = np.array([0.15, 0.25, 0.35, 0.30, 0.2])
    out = M.site_metrics(x, y)
    assert out["n"] == 4
    assert out["bias"] == pytest.approx(0.05)  # the product is wetter: positive
    assert out["ubrmse"] == pytest.approx(0.0, abs=1e-12)
    assert out["r"] == pytest.approx(1.0)
    assert np.isnan(M.site_metrics(x[:2], y[:2])["r"])


def _frame(values, flags, start="2015-03-01", freq="h"):
    index = pd.date_range(start, periods=len(values), freq=freq)
    return pd.DataFrame({"soil_moisture": values, "flag": flags}, index=index)


def test_quality_flag_filter_and_daily_counts():
    # day 1: 24 readings, 4 flagged D01 and 2 flagged "G,D02" -> 18 good -> kept
    # day 2: 24 readings, 14 flagged C01 -> 10 good -> fewer than 12 -> dropped
    flags = ["G"] * 18 + ["D01"] * 4 + ["G,D02"] * 2 + ["G"] * 10 + ["C01"] * 14
    values = np.r_[np.full(24, 0.2), np.full(24, 0.3)]
    skips = SkipLog()
    daily = ismn_daily(_frame(values, flags), {"G"}, 12, skips)
    assert list(daily.index) == [pd.Timestamp("2015-03-01")]
    assert daily.iloc[0] == pytest.approx(0.2)
    assert skips.counts["readings_flag_D01"] == 4
    assert skips.counts["readings_flag_G,D02"] == 2
    assert skips.counts["readings_flag_C01"] == 14
    assert skips.counts["days_too_few_readings"] == 1
    assert flag_kept(pd.Series(["G", "G,D02", "M"]), {"G", "M"}).tolist() == [True, False, True]


def _write_stm(folder: Path, network, station, lat, lon, depth_from, depth_to, days=40):
    """A header+values ISMN file with hourly readings, all flagged G."""
    name = (
        f"{network}_{network}_{station}_sm_{depth_from:.6f}_{depth_to:.6f}_Probe_"
        f"20150101_20151231.stm"
    )
    path = folder / network / station / name
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"{network} {network} {station} {lat:.5f} {lon:.5f} 100.00 "
        f"{depth_from:.2f} {depth_to:.2f} Probe\n"
    )
    stamps = pd.date_range("2015-01-01", periods=24 * days, freq="h")
    lines = [
        f"{t:%Y/%m/%d %H:%M} {0.25 + 0.01 * np.sin(k / 50):.4f} G M" for k, t in enumerate(stamps)
    ]
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def test_stations_outside_the_region_or_too_deep_are_counted_not_lost(tmp_path):
    _write_stm(tmp_path, "NETA", "Inside", 42.51, 0.02, 0.05, 0.05)
    _write_stm(tmp_path, "NETA", "Deep", 42.51, 0.02, 0.10, 0.10)
    _write_stm(tmp_path, "NETA", "Faraway", 48.0, 10.0, 0.0, 0.05)
    _write_stm(tmp_path, "COSMOS", "Probe1", 42.3, -0.3, 0.0, 0.19)
    skips = SkipLog()
    window = region_window(REGION)
    sites = ismn_sites(tmp_path, window, SETTINGS, skips)
    assert sorted((s.station, s.scale) for s in sites) == [("Inside", "point"), ("Probe1", "field")]
    assert skips.counts["sensors_depth_outside_range"] == 1
    (deep,) = skips.sensors  # named, with why
    assert (deep["network"], deep["station"], deep["reason"]) == (
        "NETA",
        "Deep",
        "depth_outside_range",
    )
    assert "0.1-0.1 m, outside 0-0.05 m" in deep["detail"]
    assert skips.counts["site_outside_region"] == 1
    assert skips.sites == [
        {
            "network": "NETA",
            "station": "Faraway",
            "reason": "outside_region",
            "detail": "lat 48.0, lon 10.0",
        }
    ]
    inside = next(s for s in sites if s.station == "Inside")
    assert len(inside.series) == 40
    assert tuple(inside.pixels[0]) == nearest_pixel(42.51, 0.02, window)


def _collect(ismn: Path, cosmos: Path, skips: SkipLog) -> list[Site]:
    inputs = {"ismn": str(ismn), "cosmos": str(cosmos), "smap_cvs": str(cosmos / "none")}
    settings = {**SETTINGS, "cosmos_networks": ["COSMOS", "COSMOS-UK"]}
    return collect_sites(inputs, region_window(REGION), settings, skips)


def test_an_in_situ_record_held_twice_is_scored_once(tmp_path):
    """The same sensor file twice in an archive folder (and as a doubled zip member), and two
    releases of one COSMOS-UK site's daily file: each record scored once, the copy that won
    named, the others counted and listed."""
    archive = tmp_path / "ismn"
    path = _write_stm(archive, "NETA", "Inside", 42.51, 0.02, 0.05, 0.05)
    _write_stm(archive, "NETA", "Other", 42.61, 0.12, 0.05, 0.05)
    (path.parent / "again").mkdir()
    shutil.copy(path, path.parent / "again" / path.name)
    # and under a second network folder: the archive's layout would name it another network
    (archive / "NETB" / "Inside").mkdir(parents=True)
    shutil.copy(path, archive / "NETB" / "Inside" / path.name)
    cosmos = tmp_path / "cosmos"
    cosmos.mkdir()
    # the same probe in ISMN's COSMOS-UK network, a shorter record: the EIDC release wins
    _write_stm(archive, "COSMOS-UK", "ALPHA-ISMN", 42.3, -0.3, 0.0, 0.19, days=10)
    (cosmos / "COSMOS-UK_SiteMetadata_2015-2016.csv").write_text(
        "SITE_NAME,SITE_ID,LATITUDE,LONGITUDE,ALTITUDE\nAlpha,ALPHA,42.3,-0.3,100\n"
    )
    for last, days in ((2015, 20), (2016, 30)):
        stamps = pd.date_range("2015-01-05", periods=days).strftime("%Y-%m-%d")
        rows = "".join(f"ALPHA,{d},{30 + k % 5},15\n" for k, d in enumerate(stamps))
        (cosmos / f"COSMOS-UK_ALPHA_HydroSoil_Daily_2015-{last}.csv").write_text(
            "SITE_ID,DATE_TIME,COSMOS_VWC,D86_75M\n" + rows
        )
    skips = SkipLog()
    sites = _collect(archive, cosmos, skips)
    assert sorted(s.station for s in sites) == ["Alpha", "Inside", "Other"]
    assert skips.counts["sensors_duplicate_record"] == 4
    assert sorted(s.network for s in sites) == ["COSMOS-UK", "NETA", "NETA"]
    newer = next(s for s in sites if s.station == "Alpha")
    assert newer.source.endswith("2015-2016.csv") and len(newer.series) == 30
    by_station = {entry["station"]: entry for entry in skips.sensors}
    assert by_station["Alpha"]["detail"].endswith("(it ends later)")
    assert "2015-2015.csv: a copy of the record in" in by_station["Alpha"]["detail"]
    copies = sorted(e["detail"] for e in skips.sensors if e["station"] == "Inside")
    assert copies == [
        f"{folder}: a copy of the record in {path} (it comes first in path order)"
        for folder in (path.parent / "again" / path.name, archive / "NETB" / "Inside" / path.name)
    ]
    # a zip holding one member twice (zipfile writes it, with a warning)
    doubled = tmp_path / "doubled.zip"
    with zipfile.ZipFile(doubled, "w") as out, pytest.warns(UserWarning, match="Duplicate"):
        for _ in range(2):
            out.write(path, f"NETA/Inside/{path.name}")
    skips = SkipLog()
    assert [s.station for s in _collect(doubled, cosmos / "none", skips)] == ["Inside"]
    assert skips.counts["sensors_duplicate_record"] == 1


def test_pieces_of_one_record_that_do_not_overlap_are_joined():
    def site(start: str, source: str) -> Site:
        days = pd.date_range(start, periods=5, name="date")
        return Site(
            "NETA", "S1", "Probe", "point", 42.5, 0.0, 0.0, 0.05, source,
            pd.Series(0.2, index=days), np.array([[1, 1]]),
        )  # fmt: skip

    skips = SkipLog()
    (joined,) = one_site_per_record(
        [site("2015-01-01", "a.stm"), site("2016-01-01", "b.stm")], skips
    )
    assert len(joined.series) == 10 and joined.series.index.is_monotonic_increasing
    assert skips.counts["records_joined"] == 1 and not skips.sensors


@pytest.mark.parametrize(
    "member", ["../NETA/Inside/{name}", "/NETA/Inside/{name}", "C:\\x\\{name}"]
)
def test_archive_members_that_climb_out_or_are_absolute_are_refused(tmp_path, member):
    path = _write_stm(tmp_path / "folder", "NETA", "Inside", 42.51, 0.02, 0.05, 0.05)
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(path, f"NETA/Inside/{path.name}")
        info = zipfile.ZipInfo(member.format(name=path.name))
        out.writestr(info, path.read_bytes())
    with pytest.raises(InputError, match="climbs out of the archive") as caught:
        ismn_sites(archive, region_window(REGION), SETTINGS, SkipLog())
    assert str(archive) in str(caught.value) and path.name in str(caught.value)


def test_an_ismn_header_that_disagrees_with_its_name_is_counted_and_noted():
    archive = DATA_DIR / "ismn" / "zip_archives" / "multinetwork" / "header_values"
    region = {"lon_min": 102.0, "lon_max": 102.5, "lat_min": 33.5, "lat_max": 34.0}
    skips = SkipLog()
    settings = {**SETTINGS, "quality_flags": ["G", "U"], "min_obs_per_day": 1}
    sites = ismn_sites(archive / "Data_header_values.zip", region_window(region), settings, skips)
    assert sorted(s.station for s in sites) == ["CST-01", "CST-02"]  # named as ismn names them
    assert skips.counts["sensors_header_disagrees_with_name"] == 2
    cst01 = next(s for s in sites if s.station == "CST-01")
    assert cst01.notes == [
        "MAQU_MAQU_CST-01_sm_0.050000_0.050000_ECH20-EC-TM_20070101_20131231.stm: station "
        "'CST_01' in the header, 'CST-01' in the name (read as the ismn package reads it)"
    ]


def test_smap_site_averages_its_reference_pixel(synthetic_world, test_config, tmp_path):
    window = region_window(test_config["region"])
    skips = SkipLog()
    table = synthetic_world / "smap_cvs_sites.csv"
    sites = smap_sites(synthetic_world / "smap_cvs", table, window, skips)
    assert [s.station for s in sites] == ["CVS-Aubiac (16000901)"] and sites[0].scale == "9km"
    assert skips.counts["smap_cvs_files_36km_not_selected"] == 1
    site = sites[0]
    row, col, _ = ease2_cell(site.latitude, site.longitude, 9)
    np.testing.assert_array_equal(site.pixels, cell_pixels(row, col, window, 9))
    assert 1 <= len(site.pixels) <= 9  # a 9 km cell holds about 2 x 2 pixels of 0.05 degrees
    both = smap_sites(synthetic_world / "smap_cvs", table, window, SkipLog(), (9, 36))
    assert [s.scale for s in both] == ["9km", "36km"]
    assert len(both[1].pixels) > 4 * len(both[0].pixels)
    assert cell_pixels(10, 10, window).size == 0  # a cell far from the region


def test_smap_sites_missing_metadata_and_truncated_files(synthetic_world, test_config, tmp_path):
    window = region_window(test_config["region"])
    folder = tmp_path / "smap_cvs"
    shutil.copytree(synthetic_world / "smap_cvs", folder)
    with pytest.raises(InputError, match="no site table"):
        smap_sites(folder, tmp_path / "none.csv", window, SkipLog())
    table = tmp_path / "sites.csv"
    table.write_text("site_id,latitude,longitude\n9999,42,0\n")
    skips = SkipLog()
    assert smap_sites(folder, table, window, skips) == []
    assert skips.sites == [
        {
            "network": "SMAP-CVS",
            "station": "16000901",
            "reason": "no_site_metadata",
            "detail": f"not in {table}",
        }
    ]
    path = next(folder.glob("NSIDC-0712_16000901_*.txt"))
    path.write_bytes(path.read_bytes()[:-7])  # cut inside its last line
    (folder / "README.txt").write_text("not a match-up file")
    skips = SkipLog()
    (site,) = smap_sites(folder, synthetic_world / "smap_cvs_sites.csv", window, skips)
    assert skips.counts["readings_malformed_line"] == 1
    assert skips.counts["smap_cvs_files_not_nsidc0712"] == 1
    assert site.notes and "truncated file, 1 malformed line(s)" in site.notes[0]


def test_only_days_shared_by_all_products_are_scored():
    days = pd.date_range("2015-01-01", periods=60)
    insitu = pd.Series(np.linspace(0.1, 0.4, 60), index=days)
    site = Site("N", "S", "x", "point", 42.5, 0.0, 0.0, 0.05, "f", insitu, np.array([[0, 0]]))
    rng = np.random.default_rng(0)
    product = insitu + rng.normal(0, 0.02, 60)
    era5 = insitu + 0.05
    cci = insitu.copy()
    cci.iloc[::3] = np.nan  # ESA CCI misses every third day
    series = {"avhrrsm": [product], "era5land": [era5], "esa_cci": [cci]}
    periods = {"p": [2015, 2015], "empty": [1990, 1999]}
    skips = SkipLog()
    results = score_sites([site], series, periods, 30, 0.05, skips)
    # a period is labelled by the years scored in it; one nobody was scored in keeps its name
    assert list(results["period"].values) == ["2015", "empty"]
    assert list(results["period_name"].values) == ["p", "empty"]
    n = results["n"].sel(period="2015").values[0]
    assert (n == 40).all()  # the same 40 days for every product
    assert results["bias"].sel(period="2015", product="era5land").item() == pytest.approx(0.05)
    assert np.isnan(results["r"].sel(period="empty").values).all()
    assert skips.counts["site_periods_fewer_than_30_common_days"] == 1
    assert skips.site_periods == [
        {
            "network": "N",
            "station": "S",
            "sensor": "x",
            "period": "empty",
            "reason": "fewer_than_30_common_days",
            "detail": "0 day(s) shared by the site and every product",
        }
    ]
    assert list(results["product"].values) == list(PRODUCTS)


def test_periods_are_labelled_by_runs_of_consecutive_years():
    from avhrrsm.validate.periods import year_runs, years_label

    assert years_label([1999]) == "1999"
    assert years_label([2016, 2000, 2001, 2002, 2015]) == "2000-2002, 2015-2016"
    assert year_runs([2001, 2015, 2003, 2002]) == [[2001, 2002, 2003], [2015]]


def test_homogeneity_is_tested_per_run_of_years_never_across_a_gap():
    """A step between 1999 and 2015 is a gap in the record, not a break: each run of
    consecutive years is its own series."""
    from avhrrsm.validate.homogeneity import homogeneity_by_period

    days = pd.DatetimeIndex(
        [*pd.date_range("1997-01-01", "1999-12-31"), *pd.date_range("2014-01-01", "2016-12-31")]
    )
    rng = np.random.default_rng(3)
    reference = pd.Series(0.25 + 0.05 * np.sin(days.day_of_year / 58.0), index=days)
    product = reference + rng.normal(0, 0.002, days.size) + np.where(days.year >= 2014, 0.03, 0.0)
    periods = homogeneity_by_period(product, reference, ["1998-06-01", "2015-06-01"], 90, 0.05)
    assert [p["years"] for p in periods] == ["1997-1999", "2014-2016"]
    assert [p["months"] for p in periods] == [36, 36]
    assert not any(p["significant"] for p in periods)  # the offset lies in the gap
    joined = homogeneity_test(product, reference, [], 90, 0.05)
    assert joined["significant"]  # what testing across the gap would have claimed


def test_pettitt_finds_a_step_and_not_noise():
    rng = np.random.default_rng(1)
    step = np.r_[rng.normal(0, 1, 60), rng.normal(1.5, 1, 60)]
    index, _, p = pettitt(step)
    assert abs(index - 59) <= 3 and p < 0.001
    _, _, p_noise = pettitt(rng.normal(0, 1, 120))
    assert p_noise > 0.05


def test_a_break_at_a_platform_change_is_attributed():
    days = pd.date_range("1998-01-01", "2003-12-31")
    rng = np.random.default_rng(3)
    season = 0.05 * np.sin(2 * np.pi * days.day_of_year / 365.25)
    reference = pd.Series(0.25 + season, index=days)
    product = (
        reference + rng.normal(0, 0.004, days.size) + np.where(days >= "2001-01-01", 0.02, 0.0)
    )
    result = homogeneity_test(product, reference, ["1995-02-01", "2001-01-01"], 90, 0.05)
    assert result["significant"] and result["attributed_to_platform_change"]
    assert result["nearest_platform_change"] == "2001-01-01"
    assert result["shift_m3m3"] == pytest.approx(0.02, abs=0.005)


def test_every_site_is_listed_with_its_status_and_unscored_networks_are_named():
    """A site read but never scored, and a skipped one, are listed with their reasons; a network
    without any scored site is named (and warned about by the validation job)."""
    import xarray as xr

    from avhrrsm.validate.at_sites import PRODUCTS, site_status
    from avhrrsm.validate.sites import Site, SkipLog

    def site(network: str, station: str) -> Site:
        return Site(
            network,
            station,
            "probe",
            "point",
            43.0,
            1.0,
            0.0,
            0.05,
            "f",
            pd.Series(dtype=float),
            np.zeros((1, 2), int),
        )

    sites = [site("A", "a1"), site("B", "b1")]
    rmse = np.full((2, len(PRODUCTS), 2), np.nan)
    rmse[0, list(PRODUCTS).index("avhrrsm"), 1] = 0.03
    results = xr.Dataset(
        {"rmse": (("site", "product", "period"), rmse)}, coords={"product": list(PRODUCTS)}
    )
    skips = SkipLog()
    skips.skip_site("no_site_metadata", "COSMOS-UK", "XYZ", "not in the metadata file")
    rows, without = site_status(sites, results, skips)
    assert [(r["station"], r["status"]) for r in rows] == [
        ("a1", "scored"),
        ("b1", "not_scored"),
        ("XYZ", "skipped: no_site_metadata"),
    ]
    assert rows[0]["detail"] == "1 period(s)" and without == ["B", "COSMOS-UK"]


def _site(lat: float, lon: float) -> Site:
    return Site(
        "NET", f"S{lat}/{lon}", "Probe", "point", lat, lon, 0.0, 0.05, "test",
        pd.Series(dtype=np.float64), np.array([[0, 0]]),
    )  # fmt: skip


def test_era5land_at_sites_on_a_real_file_and_across_the_dateline(tmp_path):
    """The real ECMWF NetCDF (packed int16, 0..359.25 E, two time steps): read, and no day with
    fewer than 24 hours; a generated 48-hour global file: the daily means at the nearest cell,
    across the dateline too, and a day with a missing hour left out."""
    from avhrrsm.io.netcdf import NcVar, write_netcdf
    from avhrrsm.validate.extract import era5land_at_sites

    real = DATA_DIR / "era5" / "eraint_example_downloaded_raw.nc"
    series = era5land_at_sites([real], [_site(42.5, -0.2), _site(-10.0, 179.9)])
    assert [s.size for s in series] == [0, 0]
    lon = np.round(0.1 * np.arange(3600), 6)
    lat = np.array([45.0, 44.9])
    hours = pd.date_range("2001-01-01", periods=48, freq="h")
    values = (
        np.broadcast_to((0.2 + lon / 3600.0)[None, None, :], (48, 2, lon.size))
        .astype(np.float32)
        .copy()
    )
    values[24:] += 0.1
    values[30, 0, 5] = np.nan  # one hour missing on day 2 at 0.5 E, 45 N
    seconds = ((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy()
    path = tmp_path / "era5.nc"
    write_netcdf(
        path,
        {"valid_time": 48, "latitude": 2, "longitude": lon.size},
        {
            "valid_time": NcVar(
                ("valid_time",), seconds, np.int64, {"units": "seconds since 1970-01-01"}
            ),
            "latitude": NcVar(("latitude",), lat),
            "longitude": NcVar(("longitude",), lon),
            "swvl1": NcVar(
                ("valid_time", "latitude", "longitude"), values, np.float32,
                {"units": "m**3 m**-3"}, np.float32(np.nan),
            ),
        },
    )  # fmt: skip
    east, dateline, gap = era5land_at_sites(
        [path], [_site(44.9, 0.3), _site(45.0, -0.03), _site(45.0, 0.5)]
    )
    assert east.to_numpy() == pytest.approx([0.2 + 0.3 / 3600, 0.3 + 0.3 / 3600], abs=1e-6)
    # 0.03 W lies nearest the 0.0 E cell (across 360), not the 359.9 E one
    assert dateline.to_numpy() == pytest.approx([0.2, 0.3], abs=1e-6)
    assert list(gap.index) == [pd.Timestamp("2001-01-01")]
    assert east.index.name == "date" and east.dtype == np.float64
