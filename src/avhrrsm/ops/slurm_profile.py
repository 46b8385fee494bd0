"""Installing the SLURM profile where `snakemake --profile slurm` looks for it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from avhrrsm.requests import GROUP_JOB_CORES


def user_profile_dir() -> Path:
    """Snakemake's user profile folder: $XDG_CONFIG_HOME/snakemake (default ~/.config/snakemake)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "snakemake"


def install_slurm_profile(
    source: Path,
    destination: Path | None = None,
    partition: str = "",
    account: str = "",
    status_command: str = "",
    init_seconds: int | None = None,
    logdir: str = "",
    job_cores: int = GROUP_JOB_CORES,
    job_mem_mb: int = 128000,
    job_gpus: int = 1,
    inference_groups: Mapping[str, int] | None = None,
) -> Path:
    """Write the workflow's SLURM profile ``source`` (profiles/slurm/config.yaml of a checkout),
    with the cluster's settings, as ``destination/slurm/config.yaml``; returns that file.
    ``inference_groups``: tiles per group job of groups ``inference`` and ``inference_cpu``
    (avhrrsm.requests.inference_group_size and cpu_inference_group_size of the user's
    configuration), where they differ from the workflow profile's."""
    settings = yaml.safe_load(Path(source).read_text())
    # The largest job to ask for: group jobs (several tiles in one allocation) run their members
    # in series beyond this, instead of asking for the sum of their cores and memory.
    # (Snakemake also caps every job's threads at `cores`; a spreading job's runtime follows the
    # threads it gets.) The GPUs are a per-allocation pool too, so that a group of inference
    # tiles runs them one after another on its GPU instead of asking for one GPU per tile.
    settings["cores"] = int(job_cores)
    settings["resources"] = [f"mem_mb={int(job_mem_mb)}", f"gpu={int(job_gpus)}"]
    settings["set-resource-scopes"] = ["gpu=local"]
    if inference_groups:
        components = dict(entry.split("=", 1) for entry in settings.get("group-components", []))
        components.update({name: str(int(n)) for name, n in inference_groups.items()})
        settings["group-components"] = [f"{name}={n}" for name, n in components.items()]
    resources = {}
    if partition:
        resources["slurm_partition"] = repr(partition)
    if account:
        resources["slurm_account"] = repr(account)
    else:
        settings["slurm-no-account"] = True
    if resources:
        settings["default-resources"] = [f"{k}={v}" for k, v in resources.items()]
    if status_command:
        settings["slurm-status-command"] = status_command
    if init_seconds is not None:
        settings["slurm-init-seconds-before-status-checks"] = int(init_seconds)
    if logdir:
        settings["slurm-logdir"] = logdir
    folder = (destination or user_profile_dir()) / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "config.yaml"
    header = (
        f"# Installed by `avhrrsm slurm-profile` from {source}.\n"
        "# Reinstall (make slurm-profile ...) rather than edit, or edit and keep a copy.\n"
    )
    target.write_text(header + yaml.safe_dump(settings, sort_keys=False))
    return target
