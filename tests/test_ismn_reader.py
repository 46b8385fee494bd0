"""The ISMN reader on the real sample files (and the synthetic archive), against the `ismn` package."""

from __future__ import annotations

import shutil
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_DIR

from avhrrsm.io.errors import InputError
from avhrrsm.io.ismn import parse_file_name, read_archive, read_sensor_file, read_static_variables

ISMN_DIR = DATA_DIR / "ismn"
HEADER_FILE = next((ISMN_DIR / "format_header_values" / "SMOSMANIA").glob("*.stm"))
CEOP_FILE = next((ISMN_DIR / "format_ceop_sep" / "SMOSMANIA").glob("*.stm"))
COSMOS_DIR = ISMN_DIR / "Data_seperate_files_header_20170810_20180809"
COSMOS_FILE = next(COSMOS_DIR.rglob("*.stm"))


def _ismn_package_frame(root: Path, path: Path) -> tuple[pd.DataFrame, dict]:
    """Read one file with TU Wien's `ismn` package (the reference implementation)."""
    from ismn.filehandlers import DataFile

    data_file = DataFile(root, path.relative_to(root))
    frame = data_file.read_data()
    meta = {name: values[0] for name, values in data_file.metadata.to_dict().items()}
    return frame, meta


def test_header_values_with_cr_line_endings():
    raw = HEADER_FILE.read_bytes()
    assert b"\r" in raw and b"\n" not in raw  # the real sample is CR-only
    frame = read_sensor_file(HEADER_FILE)
    assert list(frame.columns) == ["soil_moisture", "flag", "orig_flag"]
    assert str(frame.index.tz) == "UTC"
    assert frame.attrs["format"] == "header_values"
    assert frame.attrs["network"] == "SMOSMANIA"
    assert frame.attrs["station"] == "Narbonne"
    assert frame.attrs["latitude"] == pytest.approx(43.15)
    assert frame.attrs["longitude"] == pytest.approx(2.9567)
    assert frame.attrs["elevation"] == pytest.approx(112.0)
    assert (frame.attrs["depth_from"], frame.attrs["depth_to"]) == (0.05, 0.05)
    assert frame.attrs["sensor"] == "ThetaProbe-ML2X"
    assert frame.index[0] == pd.Timestamp("2007-01-01 01:00", tz="UTC")
    assert frame["soil_moisture"].iloc[0] == pytest.approx(0.2140)
    assert set(frame["flag"]) == {"U", "D05"}
    # one line of the real file has no provider flag: it stays missing, as in the ismn package
    assert set(frame["orig_flag"].dropna()) == {"M"}
    assert frame["orig_flag"].isna().sum() == 1


def test_ceop_and_header_values_agree():
    header = read_sensor_file(HEADER_FILE)
    ceop = read_sensor_file(CEOP_FILE)
    assert ceop.attrs["format"] == "ceop_sep"
    pd.testing.assert_frame_equal(
        header[["soil_moisture", "flag"]], ceop[["soil_moisture", "flag"]]
    )
    # The two real files differ in one place: the Header+values line of 2007-01-01 22:00 has
    # no provider flag, the CEOP line has 'M'. Everywhere else the provider flags agree.
    both = header["orig_flag"].notna()
    assert (~both).sum() == 1 and header.index[~both][0] == pd.Timestamp(
        "2007-01-01 22:00", tz="UTC"
    )
    assert (header["orig_flag"][both] == ceop["orig_flag"][both]).all()
    for key in (
        "network",
        "station",
        "latitude",
        "longitude",
        "elevation",
        "depth_from",
        "depth_to",
        "sensor",
    ):
        assert header.attrs[key] == ceop.attrs[key], key


@pytest.mark.parametrize(
    "path", [HEADER_FILE, CEOP_FILE, COSMOS_FILE], ids=["header", "ceop", "cosmos"]
)
def test_agrees_with_the_ismn_package(path):
    root = path.parents[1] if path != COSMOS_FILE else COSMOS_DIR
    reference, meta = _ismn_package_frame(root, path)
    ours = read_sensor_file(path)
    assert len(ours) == len(reference)
    np.testing.assert_array_equal(
        ours.index.tz_localize(None).to_numpy(), reference.index.to_numpy()
    )
    np.testing.assert_allclose(
        ours["soil_moisture"].to_numpy(), reference["soil_moisture"].to_numpy()
    )
    assert (ours["flag"].to_numpy() == reference["soil_moisture_flag"].astype(str).to_numpy()).all()
    ref_orig = reference["soil_moisture_orig_flag"]
    assert (ours["orig_flag"].isna().to_numpy() == ref_orig.isna().to_numpy()).all()
    assert (ours["orig_flag"].dropna().to_numpy() == ref_orig.dropna().astype(str).to_numpy()).all()
    assert ours.attrs["latitude"] == pytest.approx(meta["latitude"][0])
    assert ours.attrs["longitude"] == pytest.approx(meta["longitude"][0])
    assert ours.attrs["station"] == meta["station"][0]
    assert (ours.attrs["depth_from"], ours.attrs["depth_to"]) == (
        meta["variable"][1],
        meta["variable"][2],
    )


def test_cosmos_probe_flags_and_depth():
    frame = read_sensor_file(COSMOS_FILE)
    assert (frame.attrs["depth_from"], frame.attrs["depth_to"]) == (0.0, 0.19)
    assert frame.attrs["sensor"] == "Cosmic-ray-Probe"
    counts = frame["flag"].value_counts()
    assert counts["G"] == 6514 and counts["D03,D05"] == 17 and counts["D08,D05"] == 1


def test_static_variables_csv():
    table = read_static_variables(next(COSMOS_DIR.rglob("*_static_variables.csv")))
    clay = table[table["quantity_name"] == "clay fraction"]
    assert clay["value"].astype(float).tolist() == [23.0, 29.0]


def test_file_name_with_underscores_in_sensor():
    parts = parse_file_name(
        "AVSYN_AVSYN_Aubiac_sm_0.000000_0.050000_Hydraprobe-II_Sdi-12_20160104_20161231.stm"
    )
    assert parts.station == "Aubiac" and parts.variable == "sm"
    assert parts.sensor == "Hydraprobe-II_Sdi-12"
    assert (parts.depth_from, parts.depth_to) == (0.0, 0.05)
    newer = parse_file_name(
        "FR_Aqui_SMOSMANIA_Narbonne_sm_0.050000_0.050000_Theta_Probe_ML2X_A_20070101_20070131.stm"
    )
    assert newer.sensor == "Theta_Probe_ML2X_A"


def test_zip_and_folder_archives_give_the_same_frames(tmp_path):
    archive = tmp_path / "Data_separate_files_header.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(COSMOS_DIR.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(COSMOS_DIR))
    from_folder = list(read_archive(COSMOS_DIR))
    from_zip = list(read_archive(archive))
    assert len(from_folder) == len(from_zip) == 2  # ARM-1 and Barrow-ARM
    for folder_frame, zip_frame in zip(from_folder, from_zip, strict=True):
        pd.testing.assert_frame_equal(folder_frame, zip_frame, check_like=True)
        assert folder_frame.attrs["network"] == zip_frame.attrs["network"] == "COSMOS"
    assert from_zip[0].attrs["path"].endswith(".stm") and "!" in from_zip[0].attrs["path"]


def test_synthetic_archive_read_by_ismn_package_and_by_us(synthetic_world, tmp_path):
    from ismn.interface import ISMN_Interface

    (archive,) = (synthetic_world / "ismn").glob("*.zip")  # the zip, as the portal delivers it
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
    assert "Metadata.xml" in names and any(n.endswith(".stm") for n in names)
    copy = tmp_path / archive.name
    shutil.copy(archive, copy)
    interface = ISMN_Interface(str(copy))
    ours = {
        (f.attrs["network"], f.attrs["station"], f.attrs["depth_from"], f.attrs["depth_to"]): f
        for f in read_archive(archive)
    }
    n_compared = 0
    for network in interface.networks.values():
        for station in network.stations.values():
            for sensor in station.sensors.values():
                reference = sensor.read_data()
                key = (network.name, station.name, sensor.depth.start, sensor.depth.end)
                frame = ours[key]
                np.testing.assert_allclose(
                    frame["soil_moisture"].to_numpy(), reference["soil_moisture"].to_numpy()
                )
                assert (
                    frame["flag"].to_numpy()
                    == reference["soil_moisture_flag"].astype(str).to_numpy()
                ).all()
                np.testing.assert_array_equal(
                    frame.index.tz_localize(None).to_numpy(), reference.index.to_numpy()
                )
                n_compared += 1
    assert n_compared == len(ours) > 0
    flags = pd.concat([f["flag"] for f in ours.values()])
    assert {"G", "D03", "D06"} <= set(flags.str.split(",").explode())
    depths = {k[2:] for k in ours}
    assert (0.05, 0.05) in depths and (0.2, 0.2) in depths and (0.0, 0.19) in depths


# ---------------------------------------------------------------------------------- bad input


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_NAME = "NET_NET_Stat_sm_0.050000_0.050000_Probe_20200101_20200102.stm"
HEADER = "NET        NET             Stat               43.00000     2.00000  100.00    0.05    0.05 Probe\n"


def test_bad_lines_are_skipped_counted_and_logged(tmp_path, caplog):
    text = (
        HEADER
        + "2020/01/01 00:00   0.2000 G M\nthis line is broken\n2020/01/01 01:00   0.2100 G M\n"
    )
    frame = read_sensor_file(_write(tmp_path, GOOD_NAME, text))
    assert len(frame) == 2
    assert frame.attrs["n_bad_lines"] == 1
    assert "skipped 1 malformed data line(s), first at line 3" in caplog.text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty ISMN file"),
        ("a,b,c\n1,2,3\n", "unknown ISMN file format"),
        (HEADER, "header line but no data lines"),
        (HEADER + "garbage garbage\n", "unknown ISMN file format"),
        (
            "NET NET Stat north east 100 0.05 0.05 Probe\n2020/01/01 00:00 0.2 G M\n",
            "station line not understood",
        ),
    ],
)
def test_odd_files_get_a_clear_error_naming_the_file(tmp_path, text, problem):
    path = _write(tmp_path, GOOD_NAME, text)
    with pytest.raises(InputError) as info:
        read_sensor_file(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_archive_errors(tmp_path):
    with pytest.raises(InputError, match="ISMN archive not found"):
        list(read_archive(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .stm files"):
        list(read_archive(tmp_path / "empty"))
    not_zip = _write(tmp_path, "archive.zip", "not a zip")
    with pytest.raises(InputError, match="neither a folder nor a zip"):
        list(read_archive(not_zip))


def test_archive_skips_files_that_are_not_ismn_data(tmp_path, caplog):
    station = tmp_path / "NET" / "Stat"
    station.mkdir(parents=True)
    _write(station, GOOD_NAME, HEADER + "2020/01/01 00:00   0.2000 G M\n")
    _write(station, "notes.stm", "whatever\n")
    _write(station, GOOD_NAME.replace("_sm_", "_ts_"), HEADER + "2020/01/01 00:00   12.5 G M\n")
    frames = list(read_archive(tmp_path))
    assert len(frames) == 1 and frames[0].attrs["variable"] == "soil_moisture"
    assert "notes.stm: skipped, not an ISMN data file name" in caplog.text
    temperature = list(read_archive(tmp_path, variable="ts"))
    assert list(temperature[0].columns) == ["soil_temperature", "flag", "orig_flag"]
    _write(station, "NET_NET_Stat_static_variables.csv", "quantity_name;value\n")
    skipped = Counter()
    assert len(list(read_archive(tmp_path, "sm", skipped))) == 1
    assert skipped == {
        "ismn_files_not_data_name": 1,
        "ismn_files_other_variable": 1,
        "ismn_files_not_data": 1,
    }


def test_linked_network_folders_are_read_and_broken_links_counted(tmp_path):
    """Clusters link data folders: a linked network must not vanish from the archive."""
    real = tmp_path / "project" / "NET" / "Stat"
    real.mkdir(parents=True)
    _write(real, GOOD_NAME, HEADER + "2020/01/01 00:00   0.2000 G M\n")
    archive = tmp_path / "archive"
    (archive / "OTHER" / "Stat").mkdir(parents=True)
    _write(
        archive / "OTHER" / "Stat",
        GOOD_NAME.replace("NET_NET", "OTHER_OTHER"),
        HEADER + "2020/01/01 00:00   0.3000 G M\n",
    )
    (archive / "NET").symlink_to(tmp_path / "project" / "NET")
    (archive / "GONE").symlink_to(tmp_path / "nowhere")
    (archive / "OTHER" / "loop").symlink_to(archive)
    skipped = Counter()
    frames = list(read_archive(archive, "sm", skipped))
    assert sorted(f.attrs["network"] for f in frames) == ["NET", "OTHER"]
    assert skipped["broken_links"] == 1 and skipped["linked_loops"] == 1


ISMN_ARCHIVES = [
    "format_header_values",
    "format_ceop_sep",
    "Data_seperate_files_header_20170810_20180809",
    "Data_seperate_files_20170810_20180809.zip",
    "zip_archives/header/Data_seperate_files_header_20170810_20180809.zip",
    "zip_archives/ceop/Data_seperate_files_20170810_20180809.zip",
    "zip_archives/multinetwork/header_values/Data_header_values.zip",
    "zip_archives/format_header_values/Data_SMOSMANIA.zip",
    "archive_sample/ismn_archive.zip",
    "archive_sample",
]


def _flags(values: pd.Series) -> list:
    """Flags as text, missing as None (ismn parses all-numeric provider flags as numbers)."""
    return [None if pd.isna(v) else str(v) for v in values]


@pytest.mark.parametrize("archive", ISMN_ARCHIVES)
def test_every_real_archive_layout_reads_as_the_ismn_package_reads_it(archive, tmp_path):
    """Side by side with TU Wien's `ismn` (the reference reader of its own format), on every
    real archive layout its test data cover: folders and zips, Header+values and CEOP, several
    networks, a wrapping folder, new-style sensor names (Meter-5TM_1_1), header lines whose
    station or depth differ from the file name (CST_01 / CST-01, 0.05 / 0.0508): network,
    station, sensor, depths, coordinates, time stamps, values and both flags agree."""
    from ismn.filehandlers import DataFile, IsmnRoot

    source = ISMN_DIR / archive
    local = tmp_path / source.name
    (shutil.copytree if source.is_dir() else shutil.copy)(source, local)
    if local.is_dir():
        members = sorted(str(p.relative_to(local)) for p in local.rglob("*.stm"))
    else:
        with zipfile.ZipFile(local) as handle:
            members = sorted(n for n in handle.namelist() if n.endswith(".stm"))
    ours = {
        Path(f.attrs["path"].split("!")[-1]).name: f for f in read_archive(local, variable=None)
    }
    assert len(ours) == len(members) > 0
    root = IsmnRoot(local)
    try:
        for member in members:
            reference = DataFile(root, member)
            meta = {name: values[0][0] for name, values in reference.metadata.to_dict().items()}
            depth = reference.metadata["instrument"].depth
            variable = reference.metadata["variable"].val
            data = reference.read_data()
            frame = ours[Path(member).name]
            a = frame.attrs
            assert a["network"] == meta["network"], member
            assert a["station"] == meta["station"], member
            assert a["sensor"] == meta["instrument"], member
            assert (a["depth_from"], a["depth_to"]) == (depth.start, depth.end), member
            for key in ("latitude", "longitude", "elevation"):
                assert a[key] == meta[key], (member, key)
            index = pd.DatetimeIndex(data.index)
            index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
            assert frame.index.equals(index), member
            column = next(c for c in frame.columns if c not in ("flag", "orig_flag"))
            np.testing.assert_array_equal(frame[column].to_numpy(), data[variable].to_numpy())
            assert _flags(frame["flag"]) == _flags(data[f"{variable}_flag"]), member
            assert _flags(frame["orig_flag"]) == _flags(data[f"{variable}_orig_flag"]), member
    finally:
        root.close()
