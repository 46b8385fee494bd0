"""The synthetic world: deterministic, physically sensible, written atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_CONFIG

from avhrrsm.cli import main
from avhrrsm.config import validate_config
from avhrrsm.grid import region_window, window_for_bounds
from avhrrsm.io.rasters import merit_tile_name
from avhrrsm.static import slope_aspect
from avhrrsm.synth import products, synthetic_patterns, write_world
from avhrrsm.synth.world import build_static, simulate


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_world_manifest_and_counts(synthetic_world, test_config):
    manifest = json.loads((synthetic_world / "world.json").read_text())
    assert manifest["seed"] == test_config["synthetic"]["seed"]
    files = {name: entry["files"] for name, entry in manifest["products"].items()}
    n_days = 365 + 365  # 2001 and 2015
    assert files["glass_lst"] == n_days and files["glass_albedo"] == 2 * 46  # 8-day composites
    assert files["glass_modis"] == n_days
    assert files["esa_cci"] == n_days
    assert files["era5land"] == 24
    assert files["merit_dem"] == 2 and files["soilgrids"] == 3 * 5  # a VRT over 4 tiles each
    assert files["smap_cvs"] == 3  # from 2015 only: one site's 9 and 36 km pixels, the site table
    assert not list(synthetic_world.parent.glob(".synthetic.tmp-*"))


def test_same_seed_same_bytes_whatever_the_worker_count(synthetic_world, test_config, tmp_path):
    serial = tmp_path / "synthetic"
    write_world(
        serial,
        test_config["region"],
        test_config["years"],
        test_config["synthetic"],
        test_config["inputs"],
        threads=1,
    )
    assert _digests(serial) == _digests(synthetic_world)


def test_other_seed_other_world(tmp_path, test_config):
    settings = {**test_config["synthetic"], "seed": test_config["synthetic"]["seed"] + 1}
    rng_a = np.random.default_rng(test_config["synthetic"]["seed"])
    rng_b = np.random.default_rng(settings["seed"])
    a = build_static(test_config["region"], test_config["synthetic"], rng_a)
    b = build_static(test_config["region"], settings, rng_b)
    assert not np.allclose(a.sand, b.sand)


def test_truth_spans_dry_to_wet_on_the_default_world():
    config = validate_config({})
    rng = np.random.default_rng(config["synthetic"]["seed"])
    static = build_static(config["region"], config["synthetic"], rng)
    truth = simulate(static, [2001, 2002], config["synthetic"]["spinup_years"], rng)
    land = truth.surface[:, static.land]
    assert np.isnan(truth.surface[:, ~static.land]).all()
    assert np.isfinite(land).all()
    assert (land < 0.05).mean() > 0.001  # a dry regime
    assert (land > 0.45).mean() > 0.001  # and the wet regime the paper singles out
    assert (land > 0.4).mean() > 0.01
    assert 0.15 < np.median(land) < 0.3
    # wetter and colder with elevation (orographic rain, lower evaporative demand)
    elevation = static.elevation_m[static.land]
    high, low = elevation > np.percentile(elevation, 80), elevation < np.percentile(elevation, 20)
    assert land[:, high].mean() > land[:, low].mean()
    assert (
        truth.weather.air_temperature_k[:, static.land][:, high].mean()
        < truth.weather.air_temperature_k[:, static.land][:, low].mean()
    )
    assert 0.6 < static.land.mean() < 0.95  # a coast in the north-west


def test_world_slope_uses_metric_pixel_sizes():
    """The synthetic world takes its slope from the static-layers stage's function."""
    step = 1 / 400  # 9 arc-seconds
    lat = np.array([60.0, 60.0 - step, 60.0 - 2 * step])
    east_rise = np.tile(np.arange(3) * 10.0, (3, 1))  # 10 m per pixel eastward
    slope, _, _ = slope_aspect(east_rise, lat, step)
    dx = step * 111_195.0 * np.cos(np.deg2rad(lat[1]))
    assert slope[1, 1] == pytest.approx(np.degrees(np.arctan(10.0 / dx)), rel=1e-3)


def test_grid_windows_and_tile_names():
    window = region_window({"lon_min": -2.0, "lon_max": 2.0, "lat_min": 41.0, "lat_max": 45.0})
    assert window.shape == (80, 80)
    assert window.lon()[0] == pytest.approx(-1.975) and window.lat()[0] == pytest.approx(44.975)
    whole = window_for_bounds(-180, -90, 180, 90)
    assert whole.shape == (3600, 7200) and whole.lon()[-1] == pytest.approx(179.975)
    with pytest.raises(ValueError, match="do not lie on the global grid"):
        window_for_bounds(-181, 0, 0, 1)
    assert merit_tile_name(40, -5) == "n40w005" and merit_tile_name(-5, 120) == "s05e120"


def test_only_products_in_the_synthetic_folder_are_written(tmp_path):
    inputs = validate_config({})["inputs"]
    inputs = {**inputs, "era5land": "/data/real/era5/{year}.nc"}
    patterns = synthetic_patterns(inputs, tmp_path)
    assert "era5land" not in patterns
    assert patterns["ismn"] == f"{tmp_path}/ismn/Data_separate_files_header_synthetic.zip"


def test_a_failing_writer_leaves_nothing_behind(tmp_path, test_config, monkeypatch):
    def broken(world, years=None):
        raise RuntimeError("disk full")

    monkeypatch.setitem(products.WRITERS, "cosmos", broken)
    monkeypatch.setattr("avhrrsm.synth.WRITERS", products.WRITERS)
    out = tmp_path / "synthetic"
    with pytest.raises(RuntimeError, match="disk full"):
        write_world(
            out,
            test_config["region"],
            [2015],
            test_config["synthetic"],
            test_config["inputs"],
            threads=1,
        )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_synth_and_config_check(tmp_path, capsys):
    assert main(["config", "check", str(TEST_CONFIG)]) == 0
    assert '"run": "test"' in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("yeras: [2001]\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "yeras: unknown key (did you mean 'years'?)" in capsys.readouterr().err
    small = tmp_path / "small.yaml"
    small.write_text(TEST_CONFIG.read_text().replace("years: [2001, 2015]", "years: [2015]"))
    out = tmp_path / "world"
    assert main(["synth", "--config", str(small), "--out", str(out), "--threads", "1"]) == 0
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["years"] == [2015] and manifest["products"]["glass_modis"]["files"] == 365


def test_bench_renders_results_with_target_verdicts():
    from avhrrsm.ops.bench.report import render_markdown

    text = render_markdown(
        {
            "machine": {"cpus": 2},
            "regrid_block": {
                "1km_to_5km": {
                    "input_megapixels": 4.0,
                    "ours_mpix_per_s": 90.0,
                    "gdalwarp_mpix_per_s": 30.0,
                    "ratio": 3.0,
                    "max_abs_diff": 0.0,
                },
                "90m_to_5km": {
                    "input_megapixels": 4.0,
                    "ours_mpix_per_s": 40.0,
                    "gdalwarp_mpix_per_s": 30.0,
                    "ratio": 1.33,
                    "max_abs_diff": 0.0,
                },
            },
            "stack_global": {
                "2_days": {"seconds": 10.0, "peak_rss_gib": 2.5},
                "4_days": {"seconds": 20.0, "peak_rss_gib": 4.5},
            },
        }
    )
    assert "| 1km_to_5km | 4.0 | 90.0 | 30.0 | 3.00 | 0.00e+00 | met |" in text
    assert "| 90m_to_5km | 4.0 | 40.0 | 30.0 | 1.33 | 0.00e+00 | **missed** |" in text
    assert "| 4 | 20.0 | 4.50 | **missed** |" in text and "| 2 | 10.0 | 2.50 | met |" in text
