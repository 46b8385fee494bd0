"""Provenance attributes written into every output: which code, settings and inputs made it."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from avhrrsm import __version__
from avhrrsm.config import REPO_ROOT, config_hash

KEY_LIBRARIES = (
    "numpy",
    "xarray",
    "dask",
    "zarr",
    "netCDF4",
    "rasterio",
    "torch",
    "xgboost",
    "pandas",
)


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the source tree, or ('unknown', False) outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def library_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def provenance_attrs(
    rule: str, params: Mapping[str, Any], inputs: Iterable[str | Path] = ()
) -> dict[str, str]:
    """Global attributes for an output (no timestamp: identical runs give identical bytes)."""
    commit, dirty = git_state()
    return {
        "avhrrsm_version": __version__,
        "avhrrsm_git_commit": commit,
        "avhrrsm_git_dirty": str(dirty).lower(),
        "avhrrsm_rule": rule,
        "avhrrsm_params_sha256": config_hash(dict(params)),
        "avhrrsm_params": json.dumps(dict(params), sort_keys=True, default=str),
        "avhrrsm_inputs": json.dumps(sorted(str(p) for p in inputs)),
        "avhrrsm_libraries": json.dumps(library_versions(), sort_keys=True),
        "avhrrsm_python": platform.python_version(),
    }
