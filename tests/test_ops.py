"""Operations apart from the science: the workflow's files are found by the command line only
and passed in; the schema ships with the package; `avhrrsm --help` stays light."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
import yaml
from conftest import REPO_ROOT

from avhrrsm.cli import main
from avhrrsm.ops.bench.dag import local_rules
from avhrrsm.ops.bench.jobs import main as bench_job_main
from avhrrsm.ops.checkout import CheckoutNotFound, checkout_at, find_checkout
from avhrrsm.ops.slurm_profile import install_slurm_profile


def test_the_checkout_is_found_from_any_folder_inside_it_and_refused_elsewhere(tmp_path):
    assert find_checkout(REPO_ROOT / "workflow" / "rules").root == REPO_ROOT
    assert find_checkout(REPO_ROOT).snakefile == REPO_ROOT / "Snakefile"
    assert checkout_at(REPO_ROOT).profile("slurm") == REPO_ROOT / "profiles/slurm/config.yaml"
    with pytest.raises(CheckoutNotFound, match="--workflow DIR") as info:
        find_checkout(tmp_path)
    assert str(tmp_path) in str(info.value)
    (tmp_path / "Snakefile").touch()  # a Snakefile alone is some other workflow
    with pytest.raises(CheckoutNotFound, match="not an avhrrsm workflow folder"):
        checkout_at(tmp_path)


def test_the_command_line_passes_the_workflow_it_was_given(tmp_path, capsys):
    dest = tmp_path / "profiles"
    code = main(["--workflow", str(tmp_path), "slurm-profile", "--dest", str(dest)])
    assert code == 2 and "not an avhrrsm workflow folder" in capsys.readouterr().err
    assert not dest.exists()
    code = main(["--workflow", str(REPO_ROOT), "slurm-profile", "--dest", str(dest)])
    assert code == 0
    installed = (dest / "slurm" / "config.yaml").read_text()
    assert f"from {REPO_ROOT / 'profiles' / 'slurm' / 'config.yaml'}" in installed
    assert yaml.safe_load(installed)["executor"] == "slurm"


def test_the_slurm_profile_is_made_from_the_source_it_is_given(tmp_path):
    source = tmp_path / "mine.yaml"
    source.write_text("executor: slurm\njobs: 7\n")
    target = install_slurm_profile(source, tmp_path / "out", partition="gpu", job_cores=4)
    settings = yaml.safe_load(target.read_text())
    assert settings["jobs"] == 7 and settings["cores"] == 4
    assert settings["default-resources"] == ["slurm_partition='gpu'"]


def test_local_rules_are_read_from_the_rules_folder_given(tmp_path):
    (tmp_path / "a.smk").write_text("localrules: merge, report\n\nrule merge:\n    run: pass\n")
    (tmp_path / "b.smk").write_text("localrules:\n    manifest,\n    index\n")
    assert local_rules(tmp_path) == {"all", "merge", "report", "manifest", "index"}
    assert "manifest" in local_rules(REPO_ROOT / "workflow" / "rules")


def test_a_benchmark_job_name_is_checked(capsys):
    assert bench_job_main(["nosuch"]) == 2
    assert "{stack,product,validation,inference}" in capsys.readouterr().err


def test_help_does_not_load_the_science_libraries():
    """`avhrrsm --help` answers at once on a login node: no rasterio, torch, xarray."""
    probe = (
        "import sys; from avhrrsm.cli import build_parser; build_parser().format_help(); "
        "print(sorted(m for m in ('rasterio', 'torch', 'xarray', 'xgboost', 'matplotlib') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_the_config_schema_ships_inside_the_package(tmp_path):
    """A wheel (a non-editable install) holds the schema the config is validated against."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(tmp_path), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("avhrrsm-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "avhrrsm/schemas/config.schema.yaml" in names
        assert "avhrrsm/ops/bench/jobs.py" in names
        schema = yaml.safe_load(archive.read("avhrrsm/schemas/config.schema.yaml"))
    assert schema["properties"]["models"]["properties"]["sequence_length"]["default"] == 4
