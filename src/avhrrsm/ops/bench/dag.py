"""The DAG of the global 40-year configuration: dry-run time, jobs per rule, SLURM submissions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from avhrrsm.config import load_yaml
from avhrrsm.ops.bench.fixtures import write_global_standins
from avhrrsm.ops.checkout import Checkout


def snakemake_job_counts(log: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake (dry) run: rule -> number of jobs."""
    table = log.split("Job stats:")[1].split("\n\n")[0]
    counts = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def _dry_run(workdir: Path, snakefile: Path, config: Path, *extra: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
            "-n", "--configfile", str(config), *extra,
        ],
        cwd=workdir, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"dry run failed: {done.stderr[-2000:]}")
    return seconds, done.stdout + done.stderr


def bench_dag(work: Path, checkout: Checkout, repeat: int = 2) -> dict[str, Any]:
    """Wall time of `snakemake -n` on the global 1982-2021 config, its jobs, and the SLURM
    submissions after job grouping (group jobs of the SLURM profile, local rules excluded)."""
    workdir = work / "dag"
    workdir.mkdir(parents=True, exist_ok=True)
    write_global_standins(workdir)
    config = checkout.config("global")
    times = []
    for _ in range(repeat):
        seconds, log = _dry_run(workdir, checkout.snakefile, config, "--quiet", "rules")
        times.append(seconds)
    counts = snakemake_job_counts(log)
    # the same plan as the SLURM executor sees it, with the SLURM profile's job groups: group
    # jobs are printed one by one
    profile = load_yaml(checkout.profile("slurm"))
    groups = ["--groups", *profile.get("groups", [])] if profile.get("groups") else []
    if profile.get("group-components"):
        groups += ["--group-components", *profile["group-components"]]
    slurm_seconds, slurm_log = _dry_run(
        workdir, checkout.snakefile, config, "--executor", "slurm", "--jobs", "500", *groups
    )
    group_jobs = len(re.findall(r"Group job \w+", slurm_log))
    grouped_rules = {entry.split("=")[0].strip() for entry in profile.get("groups", [])}
    local = local_rules(checkout.rules_dir)
    single = sum(n for rule, n in counts.items() if rule not in grouped_rules | local)
    return {
        "seconds": min(times),
        "seconds_all": times,
        "slurm_plan_seconds": slurm_seconds,
        "jobs": sum(counts.values()),
        "jobs_per_rule": counts,
        "local_rules": sorted(local),
        "grouped_rules": sorted(grouped_rules),
        "group_jobs": group_jobs,
        "slurm_submissions": group_jobs + single,
    }


def local_rules(rules_dir: Path) -> set[str]:
    """Rules that run on the head node: declared `localrules:`, and `all` (no action)."""
    names = {"all"}
    for path in rules_dir.glob("*.smk"):
        text = path.read_text()
        # `localrules: a, b` on one line, or one indented name per line below it
        for inline, block in re.findall(
            r"^localrules:[ \t]*([\w, \t]*)\n((?:[ \t]+\w+[ \t]*,?[ \t]*\n)*)", text, re.MULTILINE
        ):
            names |= set(re.findall(r"\w+", inline + block))
    return names
