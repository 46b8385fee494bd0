"""The real workflow through a real SLURM cluster (one node on localhost), with the user's
literal command `snakemake --profile slurm` after `make slurm-profile`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, TEST_CONFIG
from slurm_cluster import ClusterUnavailable, LocalSlurm


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(Path(tmp_path_factory.mktemp("slurm")))
    try:
        cluster.start()
    except ClusterUnavailable as err:
        pytest.skip(f"no SLURM cluster here: {err}")
    yield cluster
    cluster.stop()


def test_tiny_workflow_runs_through_slurm(slurm, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(TEST_CONFIG, workdir / "config.yaml")
    env = {
        **slurm.env,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONHASHSEED": "0",
    }
    install = subprocess.run(
        [
            "make", "-C", str(REPO_ROOT), "--no-print-directory", "slurm-profile",
            f"SLURM_PARTITION={slurm.partition}", "SLURM_STATUS_COMMAND=squeue",
            "SLURM_INIT_SECONDS=5", "SLURM_JOB_CORES=2", "SLURM_JOB_MEM_MB=16000",
        ],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    profile = tmp_path / "xdg" / "snakemake" / "slurm" / "config.yaml"
    assert "executor: slurm" in profile.read_text()
    run = subprocess.run(
        [
            "timeout", "-k", "20", "1500",
            "snakemake", "--profile", "slurm", "--snakefile", str(REPO_ROOT / "Snakefile"),
            "--configfile", "config.yaml",
        ],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=1600,
    )  # fmt: skip
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    assert "Using profile" in log and "slurm" in log
    results = workdir / "results" / "test"
    assert (results / "validation" / "report.html").is_file()
    assert len(list((results / "product" / "2015").glob("*.nc"))) == 365
    # every job went through sbatch: SLURM logs exist per rule, and SLURM job ids in the log
    logs = workdir / "slurm_logs"
    rules = {p.name for p in logs.iterdir()} if logs.is_dir() else set()
    assert {"rule_stack_year", "rule_train_deep", "rule_validation"} <= rules, rules
    # grouped: the 4 inference tiles (2 years x 2 tiles) went in one submission
    assert "group_inference_inference_tile" in rules and "rule_inference_tile" not in rules, rules
    submissions = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    jobs = sum(
        int(n)
        for n in re.findall(r"^(?:\w+)\s+(\d+)$", log.split("Job stats:")[1].split("\n\n")[0], re.M)
    )
    assert 0 < len(submissions) < jobs - 1, (len(submissions), jobs)
    manifest = json.loads((results / "samples" / "manifest.json").read_text())
    assert manifest["samples"] > 0
