"""Bad inputs the other reader tests do not cover: damaged stores and rasters, longitude and
time conventions, all-fill days, and what a job says about them.

The full catalogue of what the workflow checks for is in the README ("What the workflow checks
for"); each entry names its test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_inference import INFERENCE, PRODUCT

from avhrrsm.config import ConfigError, validate_config
from avhrrsm.device import DeviceError, device_provenance
from avhrrsm.grid import region_window
from avhrrsm.infer import predict_tile
from avhrrsm.io.errors import InputError
from avhrrsm.io.gridded import read_era5land
from avhrrsm.io.netcdf import NcVar, write_netcdf
from avhrrsm.io.rasters import read_merit_tile, read_soilgrids
from avhrrsm.stacks import build_year_stack, open_stack


def _copy_tree(source: Path, target: Path) -> Path:
    """A copy of a store (files copied: the test damages it)."""
    for path in source.rglob("*"):
        if path.is_file():
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(path.read_bytes())
    return target


def test_a_damaged_stack_chunk_is_named_not_a_codec_traceback(
    test_stacks,
    test_config,
    model_path,
    tmp_path,
):
    stack = _copy_tree(test_stacks["stacks"][2001], tmp_path / "2001.zarr")
    chunk = next(p for p in sorted((stack / "lst").rglob("*")) if p.is_file() and p.stat().st_size)
    chunk.write_bytes(chunk.read_bytes()[:10])  # truncated, as by a full disk
    out = tmp_path / "tile.zarr"
    with pytest.raises(InputError) as info:
        predict_tile(
            out, 2001, "h359v94", 0.5, stack, None, test_stacks["static"], model_path,
            test_config["region"], INFERENCE, PRODUCT["valid_range"], {}, threads=1,
        )  # fmt: skip
    message = str(info.value)
    assert str(stack) in message and "input stack cannot be read" in message
    assert "delete it and rerun the job that wrote it" in message
    assert not out.exists()


def test_a_damaged_chunk_read_in_a_worker_process_is_named_and_leaves_no_tile(
    test_stacks, test_config, model_path, tmp_path, monkeypatch
):
    """Two worker processes, the damaged chunk at the year's end (in the second worker's run):
    the error comes back from the process whole, naming the chunk, and no tile is left."""
    import avhrrsm.infer as infer

    stack = _copy_tree(test_stacks["stacks"][2001], tmp_path / "2001.zarr")
    last = max(
        (p for p in (stack / "lst" / "c").iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    chunk = next(p for p in sorted(last.rglob("*")) if p.is_file() and p.stat().st_size)
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    chunk.write_bytes(bytes(damaged))
    monkeypatch.setattr(infer, "block_days", lambda *args: 32)
    forked = []
    real_map_shared = infer.map_shared

    def map_shared(function, shared, pieces, workers):
        forked.append(workers)
        return real_map_shared(function, shared, pieces, workers)

    monkeypatch.setattr(infer, "map_shared", map_shared)
    out = tmp_path / "tile.zarr"
    with pytest.raises(InputError) as info:
        predict_tile(
            out, 2001, "h359v94", 0.5, stack, None, test_stacks["static"], model_path,
            test_config["region"], {**INFERENCE, "workers": 2}, PRODUCT["valid_range"], {},
            threads=2,
        )  # fmt: skip
    assert forked == [2] or torch.cuda.is_available()  # a GPU's workers are threads
    message = str(info.value)
    assert "checksum" in message and f"damaged chunk: {chunk}" in message
    assert str(stack) in message
    assert [p.name for p in tmp_path.iterdir()] == ["2001.zarr"]  # no tile, no temporary


def _predict(stack, test_stacks, test_config, model_path, out):
    return predict_tile(
        out, 2001, "h359v94", 0.5, stack, None, test_stacks["static"], model_path,
        test_config["region"], INFERENCE, PRODUCT["valid_range"], {}, threads=1,
    )  # fmt: skip


def test_one_flipped_byte_in_a_stack_chunk_fails_its_checksum_named(
    test_stacks, test_config, model_path, tmp_path
):
    """The stores carry a crc32c per chunk: a byte changed behind an unchanged size and mtime
    is found when the chunk is read, and the error names the store, the variable and chunk."""
    stack = _copy_tree(test_stacks["stacks"][2001], tmp_path / "2001.zarr")
    with open(stack / "lst" / "zarr.json") as meta:
        assert '"crc32c"' in meta.read()
    chunk = stack / "lst" / "c" / "0" / "0" / "0"
    before = chunk.stat()
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    chunk.write_bytes(bytes(damaged))
    os.utime(chunk, ns=(before.st_atime_ns, before.st_mtime_ns))
    out = tmp_path / "tile.zarr"
    with pytest.raises(InputError) as info:
        _predict(stack, test_stacks, test_config, model_path, out)
    message = str(info.value)
    assert "checksum" in message and f"damaged chunk: {chunk}" in message
    assert not out.exists()


def test_values_outside_their_valid_range_in_a_store_are_named_with_their_chunk(
    test_stacks, test_config, model_path, tmp_path
):
    """A chunk that decodes but holds an LST of 2.6e38 K (a store without checksums, a bug
    upstream): the readers' range check stops the job, naming store, variable and chunk."""
    import zarr

    from avhrrsm.io.chunks import check_range, damaged_chunks

    stack = _copy_tree(test_stacks["stacks"][2001], tmp_path / "2001.zarr")
    lst = zarr.open_array(str(stack / "lst"), mode="r+")
    values = lst[:]
    values[40, :, :] = 2.6e38  # a whole day of the first time chunk
    lst[:] = values
    chunk = f"{stack}/lst/c/1/0/0"  # day 40 lies in the second chunk of 32 days
    assert damaged_chunks(stack, ["lst"])[0].startswith(f"{chunk} (")
    with pytest.raises(InputError) as info:
        _predict(stack, test_stacks, test_config, model_path, tmp_path / "tile.zarr")
    message = str(info.value)
    assert "lst holds" in message and "outside its valid range 150..360 (e.g. 2.6e+38)" in message
    assert f"damaged chunk(s): {chunk} (" in message and str(stack) in message
    check_range(np.array([150.0, 360.0, np.nan], np.float32), "lst", stack)  # bounds and gaps


def test_a_stack_without_metadata_is_named(test_stacks, test_config, tmp_path):
    stack = _copy_tree(test_stacks["stacks"][2001], tmp_path / "2001.zarr")
    (stack / "zarr.json").unlink()
    with pytest.raises(InputError, match="cannot be opened as a Zarr stack") as info:
        open_stack(stack, region_window(test_config["region"]), ("lst",))
    assert str(stack) in str(info.value)


def test_a_truncated_geotiff_is_named(synthetic_world, tmp_path):
    source = next((synthetic_world / "soilgrids").rglob("tileSG-*.tif"))
    truncated = tmp_path / source.name
    truncated.write_bytes(source.read_bytes()[:300])
    with pytest.raises(InputError, match="not a readable") as info:
        read_soilgrids(truncated, "sand")
    assert str(truncated) in str(info.value)
    tile = next((synthetic_world / "merit_dem").rglob("*_dem.tif"))
    broken = tmp_path / tile.name
    broken.write_bytes(tile.read_bytes()[: tile.stat().st_size // 3])
    with pytest.raises(InputError) as info:
        read_merit_tile(broken).values.sum()
    assert str(broken) in str(info.value)


def _era5_file(path: Path, lon: np.ndarray, hours: pd.DatetimeIndex, field: np.ndarray) -> Path:
    lat = np.array([42.2, 42.1, 42.0])
    write_netcdf(
        path,
        {"valid_time": len(hours), "latitude": lat.size, "longitude": lon.size},
        {
            "valid_time": NcVar(
                ("valid_time",),
                (hours - pd.Timestamp("1970-01-01")).total_seconds().to_numpy().astype("int64"),
                np.int64,
                {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian"},
            ),
            "latitude": NcVar(("latitude",), lat, np.float64, {"units": "degrees_north"}),
            "longitude": NcVar(("longitude",), lon, np.float64, {"units": "degrees_east"}),
            "swvl1": NcVar(
                ("valid_time", "latitude", "longitude"), field, np.float32, {"units": "m**3 m**-3"}
            ),
        },
    )
    return path


def test_era5land_longitudes_in_either_convention_give_the_same_field(tmp_path):
    hours = pd.date_range("2001-06-01", periods=24, freq="h")
    lon_360 = np.array([359.8, 359.9, 0.0, 0.1, 0.2])
    lon_180 = np.where(lon_360 > 180, lon_360 - 360, lon_360)
    rng = np.random.default_rng(3)
    field = rng.uniform(0.1, 0.4, (24, 3, 5)).astype(np.float32)
    a = read_era5land(_era5_file(tmp_path / "a.nc", lon_360, hours, field))
    b = read_era5land(_era5_file(tmp_path / "b.nc", lon_180, hours, field))
    assert np.array_equal(a["lon"].values, b["lon"].values)
    assert np.all(np.diff(a["lon"].values) > 0) and a["lon"].values.min() < 0
    np.testing.assert_array_equal(a.values, b.values)


def test_era5land_unsorted_hours_are_put_in_order(tmp_path):
    hours = pd.date_range("2001-06-01", periods=24, freq="h")
    lon = np.array([0.0, 0.1, 0.2])
    field = np.arange(24, dtype=np.float32)[:, None, None] / 100 * np.ones((24, 3, 3), np.float32)
    shuffled = np.random.default_rng(0).permutation(24)
    read = read_era5land(_era5_file(tmp_path / "u.nc", lon, hours[shuffled], field[shuffled]))
    assert read["time"].to_index().is_monotonic_increasing
    np.testing.assert_array_equal(read.values[:, 0, 0], field[:, 0, 0])


def test_an_all_fill_day_is_a_counted_and_filled_gap(
    synthetic_world, world_patterns, test_stacks, test_config, tmp_path, caplog
):
    """A GLASS LST file whose values are all fill over the region: the day becomes a gap that
    is filled and flagged in the stack, and is counted and logged with the file's name."""
    from avhrrsm.grid import region_window
    from avhrrsm.synth.hdf4 import Sds, write_glass_hdf4

    source_root = synthetic_world / "glass_lst"
    mirror = tmp_path / "glass_lst"
    for path in source_root.rglob("*.hdf"):
        if ".A2001" in path.name:
            link = mirror / path.relative_to(source_root)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, link)
    day = next(iter(sorted(mirror.rglob("*.A2001150.*.hdf"))))
    day.unlink()  # the link, replaced by a file of fill values only
    window = region_window(test_config["region"])
    write_glass_hdf4(
        day, window, {"LST": Sds(np.zeros(window.shape, np.uint16), 0, {"scale_factor": 0.01})}
    )
    patterns = {
        **world_patterns,
        "glass_lst": world_patterns["glass_lst"].replace(str(source_root), str(mirror)),
    }
    out = tmp_path / "2001.zarr"
    counts = build_year_stack(
        out, 2001, patterns, test_stacks["static"], test_config["region"], 10,
        test_config["stacks"], {},
    )  # fmt: skip
    # the synthetic world has whole-cloud days of its own; this one comes on top
    assert counts["lst (all fill)"] == test_stacks["missing"][2001].get("lst (all fill)", 0) + 1
    assert str(day) in caplog.text and "all fill values over the region" in caplog.text
    import xarray as xr

    with xr.open_zarr(out) as stack:
        flags = stack["lst_fill_flag"].sel(time="2001-05-30").values
        land = xr.open_zarr(test_stacks["static"])["land_mask"].values.astype(bool)
        assert (flags[land] > 0).all()  # every land pixel of that day filled, and flagged
        assert np.isfinite(stack["lst"].sel(time="2001-05-30").values[land]).all()


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"years": [2022]}, "years[0]: 2022 is out of range"),
        ({"years": [1999]}, "GLASS-MODIS"),  # a training period without any target
        ({"trainng": {"epochs": 3}}, "did you mean 'training'"),
    ],
)
def test_config_mistakes_are_named(override, expected):
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        validate_config(override)


def test_a_gpu_asked_for_where_none_exists_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match="no CUDA GPU is usable here") as info:
        device_provenance("cuda")
    assert "set it to 'auto' or 'cpu'" in str(info.value)


def test_the_readme_catalogue_names_tests_that_exist():
    """Every `test_file::test_name` the README's catalogue cites is a test of this suite, and
    the catalogue holds at least 20 bad-input cases."""
    import re

    from conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    catalogue = readme.split("## What the workflow checks for")[1].split("\n## ")[0]
    rows = [line for line in catalogue.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) - 1 >= 20  # minus the header
    cited = re.findall(r"`(test_\w+)::(test_\w+)`", catalogue)
    assert len(cited) >= 20
    for module, name in cited:
        source = (REPO_ROOT / "tests" / f"{module}.py").read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{module}::{name}"


# --- messages that were raw or misleading: each class gets a clear error naming the file/key --


def test_a_non_standard_calendar_is_named(tmp_path):
    hours = pd.date_range("2001-06-01", periods=24, freq="h")
    path = _era5_file(tmp_path / "noleap.nc", np.array([0.0, 0.1]), hours, np.zeros((24, 3, 2)))
    import netCDF4

    with netCDF4.Dataset(path, "a") as dataset:
        dataset["valid_time"].calendar = "360_day"
    with pytest.raises(InputError, match=r"time axis 'valid_time' .*calendar 360_day") as info:
        read_era5land(path)
    assert str(path) in str(info.value)


def test_truncated_and_damaged_zip_archives_are_named(tmp_path):
    import zipfile

    from avhrrsm.io.ismn import read_archive

    archive = tmp_path / "Data_separate_files_header_20150101_20151231.zip"
    station = "NET/Stat/NET_NET_Stat_sm_0.050000_0.050000_Probe_20150101_20151231.stm"
    header = "NET NET Stat 42.00000 0.00000 100.00 0.0500 0.0500 Probe\n"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(station, header + "2015/01/01 00:00 0.2000 G M\n" * 2000)
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    with pytest.raises(InputError, match="a damaged or truncated zip file"):
        list(read_archive(archive))
    damaged = bytearray(whole)
    damaged[120:140] = b"\0" * 20  # inside the member's compressed bytes
    archive.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=f"member {station} of the zip is damaged") as info:
        list(read_archive(archive))
    assert str(archive) in str(info.value)


def test_a_yaml_key_given_twice_and_whole_floats_for_counts(tmp_path):
    from avhrrsm.config import load_config

    twice = tmp_path / "twice.yaml"
    twice.write_text("run: a\ntraining:\n  epochs: 3\n  epochs: 5\n")
    with pytest.raises(ConfigError, match="key 'epochs' is given twice, on lines 3 and 4"):
        load_config(twice)
    assert validate_config({"training": {"epochs": 3.0}})["training"]["epochs"] == 3
    assert type(validate_config({"training": {"epochs": 3.0}})["training"]["epochs"]) is int
    with pytest.raises(ConfigError, match=r"training.epochs: 3.5 has the wrong type"):
        validate_config({"training": {"epochs": 3.5}})


def test_the_scratch_of_an_interrupted_audit_rerun_is_removed_and_said(tmp_path):
    import json
    import subprocess
    import sys

    from avhrrsm.atomic import HOST
    from avhrrsm.ops.audit import SCRATCH_KEPT, SCRATCH_OWNER, _remove_interrupted_scratch

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    killed, kept, running = (tmp_path / f".audit-test-2001-{n}" for n in ("a", "b", "c"))
    for folder, pid in (
        (killed, int(gone.stdout)),
        (kept, int(gone.stdout)),
        (running, os.getpid()),
    ):
        folder.mkdir()
        (folder / SCRATCH_OWNER).write_text(json.dumps({"host": HOST, "pid": pid}))
    (kept / SCRATCH_KEPT).touch()
    # the rerun's process was killed, its Snakemake still runs in the folder: left, and said
    orphaned = tmp_path / ".audit-test-2001-d"
    orphaned.mkdir()
    (orphaned / SCRATCH_OWNER).write_text(
        json.dumps({"host": HOST, "pid": int(gone.stdout), "children": [os.getpid()]})
    )
    said = _remove_interrupted_scratch(tmp_path, tmp_path / "current")
    assert said == [
        f"removed {killed}, the scratch folder of an interrupted earlier rerun",
        f"left {orphaned}: the Snakemake of an interrupted earlier rerun (pid {os.getpid()}) "
        "still runs in it",
    ]
    assert not killed.exists() and kept.exists() and running.exists() and orphaned.exists()


def _gone_or_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_snakemake_of_a_killed_audit_rerun_goes_with_it(tmp_path):
    """SIGKILL of `audit rerun` cannot be handled; its Snakemake child is bound to die with it
    instead of writing on into a scratch folder nobody owns."""
    import json
    import signal
    import subprocess
    import time

    from avhrrsm.ops.audit import SCRATCH_OWNER

    script = (
        "import os, sys; from pathlib import Path; from avhrrsm.ops.audit import _run_child\n"
        "_run_child([sys.executable, '-c', 'import time; time.sleep(300)'], Path(sys.argv[1]), "
        "dict(os.environ))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    owner = tmp_path / SCRATCH_OWNER
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if owner.is_file() and json.loads(owner.read_text() or "{}").get("children"):
            break
        time.sleep(0.1)
    [child] = json.loads(owner.read_text())["children"]
    assert not _gone_or_zombie(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while not _gone_or_zombie(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone_or_zombie(child)


def test_a_full_disk_during_a_write_says_so_and_names_the_output(tmp_path, monkeypatch):
    """netCDF/HDF5 report a full file system as "NetCDF: HDF error": the write says "no
    space left on the device", names the output and leaves nothing under its name."""
    import errno
    import shutil
    from collections import namedtuple

    import avhrrsm.atomic as atomic

    usage = namedtuple("usage", "total used free")
    real_disk_usage = shutil.disk_usage
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 4096))
    target = tmp_path / "product" / "2001-01-01.nc"
    with pytest.raises(OSError, match="no space left on the device while writing") as info:
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("NetCDF: HDF error")
    assert info.value.errno == errno.ENOSPC and str(target) in str(info.value)
    assert "NetCDF: HDF error" in str(info.value) and "results_dir" in str(info.value)
    assert not target.exists() and not list(target.parent.iterdir())
    # with space left, the library's own error stands
    monkeypatch.setattr(atomic.shutil, "disk_usage", real_disk_usage)
    with pytest.raises(RuntimeError, match="NetCDF: HDF error"):
        with atomic.atomic_path(target):
            raise RuntimeError("NetCDF: HDF error")


def test_a_damaged_static_layers_chunk_is_named(test_stacks, test_config, tmp_path):
    from avhrrsm.static import read_static_layers

    static = _copy_tree(test_stacks["static"], tmp_path / "static_layers.zarr")
    chunk = next(
        p for p in sorted((static / "elevation").rglob("*")) if p.is_file() and p.stat().st_size
    )
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    chunk.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="static layers store cannot be read") as info:
        read_static_layers(static, region_window(test_config["region"]), ("elevation",))
    assert f"damaged chunk: {chunk}" in str(info.value)


def test_the_validation_names_a_damaged_stack_chunk(test_stacks, test_config, tmp_path):
    from avhrrsm.validate.gridded import year_has_target

    stack = _copy_tree(test_stacks["stacks"][2001], tmp_path / "2001.zarr")
    chunk = stack / "glass_modis_sm" / "c" / "0" / "0" / "0"
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 0x04
    chunk.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="input stack cannot be read") as info:
        year_has_target(stack, region_window(test_config["region"]))
    assert f"damaged chunk: {chunk}" in str(info.value)
