"""HPC behaviour without a cluster: a failed year does not stop the others and reruns alone;
the 40-year global configuration plans every year and tile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from conftest import REPO_ROOT, TEST_CONFIG
from test_workflow import _snakemake

from avhrrsm.config import TARGET_YEARS, load_yaml, validate_config
from avhrrsm.ops.bench.dag import snakemake_job_counts
from avhrrsm.ops.bench.fixtures import write_global_standins
from avhrrsm.requests import (
    COSTS,
    GLOBAL_GRID_PIXELS,
    core_seconds,
    job_request,
    year_days,
)

YEARS = ["--config", "years=[1999,2001]"]


def test_a_failed_year_does_not_stop_the_others_and_reruns_alone(tmp_path):
    shutil.copy(TEST_CONFIG, tmp_path / "config.yaml")
    base = ["--cores", "2", "--configfile", "config.yaml", *YEARS]
    first = _snakemake([*base, "--until", "synthesize"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "results" / "test"
    era5 = run / "synthetic" / "era5land" / "1999" / "era5-land_swvl1_1999_06.nc"
    original = era5.read_bytes()
    era5.write_bytes(original[:2048])  # a truncated download (a CDS zip: the world's first year)
    broken = _snakemake([*base, "--keep-going"], cwd=tmp_path, timeout=900)
    assert broken.returncode != 0
    assert "era5-land_swvl1_1999_06.nc" in (run / "logs" / "stack_year_1999.log").read_text()
    assert not (run / "stacks" / "1999.zarr").exists() and not list((run / "stacks").glob(".1999*"))
    # the other year went all the way: stack, models, its inference and product
    assert (run / "stacks" / "2001.zarr").is_dir()
    assert len(list((run / "product" / "2001").glob("*.nc"))) == 365
    assert not (run / "product" / "1999").exists()
    era5.write_bytes(original)  # the input is fixed
    rerun = _snakemake(base, cwd=tmp_path, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    assert snakemake_job_counts(log) == {
        "stack_year": 1,
        "inference_tile": 2,
        "product_year": 1,
        "validation_year": 1,  # that year's part of the validation, then the merge
        "validation": 1,
        "manifest": 1,  # the run's manifest lists the new year's outputs
        "all": 1,
    }, log[-4000:]
    assert "Input stack of 1999" in log and "Input stack of 2001" not in log
    assert "Predict soil moisture for tile h17v04 of 1999" in log and " of 2001" not in log


def test_global_forty_year_configuration_plans(tmp_path):
    """The 1982-2021 global configuration (real-data layout; empty stand-ins for the inputs
    the DAG looks at) plans every year and tile. How fast is the benchmark's business
    (`avhrrsm bench --section dag`, target <= 20 s)."""
    write_global_standins(tmp_path)
    config = REPO_ROOT / "workflow" / "configs" / "global.yaml"
    result = _snakemake(["-n", "--quiet", "rules", "--configfile", str(config)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = snakemake_job_counts(result.stdout + result.stderr)
    assert counts["stack_year"] == 40
    # 30 degree tiles of the globe: hpc.cpu_inference_share (0.65) of them on CPU cores, every
    # tile under one rule only
    from avhrrsm.config import load_config
    from avhrrsm.requests import cpu_inference_tiles

    on_cpu = cpu_inference_tiles(load_config(config))
    assert counts["inference_tile"] + counts["inference_tile_cpu"] == 40 * 72
    assert counts["inference_tile_cpu"] == 40 * len(on_cpu) and 40 < len(on_cpu) < 52
    assert counts["product_year"] == 40
    assert counts["samples_year"] == 21  # GLASS-MODIS years 2000-2020
    assert counts["validation_year"] == 40 and counts["validation_sites"] == 1
    assert counts["manifest"] == 1 and counts["validation"] == 1


# each rule's message, as the dry run prints it, and the wildcards it names
MESSAGE_RULES = (
    (r"^Input stack of (?P<year>\d{4})", "stack_year"),
    (r"^Daily product files of (?P<year>\d{4})", "product_year"),
    (r"^Validation part of (?P<year>\d{4})", "validation_year"),
    (
        r"^Predict soil moisture for tile (?P<tile>h\d+v\d+) of (?P<year>\d{4}) on CPU cores",
        "inference_tile_cpu",
    ),
    (r"^Predict soil moisture for tile (?P<tile>h\d+v\d+) of (?P<year>\d{4})", "inference_tile"),
    (r"^Training samples of (?P<year>\d{4})", "samples_year"),
    (r"^Train the XGBoost", "train_xgboost"),
    (r"^Train \w+ with", "train_deep"),
    (r"^Train/validation/test split", "sample_split"),
    (r"^Merge the sample sets", "samples_merge"),
    (r"^Static layers", "static_layers"),
    (r"^Compare the models", "compare_models"),
    (r"^Calibrate the uncertainty", "uncertainty_calibration"),
    (r"^Read the in-situ sites", "validation_sites"),
    (r"^Merge the validation years", "validation"),
    (r"^Manifest and provenance", "manifest"),
)
SPREADING = ("stack_year", "product_year", "validation_year")


def test_global_requests_cover_every_job_with_margin(tmp_path):
    """The global 40-year plan under the SLURM executor: every job's runtime is at least 1.5 x
    its projected cost on the threads it gets (fewer where --cores caps them), and the stack,
    product and validation years run under 60 minutes on their threads at 16 cores."""
    write_global_standins(tmp_path)
    config_path = REPO_ROOT / "workflow" / "configs" / "global.yaml"
    config = validate_config(load_yaml(config_path))
    for cores in (16, 4):
        result = _snakemake(
            ["-n", "--executor", "slurm", "--jobs", "500", "--slurm-no-account"]
            + ["--cores", str(cores), "--configfile", str(config_path)],
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        log = result.stdout + result.stderr
        jobs = re.findall(r"Job \d+: (.*) \[(\d+) threads, (\d+) MB, (\d+) min\]", log)
        assert len(jobs) == sum(snakemake_job_counts(log).values()) - 1  # all but `all`
        longest = 0.0
        for message, threads, _, runtime in jobs:
            rule, wildcards = next(
                (rule, match.groupdict())
                for pattern, rule in MESSAGE_RULES
                if (match := re.match(pattern, message))
            )
            threads, runtime = int(threads), int(runtime)
            year = int(wildcards["year"]) if "year" in wildcards else None
            assert 1 <= threads <= cores, message
            projected = job_request(rule, config, year, wildcards.get("tile"), threads)
            assert runtime >= 1.5 * projected.projected_minutes, (message, runtime, projected)
            if rule in SPREADING:
                # from the measured per-unit cost alone: the year's grid pixel-days on one core
                one_core = core_seconds(
                    rule, GLOBAL_GRID_PIXELS * year_days(year), target=year in TARGET_YEARS
                )
                efficiency = COSTS[rule].parallel_efficiency
                wall = one_core / 60 / (threads * efficiency if threads > 1 else 1)
                assert runtime >= 1.5 * wall, message
                if cores == 16:
                    longest = max(longest, wall)
        if cores == 16:
            assert 20 < longest <= 60


def test_an_edit_to_a_stage_module_reruns_that_stage_and_what_follows(tmp_path):
    """Each rule's code version (the package modules its script reaches) is a param: editing
    a module reruns exactly the stages that use it, and the run says which outputs were made by
    other code than the checkout's."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO_ROOT / "Snakefile", checkout / "Snakefile")
    for folder in ("workflow", "src", "profiles", "envs"):
        shutil.copytree(
            REPO_ROOT / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(TEST_CONFIG, work / "config.yaml")

    def snakemake(*args):
        return subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(checkout / "Snakefile")]
            + ["--cores", "2", "--configfile", "config.yaml", "--config", "years=[2001]"]
            + ["--until", "stack_year", *args],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )

    def planned():
        result = snakemake("-n", "--quiet", "rules")
        assert result.returncode == 0, result.stderr[-3000:]
        log = result.stdout + result.stderr
        return snakemake_job_counts(log) if "Job stats:" in log else {}

    first = snakemake()
    assert first.returncode == 0, first.stderr[-3000:]
    assert planned() == {}

    def edit(module):
        path = checkout / "src" / "avhrrsm" / module
        path.write_text(path.read_text() + "\n# an edit\n")

    edit("stacks.py")  # read by the stack stage only
    assert planned() == {"stack_year": 1}
    rerun = snakemake()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    warning = next(line for line in rerun.stderr.splitlines() if "made by other code" in line)
    assert "stack_year 1" in warning and "static_layers" not in warning
    assert planned() == {}
    # terrain: the static layers, the synthetic world (it derives its slopes with the same
    # module) and so the stack
    edit("static.py")
    assert planned() == {"synthesize": 1, "static_layers": 1, "stack_year": 1}


def test_a_replaced_or_added_raw_day_reruns_its_year_and_enters_its_provenance(tmp_path):
    """GLASS days are read by pattern; the files that exist are the stack job's inputs, so a
    replaced or an added day reruns the year, and each is hashed into its provenance."""
    import json
    import os

    import xarray as xr
    import yaml

    shutil.copy(TEST_CONFIG, tmp_path / "config.yaml")
    made = _snakemake(
        ["--cores", "2", "--configfile", "config.yaml", "--until", "synthesize"], cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr[-3000:]
    data = tmp_path / "data"  # the synthetic world, used as real data
    shutil.copytree(tmp_path / "results" / "test" / "synthetic", data)
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["years"] = [2001]
    config["synthetic"]["enabled"] = False
    config["inputs"] = {
        name: pattern.replace("{synthetic}", str(data))
        for name, pattern in yaml.safe_load((REPO_ROOT / "config.yaml").read_text())[
            "inputs"
        ].items()
    }
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(config))
    held = next((data / "glass_lst" / "2001").glob("GLASS08B31.V40.A2001100.*.hdf"))
    held_back = tmp_path / held.name
    held.rename(held_back)  # day 100 is not there yet
    base = ["--cores", "2", "--configfile", "real.yaml", "--until", "stack_year"]

    def planned():
        result = _snakemake([*base, "-n", "--quiet", "rules"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        log = result.stdout + result.stderr
        return snakemake_job_counts(log) if "Job stats:" in log else {}

    first = _snakemake(base, cwd=tmp_path, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    stack = tmp_path / "results" / "test" / "stacks" / "2001.zarr"
    with xr.open_zarr(stack) as opened:
        inputs = json.loads(opened.attrs["avhrrsm_inputs"])
    lst_inputs = [p for p in inputs if "glass_lst" in p]
    assert len(lst_inputs) == 364 and not any("A2001100" in p for p in lst_inputs)
    assert planned() == {}
    replaced = next((data / "glass_lst" / "2001").glob("GLASS08B31.V40.A2001050.*.hdf"))
    original, before = replaced.read_bytes(), replaced.stat()
    replaced.write_bytes(original + b"\0")  # a reprocessed file under the same name
    assert planned() == {"stack_year": 1}
    replaced.write_bytes(original)
    os.utime(replaced, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert planned() == {}
    held_back.rename(held)  # the missing day arrives
    assert planned() == {"stack_year": 1}


def test_a_samples_key_reruns_only_the_jobs_that_read_it(tiny_run):
    """Rules carry only the config keys they read: on a finished run, changing the sequence
    length (which only chooses how many stored lags a model reads) plans no sample job."""
    import yaml
    from conftest import run_snakemake

    workdir = tiny_run.parents[1]
    test_config = yaml.safe_load(TEST_CONFIG.read_text())

    def planned(section="samples", **changes):
        value = {**test_config.get(section, {}), **changes}
        value = yaml.safe_dump(value, default_flow_style=True).strip()
        result = run_snakemake(
            ["-n", "--quiet", "rules", "--nolock", "--configfile", "config.yaml"]
            + ["--config", f"{section}={value}"],
            workdir,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        log = result.stdout + result.stderr
        return set(snakemake_job_counts(log)) if "Job stats:" in log else set()

    assert planned() == set()
    sample_rules = {"sample_split", "samples_year", "samples_merge"}
    length_changed = planned("models", sequence_length=2)
    assert "train_deep" in length_changed and "inference_tile" in length_changed
    assert not length_changed & sample_rules
    assert planned(per_year=1000) & sample_rules == {"samples_year", "samples_merge"}
    assert planned(wet_threshold=0.35) & sample_rules == sample_rules


def test_outputs_lost_after_a_complete_run_are_made_again_or_named(tiny_run, tmp_path):
    """An inference tile gone (its forced rerun terminated after Snakemake removed it) and a
    day deleted from a product year: Snakemake alone says "Nothing to be done". The lost tile
    is made again with what depends on it; the product folder that lost a file is named by a
    dry run and stops a run before any job, until --forcerun names it."""
    from conftest import run_snakemake

    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run.parents[1], workdir, symlinks=True)
    run = workdir / "results" / "test"

    def planned(*args):
        result = run_snakemake(["-n", "--nolock", "--configfile", "config.yaml", *args], workdir)
        log = result.stdout + result.stderr
        counts = snakemake_job_counts(log) if "Job stats:" in log else {}
        return result, counts, log

    result, counts, log = planned()
    assert result.returncode == 0 and counts == {}, result.stderr[-3000:]
    tile = sorted((run / "inference" / "2015").iterdir())[0]
    shutil.rmtree(tile)
    result, counts, log = planned()
    assert result.returncode == 0, result.stderr[-3000:]
    assert counts["inference_tile"] == 1 and counts["product_year"] == 1
    assert "are gone and are made again" in log and tile.name in log
    day = sorted((run / "product" / "2001").glob("*.nc"))[3]
    day.unlink()
    result, counts, log = planned()  # a dry run names it
    assert result.returncode == 0, result.stderr[-3000:]
    assert "results/test/product/2001: 1 file(s)" in log and day.name in log
    assert "--forcerun results/test/product/2001" in log
    refused = run_snakemake(["--cores", "1", "--configfile", "config.yaml"], workdir)
    assert refused.returncode != 0  # a run stops before any job
    log = refused.stdout + refused.stderr
    assert "output folders lost files" in log and "Predict soil moisture" not in log
    result, counts, log = planned("--forcerun", "results/test/product/2001")
    assert result.returncode == 0, result.stderr[-3000:]
    assert counts["product_year"] == 2 and counts["inference_tile"] == 1


def test_pointing_the_in_situ_inputs_elsewhere_keeps_the_synthetic_world(tmp_path):
    """The synthesize rule's params carry only the products the world writes: moving real
    in-situ inputs to another folder reruns the validation, not the world and all after it."""
    import yaml

    def config_with_insitu(folder):
        folder.mkdir()
        (folder / "cosmos").mkdir()
        (folder / "smap_cvs").mkdir()
        (folder / "ismn.zip").write_bytes(b"")
        (folder / "sites.csv").write_text("site_id,latitude,longitude\n")
        config = yaml.safe_load(TEST_CONFIG.read_text())
        config["inputs"] = {
            **config.get("inputs", {}),
            "ismn": str(folder / "ismn.zip"),
            "cosmos": str(folder / "cosmos"),
            "smap_cvs": str(folder / "smap_cvs"),
            "smap_cvs_sites": str(folder / "sites.csv"),
        }
        path = tmp_path / f"{folder.name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path.name

    first, second = config_with_insitu(tmp_path / "a"), config_with_insitu(tmp_path / "b")
    made = _snakemake(["--cores", "2", "--configfile", first, "--until", "synthesize"], tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    planned = _snakemake(
        ["-n", "--quiet", "rules", "--configfile", second, "--until", "synthesize"], tmp_path
    )
    assert planned.returncode == 0, planned.stderr[-3000:]
    log = planned.stdout + planned.stderr
    assert "synthesize" not in (snakemake_job_counts(log) if "Job stats:" in log else {})
    # the world's own products still rerun it
    moved = _snakemake(
        ["-n", "--quiet", "rules", "--configfile", second, "--until", "synthesize"]
        + ["--config", "synthetic={seed: 7}"],
        tmp_path,
    )
    assert "synthesize" in snakemake_job_counts(moved.stdout + moved.stderr)
