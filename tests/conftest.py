"""Shared fixtures: the repository root, the test config, and one small synthetic world."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avhrrsm.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO_ROOT / "workflow" / "configs" / "test.yaml"
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def test_config() -> dict:
    return load_config(TEST_CONFIG)


@pytest.fixture(scope="session")
def synthetic_world(tmp_path_factory, test_config) -> Path:
    """The synthetic world of the test config, written once per test session."""
    from avhrrsm.synth import write_world

    out = tmp_path_factory.mktemp("world") / "synthetic"
    write_world(
        out,
        test_config["region"],
        test_config["years"],
        test_config["synthetic"],
        test_config["inputs"],
        threads=2,
    )
    return out


@pytest.fixture(scope="session")
def world_patterns(synthetic_world, test_config) -> dict[str, str]:
    """The test config's input patterns, pointing into the session's synthetic world."""
    return {
        name: pattern.replace("{synthetic}", str(synthetic_world))
        for name, pattern in test_config["inputs"].items()
    }


def _apt_install(package: str) -> bool:
    import os
    import subprocess

    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode == 0:
        return True
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
    return subprocess.run(install, env=env, capture_output=True, timeout=600).returncode == 0


@pytest.fixture(scope="session")
def gdalwarp() -> str:
    """The `gdalwarp` command (GDAL's reference warper), installed from apt where missing."""
    path = shutil.which("gdalwarp")
    if path is None and _apt_install("gdal-bin"):
        path = shutil.which("gdalwarp")
    if path is None:
        pytest.skip("gdalwarp is not installed and could not be installed (needs root and apt)")
    return path


@pytest.fixture(scope="session")
def test_stacks(synthetic_world, world_patterns, test_config, tmp_path_factory) -> dict:
    """Static layers and the stacks of every test-config year, built once per session in
    0.5 degree tiles (so that the test region spans several tiles)."""
    from avhrrsm.stacks import build_year_stack
    from avhrrsm.static import build_static_layers

    folder = tmp_path_factory.mktemp("stacks")
    static = folder / "static_layers.zarr"
    build_static_layers(
        static,
        world_patterns["merit_dem"],
        world_patterns["soilgrids"],
        test_config["region"],
        0.5,
        {},
    )
    stacks, missing = {}, {}
    for year in test_config["years"]:
        stacks[year] = folder / f"{year}.zarr"
        missing[year] = build_year_stack(
            stacks[year],
            year,
            world_patterns,
            static,
            test_config["region"],
            0.5,
            test_config["stacks"],
            {"avhrrsm_rule": "stack_year"},
        )
    return {"static": static, "stacks": stacks, "missing": missing, "folder": folder}


@pytest.fixture(scope="session")
def sample_set(test_stacks, test_config, tmp_path_factory) -> dict:
    """The test config's split map, per-year sample sets and merged set."""
    from avhrrsm.learn.samples import draw_year_samples, merge_sample_sets
    from avhrrsm.learn.splitting import build_split_map

    folder = tmp_path_factory.mktemp("samples")
    settings = test_config["samples"]
    split = folder / "split.zarr"
    build_split_map(
        split,
        list(test_stacks["stacks"].values()),
        test_stacks["static"],
        test_config["region"],
        settings,
        test_config["seed"],
        {},
    )
    years, summaries = [], {}
    for year, stack in test_stacks["stacks"].items():
        years.append(folder / f"{year}.zarr")
        summaries[year] = draw_year_samples(
            years[-1],
            year,
            stack,
            None,
            test_stacks["static"],
            split,
            test_config["region"],
            test_config["tile_deg"],
            settings,
            test_config["seed"],
            {},
        )
    merged = folder / "samples.zarr"
    manifest = merge_sample_sets(years, merged, folder / "manifest.json", {})
    return {
        "split": split,
        "years": years,
        "summaries": summaries,
        "merged": merged,
        "manifest": manifest,
        "folder": folder,
    }


def run_snakemake(args, cwd, timeout=600) -> subprocess.CompletedProcess:
    """The repository's workflow through Snakemake in ``cwd`` (hash seed fixed, as in CI)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_tiny_workflow(workdir: Path) -> Path:
    """The whole workflow on the tiny test config in ``workdir``; returns the run folder."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEST_CONFIG, workdir / "config.yaml")
    result = run_snakemake(["--cores", "2", "--configfile", "config.yaml"], workdir, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir / "results" / "test"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One complete run of the real workflow on the tiny config, shared by the tests that
    inspect its outputs (they must not change it: copy it first)."""
    return run_tiny_workflow(tmp_path_factory.mktemp("tiny_run"))


# The small AtLSTM the inference, fault and bad-input tests predict with (trained once).
MODEL_TRAINING = {
    "device": "cpu",
    "epochs": 2,
    "patience": 5,
    "batch_size": 256,
    "learning_rate": 0.003,
    "weight_decay": 0.0,
    "resume": True,
}
MODEL_ATLSTM = {"hidden_size": 8, "num_layers": 1, "dropout": 0.0, "attention_size": 4}


@pytest.fixture(scope="session")
def model_path(sample_set, tmp_path_factory) -> Path:
    from avhrrsm.learn.train import train_deep_model

    run = tmp_path_factory.mktemp("model")
    train_deep_model(sample_set["merged"], run, "atlstm", MODEL_ATLSTM, 4, MODEL_TRAINING, 1, 2)
    return run / "model.pt"


@pytest.fixture(scope="session")
def uncertainty_path(sample_set, model_path) -> Path:
    """The error model of ``model_path`` on the sample set's validation split (default
    ``uncertainty`` settings), beside the model as the workflow writes it."""
    from avhrrsm.config import validate_config
    from avhrrsm.learn.uncertainty import calibrate_uncertainty

    out = model_path.parent / "uncertainty.json"
    settings = validate_config({})["uncertainty"]
    calibrate_uncertainty(sample_set["merged"], model_path, out, settings, [0.0, 0.6], threads=2)
    return out
